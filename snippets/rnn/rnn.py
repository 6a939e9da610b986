"""A recurrent cell from scratch, the shapes of nn.RNN, and how long an RNN remembers.

Page: rnn/rnn.md
Run:  python -m snippets run rnn/rnn
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
    input_size: int = 3  # features per time step
    num_hiddens: int = 16  # size of the hidden state h_t
    num_steps: int = 12  # sequence length T for the check against nn.RNN
    batch_size: int = 4  # sequences per batch in the check
    memory_hiddens: int = 64  # hidden size of the RNNs in the memory figure
    memory_steps: int = 80  # how many steps the memory figure follows
    radii: tuple = (0.5, 0.9, 1.0, 1.5)  # spectral radius of W_hh in the memory figure
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_steps=5, memory_hiddens=16, memory_steps=20)


# --8<-- [start:rnn_cell]
def rnn_forward(X, h, W_xh, W_hh, b_h):
    """A tanh RNN over X: (T, B, d). Returns all states (T, B, h), the last (B, h)."""
    outputs = []
    for x in X:  # one time step at a time, the same weights every step
        h = torch.tanh(x @ W_xh.T + h @ W_hh.T + b_h)  # (B, h)
        outputs.append(h)
    return torch.stack(outputs), h
# --8<-- [end:rnn_cell]


def check_against_torch(cfg: Config) -> dict:
    """Copy nn.RNN's weights into rnn_forward; compare outputs and gradients."""
    net = nn.RNN(cfg.input_size, cfg.num_hiddens)  # tanh, batch_first=False
    X = torch.randn(cfg.num_steps, cfg.batch_size, cfg.input_size)
    h0 = torch.randn(1, cfg.batch_size, cfg.num_hiddens)
    ref, _ = net(X, h0)
    ref.square().sum().backward()
    W_xh = net.weight_ih_l0.detach().clone().requires_grad_()
    W_hh = net.weight_hh_l0.detach().clone().requires_grad_()
    b_h = (net.bias_ih_l0 + net.bias_hh_l0).detach().clone().requires_grad_()
    ours, _ = rnn_forward(X, h0[0], W_xh, W_hh, b_h)
    ours.square().sum().backward()
    grad_err = max((W_xh.grad - net.weight_ih_l0.grad).abs().max(),
                   (W_hh.grad - net.weight_hh_l0.grad).abs().max(),
                   (b_h.grad - net.bias_hh_l0.grad).abs().max())
    return {"max_abs_err_vs_torch": (ours - ref).abs().max().item(),
            "max_grad_err_vs_torch": grad_err.item()}


# --8<-- [start:shapes]
def shapes(B=2, T=7, d=3, h=16, V=10) -> dict:
    """The tensor shapes of the usual RNN layouts (batch_first=True everywhere)."""
    rnn = nn.RNN(d, h, batch_first=True)
    X = torch.randn(B, T, d)
    out, h_n = rnn(X)  # out: every step's top-layer state, h_n: last state per layer
    found = {"many_to_many": tuple(nn.Linear(h, V)(out).shape)}  # (B, T, V)
    found["many_to_one"] = tuple(nn.Linear(h, V)(out[:, -1]).shape)  # (B, V)
    x, state, steps = torch.randn(B, 1, d), None, []  # one-to-many: feed one input,
    for _ in range(T):  # then keep feeding the model its own (projected) output
        y, state = rnn(x, state)
        steps.append(y)
        x = y[..., :d]  # a real model maps y to the next input with a layer
    found["one_to_many"] = tuple(torch.cat(steps, dim=1).shape)  # (B, T, h)
    bi = nn.RNN(d, h, batch_first=True, bidirectional=True)
    out, h_n = bi(X)
    found["bidirectional_out"] = tuple(out.shape)  # (B, T, 2h): both directions
    found["bidirectional_h_n"] = tuple(h_n.shape)  # (2, B, h): one per direction
    deep = nn.RNN(d, h, num_layers=3, batch_first=True)
    out, h_n = deep(X)
    found["stacked_out"], found["stacked_h_n"] = tuple(out.shape), tuple(h_n.shape)
    return found  # bidirectional: (B, T, 2h), (2, B, h); stacked: (B, T, h), (3, B, h)
# --8<-- [end:shapes]


def memory_curves(cfg: Config) -> dict:
    """How fast a tanh RNN forgets a change v of h_0: ||(dh_t/dh_0) v|| with |v| = 1."""
    curves, n = {}, cfg.memory_hiddens
    X = torch.randn(cfg.memory_steps, 1, n) * 0.5  # the same input drive for every W_hh
    for rho in cfg.radii:
        W = torch.randn(n, n)
        W_hh = W * rho / torch.linalg.eigvals(W).abs().max()  # spectral radius = rho
        H, _ = rnn_forward(X, torch.zeros(1, n), torch.eye(n), W_hh, torch.zeros(n))
        v, norms = torch.randn(1, n), []
        v = v / v.norm()
        for h in H:  # the change moves with the linearised step diag(1 - h^2) W_hh
            v = (1 - h**2) * (v @ W_hh.T)
            norms.append(v.norm().item())
        curves[rho] = norms
    return curves


def plot_memory(curves: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for rho, c in curves.items():
        ax.semilogy(range(1, len(c) + 1), c,
                    label=f"spectral radius of $W_{{hh}}$ = {rho}")
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$\|(\partial h_t / \partial h_0)\, v\| \;/\; \|v\|$")
    ax.set_title("How long a tanh RNN remembers a small change of $h_0$")
    ax.set_ylim(1e-12, 10)
    ax.legend(fontsize=8)
    save_figure(fig, out / "memory.svg")


def main(cfg: Config = Config(), out: Path = Path("out/rnn-rnn")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    metrics = check_against_torch(cfg)
    curves = memory_curves(cfg)
    plot_memory(curves, out)
    for rho, c in curves.items():
        below = [t for t, v in enumerate(c, start=1) if v < 1e-3]  # steps to forget
        metrics[f"steps_to_1e-3_rho{rho}"] = below[0] if below else len(c)
    found = shapes()
    metrics["bidirectional_width"] = found["bidirectional_out"][-1]
    metrics["stacked_layers"] = found["stacked_h_n"][0]
    metrics["num_params_rnn"] = sum(p.numel() for p in nn.RNN(3, 16).parameters())
    return metrics
