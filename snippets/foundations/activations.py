"""Activation functions from scratch (sigmoid, tanh, ReLU, Leaky ReLU, PReLU, Maxout,
softmax): curves, derivatives, Maxout reproducing ReLU, and a digits MLP with each.

Page: foundations/activations.md
Run:  python -m snippets run foundations/activations
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    num_hiddens: int = 64  # width of each hidden layer
    num_layers: int = 4  # hidden layers of the digits MLP
    num_epochs: int = 60  # full passes over the digits training set
    batch_size: int = 128
    lr: float = 0.05  # plain SGD, the same for every activation
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_epochs=2, num_layers=2)


# --8<-- [start:activations]
def sigmoid(z):
    return 1 / (1 + torch.exp(-z))  # derivative: sigmoid(z) * (1 - sigmoid(z)) <= 1/4


def tanh(z):
    return 2 * sigmoid(2 * z) - 1  # a shifted, stretched sigmoid; derivative 1 - tanh^2


def relu(z):
    return torch.where(z > 0, z, 0.0)  # derivative: 1 for z > 0, else 0 (also at z = 0)


def leaky_relu(z, slope=0.01):
    return torch.where(z > 0, z, slope * z)


class PReLU(nn.Module):
    """Leaky ReLU whose negative slope a is learned (one per layer, like nn.PReLU())."""

    def __init__(self, init: float = 0.25):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(init))

    def forward(self, z):
        return torch.where(z > 0, z, self.a * z)


class Maxout(nn.Module):
    """k linear pieces per output unit; the unit outputs the largest piece."""

    def __init__(self, num_inputs: int, num_outputs: int, k: int = 2):
        super().__init__()
        self.k = k
        self.linear = nn.Linear(num_inputs, num_outputs * k)

    def forward(self, X):
        Z = self.linear(X)  # (n, num_outputs * k)
        return Z.view(*Z.shape[:-1], -1, self.k).max(dim=-1).values  # (n, num_outputs)


def softmax(Z):
    Z = Z - Z.max(dim=-1, keepdim=True).values  # same result, no overflow in exp
    return Z.exp() / Z.exp().sum(dim=-1, keepdim=True)
# --8<-- [end:activations]


# --8<-- [start:maxout_relu]
def maxout_as_relu(num_features: int) -> Maxout:
    """A Maxout layer equal to ReLU: pieces (z, 0) for every feature."""
    layer = Maxout(num_features, num_features, k=2)
    with torch.no_grad():
        W = torch.zeros(num_features, 2, num_features)
        W[:, 0] = torch.eye(num_features)  # piece 0: identity; piece 1: the zero line
        layer.linear.weight.copy_(W.view(2 * num_features, num_features))
        layer.linear.bias.zero_()
    return layer
# --8<-- [end:maxout_relu]


ELEMENTWISE = {"sigmoid": sigmoid, "tanh": tanh, "ReLU": relu,
               "Leaky ReLU (0.1)": lambda z: leaky_relu(z, 0.1),
               "PReLU (a=0.25)": PReLU()}


def make_net(act: str, cfg: Config) -> nn.Sequential:
    layers, width = [], 64
    for _ in range(cfg.num_layers):
        if act == "Maxout":
            layers.append(Maxout(width, cfg.num_hiddens))
        else:
            layers += [nn.Linear(width, cfg.num_hiddens),
                       {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "ReLU": nn.ReLU(),
                        "Leaky ReLU": nn.LeakyReLU(0.01), "PReLU": nn.PReLU()}[act]]
        width = cfg.num_hiddens
    return nn.Sequential(*layers, nn.Linear(width, 10))


def train_digits(cfg: Config) -> dict:
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1300], perm[1300:]
    accs = {}
    for act in ["sigmoid", "tanh", "ReLU", "Leaky ReLU", "PReLU", "Maxout"]:
        torch.manual_seed(cfg.seed)
        net = make_net(act, cfg)
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9)
        for _ in range(cfg.num_epochs):
            for idx in torch.randperm(len(tr)).split(cfg.batch_size):
                loss = nn.functional.cross_entropy(net(X[tr[idx]]), y[tr[idx]])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            accs[act] = (net(X[te]).argmax(1) == y[te]).float().mean().item()
    return accs


def plot_curves(out: Path) -> None:
    z = torch.linspace(-4, 4, 401, requires_grad=True)
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, f in ELEMENTWISE.items():
        a = f(z)
        (g,) = torch.autograd.grad(a.sum(), z)
        ax.plot(z.detach(), a.detach(), label=name)
        bx.plot(z.detach(), g, label=name)
    ax.set_ylim(-1.5, 4), ax.set_title("activation a = g(z)"), ax.set_xlabel("z")
    bx.set_title("derivative g'(z) (autograd)"), bx.set_xlabel("z")
    ax.legend(fontsize=8)
    zz = z.detach()
    pieces = torch.stack([0.5 * zz - 0.5, -zz - 1, 1.5 * zz - 2])  # 3 lines
    for i, p in enumerate(pieces):
        cx.plot(zz, p, "--", lw=1, label=f"piece {i + 1}")
    cx.plot(zz, pieces.max(0).values, "k", lw=2.5, alpha=0.7, label="maxout = max")
    cx.set_ylim(-2, 4), cx.set_title("Maxout, k = 3 pieces: a convex curve")
    cx.set_xlabel("z"), cx.legend(fontsize=8)
    save_figure(fig, out / "curves.svg")


def plot_softmax(out: Path) -> None:
    z = torch.tensor([2.0, 1.0, 0.1, -1.0])
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, T in enumerate([0.5, 1.0, 3.0]):
        ax.bar(np.arange(4) + (i - 1) * 0.27, softmax(z / T).numpy(), width=0.27,
               label=f"softmax(z / {T:g})")
    ax.set_xticks(range(4), [f"z={v:g}" for v in z.tolist()])
    ax.set_ylabel("probability"), ax.legend(fontsize=8)
    ax.set_title("softmax turns scores into probabilities")
    save_figure(fig, out / "softmax.svg")


def plot_accs(accs: dict, cfg: Config, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3))
    bars = ax.barh(list(accs), list(accs.values()), color=[f"C{i}" for i in range(6)])
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xlim(0, 1.1), ax.set_xlabel("test accuracy on digits")
    ax.set_title(f"{cfg.num_layers} hidden layers × {cfg.num_hiddens}, "
                 f"{cfg.num_epochs} epochs of SGD")
    save_figure(fig, out / "digits.svg")


def main(cfg: Config = Config(),
         out: Path = Path("out/foundations-activations")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    plot_curves(out)
    plot_softmax(out)
    accs = train_digits(cfg)
    plot_accs(accs, cfg, out)
    Z = torch.randn(100, 7)
    gap = (maxout_as_relu(7)(Z) - relu(Z)).abs().max().item()
    return {"maxout_relu_gap": gap,
            **{f"acc_{k.lower().replace(' ', '_')}": v for k, v in accs.items()}}
