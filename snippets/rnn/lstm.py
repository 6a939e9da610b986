"""LSTM from scratch, and the adding problem that a plain RNN cannot learn.

Page: rnn/lstm.md
Run:  python -m snippets run rnn/lstm
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_steps: int = 100  # sequence length T of the main experiment
    lengths: tuple = (10, 25, 50, 100)  # lengths T of the accuracy-vs-length curve
    num_hiddens: int = 32  # hidden units of every model
    batch_size: int = 64  # fresh training sequences per update
    num_updates: int = 800  # updates per run: 51 200 training sequences in all
    lr: float = 0.02  # Adam learning rate
    max_norm: float = 1.0  # gradient clipping threshold
    forget_bias: float = 1.0  # added to the LSTM forget-gate bias at init
    eval_every: int = 50  # updates between two test evaluations
    num_test: int = 1000  # test sequences (fixed)
    tolerance: float = 0.04  # a prediction counts as correct if |error| < this
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_hiddens=8, batch_size=16, num_updates=20, eval_every=10,
                   num_test=100)


# --8<-- [start:lstm_cell]
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    """One LSTM step with nn.LSTMCell's layout: gates stacked as (i, f, g, o)."""
    h, c = state
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4h)
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)  # gates in (0, 1)
    g = torch.tanh(g)  # candidate content
    c = f * c + i * g  # keep part of the old memory, write part of the new
    h = o * torch.tanh(c)  # expose part of the memory
    return h, c
# --8<-- [end:lstm_cell]


# --8<-- [start:adding_data]
def adding_data(n: int, T: int, gen: torch.Generator):
    """X: (n, T, 2) = (value in [0, 1], marker 0/1); y = sum of the 2 marked values."""
    values = torch.rand(n, T, generator=gen)
    first = torch.randint(0, T // 2, (n,), generator=gen)  # one marker in each half
    second = torch.randint(T // 2, T, (n,), generator=gen)
    markers = torch.zeros(n, T)
    markers[torch.arange(n), first] = 1.0
    markers[torch.arange(n), second] = 1.0
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)
# --8<-- [end:adding_data]


# --8<-- [start:model]
class Net(nn.Module):
    """A recurrent layer (RNN, LSTM or GRU) read at the last step by a linear head."""

    def __init__(self, kind: str, num_hiddens: int, forget_bias: float = 0.0):
        super().__init__()
        self.rnn = getattr(nn, kind)(2, num_hiddens, batch_first=True)
        self.head = nn.Linear(num_hiddens, 1)
        if kind == "LSTM":  # start with the forget gate mostly open
            with torch.no_grad():
                self.rnn.bias_hh_l0[num_hiddens:2 * num_hiddens] += forget_bias

    def forward(self, X):  # X: (B, T, 2)
        out, _ = self.rnn(X)  # (B, T, h)
        return self.head(out[:, -1]).squeeze(-1)  # (B,)
# --8<-- [end:model]


# --8<-- [start:train]
def train(kind: str, T: int, cfg: Config) -> dict:
    """Online training on fresh sequences; the test MSE is logged every eval_every."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    X_test, y_test = adding_data(cfg.num_test, T, torch.Generator().manual_seed(123))
    net = Net(kind, cfg.num_hiddens, cfg.forget_bias)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    seen, curve = [], []
    for step in progress(range(1, cfg.num_updates + 1), desc=f"{kind} T={T}"):
        X, y = adding_data(cfg.batch_size, T, gen)
        loss = (net(X) - y).square().mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), cfg.max_norm)
        opt.step()
        if step % cfg.eval_every == 0:
            with torch.no_grad():
                y_hat = net(X_test)
            seen.append(step * cfg.batch_size)
            curve.append((y_hat - y_test).square().mean().item())
    correct = ((y_hat - y_test).abs() < cfg.tolerance).float().mean().item()
    return {"net": net, "seen": seen, "mse": curve, "acc": correct}
# --8<-- [end:train]


def solved_after(run: dict, goal: float = 0.01) -> float:
    """Training sequences seen when the test MSE first fell below goal (-1: never)."""
    return next((s for s, m in zip(run["seen"], run["mse"]) if m < goal), -1)


def gate_trace(net: Net, T: int):
    """Run the trained LSTM step by step on one test sequence, keeping c_t and gates."""
    X, _ = adding_data(1, T, torch.Generator().manual_seed(7))
    p = [w.detach() for w in (net.rnn.weight_ih_l0, net.rnn.weight_hh_l0,
                              net.rnn.bias_ih_l0, net.rnn.bias_hh_l0)]
    h = c = torch.zeros(1, net.rnn.hidden_size)
    cs, i_gate, f_gate = [], [], []
    for x in X[0]:
        gates = (x[None] @ p[0].T + p[2] + h @ p[1].T + p[3]).chunk(4, dim=1)
        i_gate.append(torch.sigmoid(gates[0][0]))
        f_gate.append(torch.sigmoid(gates[1][0]))
        h, c = lstm_cell(x[None], (h, c), *p)
        cs.append(c[0])
    return X[0], torch.stack(cs), torch.stack(i_gate), torch.stack(f_gate)  # (T, h)


def plot_curves(runs: dict, cfg: Config, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.6, 3.8))
    for kind, run in runs.items():
        ax.semilogy(run["seen"], run["mse"], label=kind)
    ax.axhline(1 / 6, color="gray", ls=":", label="always predict the mean (1/6)")
    ax.axhline(0.01, color="k", ls="--", lw=1, label="goal: MSE 0.01")
    ax.axvline(74_000, color="C4", ls="-.", lw=1, label="LSTM 1997: 74 000 sequences")
    ax.set_xlim(0, 80_000)
    ax.set_xlabel("training sequences seen")
    ax.set_ylabel("test MSE")
    ax.set_title(f"Adding problem, T = {cfg.num_steps}, same budget for all")
    ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, out / "adding_curves.svg")


def plot_lengths(acc: dict, cfg: Config, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for kind, by_T in acc.items():
        ax.plot(list(by_T), list(by_T.values()), "o-", label=kind)
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(f"test accuracy (|error| < {cfg.tolerance:g})")
    ax.set_ylim(-0.02, 1.02)
    budget = cfg.num_updates * cfg.batch_size
    ax.set_title(f"Same budget ({budget} sequences) at every T")
    ax.legend(fontsize=8)
    save_figure(fig, out / "accuracy_vs_length.svg")


def plot_gates(net: Net, cfg: Config, out: Path) -> None:
    X, cs, i_gate, f_gate = gate_trace(net, cfg.num_steps)
    marked = X[:, 1] > 0
    u = (i_gate[marked].mean(0) - i_gate[~marked].mean(0)).argmax()  # the "writer" unit
    t = range(1, len(X) + 1)
    fig, axes = plt.subplots(3, 1, figsize=(6.6, 5.6), sharex=True)
    axes[0].plot(t, X[:, 0], color="gray", lw=0.8)
    for m in torch.nonzero(marked)[:, 0]:
        axes[0].axvline(m.item() + 1, color="C3", lw=2)
    axes[0].set_ylabel("input value")
    axes[0].set_title("A trained LSTM on one test sequence (orange: the two markers)")
    axes[1].plot(t, cs[:, u], color="k", lw=1.8)
    axes[1].set_ylabel(f"cell state $c_t$, unit {u.item()}")
    axes[2].plot(t, i_gate[:, u], label=f"input gate $i_t$, unit {u.item()}")
    axes[2].plot(t, f_gate[:, u], label=f"forget gate $f_t$, unit {u.item()}")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_xlabel("time step t")
    axes[2].legend(fontsize=8)
    save_figure(fig, out / "gates.svg")


def main(cfg: Config = Config(), out: Path = Path("out/rnn-lstm")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    kinds = ["RNN", "LSTM", "GRU"]
    runs = {k: train(k, cfg.num_steps, cfg) for k in kinds}
    acc = {k: {} for k in kinds}
    for T in cfg.lengths:
        for k in kinds:
            run = runs[k] if T == cfg.num_steps else train(k, T, cfg)
            acc[k][T] = run["acc"]
    plot_curves(runs, cfg, out)
    plot_lengths(acc, cfg, out)
    plot_gates(runs["LSTM"]["net"], cfg, out)
    metrics = {"train_sequences": cfg.num_updates * cfg.batch_size}
    for k in kinds:
        key = k.lower()
        metrics[f"{key}_test_mse"] = runs[k]["mse"][-1]
        metrics[f"{key}_solved_after"] = solved_after(runs[k])
        metrics.update({f"{key}_acc_T{T}": a for T, a in acc[k].items()})
    return metrics
