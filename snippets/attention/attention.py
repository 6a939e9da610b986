"""Attention: Bahdanau's additive attention on dates, then scaled dot-product attention.

Page: attention/attention.md
Run:  python -m snippets run attention/attention

Same data, encoder and training loop as the seq2seq demo (imported from it); the
decoder now looks back at every input character at every output step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from snippets.attention.seq2seq import (
    FORMATS, TGT_CHARS, Encoder, Seq2Seq, by_format, encode_pairs, evaluate,
    greedy_decode, make_data, plot_by_format, render, split_days, to_string, train,
)
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
    seed: int = 0  # seeds data, initialisation and batching

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_train=512, num_test=256, num_steps=12, batch_size=64)


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

    def forward(self, X, X_len, Y_in):  # teacher forcing, one step at a time
        memory, s = self.encode(X, X_len)
        logits = []
        for t in range(Y_in.shape[1]):
            y_hat, s, _ = self.decode_step(Y_in[:, t], s, memory)
            logits.append(y_hat)
        return torch.stack(logits, 1)  # (B, T_out, V)
# --8<-- [end:attn_seq2seq]


# --8<-- [start:sdpa]
def scaled_dot_product_attention(Q, K, V, mask=None):
    """softmax(Q K^T / sqrt(d) + mask) V.

    Q: (..., n, d), K: (..., m, d), V: (..., m, d_v).

    ``mask`` is boolean, True where a query may look (as in PyTorch), broadcastable
    to (..., n, m).
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
    """Largest |ours - F.scaled_dot_product_attention| on random shapes and masks."""
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


def plot_heatmaps(model, out: Path, seed: int) -> None:
    """Attention weights alpha_{t,j} of the trained model for four held-out inputs."""
    days = split_days(seed)[1][:4]  # held-out days
    fmts = [FORMATS[7], FORMATS[0], FORMATS[9], FORMATS[8]]
    pairs = [(render(d, f), d.isoformat()) for d, f in zip(days, fmts)]
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.2), width_ratios=[3.3, 3.3])
    for ax, pair in zip(axes.flat, pairs):
        X, X_len, _, _ = encode_pairs([pair])
        tokens, attn = greedy_decode(model, X, X_len)
        text = to_string(tokens[0])
        A = attn[0, :len(text) + 1, :len(pair[0])]  # outputs (with <eos>) x inputs
        ax.imshow(A.numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(pair[0])), list(pair[0]), fontsize=7,
                      family="monospace")
        ax.set_yticks(range(len(text) + 1), list(text) + ["<eos>"], fontsize=7,
                      family="monospace")
        ax.grid(False)
        ax.set_title(f"{pair[0]}  →  {text}", fontsize=9)
    fig.supxlabel("input character j")
    fig.supylabel("output step t")
    save_figure(fig, out / "heatmaps.png")


def main(cfg: Config = Config(), out: Path = Path("out/attention-attention")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    train_pairs, test_pairs = make_data(cfg)
    data = encode_pairs(train_pairs)
    model = AttnSeq2Seq(cfg.embed_size, cfg.num_hiddens, cfg.attn_size)
    losses = {"attention": train(model, data, cfg)}
    results = {"attention": evaluate(model, test_pairs)}
    test_days, n = split_days(cfg.seed)[1], min(200, cfg.num_test)
    formats = {"attention": by_format(model, test_days, n)}
    if cfg.baseline:  # the seq2seq demo's model, same data, seed and steps
        seed_everything(cfg.seed)
        baseline = Seq2Seq(cfg.embed_size, cfg.num_hiddens)
        losses["no attention"] = train(baseline, data, cfg)
        results["no attention"] = evaluate(baseline, test_pairs)
        formats["no attention"] = by_format(baseline, test_days, n)
    plot_by_format(dict(reversed(formats.items())), dict(reversed(losses.items())), out,
                   "by_format.png")
    plot_heatmaps(model, out, cfg.seed)
    metrics = {f"attn_{k}": v for k, v in results["attention"].items()}
    metrics["attn_worst_format_acc"] = min(formats["attention"])
    if cfg.baseline:
        metrics.update({f"base_{k}": v for k, v in results["no attention"].items()
                        if not k.startswith("n_")})
        metrics["base_worst_format_acc"] = min(formats["no attention"])
    metrics["num_params"] = sum(p.numel() for p in model.parameters())
    metrics["num_steps"] = cfg.num_steps
    metrics["sdpa_max_abs_err"] = check_sdpa(cfg.seed)
    return metrics
