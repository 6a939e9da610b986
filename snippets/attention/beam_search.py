"""Beam search vs greedy decoding, with length normalisation, on the date translator.

Page: attention/beam-search.md
Run:  python -m snippets run attention/beam_search

Trains a short run of the attention model (imported from the attention demo, fewer
steps so it still makes mistakes), then decodes the held-out dates with greedy search
and with beam search for several widths B and exponents alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from snippets.attention.attention import AttnSeq2Seq
from snippets.attention.seq2seq import (
    BOS, EOS, TGT_CHARS, TGT_LEN, encode_pairs, greedy_decode, make_data, to_string,
    train,
)
from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_train: int = 40_000  # training pairs (same data as the other date demos)
    num_test: int = 600  # held-out pairs to decode with every (B, alpha)
    embed_size: int = 32  # model sizes: as in the attention demo
    num_hiddens: int = 64  # GRU state size
    attn_size: int = 32  # width of the additive scorer
    batch_size: int = 128  # pairs per optimiser step
    num_steps: int = 500  # a shorter run than the attention demo: greedy still errs
    lr: float = 3e-3  # peak of the one-cycle schedule
    widths: tuple = (1, 2, 3, 5, 10)  # beam widths B
    alphas: tuple = (0.0, 0.3, 0.7, 1.0)  # length-normalisation exponents
    seed: int = 0  # seeds data, initialisation and batching

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_train=512, num_test=16, num_steps=12, batch_size=64)


# --8<-- [start:beam]
@torch.no_grad()
def beam_search(model, X, X_len, beam_width: int, max_len: int = TGT_LEN):
    """Keep the beam_width best prefixes at every step. One input: X is (1, T).

    Returns every finished hypothesis as (tokens, sum of log-probs); the caller
    picks one with ``best``. A hypothesis finishes when it emits <eos>.
    """
    memory, state = model.encode(X, X_len)
    beams = [([], 0.0, state[0])]  # (tokens so far, log P(tokens | x), decoder state)
    finished = []
    for _ in range(max_len):
        y_prev = torch.tensor([toks[-1] if toks else BOS for toks, _, _ in beams])
        states = torch.stack([s for _, _, s in beams])
        mem = {k: v.expand(len(beams), *v.shape[1:]) for k, v in memory.items()}
        logits, states, _ = model.decode_step(y_prev, states, mem)
        scores = torch.tensor([lp for _, lp, _ in beams])[:, None] + \
            F.log_softmax(logits, dim=-1)  # (b, V): every one-token extension
        top = scores.flatten().topk(beam_width)
        new_beams = []
        for score, flat in zip(top.values.tolist(), top.indices.tolist()):
            i, token = divmod(flat, len(TGT_CHARS))
            if token == EOS:
                finished.append((beams[i][0] + [EOS], score))
            else:
                new_beams.append((beams[i][0] + [token], score, states[i]))
        beams = new_beams
        if not beams:
            break
    return finished + [(toks, lp) for toks, lp, _ in beams]  # unfinished at max_len


def best(hypotheses, alpha: float):
    """argmax of sum_t log P(y_t | x, y_<t) / T_y^alpha; alpha = 0 is the raw sum."""
    return max(hypotheses, key=lambda h: h[1] / len(h[0]) ** alpha)
# --8<-- [end:beam]


def log_probs_along(model, X, X_len, tokens) -> list[float]:
    """log P(y_t | x, y_<t) for each token of a given output (teacher forcing)."""
    Y_in = torch.tensor([[BOS] + tokens[:-1]])
    with torch.no_grad():
        logp = F.log_softmax(model(X, X_len, Y_in), dim=-1)[0]
    return [logp[t, y].item() for t, y in enumerate(tokens)]


def plot_sweep(table, cfg, out: Path) -> None:
    """Exact match, mean log P and mean output length against B, one line per alpha."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"wspace": 0.4})
    keys = [("acc", "exact match"), ("logp", "mean log P(y | x) of the output"),
            ("length", "mean output length (with <eos>)")]
    for ax, (key, label) in zip(axes, keys):
        for k, alpha in enumerate(cfg.alphas):  # shrinking markers: overlaps show
            ys = [table[(B, alpha)][key] for B in cfg.widths]
            ax.plot(cfg.widths, ys, "osD^x"[k % 5], ls="-", ms=10 - 2 * k,
                    label=f"α = {alpha}")
        ax.set(xlabel="beam width B", ylabel=label, xscale="log")
        ax.set_xticks(cfg.widths, [str(B) for B in cfg.widths])
    axes[0].legend(loc="center right")
    fig.suptitle("B = 1 is greedy search; α only matters when finished outputs differ "
                 "in length")
    save_figure(fig, out / "sweep.png")


def plot_case(model, pair, greedy_toks, beam_toks, out: Path) -> None:
    """Cumulative log-probability, step by step, of the greedy and the beam output."""
    X, X_len, _, _ = encode_pairs([pair])
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for toks, name in [(greedy_toks, "greedy"), (beam_toks, "beam")]:
        lp = np.cumsum(log_probs_along(model, X, X_len, toks))
        ax.plot(range(1, len(lp) + 1), lp, "o-", label=f"{name}: {to_string(toks)}")
        for t, (y, v) in enumerate(zip(toks, lp)):
            ax.annotate(TGT_CHARS[y].strip("<>")[:3], (t + 1, v), fontsize=7,
                        xytext=(0, 6 if name == "greedy" else -11),
                        textcoords="offset points", ha="center")
    ax.set(xlabel="output step t", ylabel="log P(y_1..y_t | x)",
           title=f"input: {pair[0]!r}   (answer {pair[1]})")
    ax.legend(loc="lower left")
    save_figure(fig, out / "case.png")


def main(cfg: Config = Config(), out: Path = Path("out/attention-beam_search")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    train_pairs, test_pairs = make_data(cfg)
    model = AttnSeq2Seq(cfg.embed_size, cfg.num_hiddens, cfg.attn_size)
    train(model, encode_pairs(train_pairs), cfg)
    model.eval()
    table = {(B, a): {"acc": [], "logp": [], "length": []} for B in cfg.widths
             for a in cfg.alphas}
    greedy_right, cases, beam1_equals_greedy = [], [], []
    for pair in progress(test_pairs, desc="decode"):
        X, X_len, _, _ = encode_pairs([pair])
        greedy = to_string(greedy_decode(model, X, X_len)[0][0])
        greedy_right.append(greedy == pair[1])
        for B in cfg.widths:
            hyps = beam_search(model, X, X_len, B)
            for a in cfg.alphas:
                toks, lp = best(hyps, a)
                row = table[(B, a)]
                row["acc"].append(to_string(toks) == pair[1])
                row["logp"].append(lp)
                row["length"].append(len(toks))
            if B == 1:
                beam1_equals_greedy.append(to_string(best(hyps, 0.0)[0]) == greedy)
            if B == max(cfg.widths) and greedy != pair[1]:
                cases.append((to_string(best(hyps, 0.7)[0]) == pair[1], pair, hyps))
    table = {k: {m: float(np.mean(v)) for m, v in row.items()}
             for k, row in table.items()}
    plot_sweep(table, cfg, out)
    recovered = [c for c in cases if c[0]]
    pair = (recovered or cases or [(0, test_pairs[0], None)])[0][1]
    X, X_len, _, _ = encode_pairs([pair])
    greedy_toks = greedy_decode(model, X, X_len)[0][0].tolist()
    if EOS in greedy_toks:
        greedy_toks = greedy_toks[:greedy_toks.index(EOS) + 1]
    beam_toks = best(beam_search(model, X, X_len, max(cfg.widths)), 0.7)[0]
    plot_case(model, pair, greedy_toks, beam_toks, out)
    B_max = max(cfg.widths)
    metrics = {"greedy_acc": float(np.mean(greedy_right)), "num_test": len(test_pairs),
               "greedy_errors": len(cases), "beam_recovers": len(recovered),
               "num_steps": cfg.num_steps,
               "beam1_equals_greedy": float(np.mean(beam1_equals_greedy))}
    for (B, a), row in table.items():
        if a in (0.0, 0.7) or B == B_max:
            for m, v in row.items():
                metrics[f"{m}_B{B}_a{a:g}"] = v
    return metrics
