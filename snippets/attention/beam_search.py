"""Beam search vs greedy decoding (and sampling), with length normalisation, on dates.

Page: attention/beam-search.md
Run:  python -m snippets run attention/beam_search

Trains a short run of the attention model (imported from the attention demo, fewer
steps so it still makes mistakes), then decodes the held-out dates with greedy search,
with beam search for several widths B and exponents alpha, and by sampling; sorts
the mistakes beam search cannot fix into search errors and model errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from snippets.attention.attention import AttnSeq2Seq
from snippets.attention.seq2seq import (
    BOS, EOS, TGT_CHARS, TGT_ID, TGT_LEN, encode_pairs, greedy_decode, make_data,
    to_string, train,
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
    temperatures: tuple = (1.0, 0.5)  # sampling temperatures
    num_samples: int = 5  # samples drawn per input and temperature
    seed: int = 0  # seeds data, initialisation and batching

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_train=512, num_test=16, num_steps=12, batch_size=64)


# --8<-- [start:beam]
@torch.no_grad()
def beam_search(model, X, X_len, beam_width: int, max_len: int = TGT_LEN):
    """Keep the beam_width best prefixes at every step. One input: X is (1, T).

    The variant d2l uses: a hypothesis that emits <eos> moves to the finished list
    and its slot is not refilled, so the live beam can shrink below beam_width.
    Returns (tokens, sum of log-probs) for every finished hypothesis and, if
    max_len is reached, for the unfinished ones; the caller picks with ``best``.
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


# --8<-- [start:sample]
@torch.no_grad()
def sample_decode(model, X, X_len, temperature: float = 1.0, top_k: int | None = None,
                  gen: torch.Generator | None = None, max_len: int = TGT_LEN):
    """Draw each next token from softmax(logits / temperature), among the top_k most
    likely only if top_k is given. top_k = 1, or temperature -> 0, is greedy."""
    memory, state = model.encode(X, X_len)
    y, tokens = torch.full((len(X),), BOS), []
    for _ in range(max_len):
        logits, state, _ = model.decode_step(y, state, memory)
        logits = logits / temperature  # (B, V); < 1 sharpens, > 1 flattens
        if top_k is not None:
            kth = logits.topk(top_k, dim=-1).values[:, -1:]  # k-th largest per row
            logits = logits.masked_fill(logits < kth, float("-inf"))
        y = torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0]
        tokens.append(y)
    return torch.stack(tokens, 1)  # (B, max_len)
# --8<-- [end:sample]


def log_probs_along(model, X, X_len, tokens) -> list[float]:
    """log P(y_t | x, y_<t) for each token of a given output (teacher forcing)."""
    Y_in = torch.tensor([[BOS] + tokens[:-1]])
    with torch.no_grad():
        logp = F.log_softmax(model(X, X_len, Y_in), dim=-1)[0]
    return [logp[t, y].item() for t, y in enumerate(tokens)]


class Counting:
    """Wraps a model and counts the prefixes it scores: each is |V| candidates."""

    def __init__(self, model):
        self.model, self.rows = model, 0

    def encode(self, X, X_len):
        return self.model.encode(X, X_len)

    def decode_step(self, y_prev, state, memory):
        self.rows += len(y_prev)
        return self.model.decode_step(y_prev, state, memory)


def target_tokens(iso: str) -> list[int]:
    return [TGT_ID[c] for c in iso] + [EOS]


def first_difference(a, b) -> int:
    """1-based step at which two token lists first differ (0 if equal)."""
    return next((t + 1 for t, (x, y) in enumerate(zip(a, b)) if x != y),
                0 if len(a) == len(b) else min(len(a), len(b)) + 1)


ZH = {
    "beam width B": "束宽 B", "exact match": "完全正确率",
    "mean log P(y | x) of the output": "输出的平均 log P(y | x)",
    "candidates scored per sentence": "每句评估的候选数",
    "α = {}": "α = {}",
    "B = 1 is greedy search; the α curves coincide: every output has the same length":
        "B = 1 即贪心搜索；各 α 的曲线重合：所有输出长度相同",
    "output step t": "输出步 t", "log P(y_1..y_t | x)": "log P(y_1..y_t | x)",
    "greedy: {}": "贪心：{}", "beam: {}": "束搜索：{}",
    "greedy: ": "贪心：", "beam: ": "束搜索：",  # an empty output (untrained model)
    "input: {}   (answer {})": "输入：{}（正确答案 {}）",
    "eos": "eos",
}


def plot_sweep(table, candidates, cfg, out: Path) -> None:
    """Exact match and mean log P against B (one line per alpha), and the work."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"wspace": 0.4})
    for ax, (key, label) in zip(axes, [("acc", "exact match"),
                                       ("logp", "mean log P(y | x) of the output")]):
        for k, alpha in enumerate(cfg.alphas):  # shrinking markers: overlaps show
            ys = [table[(B, alpha)][key] for B in cfg.widths]
            ax.plot(cfg.widths, ys, "osD^x"[k % 5], ls="-", ms=10 - 2 * k,
                    label=f"α = {alpha}")
        ax.set(xlabel="beam width B", ylabel=label)
    axes[2].plot(cfg.widths, [candidates[B] for B in cfg.widths], "o-", color="k")
    axes[2].set(xlabel="beam width B", ylabel="candidates scored per sentence",
                yscale="log")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(cfg.widths, [str(B) for B in cfg.widths])
    axes[0].legend(loc="lower right")
    fig.suptitle("B = 1 is greedy search; the α curves coincide: every output has the "
                 "same length")
    save_figure(fig, out / "sweep.png", zh=ZH)


def plot_case(model, pair, greedy_toks, beam_toks, out: Path) -> None:
    """Cumulative log-probability, step by step, of the greedy and the beam output."""
    X, X_len, _, _ = encode_pairs([pair])
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for toks, name, style in [(greedy_toks, "greedy", "o-"),
                              (beam_toks, "beam", "s--")]:
        lp = np.cumsum(log_probs_along(model, X, X_len, toks))
        ax.plot(range(1, len(lp) + 1), lp, style, label=f"{name}: {to_string(toks)}")
        for t, (y, v) in enumerate(zip(toks, lp)):
            ax.annotate(TGT_CHARS[y].strip("<>")[:3], (t + 1, v), fontsize=7,
                        xytext=(0, 6 if name == "greedy" else -11),
                        textcoords="offset points", ha="center")
    ax.set(xlabel="output step t", ylabel="log P(y_1..y_t | x)",
           title=f"input: {pair[0]!r}   (answer {pair[1]})")
    ax.legend(loc="lower left")
    save_figure(fig, out / "case.png", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/attention-beam_search")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    train_pairs, test_pairs = make_data(cfg)
    model = AttnSeq2Seq(cfg.embed_size, cfg.num_hiddens, cfg.attn_size)
    train(model, encode_pairs(train_pairs), cfg)
    model.eval()
    table = {(B, a): {"acc": [], "logp": [], "length": []} for B in cfg.widths
             for a in cfg.alphas}
    cpu, rows = {B: 0.0 for B in cfg.widths}, {B: 0 for B in cfg.widths}
    greedy_right, cases, beam1_equals_greedy, alpha_changes = [], [], [], []
    breaks = 0  # greedy right, the widest beam wrong: it found a likelier wrong date
    for pair in progress(test_pairs, desc="decode"):
        X, X_len, _, _ = encode_pairs([pair])
        greedy = to_string(greedy_decode(model, X, X_len)[0][0])
        greedy_right.append(greedy == pair[1])
        for B in cfg.widths:
            counting, start = Counting(model), time.process_time()
            hyps = beam_search(counting, X, X_len, B)
            cpu[B] += time.process_time() - start
            rows[B] += counting.rows
            picks = [best(hyps, a) for a in cfg.alphas]
            alpha_changes.append(any(p is not picks[0] for p in picks))
            for a, (toks, lp) in zip(cfg.alphas, picks):
                row = table[(B, a)]
                row["acc"].append(to_string(toks) == pair[1])
                row["logp"].append(lp)
                row["length"].append(len(toks))
            if B == 1:
                beam1_equals_greedy.append(to_string(picks[0][0]) == greedy)
            if B == max(cfg.widths) and greedy != pair[1]:
                cases.append((pair, best(hyps, 0.7)))
            elif B == max(cfg.widths):
                breaks += to_string(best(hyps, 0.7)[0]) != pair[1]
    lengths = [n for row in table.values() for n in row["length"]]
    table = {k: {m: float(np.mean(v)) for m, v in row.items()}
             for k, row in table.items()}
    ms = {B: 1000 * cpu[B] / len(test_pairs) for B in cfg.widths}
    candidates = {B: rows[B] * len(TGT_CHARS) / len(test_pairs) for B in cfg.widths}
    plot_sweep(table, candidates, cfg, out)
    # the greedy mistakes that beam search with the widest beam does not fix:
    # search error if the model rates the right answer higher than what was found
    recovered, model_errors, search_errors = [], 0, 0
    for pair, (toks, lp) in cases:
        if to_string(toks) == pair[1]:
            recovered.append(pair)
            continue
        X, X_len, _, _ = encode_pairs([pair])
        ref_lp = sum(log_probs_along(model, X, X_len, target_tokens(pair[1])))
        model_errors += ref_lp < lp
        search_errors += ref_lp >= lp
    pair = (recovered or [c[0] for c in cases] or test_pairs)[0]
    X, X_len, _, _ = encode_pairs([pair])
    greedy_toks = greedy_decode(model, X, X_len)[0][0].tolist()
    if EOS in greedy_toks:
        greedy_toks = greedy_toks[:greedy_toks.index(EOS) + 1]
    beam_toks = best(beam_search(model, X, X_len, max(cfg.widths)), 0.7)[0]
    plot_case(model, pair, greedy_toks, beam_toks, out)
    step = first_difference(greedy_toks, beam_toks)
    greedy_lp = log_probs_along(model, X, X_len, greedy_toks)
    beam_lp = log_probs_along(model, X, X_len, beam_toks)
    metrics = {"greedy_acc": float(np.mean(greedy_right)), "num_test": len(test_pairs),
               "greedy_errors": len(cases), "beam_recovers": len(recovered),
               "beam_breaks": breaks,
               "unrecovered_model_errors": model_errors,
               "unrecovered_search_errors": search_errors,
               "num_steps": cfg.num_steps, "beam_max": max(cfg.widths),
               "beam1_equals_greedy": float(np.mean(beam1_equals_greedy)),
               "alpha_changes_pick": float(np.mean(alpha_changes)),
               "min_output_len": min(lengths), "max_output_len": max(lengths),
               "case_diverge_step": step,
               "case_greedy_gain_at_diverge": greedy_lp[step - 1] - beam_lp[step - 1]
               if step else 0.0,
               "case_greedy_total": sum(greedy_lp), "case_beam_total": sum(beam_lp)}
    for B in cfg.widths:
        metrics[f"ms_per_sentence_B{B}"] = ms[B]
        metrics[f"candidates_B{B}"] = candidates[B]
    for (B, a), row in table.items():
        if a in (0.0, 0.7) or B == max(cfg.widths):
            for m, v in row.items():
                metrics[f"{m}_B{B}_a{a:g}"] = v
    # sampling instead of searching: the same model, a few draws per input
    X, X_len, _, _ = encode_pairs(test_pairs)
    gen = torch.Generator().manual_seed(cfg.seed)
    for temp in cfg.temperatures:
        right = [to_string(toks) == iso for _ in range(cfg.num_samples)
                 for toks, (_, iso) in zip(
                     sample_decode(model, X, X_len, temp, gen=gen), test_pairs)]
        metrics[f"sample_acc_t{temp:g}"] = float(np.mean(right))
    metrics["num_samples"] = cfg.num_samples
    return metrics


CLAIMS = {
    "beam_width_1_is_greedy": lambda m: m["beam1_equals_greedy"] == 1.0,
    "beam_search_beats_greedy_here": lambda m: m["acc_B10_a0.7"] > m["greedy_acc"],
    "beam_recovers_some_greedy_errors": lambda m: m["beam_recovers"] >= 1,
    "most_unrecovered_errors_are_model_errors":
        lambda m: m["unrecovered_model_errors"] > 4 * m["unrecovered_search_errors"],
    "greedy_leads_at_the_fork_then_loses":
        lambda m: m["case_greedy_gain_at_diverge"] > 0
        and m["case_beam_total"] > m["case_greedy_total"],
    "b2_finds_more_probable_outputs_than_greedy":
        lambda m: m["logp_B2_a0"] > m["logp_B1_a0"]
        and m["acc_B2_a0.7"] > m["acc_B1_a0.7"],
    "beams_wider_than_2_add_almost_nothing":
        lambda m: abs(m["acc_B10_a0.7"] - m["acc_B2_a0.7"]) < 0.005
        and m["logp_B10_a0"] - m["logp_B2_a0"] < 0.005,
    "alpha_changes_nothing_when_all_outputs_have_one_length":
        lambda m: m["alpha_changes_pick"] == 0
        and m["min_output_len"] == m["max_output_len"],
    "a_wider_beam_scores_B_times_the_candidates":
        lambda m: m["candidates_B10"] > 8 * m["candidates_B1"],
    "but_costs_far_less_than_B_times_the_time":
        lambda m: m["ms_per_sentence_B1"] < m["ms_per_sentence_B10"]
        < 5 * m["ms_per_sentence_B1"],
    "sampling_is_worse_than_greedy_and_colder_is_closer":
        lambda m: m["sample_acc_t1"] < m["sample_acc_t0.5"] < m["greedy_acc"],
}
