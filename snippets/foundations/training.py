"""Training deep nets well: vanishing gradients (sigmoid vs ReLU), early stopping on a
validation split, and dropout (inverted, as PyTorch does it, vs test-time scaling).

Page: foundations/training.md
Run:  python -m snippets run foundations/training
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    depth: int = 10  # hidden layers of the deep net in the vanishing-gradient demo
    deep_width: int = 64  # units per hidden layer there
    deep_epochs: int = 20  # epochs of SGD for the sigmoid and ReLU deep nets
    num_hiddens: int = 256  # hidden units of the net for early stopping and dropout
    n_train: int = 300  # a small training set makes overfitting visible
    n_val: int = 300  # validation split, used only to choose the epoch
    num_epochs: int = 300  # full-batch Adam epochs for early stopping and dropout
    lr: float = 1e-2  # Adam's step size for the overfitting net
    p: float = 0.5  # dropout probability (of zeroing a unit)
    patience: int = 30  # stop after this many epochs without a new best val loss
    num_masks: int = 20000  # Monte Carlo masks for the dropout-expectation figure
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(depth=4, deep_epochs=1, num_epochs=10, num_masks=500, patience=3)


def load(cfg: Config):
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16, dtype=torch.float32), torch.tensor(y)
    perm = torch.randperm(len(X))
    a, b = cfg.n_train, cfg.n_train + cfg.n_val
    tr, va, te = perm[:a], perm[a:b], perm[b:]
    return (X[tr], y[tr]), (X[va], y[va]), (X[te], y[te])


def deep_net(act: type, cfg: Config) -> nn.Sequential:
    layers, width = [], 64
    for _ in range(cfg.depth):
        layers += [nn.Linear(width, cfg.deep_width), act()]
        width = cfg.deep_width
    net = nn.Sequential(*layers, nn.Linear(width, 10))
    for m in net:  # the init designed for each activation: He for ReLU, Glorot else
        if isinstance(m, nn.Linear):
            if act is nn.ReLU:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return net


# --8<-- [start:grad_norms]
def layer_grad_norms(net: nn.Sequential, X, y) -> list[float]:
    """||dL/dW|| for every Linear layer, input side first."""
    net.zero_grad()
    F.cross_entropy(net(X), y).backward()
    return [m.weight.grad.norm().item() for m in net if isinstance(m, nn.Linear)]
# --8<-- [end:grad_norms]


def vanishing(cfg: Config, train):
    X, y = train
    norms, losses = {}, {}
    for name, act in [("sigmoid", nn.Sigmoid), ("ReLU", nn.ReLU)]:
        torch.manual_seed(cfg.seed)
        net = deep_net(act, cfg)
        norms[name] = layer_grad_norms(net, X, y)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        losses[name] = []
        for _ in range(cfg.deep_epochs):
            for idx in torch.randperm(len(X)).split(32):
                loss = F.cross_entropy(net(X[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                losses[name].append(F.cross_entropy(net(X), y).item())
    return norms, losses


# --8<-- [start:dropout]
def dropout_inverted(H, p: float, training: bool):
    """PyTorch's convention: kept units times 1/(1-p) in training; identity at test."""
    if not training or p == 0:
        return H
    mask = (torch.rand_like(H) > p).float()
    return H * mask / (1 - p)


def dropout_classic(H, p: float, training: bool):
    """The original paper's convention: no scaling in training, times (1-p) at test."""
    if not training:
        return H * (1 - p)  # equivalently: scale the next layer's weights by (1 - p)
    return H * (torch.rand_like(H) > p).float()
# --8<-- [end:dropout]


class MLP(nn.Module):
    def __init__(self, cfg: Config, p: float):
        super().__init__()
        self.l1 = nn.Linear(64, cfg.num_hiddens)
        self.l2 = nn.Linear(cfg.num_hiddens, 10)
        self.p = p

    def forward(self, X):
        H = dropout_inverted(torch.relu(self.l1(X)), self.p, self.training)
        return self.l2(H)


# --8<-- [start:early_stopping]
def fit(cfg: Config, data, p: float) -> dict:
    """Full-batch Adam; early stopping keeps the weights of the best validation loss."""
    (X, y), (X_val, y_val), (X_test, y_test) = data
    torch.manual_seed(cfg.seed)
    net = MLP(cfg, p)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    hist = {"train": [], "val": []}
    best = (float("inf"), 0, None)  # (val loss, epoch, weights)
    for epoch in range(1, cfg.num_epochs + 1):
        net.train()
        loss = F.cross_entropy(net(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            hist["train"].append(F.cross_entropy(net(X), y).item())
            hist["val"].append(F.cross_entropy(net(X_val), y_val).item())
        if "stop" in hist:
            continue  # stopped: keep training only to draw what would have come next
        if hist["val"][-1] < best[0]:
            weights = {k: v.clone() for k, v in net.state_dict().items()}
            best = (hist["val"][-1], epoch, weights)
        elif epoch - best[1] >= cfg.patience:
            hist["stop"] = epoch  # early stopping ends here and keeps the best weights
    with torch.no_grad():
        hist["last_acc"] = (net(X_test).argmax(1) == y_test).float().mean().item()
        net.load_state_dict(best[2])
        hist["best_acc"] = (net(X_test).argmax(1) == y_test).float().mean().item()
    hist["best_epoch"] = best[1]
    return hist
# --8<-- [end:early_stopping]


def plot_vanishing(norms, losses, out: Path) -> None:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, v in norms.items():
        ax.plot(range(1, len(v) + 1), v, "o-", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = next to the input)"), ax.set_ylabel("‖∂L/∂W‖ at init")
    ax.set_title("gradient norm per layer, one batch"), ax.legend()
    for name, v in losses.items():
        bx.plot(range(1, len(v) + 1), v, "o-", label=name)
    bx.set_xlabel("epoch"), bx.set_ylabel("training loss")
    bx.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    bx.set_title(f"{len(norms['ReLU']) - 1} hidden layers, same SGD"), bx.legend()
    save_figure(fig, out / "vanishing.svg")


def plot_curves(runs: dict, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, (name, h) in zip(axes, runs.items()):
        ax.plot(range(1, len(h["train"]) + 1), h["train"], label="train")
        ax.plot(range(1, len(h["val"]) + 1), h["val"], label="validation")
        ax.axvline(h["best_epoch"], color="k", ls="--", lw=1,
                   label=f"chosen epoch {h['best_epoch']}")
        if "stop" in h:
            ax.axvline(h["stop"], color="gray", ls=":", lw=1,
                       label=f"stopped at {h['stop']} (patience {cfg.patience})")
        ax.set_yscale("log"), ax.set_xlabel("epoch"), ax.set_title(name)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("cross-entropy")
    save_figure(fig, out / "early_stopping.svg")


def plot_expectation(cfg: Config, out: Path) -> dict:
    """Next-layer input w·dropout(h) over random masks, for both conventions."""
    gen = torch.Generator().manual_seed(cfg.seed)
    h = torch.rand(50, generator=gen)
    w = torch.randn(50, generator=gen)
    H = h.expand(cfg.num_masks, -1)
    samples = {"inverted (PyTorch)": dropout_inverted(H, cfg.p, True) @ w,
               "classic (scale at test)": dropout_classic(H, cfg.p, True) @ w}
    tests = {"inverted (PyTorch)": dropout_inverted(h, cfg.p, False) @ w,
             "classic (scale at test)": dropout_classic(h, cfg.p, False) @ w}
    fig, ax = plt.subplots(figsize=(7, 3.4))
    gaps = {}
    for i, (name, s) in enumerate(samples.items()):
        ax.hist(s, bins=60, alpha=0.45, color=f"C{i}", density=True,
                label=f"{name}: train")
        ax.axvline(s.mean(), color=f"C{i}", lw=2, label="  mean over masks")
        ax.axvline(tests[name], color=f"C{i}", ls=":", lw=2, label="  test-time value")
        gaps[name] = (s.mean() - tests[name]).abs().item()
    ax.set_xlabel("w · dropout(h)"), ax.legend(fontsize=7)
    ax.set_title(f"p = {cfg.p}: each convention's train mean = its own test value")
    save_figure(fig, out / "dropout_expectation.svg")
    return gaps


def main(cfg: Config = Config(), out: Path = Path("out/foundations-training")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    data = load(cfg)
    norms, losses = vanishing(cfg, data[0])
    plot_vanishing(norms, losses, out)
    runs = {"no dropout": fit(cfg, data, 0.0),
            f"dropout p = {cfg.p}": fit(cfg, data, cfg.p)}
    plot_curves(runs, cfg, out)
    gaps = plot_expectation(cfg, out)
    plain, drop = runs.values()
    return {"sigmoid_grad_ratio": norms["sigmoid"][0] / norms["sigmoid"][-1],
            "relu_grad_ratio": norms["ReLU"][0] / norms["ReLU"][-1],
            "sigmoid_final_loss": losses["sigmoid"][-1],
            "relu_final_loss": losses["ReLU"][-1],
            "best_epoch": plain["best_epoch"],
            "stop_epoch": plain.get("stop", cfg.num_epochs),
            "acc_best_epoch": plain["best_acc"], "acc_last_epoch": plain["last_acc"],
            "dropout_best_epoch": drop["best_epoch"],
            "dropout_acc_best": drop["best_acc"],
            "dropout_acc_last": drop["last_acc"],
            "mc_gap_inverted": gaps["inverted (PyTorch)"],
            "mc_gap_classic": gaps["classic (scale at test)"]}
