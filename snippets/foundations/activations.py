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
    lr: float = 0.05  # SGD with momentum 0.9, the same for every activation
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
    """A Maxout layer equal to ReLU, gradients included: pieces (0, z) per feature."""
    layer = Maxout(num_features, num_features, k=2)
    with torch.no_grad():
        W = torch.zeros(num_features, 2, num_features)
        # piece 0: the zero line; piece 1: identity. At z = 0 the pieces tie and max
        # picks the FIRST, so the gradient there is 0, as for F.relu.
        W[:, 1] = torch.eye(num_features)
        layer.linear.weight.copy_(W.view(2 * num_features, num_features))
        layer.linear.bias.zero_()
    return layer
# --8<-- [end:maxout_relu]


ELEMENTWISE = {"sigmoid": sigmoid, "tanh": tanh, "ReLU": relu,
               "Leaky ReLU (0.1)": lambda z: leaky_relu(z, 0.1),
               "PReLU (a=0.25)": lambda z: PReLU(0.25)(z)}  # built when used


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


def glorot_init(net: nn.Sequential) -> nn.Sequential:
    """Glorot (Xavier) normal weights and zero biases: the init designed for sigmoid."""
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return net


RUNS = ["sigmoid", "tanh", "ReLU", "Leaky ReLU", "PReLU", "Maxout",
        "sigmoid, Glorot init"]


def train_digits(cfg: Config) -> dict:
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1300], perm[1300:]
    accs = {}
    for run in RUNS:  # PyTorch's default init, except for the last run
        torch.manual_seed(cfg.seed)
        net = make_net(run.split(",")[0], cfg)
        if run.endswith("Glorot init"):
            net = glorot_init(net)
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9)
        for _ in range(cfg.num_epochs):
            for idx in torch.randperm(len(tr)).split(cfg.batch_size):
                loss = nn.functional.cross_entropy(net(X[tr[idx]]), y[tr[idx]])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            accs[run] = (net(X[te]).argmax(1) == y[te]).float().mean().item()
    return accs


ZH = {
    "activation a = g(z)": "激活函数 a = g(z)", "derivative g'(z) (autograd)":
        "导数 g'(z)（自动求导）",
    "Leaky ReLU (0.1)": "Leaky ReLU（0.1）", "PReLU (a=0.25)": "PReLU（a=0.25）",
    "piece {}": "第 {} 条直线", "maxout = max": "maxout = 逐点取最大",
    "Maxout, k = 3 pieces: a convex curve": "Maxout，k = 3 条直线：得到凸函数",
    "softmax(z / {})": "softmax(z / {})", "probability": "概率",
    "softmax turns scores into probabilities": "softmax 把分数变成概率",
    "test accuracy on digits": "digits 测试准确率",
    "sigmoid, Glorot init": "sigmoid，Xavier 初始化",  # = Glorot; see common.KEEP_LATIN
    "{} hidden layers × {}, {} epochs of SGD with momentum":
        "{} 个隐藏层 × {}，带动量的 SGD 训练 {} 轮",
}


def plot_curves(out: Path) -> None:
    z = torch.linspace(-4, 4, 401, requires_grad=True)
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(13, 3.8))
    for (name, f), style in zip(ELEMENTWISE.items(), ["-", "--", "-", ":", "-."]):
        a = f(z)
        (g,) = torch.autograd.grad(a.sum(), z)
        lw = 3 if name == "ReLU" else 1.6  # wide: Leaky/PReLU lie on ReLU for z > 0
        ax.plot(z.detach(), a.detach(), style, lw=lw, label=name)
        bx.plot(z.detach(), g, style, lw=lw, label=name)
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
    save_figure(fig, out / "curves.svg", zh=ZH)


def plot_softmax(out: Path) -> None:
    z = torch.tensor([2.0, 1.0, 0.1, -1.0])
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, (T, hatch) in enumerate(zip([0.5, 1.0, 3.0], ["", "//", ".."])):
        ax.bar(np.arange(4) + (i - 1) * 0.27, softmax(z / T).numpy(), width=0.27,
               hatch=hatch, edgecolor="k", label=f"softmax(z / {T:g})")
    ax.set_xticks(range(4), [f"z={v:g}" for v in z.tolist()])
    ax.set_ylabel("probability"), ax.legend(fontsize=8)
    ax.set_title("softmax turns scores into probabilities")
    save_figure(fig, out / "softmax.svg", zh=ZH)


def plot_accs(accs: dict, cfg: Config, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.3))
    bars = ax.barh(list(accs), list(accs.values()),
                   color=[f"C{i % 6}" for i in range(len(accs))])
    ax.bar_label(bars, fmt="%.3f", fontsize=8)  # names on the axis; colour: decoration
    ax.set_xlim(0, 1.1), ax.set_xlabel("test accuracy on digits")
    ax.invert_yaxis()
    ax.set_title(f"{cfg.num_layers} hidden layers × {cfg.num_hiddens}, "
                 f"{cfg.num_epochs} epochs of SGD with momentum", fontsize=9)
    save_figure(fig, out / "digits.svg", zh=ZH)


def main(cfg: Config = Config(),
         out: Path = Path("out/foundations-activations")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    plot_curves(out)
    plot_softmax(out)
    accs = train_digits(cfg)
    plot_accs(accs, cfg, out)
    Z = torch.randn(100, 7)
    Z[::3] = 0.0  # exact zeros, where ReLU's derivative is a convention
    Z.requires_grad_(True)
    a, b = maxout_as_relu(7)(Z), torch.relu(Z)
    (ga,), (gb,) = (torch.autograd.grad(t.sum(), Z) for t in (a, b))
    names = {"sigmoid, Glorot init": "sigmoid_glorot"}
    return {"maxout_relu_gap": (a - b).abs().max().item(),
            "maxout_relu_grad_gap": (ga - gb).abs().max().item(),
            "num_epochs": cfg.num_epochs, "num_layers": cfg.num_layers,
            **{f"acc_{names.get(k, k.lower().replace(' ', '_'))}": v
               for k, v in accs.items()}}


RELU_FAMILY = ["acc_relu", "acc_leaky_relu", "acc_prelu", "acc_maxout"]
CLAIMS = {
    "maxout_equals_relu_bit_for_bit": lambda m: m["maxout_relu_gap"] == 0
    and m["maxout_relu_grad_gap"] == 0,
    "sigmoid_net_learns_almost_nothing": lambda m: m["acc_sigmoid"] < 0.3,
    "glorot_init_does_not_rescue_the_sigmoid_net": lambda m: m["acc_sigmoid_glorot"]
    < 0.5,
    "tanh_and_relu_family_all_learn": lambda m: min(m[k] for k in RELU_FAMILY
                                                    + ["acc_tanh"]) > 0.95,
    "relu_family_differs_very_little": lambda m: max(m[k] for k in RELU_FAMILY)
    - min(m[k] for k in RELU_FAMILY) < 0.03,
}
