"""Word embeddings: one-hot vs dense vectors, lookup tables, skip-gram with negatives.

Page: attention/embeddings.md
Run:  python -m snippets run attention/embeddings

The corpus is generated here from a small grammar (fruit, animals, cities, royalty...),
so nothing is downloaded and the "right" neighbours of each word are known.
"""

from __future__ import annotations

import random
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


def plot_embeddings(E, words, out: Path) -> None:
    """Cosine matrices (one-hot vs learned), then two 2-D projections (PCA)."""
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
        ax.scatter(pts[:, 0], pts[:, 1], s=16, color=plt.cm.tab10(k))
        ax.annotate(cls, pts.mean(0), fontsize=9, xytext=(6, 6),
                    textcoords="offset points")
    ax.set(title="all class words, first two principal components",
           xlabel="PC 1", ylabel="PC 2")
    ax = axes[1, 1]
    people = ["man", "woman", "king", "queen", "boy", "girl", "prince", "princess"]
    xy = pca_2d(E[[words.index(w) for w in people]])
    ax.scatter(xy[:, 0], xy[:, 1], s=20, color=PALETTE[0])
    for (x, y), w in zip(xy, people):
        ax.annotate(w, (x, y), fontsize=9, xytext=(4, 4), textcoords="offset points")
    for i in range(0, 8, 2):  # he -> she, four times
        ax.annotate("", xy[i + 1], xy[i],
                    arrowprops={"arrowstyle": "->", "color": PALETTE[1]})
    ax.set(title="people only: the he -> she arrows are parallel",
           xlabel="PC 1", ylabel="PC 2")
    save_figure(fig, out / "embeddings.png")


def main(cfg: Config = Config(), out: Path = Path("out/attention-embeddings")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    sentences = make_corpus(cfg.num_sentences, random.Random(cfg.seed))
    words = sorted({w for s in sentences for w in s})
    vocab = {w: i for i, w in enumerate(words)}
    pairs = skipgram_pairs(sentences, vocab, cfg.window)
    counts = torch.bincount(pairs[:, 0], minlength=len(words)).float()
    noise = counts ** 0.75  # Mikolov et al.: unigram counts to the power 3/4
    model = SkipGram(len(words), cfg.embed_size)
    losses = train(model, pairs, noise / noise.sum(), cfg)
    E = model.E.weight.detach()
    plot_embeddings(E, words, out)
    classed = [w for w in words if word_class(w) != "other"]
    same = [word_class(nearest(E, words, vocab, w, 1)[0]) == word_class(w)
            for w in classed]
    solved = [analogy(E, words, vocab, a, b, c) == d for a, b, c, d in ANALOGIES]
    first = {w: nearest(E, words, vocab, w, 1)[0] for w in ("king", "apple", "paris")}
    ids = torch.randint(len(words), (100,))
    one_hot = F.one_hot(torch.arange(len(words))).float()
    return {"vocab_size": len(words), "num_tokens": sum(map(len, sentences)),
            "num_pairs": len(pairs), "final_loss": float(np.mean(losses[-100:])),
            "nn_same_class": float(np.mean(same)),
            "analogy_acc": float(np.mean(solved)),
            "analogy_people": float(np.mean(solved[:5])),
            "analogy_places": float(np.mean(solved[5:])),
            "king_nn_is_queen": float(first["king"] == "queen"),
            "onehot_max_cos": (cosine(one_hot, one_hot) - torch.eye(len(words)))
            .abs().max().item(),
            "lookup_max_err": (embed_by_matmul(ids, E) - model.E(ids)).abs().max()
            .item()}
