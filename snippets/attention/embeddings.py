"""Word embeddings: one-hot vs dense vectors, lookup tables, skip-gram with negatives.

Page: attention/embeddings.md
Run:  python -m snippets run attention/embeddings

The corpus is generated here from a small grammar (fruit, animals, cities, royalty...),
so nothing is downloaded and the "right" neighbours of each word are known.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snippets.common import PALETTE, progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_sentences: int = 20_000  # size of the generated corpus
    window: int = 2  # context words on each side of the centre word
    num_negatives: int = 5  # K noise words per (centre, context) pair
    embed_size: int = 24  # d, the length of each word vector
    batch_size: int = 1024  # (centre, context) pairs per step
    num_steps: int = 3_000  # Adam steps
    lr: float = 0.01  # Adam learning rate
    seed: int = 0  # seeds data, initialisation and batching

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_sentences=500, num_steps=50)


# --8<-- [start:corpus]
CLASSES = {
    "fruit": "apple orange mango grape lemon peach pear banana".split(),
    "animal": "cat dog horse cow sheep pig goat rabbit".split(),
    "colour": "red green blue yellow black white purple".split(),
    "city": "paris london tokyo berlin rome madrid".split(),
    "country": "france england japan germany italy spain".split(),
    "language": "french english japanese german italian spanish".split(),
    "number": "two three four five six seven".split(),
    "day": "monday tuesday wednesday thursday friday saturday sunday".split(),
    "royal": "king queen prince princess".split(),
    "commoner": "man woman boy girl".split(),
}
GROUPS = {  # the same people, grouped by other traits: age, and anyone at all
    "young": "prince princess boy girl".split(),
    "adult": "king queen man woman".split(),
    "human": CLASSES["royal"] + CLASSES["commoner"],
}
HE = {"king", "prince", "man", "boy"}  # "he" and "his"; the other four: "she", "her"
TEMPLATES = [
    "i want a glass of {fruit} juice", "she ate a {fruit} after lunch",
    "this {fruit} tastes sweet", "the {animal} sleeps in the barn",
    "the farmer feeds the {animal}", "a {animal} is eating grass",
    "the {colour} car is parked outside", "he painted the door {colour}",
    "{city} is the capital of {country}", "people in {country} speak {language}",
    "we flew to {city} on {day}", "the {animal} had {number} babies",
    "she bought {number} bags of {fruit}", "the shop is closed on {day}",
    "the {royal} lives in the palace", "the {royal} wore a golden crown",
    "the {commoner} lives in the village", "the {commoner} works on the farm",
    "the {young} is still a child", "the {adult} has grown up children",
    "the {human} said {pronoun} was tired", "the {human} lost {poss} hat",
]


def make_corpus(num_sentences: int, rng: random.Random) -> list[list[str]]:
    """Sentences drawn from TEMPLATES; paris always goes with france, and so on."""
    sentences = []
    for _ in range(num_sentences):
        fill = {k: rng.choice(v) for k, v in {**CLASSES, **GROUPS}.items()}
        k = CLASSES["country"].index(fill["country"])
        fill["city"], fill["language"] = CLASSES["city"][k], CLASSES["language"][k]
        male = fill["human"] in HE
        fill["pronoun"], fill["poss"] = ("he", "his") if male else ("she", "her")
        sentences.append(rng.choice(TEMPLATES).format(**fill).split())
    return sentences
# --8<-- [end:corpus]


def skipgram_pairs(sentences, vocab: dict, window: int) -> torch.Tensor:
    """All (centre, context) index pairs within ``window`` words: (N, 2)."""
    pairs = []
    for s in sentences:
        ids = [vocab[w] for w in s]
        for i, c in enumerate(ids):
            for j in range(max(0, i - window), min(len(ids), i + window + 1)):
                if j != i:
                    pairs.append((c, ids[j]))
    return torch.tensor(pairs)


# --8<-- [start:lookup]
def embed_by_matmul(ids: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """o_w^T E: a one-hot row vector times the (V, d) embedding matrix picks row w."""
    one_hot = F.one_hot(ids, num_classes=E.shape[0]).float()  # (N, V), mostly zeros
    return one_hot @ E  # (N, d); nn.Embedding does the same by indexing E[ids]


def cosine(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """cos(u, v) = u.v / (|u| |v|), for every pair of rows."""
    u, v = F.normalize(u, dim=-1), F.normalize(v, dim=-1)
    return u @ v.T
# --8<-- [end:lookup]


# --8<-- [start:sgns]
class SkipGram(nn.Module):
    """Two tables: E for words as centres (the vectors we keep), E_out as contexts."""

    def __init__(self, vocab_size: int, embed_size: int):
        super().__init__()
        self.E = nn.Embedding(vocab_size, embed_size)
        self.E_out = nn.Embedding(vocab_size, embed_size)
        nn.init.normal_(self.E.weight, std=0.1)
        nn.init.zeros_(self.E_out.weight)

    def forward(self, centre, context, negatives):
        v = self.E(centre)  # (B, d)
        pos = (self.E_out(context) * v).sum(-1)  # (B,)      u_o . v_c
        neg = torch.einsum("bkd,bd->bk", self.E_out(negatives), v)  # (B, K)
        # -log sigma(u_o.v_c) - sum_k log sigma(-u_k.v_c), averaged over the batch
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()
# --8<-- [end:sgns]


# --8<-- [start:noise]
def noise_distribution(sentences, vocab: dict, power: float = 0.75) -> torch.Tensor:
    """P_n(w) proportional to count(w)^power, counting every token of the corpus."""
    counts = Counter(w for s in sentences for w in s)
    weights = torch.tensor([float(counts[w]) for w in vocab]) ** power
    return weights / weights.sum()
# --8<-- [end:noise]


def train(model, pairs, noise, cfg) -> list[float]:
    """Adam on random batches of pairs; K negatives per pair drawn from ``noise``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses = []
    for _ in progress(range(cfg.num_steps), desc="skip-gram"):
        idx = torch.randint(len(pairs), (cfg.batch_size,))
        negatives = torch.multinomial(noise, cfg.batch_size * cfg.num_negatives,
                                      replacement=True).view(cfg.batch_size, -1)
        loss = model(pairs[idx, 0], pairs[idx, 1], negatives)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def word_class(word: str) -> str:
    return next((k for k, v in CLASSES.items() if word in v), "other")


def nearest(E, words, vocab, word: str, k: int = 3) -> list[str]:
    """The k other words whose vectors have the largest cosine with ``word``'s."""
    sims = cosine(E[vocab[word]][None], E)[0]
    sims[vocab[word]] = -2.0  # not itself
    return [words[i] for i in sims.topk(k).indices]


def analogy(E, words, vocab, a: str, b: str, c: str) -> str:
    """a is to b as c is to ?  ->  the word closest to e_b - e_a + e_c."""
    target = E[vocab[b]] - E[vocab[a]] + E[vocab[c]]
    sims = cosine(target[None], E)[0]
    sims[[vocab[a], vocab[b], vocab[c]]] = -2.0
    return words[int(sims.argmax())]


ANALOGIES = [  # a : b = c : d; the first five are about people, the rest about places
    ("man", "woman", "king", "queen"), ("man", "king", "woman", "queen"),
    ("boy", "girl", "prince", "princess"), ("king", "prince", "queen", "princess"),
    ("man", "boy", "woman", "girl"), ("paris", "france", "tokyo", "japan"),
    ("rome", "italy", "berlin", "germany"), ("france", "paris", "spain", "madrid"),
    ("france", "french", "japan", "japanese"), ("london", "english", "rome", "italian"),
]


def pca_2d(Z: torch.Tensor) -> np.ndarray:
    Z = Z - Z.mean(0)
    return (Z @ torch.linalg.svd(Z, full_matrices=False).Vh[:2].T).numpy()


PEOPLE = ["man", "woman", "king", "queen", "boy", "girl", "prince", "princess"]


def mean_pairwise_cos(vectors: torch.Tensor) -> float:
    """Mean cosine over all pairs of distinct rows."""
    C = cosine(vectors, vectors)
    n = len(vectors)
    return ((C.sum() - C.diagonal().sum()) / (n * (n - 1))).item()


def class_cosines(E, words) -> dict:
    """Mean cosine within each class and between every two classes (centre vectors)."""
    rows = {c: E[[words.index(w) for w in v]] for c, v in CLASSES.items()}
    within = [mean_pairwise_cos(R) for R in rows.values()]
    names = list(CLASSES)
    between = [cosine(rows[a], rows[b]).mean().item()
               for i, a in enumerate(names) for b in names[i + 1:]]
    return {"within_class_cos": float(np.mean(within)),
            "min_within_class_cos": float(min(within)),
            "between_class_cos": float(np.mean(between)),
            "country_language_cos": cosine(rows["country"], rows["language"])
            .mean().item()}


def gender_axes(E, words) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors: the mean he -> she arrow, and commoner -> royal made orthogonal
    to it."""
    idx = {w: words.index(w) for w in PEOPLE}
    arrows = torch.stack([E[idx[PEOPLE[i + 1]]] - E[idx[PEOPLE[i]]]
                          for i in range(0, 8, 2)])
    g = F.normalize(arrows.mean(0), dim=0)
    royal = E[[idx[w] for w in PEOPLE[2:4] + PEOPLE[6:]]].mean(0) - \
        E[[idx[w] for w in PEOPLE[:2] + PEOPLE[4:6]]].mean(0)
    r = F.normalize(royal - (royal @ g) * g, dim=0)
    return g, r


ZH = {
    **{c: z for c, z in zip(CLASSES, ["水果", "动物", "颜色", "城市", "国家", "语言",
                                      "数字", "星期", "王室", "平民"])},
    **{w: w for w in PEOPLE},  # the corpus words stay English
    "one-hot vectors: cosine": "独热向量：余弦",
    "learned vectors: cosine": "学到的向量：余弦",
    "cos(u, v)": "cos(u, v)",
    "all class words, first two principal components":
        "全部分类词，前两个主成分",
    "PC 1": "主成分 1", "PC 2": "主成分 2",
    "people: projected on the mean he → she and commoner → royal directions":
        "人物词：投影到平均的 he → she 方向和 平民 → 王室 方向",
    "along the mean he → she arrow": "沿平均 he → she 箭头",
    "along commoner → royal": "沿 平民 → 王室",
}


def plot_embeddings(E, words, out: Path) -> None:
    """Cosine matrices (one-hot vs learned), a 2-D PCA, and the people words."""
    keep = [w for w in words if word_class(w) != "other"]
    keep.sort(key=lambda w: list(CLASSES).index(word_class(w)))
    idx = torch.tensor([words.index(w) for w in keep])
    fig, axes = plt.subplots(2, 2, figsize=(12, 10.5), gridspec_kw={"hspace": 0.4})
    starts = [i for i, w in enumerate(keep)
              if i == 0 or word_class(keep[i - 1]) != word_class(w)]
    panels = [(axes[0, 0], torch.eye(len(keep)), "one-hot vectors: cosine"),
              (axes[0, 1], cosine(E[idx], E[idx]), "learned vectors: cosine")]
    for ax, M, title in panels:
        im = ax.imshow(M.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(title)
        ax.grid(False)
        labels = [word_class(keep[i]) for i in starts]
        ax.set_xticks(starts, labels, rotation=90, fontsize=8)
        ax.set_yticks(starts, labels, fontsize=8)
    fig.colorbar(im, ax=axes[0], fraction=0.025, label="cos(u, v)")
    ax = axes[1, 0]
    xy = pca_2d(E[idx])
    for k, cls in enumerate(CLASSES):
        pts = np.array([p for p, w in zip(xy, keep) if word_class(w) == cls])
        ax.scatter(pts[:, 0], pts[:, 1], s=16, color=plt.cm.tab10(k),
                   marker="o^sDvP*Xhp"[k])
        ax.annotate(cls, pts.mean(0), fontsize=9, xytext=(6, 6),
                    textcoords="offset points")
    ax.set(title="all class words, first two principal components",
           xlabel="PC 1", ylabel="PC 2")
    ax = axes[1, 1]
    g, r = gender_axes(E, words)
    P = E[[words.index(w) for w in PEOPLE]]
    xy = torch.stack([P @ g, P @ r], 1).numpy()
    ax.scatter(xy[:, 0], xy[:, 1], s=20, color=PALETTE[0])
    for k, ((x, y), w) in enumerate(zip(xy, PEOPLE)):  # she right, young below
        ax.annotate(w, (x, y), fontsize=9, textcoords="offset points",
                    xytext=(6 if k % 2 else -6, -12 if k >= 4 else 5),
                    ha="left" if k % 2 else "right")
    for i in range(0, 8, 2):  # he -> she, four times
        ax.annotate("", xy[i + 1], xy[i],
                    arrowprops={"arrowstyle": "->", "color": PALETTE[1]})
    ax.set(title="people: projected on the mean he → she and commoner → royal "
           "directions", xlabel="along the mean he → she arrow",
           ylabel="along commoner → royal")
    ax.title.set_fontsize(9)
    save_figure(fig, out / "embeddings.png", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/attention-embeddings")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    sentences = make_corpus(cfg.num_sentences, random.Random(cfg.seed))
    words = sorted({w for s in sentences for w in s})
    vocab = {w: i for i, w in enumerate(words)}
    pairs = skipgram_pairs(sentences, vocab, cfg.window)
    model = SkipGram(len(words), cfg.embed_size)
    losses = train(model, pairs, noise_distribution(sentences, vocab), cfg)
    E, U = model.E.weight.detach(), model.E_out.weight.detach()
    plot_embeddings(E, words, out)
    classed = [w for w in words if word_class(w) != "other"]
    same = [word_class(nearest(E, words, vocab, w, 1)[0]) == word_class(w)
            for w in classed]
    solved = [analogy(E, words, vocab, a, b, c) == d for a, b, c, d in ANALOGIES]
    people = E[[vocab[w] for w in PEOPLE]]
    he_to_she = people[1::2] - people[::2]  # woman - man, queen - king, ...
    to_royal = people[[2, 3, 6, 7]] - people[[0, 1, 4, 5]]  # king - man, ...
    countries = [vocab[w] for w in CLASSES["country"]]
    languages = [vocab[w] for w in CLASSES["language"]]
    scores = torch.sigmoid(E[countries] @ U[languages].T)  # (country, language)
    ids = torch.randint(len(words), (100,))
    one_hot = F.one_hot(torch.arange(len(words))).float()
    return {"vocab_size": len(words), "num_tokens": sum(map(len, sentences)),
            "num_pairs": len(pairs), "final_loss": float(np.mean(losses[-100:])),
            "embed_size": cfg.embed_size, "window": cfg.window,
            "num_negatives": cfg.num_negatives,
            "nn_same_class": float(np.mean(same)),
            "analogy_acc": float(np.mean(solved)),
            "analogy_people": float(np.mean(solved[:5])),
            "analogy_places": float(np.mean(solved[5:])),
            "king_nn_is_queen": float(nearest(E, words, vocab, "king", 1) == ["queen"]),
            **class_cosines(E, words),
            # first order: the model's own score sigma(u_o . v_c) that a language
            # occurs near a country, for the matched pairs (france, french) and the
            # mismatched ones (france, japanese)
            "paired_score": scores.diagonal().mean().item(),
            "mismatched_score": ((scores.sum() - scores.diagonal().sum())
                                 / (scores.numel() - len(scores))).item(),
            "gender_arrow_cos": mean_pairwise_cos(he_to_she),
            "royal_arrow_cos": mean_pairwise_cos(to_royal),
            "onehot_max_cos": (cosine(one_hot, one_hot) - torch.eye(len(words)))
            .abs().max().item(),
            "lookup_max_err": (embed_by_matmul(ids, E) - model.E(ids)).abs().max()
            .item()}


CLAIMS = {
    "one_hot_cosines_are_all_zero": lambda m: m["onehot_max_cos"] == 0.0,
    "lookup_equals_the_one_hot_product": lambda m: m["lookup_max_err"] < 1e-6,
    "words_of_a_class_form_blocks":
        lambda m: m["within_class_cos"] > m["between_class_cos"] + 0.3,
    "nearest_neighbours_share_the_class": lambda m: m["nn_same_class"] > 0.9,
    "countries_and_languages_are_closer_than_unrelated_classes":
        lambda m: m["between_class_cos"] < m["country_language_cos"]
        < m["within_class_cos"],
    "co_occurrence_shows_in_u_dot_v":
        lambda m: m["paired_score"] > m["mismatched_score"] + 0.3,
    "he_to_she_arrows_are_nearly_parallel": lambda m: m["gender_arrow_cos"] > 0.8,
    "people_analogies_beat_place_analogies":
        lambda m: m["analogy_people"] > m["analogy_places"],
}
