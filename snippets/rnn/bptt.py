"""Backpropagation through time: why gradients vanish or explode, and gradient clipping.

Page: rnn/bptt.md
Run:  python -m snippets run rnn/bptt
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    input_size: int = 4  # features per time step
    num_hiddens: int = 32  # hidden units of the RNN and the LSTM
    num_steps: int = 100  # sequence length T
    batch_size: int = 16  # sequences averaged in the gradient-norm figure
    forget_bias: float = 3.0  # extra forget-gate bias for the "gate open" LSTM
    cliff_steps: int = 50  # length of the scalar RNN whose loss has a cliff
    cliff_w0: float = 1.9459  # the weight we start from, at the edge of the cliff
    lr: float = 0.1  # learning rate of the single SGD update
    max_norm: float = 1.0  # gradient clipping threshold
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_hiddens=8, num_steps=20, batch_size=4)


# --8<-- [start:bptt_jacobian]
def state_jacobians(H, h0, W_hh):
    """dh_T/dh_t for t = 0..T of a tanh RNN, by the chain rule, newest factor first.

    H: (T, h) states h_1..h_T of one sequence; h_t = tanh(W_xh x_t + W_hh h_{t-1} + b).
    """
    J = torch.eye(W_hh.shape[0])  # dh_T/dh_T
    jacobians = [J]
    for h in reversed(H):  # h = h_T, h_{T-1}, ..., h_1
        J = J @ torch.diag(1 - h**2) @ W_hh  # one more factor dh_k/dh_{k-1}
        jacobians.append(J)
    return jacobians[::-1]  # index t holds dh_T/dh_t
# --8<-- [end:bptt_jacobian]


# --8<-- [start:grad_norms]
def grad_norms_vs_gap(cell: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """||dh_T/ds_t|| for every t, averaged over the batch; s_t is the whole state.

    The state s_t is h_t for an RNN cell and (h_t, c_t) for an LSTM cell.
    """
    T, B, _ = X.shape
    h = torch.zeros(B, cell.hidden_size)
    state = (h, torch.zeros_like(h)) if isinstance(cell, nn.LSTMCell) else h
    states = []
    for x in X:
        state = cell(x, state)
        states.append(state)
    h_T = states[-1][0] if isinstance(cell, nn.LSTMCell) else states[-1]
    flat = [s for st in states for s in (st if isinstance(st, tuple) else (st,))]
    sq = torch.zeros(T, B)
    for i in range(cell.hidden_size):  # one row of the Jacobian per backward pass
        grads = torch.autograd.grad(h_T[:, i].sum(), flat, retain_graph=True)
        per_step = torch.stack(grads).reshape(T, -1, B, cell.hidden_size)
        sq += per_step.square().sum(dim=(1, 3))
    return sq.sqrt().mean(dim=1)  # (T,): index t is the state at step t + 1
# --8<-- [end:grad_norms]


def gradient_curves(cfg: Config) -> dict:
    X = torch.randn(cfg.num_steps, cfg.batch_size, cfg.input_size)
    d, n = cfg.input_size, cfg.num_hiddens
    rnn, rnn_big = nn.RNNCell(d, n), nn.RNNCell(d, n)
    lstm, lstm_open = nn.LSTMCell(d, n), nn.LSTMCell(d, n)
    with torch.no_grad():
        W = rnn_big.weight_hh
        W *= 1.5 / torch.linalg.eigvals(W).abs().max()  # spectral radius 1.5
        lstm_open.bias_ih[n:2 * n] += cfg.forget_bias  # gate order: i, f, g, o
    cells = {"RNN, PyTorch init": rnn, r"RNN, $W_{hh}$ spectral radius 1.5": rnn_big,
             "LSTM, PyTorch init": lstm,
             f"LSTM, forget-gate bias +{cfg.forget_bias:g}": lstm_open}
    return {name: grad_norms_vs_gap(cell, X).flip(0) for name, cell in cells.items()}


# --8<-- [start:clip]
def clip_by_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Rescale all gradients together when their joint norm exceeds max_norm."""
    total = torch.sqrt(sum(g.square().sum() for g in grads))
    scale = min(1.0, max_norm / (total.item() + 1e-6))
    return [g * scale for g in grads]  # same direction, shorter step
# --8<-- [end:clip]


def cliff_loss(w: torch.Tensor, steps: int) -> torch.Tensor:
    """Loss of a one-unit RNN h_t = tanh(w h_{t-1} + 0.5), h_0 = -0.9, target +0.9."""
    h = torch.full_like(w, -0.9)
    for _ in range(steps):
        h = torch.tanh(w * h + 0.5)
    return (h - 0.9) ** 2


def one_update(cfg: Config, clip: bool) -> float:
    """One SGD step from w0 with or without clip_grad_norm_; returns the new w."""
    w = nn.Parameter(torch.tensor(cfg.cliff_w0))
    cliff_loss(w, cfg.cliff_steps).backward()
    if clip:
        nn.utils.clip_grad_norm_([w], max_norm=cfg.max_norm)
    with torch.no_grad():
        w -= cfg.lr * w.grad
    return w.item()


def plot_gradients(curves: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, c in curves.items():
        ax.semilogy(range(len(c)), c, label=name)
    ax.set_xlabel("gap T - t")
    ax.set_ylabel(r"$\|\partial h_T / \partial s_t\|_F$ (batch mean)")
    ax.set_title("How much the last state still depends on an earlier state")
    ax.set_ylim(bottom=1e-12)
    ax.legend(fontsize=8)
    save_figure(fig, out / "gradient_vs_gap.svg")


def plot_cliff(cfg: Config, w_plain: float, w_clip: float, out: Path) -> float:
    w = torch.linspace(0.0, 4.0, 801, requires_grad=True)
    loss = cliff_loss(w, cfg.cliff_steps)
    (grad,) = torch.autograd.grad(loss.sum(), w)
    w, loss = w.detach(), loss.detach()
    L = lambda v: cliff_loss(torch.tensor(v), cfg.cliff_steps).item()  # noqa: E731
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax.plot(w, loss, color="k", lw=1)
    ax.plot([cfg.cliff_w0], [L(cfg.cliff_w0)], "o", color="C0", label="start $w_0$")
    ax.plot([w_clip], [L(w_clip)], "s", color="C2", label="after a clipped step")
    shown = min(max(w_plain, 0.0), 4.0)
    ax.annotate(f"unclipped step lands at w = {w_plain:.0f}", xy=(shown, L(shown)),
                xytext=(0.15, 1.4), color="C1",
                arrowprops={"arrowstyle": "->", "color": "C1"})
    ax.set_xlabel("recurrent weight w")
    ax.set_ylabel("loss")
    ax.set_title(f"Loss after T = {cfg.cliff_steps} steps: a cliff")
    ax.legend(loc="upper left", fontsize=8)
    ax2.semilogy(w, grad.abs() + 1e-12, color="k", lw=1)
    ax2.axhline(cfg.max_norm, color="C2", ls="--",
                label=f"clipping threshold {cfg.max_norm:g}")
    ax2.set_xlabel("recurrent weight w")
    ax2.set_ylabel("|dL/dw|")
    ax2.set_title("The gradient is huge only on the cliff")
    ax2.legend(fontsize=8)
    save_figure(fig, out / "cliff.svg")
    return grad.abs().max().item()


def main(cfg: Config = Config(), out: Path = Path("out/rnn-bptt")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    curves = gradient_curves(cfg)
    plot_gradients(curves, out)
    w_plain, w_clip = one_update(cfg, clip=False), one_update(cfg, clip=True)
    max_grad = plot_cliff(cfg, w_plain, w_clip, out)
    names = ["rnn", "rnn_rho1.5", "lstm", "lstm_open"]
    gaps = {g: min(g, cfg.num_steps - 1) for g in (10, 50)}  # tiny preset: T = 20
    metrics = {f"grad_gap{g}_{k}": c[i].item() for k, c in zip(names, curves.values())
               for g, i in gaps.items()}
    metrics.update(num_steps=cfg.num_steps, step_unclipped=abs(w_plain - cfg.cliff_w0),
                   step_clipped=abs(w_clip - cfg.cliff_w0),
                   cliff_max_grad=max_grad)
    for name, w in (("start", cfg.cliff_w0), ("clipped", w_clip),
                    ("unclipped", w_plain)):
        metrics[f"loss_{name}"] = cliff_loss(torch.tensor(w), cfg.cliff_steps).item()
    return metrics
