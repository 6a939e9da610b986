"""Attention: Bahdanau's additive attention on dates, then scaled dot-product attention.

Page: attention/attention.md
Run:  python -m snippets run attention/attention

Same data, encoder and training loop as the seq2seq demo (imported from it); the
decoder now looks back at every input character at every output step. Also measures
what attention costs (matrix-product FLOPs, counted by PyTorch, and CPU time of a
training step) and why scaled dot-product attention divides by sqrt(d).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from snippets.attention.seq2seq import (
    BOS, BUCKETS, FORMAT_NAMES, FORMATS, TGT_CHARS, TGT_LEN, Encoder, Seq2Seq,
    by_format, encode_pairs, evaluate, field_spans, greedy_decode, make_data,
    number_words, plot_by_format, render, split_days, to_string, train,
)
from snippets.attention.seq2seq import ZH as SEQ2SEQ_ZH
from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    num_train: int = 40_000  # training pairs (same data as the seq2seq demo)
    num_test: int = 4_000  # test pairs, all on held-out days
    embed_size: int = 32  # size of each character embedding
    num_hiddens: int = 64  # GRU state size (the encoder has two directions)
    attn_size: int = 32  # width of the additive scorer's hidden layer
    batch_size: int = 128  # pairs per optimiser step
    num_steps: int = 800  # optimiser steps
    lr: float = 3e-3  # peak of the one-cycle schedule
    baseline: bool = True  # also train the no-attention model, for the comparison
    format_days: int = 400  # held-out days written in every format for the figure
    timing_reps: int = 7  # training steps timed per variant (the median is kept)
    seed: int = 0  # seeds data, initialisation and batching

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_train=512, num_test=256, num_steps=12, batch_size=64,
                   format_days=32, timing_reps=1)


# --8<-- [start:additive]
class AdditiveAttention(nn.Module):
    """score(s, h_j) = v^T tanh(W_s s + W_h h_j): a one-hidden-layer net per pair."""

    def __init__(self, query_size: int, key_size: int, attn_size: int):
        super().__init__()
        self.W_s = nn.Linear(query_size, attn_size, bias=False)
        self.W_h = nn.Linear(key_size, attn_size, bias=False)
        self.v = nn.Linear(attn_size, 1, bias=False)

    def forward(self, s, keys, values, mask):
        # s: (B, h) decoder state; keys = W_h H precomputed: (B, T, a); mask: (B, T)
        scores = self.v(torch.tanh(keys + self.W_s(s)[:, None])).squeeze(-1)  # (B, T)
        alpha = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # sums to 1
        return torch.bmm(alpha[:, None], values).squeeze(1), alpha  # (B, 2h), (B, T)
# --8<-- [end:additive]


# --8<-- [start:attn_seq2seq]
class AttnSeq2Seq(nn.Module):
    """Bahdanau et al. (2015): a fresh context c_t for every output step t."""

    def __init__(self, embed_size: int, num_hiddens: int, attn_size: int):
        super().__init__()
        self.encoder = Encoder(embed_size, num_hiddens)
        self.init_state = nn.Linear(2 * num_hiddens, num_hiddens)
        self.attention = AdditiveAttention(num_hiddens, 2 * num_hiddens, attn_size)
        self.embedding = nn.Embedding(len(TGT_CHARS), embed_size)
        self.cell = nn.GRUCell(embed_size + 2 * num_hiddens, num_hiddens)
        self.dense = nn.Linear(num_hiddens + 2 * num_hiddens, len(TGT_CHARS))

    def encode(self, X, X_len):
        H, last = self.encoder(X, X_len)  # (B, T, 2h), (B, 2h)
        mask = torch.arange(X.shape[1])[None] < X_len[:, None]  # real characters
        memory = {"keys": self.attention.W_h(H), "values": H, "mask": mask}
        return memory, torch.tanh(self.init_state(last))

    def decode_step(self, y_prev, s, memory):
        c, alpha = self.attention(s, memory["keys"], memory["values"], memory["mask"])
        s = self.cell(torch.cat([self.embedding(y_prev), c], dim=-1), s)  # (B, h)
        return self.dense(torch.cat([s, c], dim=-1)), s, alpha

    def forward(self, X, X_len, Y_in):
        return decode_loop(self, X, X_len, Y_in)


def decode_loop(model, X, X_len, Y_in):
    """Teacher forcing one step at a time: c_t needs s_{t-1}, so no single GRU call
    can take all steps; a Python loop of decode_step does."""
    memory, s = model.encode(X, X_len)
    logits = []
    for t in range(Y_in.shape[1]):
        y_hat, s, _ = model.decode_step(Y_in[:, t], s, memory)
        logits.append(y_hat)
    return torch.stack(logits, 1)  # (B, T_out, V)
# --8<-- [end:attn_seq2seq]


# --8<-- [start:sdpa]
def scaled_dot_product_attention(Q, K, V, mask=None):
    """softmax(Q K^T / sqrt(d) + mask) V.

    Q: (..., n, d), K: (..., m, d), V: (..., m, d_v).

    ``mask`` is boolean, True where a query may look (as in
    ``F.scaled_dot_product_attention``; ``nn.MultiheadAttention`` means the opposite),
    broadcastable to (..., n, m).
    """
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])  # (..., n, m)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ V  # (..., n, d_v)
# --8<-- [end:sdpa]


# --8<-- [start:multihead]
def multi_head_attention(X, W_q, W_k, W_v, W_o, num_heads: int, mask=None):
    """Self-attention with num_heads heads. X: (B, n, d); each W: (d, d)."""
    B, n, d = X.shape

    def split(Z):  # (B, n, d) -> (B, heads, n, d / heads)
        return Z.view(B, n, num_heads, d // num_heads).transpose(1, 2)

    Q, K, V = split(X @ W_q.T), split(X @ W_k.T), split(X @ W_v.T)
    heads = scaled_dot_product_attention(Q, K, V, mask)  # (B, heads, n, d / heads)
    return heads.transpose(1, 2).reshape(B, n, d) @ W_o.T  # concatenate, then mix
# --8<-- [end:multihead]


def check_sdpa(seed: int, num_checks: int = 20) -> float:
    """Largest |ours - F.scaled_dot_product_attention| on random shapes; every other
    check (half of them) with a random boolean mask."""
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for k in range(num_checks):
        n, m, d = (int(v) for v in torch.randint(1, 9, (3,), generator=gen))
        Q, K, V = (torch.randn(2, 3, L, d, generator=gen) for L in (n, m, m))
        mask = torch.rand(2, 1, n, m, generator=gen) < 0.7
        mask[..., 0] = True  # every query sees at least one key
        mask = None if k % 2 else mask
        diff = scaled_dot_product_attention(Q, K, V, mask) - \
            F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
        worst = max(worst, diff.abs().max().item())
    return worst


# --8<-- [start:cost]
def extra_macs(T: int, T_out: int, num_hiddens: int, attn_size: int) -> int:
    """Multiply-adds attention adds per sentence: W_h H once, then per step W_s s,
    the T scores v^T tanh(.) and the weighted sum of T vectors of size 2h."""
    h, a = num_hiddens, attn_size
    return T * 2 * h * a + T_out * h * a + T_out * T * (a + 2 * h)
# --8<-- [end:cost]


def matmul_flops(model, T: int, T_out: int = TGT_LEN) -> int:
    """FLOPs of the matrix products of one forward pass on one input of length T,
    as counted by PyTorch's FlopCounterMode (2 per multiply-add)."""
    X, X_len = torch.ones(1, T, dtype=torch.long), torch.tensor([T])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(X, X_len, torch.full((1, T_out), BOS))
    return counter.get_total_flops()


def step_cpu_ms(forward, data, reps: int) -> float:
    """CPU milliseconds of one training step's forward + backward: median of reps."""
    X, X_len, Y_in, Y_out = data
    times = []
    for _ in range(reps + 1):  # the first call warms up and is dropped
        start = time.process_time()
        y_hat = forward(X, X_len, Y_in)
        F.cross_entropy(y_hat.flatten(0, 1), Y_out.flatten()).backward()
        times.append(time.process_time() - start)
    return 1000 * sorted(times[1:])[len(times[1:]) // 2]


def attention_ops_cpu_ms(model, data, reps: int) -> float:
    """CPU milliseconds of the attention operations alone in one training step:
    W_h H once, then T' times scores, softmax and weighted sum, forward + backward."""
    X, X_len, Y_in, _ = data
    with torch.no_grad():
        H, last = model.encoder(X, X_len)
    H, s = H.requires_grad_(), last[:, :model.cell.hidden_size].requires_grad_()
    mask = torch.arange(X.shape[1])[None] < X_len[:, None]
    times = []
    for _ in range(reps + 1):
        start = time.process_time()
        keys, total = model.attention.W_h(H), 0
        for _ in range(Y_in.shape[1]):
            total = total + model.attention(s, keys, H, mask)[0].sum()
        total.backward()
        times.append(time.process_time() - start)
    return 1000 * sorted(times[1:])[len(times[1:]) // 2]


def softmax_saturation(dims, n_keys: int = 16, num: int = 500, seed: int = 0):
    """Mean largest softmax weight and mean Frobenius norm of the softmax Jacobian
    (diag(a) - a a^T), for random q, k with N(0, 1) entries, with and without
    dividing the scores by sqrt(d)."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for d in dims:
        q, K = torch.randn(num, 1, d, generator=gen), torch.randn(num, n_keys, d,
                                                                 generator=gen)
        row = {}
        for name, scale in (("raw", 1.0), ("scaled", 1 / math.sqrt(d))):
            a = ((q @ K.transpose(1, 2)).squeeze(1) * scale).softmax(-1)  # (num, n)
            jac = torch.diag_embed(a) - a[:, :, None] * a[:, None, :]
            row[f"max_{name}"] = a.max(-1).values.mean().item()
            row[f"jac_{name}"] = jac.flatten(1).norm(dim=1).mean().item()
        rows.append(row)
    return rows


def heatmap_inputs(seed: int):
    """Four held-out days, in formats that need reading: words, a two-digit year."""
    days = split_days(seed)[1][:4]
    fmts = [FORMATS[7], FORMATS[0], FORMATS[9], FORMATS[8]]
    return [(d, f) for d, f in zip(days, fmts)]


YEAR, MONTH, DAY = {"yy", "yyyy", "ywords"}, {"m", "mm", "month", "mon"}, \
    {"d", "dd", "dth", "dwords"}
OUTPUT_FIELD = {0: YEAR, 1: YEAR, 2: YEAR, 3: YEAR, 5: MONTH, 6: MONTH, 8: DAY, 9: DAY}


def alignment_metrics(model, cases) -> dict:
    """Where the trained model looks while writing each output character."""
    field_mass, century, tens_ones, digit_peak, other_peak = [], [], [], [], []
    century_elsewhere = []
    for day, fmt in cases:
        text = render(day, fmt)
        X, X_len, _, _ = encode_pairs([(text, day.isoformat())])
        attn = greedy_decode(model, X, X_len)[1][0]  # (T_out, T)
        spans = field_spans(day, fmt)
        for t, fields in OUTPUT_FIELD.items():
            (lo, hi), = [spans[f] for f in fields if f in spans]
            field_mass.append(attn[t, lo:hi].sum().item())
            if "yy" in spans and t == 0:  # the century's "1" or "2": from yy alone
                century.append(attn[t, lo:hi].sum().item())
                other = [spans[f] for f in spans if f != "yy"]
                century_elsewhere.append(sum(attn[t, a:b].sum().item()
                                             for a, b in other))
        for t in OUTPUT_FIELD:
            digit_peak.append(attn[t].max().item())
        for t in (4, 7, TGT_LEN - 1):  # the two '-' and <eos>
            other_peak.append(attn[t].max().item())
        words = number_words(day.year % 100)
        if "ywords" in spans and "-" in words:  # "ninety-four": '9' and '4'
            start = spans["ywords"][0] + text[spans["ywords"][0]:].index(words)
            tens, ones = words.split("-")
            tens_ones.append(attn[2, start:start + len(tens)].sum().item())
            ones_at = start + len(tens) + 1
            tens_ones.append(attn[3, ones_at:ones_at + len(ones)].sum().item())
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {"heat_field_mass": mean(field_mass), "heat_min_field_mass": min(field_mass),
            "heat_century_mass_on_yy": mean(century),
            "heat_century_mass_on_d_m": mean(century_elsewhere),
            "heat_tens_ones_mass": mean(tens_ones),
            "heat_digit_peak": mean(digit_peak), "heat_dash_eos_peak": mean(other_peak)}


ZH = {
    **SEQ2SEQ_ZH,
    "input character j": "输入字符 j", "output step t": "输出步 t",
    "{}  →  {}": "{}  →  {}",  # the input and the model's output stay as they are
    "<eos>": "<eos>",
    "attention weight α": "注意力权重 α",
    "key dimension d": "键的维数 d",
    "largest softmax weight": "softmax 的最大权重",
    "norm of the softmax Jacobian": "softmax 雅可比矩阵的范数",
    "scores q·k": "分数 q·k", "scores q·k / √d": "分数 q·k / √d",
    "softmax of {} random keys": "对 {} 个随机键做 softmax",
}


def plot_heatmaps(model, cases, out: Path) -> None:
    """Attention weights alpha_{t,j} of the trained model for four held-out inputs."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.2), layout="constrained")
    for ax, (day, fmt) in zip(axes.flat, cases):
        src = render(day, fmt)
        X, X_len, _, _ = encode_pairs([(src, day.isoformat())])
        tokens, attn = greedy_decode(model, X, X_len)
        rows = [TGT_CHARS[int(t)] for t in tokens[0]]  # every step, <eos> or not
        im = ax.imshow(attn[0, :, :len(src)].numpy(), cmap="Blues", vmin=0, vmax=1,
                       aspect="auto")
        ax.set_xticks(range(len(src)), list(src), fontsize=7, family="monospace")
        ax.set_yticks(range(len(rows)), rows, fontsize=7, family="monospace")
        ax.grid(False)
        ax.set_title(f"{src}  →  {to_string(tokens[0])}", fontsize=9)
    fig.colorbar(im, ax=axes, fraction=0.02, label="attention weight α")
    fig.supxlabel("input character j")
    fig.supylabel("output step t")
    save_figure(fig, out / "heatmaps.png", zh=ZH)


def plot_scaling(dims, rows, n_keys: int, out: Path) -> None:
    """Why divide by sqrt(d): without it the softmax saturates as d grows."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for ax, key, label in ((axes[0], "max", "largest softmax weight"),
                           (axes[1], "jac", "norm of the softmax Jacobian")):
        ax.plot(dims, [r[f"{key}_raw"] for r in rows], "o-", label="scores q·k")
        ax.plot(dims, [r[f"{key}_scaled"] for r in rows], "s--",
                label="scores q·k / √d")
        ax.set(xscale="log", xlabel="key dimension d", ylabel=label)
        ax.set_xticks(dims, [str(d) for d in dims])
    axes[0].legend()
    fig.suptitle(f"softmax of {n_keys} random keys")
    save_figure(fig, out / "scaling.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/attention-attention")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    train_pairs, test_pairs = make_data(cfg)
    data = encode_pairs(train_pairs)
    model = AttnSeq2Seq(cfg.embed_size, cfg.num_hiddens, cfg.attn_size)
    losses = {"attention": train(model, data, cfg)}
    metrics = {f"attn_{k}": v for k, v in evaluate(model, test_pairs).items()}
    test_days = split_days(cfg.seed)[1][:cfg.format_days]
    formats = {"attention": by_format(model, test_days)}
    seed_everything(cfg.seed)  # the seq2seq demo's model, same data, seed and steps
    baseline = Seq2Seq(cfg.embed_size, cfg.num_hiddens)
    if cfg.baseline:
        losses["no attention"] = train(baseline, data, cfg)
        scores = evaluate(baseline, test_pairs)
        metrics.update({f"base_{k}": v for k, v in scores.items()
                        if not k.startswith("n_")})
        formats["no attention"] = by_format(baseline, test_days)
    plot_by_format(dict(reversed(formats.items())), dict(reversed(losses.items())),
                   len(test_days), out)
    cases = heatmap_inputs(cfg.seed)
    plot_heatmaps(model, cases, out)
    metrics.update(alignment_metrics(model, cases))
    for name, scores in formats.items():
        prefix = "attn" if name == "attention" else "base"
        accs = [scores[f"acc_{f}"] for f in FORMAT_NAMES]
        metrics[f"{prefix}_worst_format_acc"] = min(accs)
        metrics.update({f"{prefix}_{k}": v for k, v in scores.items()})
    for name, curve in losses.items():  # how fast each model learns
        prefix = "attn" if name == "attention" else "base"
        for part, piece in (("first_quarter", curve[:len(curve) // 4]),
                            ("second_half", curve[len(curve) // 2:])):
            metrics[f"{prefix}_loss_{part}"] = sum(piece) / len(piece)
    # what attention costs: arithmetic (exact counts) and time (CPU of one step)
    for T in (8, 21, 63):
        base, attn = matmul_flops(baseline, T), matmul_flops(model, T)
        metrics[f"extra_flops_frac_T{T}"] = (attn - base) / base
    batch = tuple(t[:cfg.batch_size] for t in data)
    T = int(batch[1].max())
    batch = (batch[0][:, :T], *batch[1:])
    metrics["ms_base_one_gru_call"] = step_cpu_ms(baseline, batch, cfg.timing_reps)
    metrics["ms_base_step_loop"] = step_cpu_ms(
        lambda *a: decode_loop(baseline, *a), batch, cfg.timing_reps)
    metrics["ms_attention"] = step_cpu_ms(model, batch, cfg.timing_reps)
    metrics["ms_attention_ops_only"] = attention_ops_cpu_ms(model, batch,
                                                            cfg.timing_reps)
    dims = [4, 16, 64, 256, 1024]
    rows = softmax_saturation(dims, seed=cfg.seed)
    plot_scaling(dims, rows, 16, out)
    metrics.update({f"{k}_d{d}": v for d, r in zip(dims, rows) for k, v in r.items()
                    if d in (dims[0], dims[-1])})
    metrics.update(num_params=sum(p.numel() for p in model.parameters()),
                   base_num_params=sum(p.numel() for p in baseline.parameters()),
                   num_steps=cfg.num_steps, output_len=TGT_LEN,
                   sdpa_max_abs_err=check_sdpa(cfg.seed), sdpa_num_checks=20,
                   num_hiddens=cfg.num_hiddens, attn_size=cfg.attn_size)
    return metrics


CLAIMS = {
    "attention_beats_no_attention":
        lambda m: m["attn_exact_match"] > m["base_exact_match"] + 0.1,
    "attention_is_nearly_perfect": lambda m: m["attn_exact_match"] > 0.99,
    "attention_wins_in_every_length_group":
        lambda m: all(m[f"attn_acc_len_{lo}_{hi}"] > m[f"base_acc_len_{lo}_{hi}"]
                      for lo, hi in BUCKETS),
    "attention_fixes_the_worst_format":
        lambda m: m["attn_worst_format_acc"] > 0.95
        and m["base_worst_format_acc"] < 0.6,
    "attention_loss_ends_far_lower":
        lambda m: m["attn_loss_second_half"] < 0.25 * m["base_loss_second_half"],
    "attention_adds_a_fraction_of_the_arithmetic":
        lambda m: 0 < m["extra_flops_frac_T8"] < m["extra_flops_frac_T63"] < 0.2,
    "the_step_loop_is_not_the_slowdown":
        lambda m: m["ms_attention"] - m["ms_base_step_loop"]
        > 2 * (m["ms_base_step_loop"] - m["ms_base_one_gru_call"]),
    "attention_operations_take_the_extra_time":
        lambda m: m["ms_attention"] > 1.2 * m["ms_base_step_loop"]
        and m["ms_attention_ops_only"]
        > 0.5 * (m["ms_attention"] - m["ms_base_step_loop"]),
    "digits_read_their_own_field":
        lambda m: m["heat_field_mass"] > 0.7,
    "century_is_read_from_the_two_digit_year":
        lambda m: m["heat_century_mass_on_yy"] > m["heat_century_mass_on_d_m"],
    "spelled_out_years_are_read_word_by_word":
        lambda m: m["heat_tens_ones_mass"] > 0.5,
    "dashes_and_eos_look_nowhere_in_particular":
        lambda m: m["heat_dash_eos_peak"] < 0.75 * m["heat_digit_peak"],
    "unscaled_softmax_saturates_as_d_grows":
        lambda m: m["max_raw_d1024"] > 0.9 and m["max_scaled_d1024"] < 0.5,
    "scaling_keeps_the_softmax_gradient":
        lambda m: m["jac_raw_d1024"] < 0.5 * m["jac_scaled_d1024"],
    "our_sdpa_matches_pytorch": lambda m: m["sdpa_max_abs_err"] < 1e-5,
}
