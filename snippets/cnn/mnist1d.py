"""MNIST-1D: logistic regression, an MLP and a CNN, on ordered and shuffled positions.

Page: cnn/mnist1d.md
Run:  python -m snippets run cnn/mnist1d

The data is generated locally with mnist1d's ``make_dataset`` (never ``get_dataset``,
which downloads). The shuffled variant applies one fixed permutation to the 40 positions
of every signal: same information, but neighbours are no longer neighbours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style

# Greydanus (2020), "Scaling down deep learning", Table 1 / Figure 4: test accuracy.
PAPER = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "shuffled_cnn": 0.56}


@dataclass
class Config:
    num_samples: int = 5000  # signals: 4000 train, 1000 test (the paper's split)
    data_seed: int = 42  # mnist1d's default seed, so this is the paper's dataset
    num_epochs: int = 20  # passes over the training set, for every model
    batch_size: int = 100
    lr: float = 5e-3  # peak learning rate of the one-cycle schedule (AdamW)
    weight_decay: float = 1e-2
    num_hiddens: int = 100  # MLP width, as in the paper
    num_channels: int = 32  # CNN channels in the first block (doubled in the second)
    seed: int = 0  # model initialisation and batch order

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_samples=500, num_epochs=2, num_channels=4, num_hiddens=16)


# --8<-- [start:data]
def load(cfg: Config, shuffle: bool = False):
    """(X, y, X_test, y_test) as tensors; X has shape (N, 40)."""
    args = get_dataset_args()  # an object with the generator's settings
    args.num_samples, args.seed = cfg.num_samples, cfg.data_seed
    args.shuffle_seq = shuffle  # one fixed permutation of the 40 positions
    data = make_dataset(args)  # generated here, nothing downloaded
    X, X_test = (torch.tensor(data[k], dtype=torch.float32) for k in ("x", "x_test"))
    y, y_test = (torch.tensor(data[k], dtype=torch.long) for k in ("y", "y_test"))
    return X, y, X_test, y_test
# --8<-- [end:data]


# --8<-- [start:conv1d]
def conv1d(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, padding: int = 0):
    """From scratch. X: (N, C_in, L), W: (C_out, C_in, k) -> (N, C_out, L_out)."""
    X = F.pad(X, (padding, padding))
    windows = X.unfold(2, W.shape[2], 1)  # (N, C_in, L_out, k): every length-k window
    return torch.einsum("nclk,ock->nol", windows, W) + b.view(1, -1, 1)
# --8<-- [end:conv1d]


# --8<-- [start:models]
def logistic() -> nn.Module:
    return nn.Linear(40, 10)  # softmax regression: one weight per (position, class)


def mlp(num_hiddens: int) -> nn.Module:
    return nn.Sequential(nn.Linear(40, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, 10))


def block(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    """conv -> batch norm -> GELU, twice, then halve the length with max pooling."""
    return [nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.BatchNorm1d(c_out), nn.GELU(),
            nn.Conv1d(c_out, c_out, k, padding=k // 2), nn.BatchNorm1d(c_out),
            nn.GELU(),
            nn.MaxPool1d(2)]


def cnn(num_channels: int) -> nn.Module:
    c = num_channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 40)),  # (N, 40) -> (N, 1, 40): one input channel
        *block(1, c, 5),  # (N, c, 20)
        *block(c, 2 * c, 3),  # (N, 2c, 10)
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(2 * c * 10, 10))
# --8<-- [end:models]


def accuracy(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        return (net(X).argmax(1) == y).float().mean().item()


# --8<-- [start:train]
def train(net: nn.Module, data, cfg: Config) -> dict:
    X, y, X_test, y_test = data
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(X) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.num_epochs * steps_per_epoch)
    curve, start = [], time.process_time()
    for _ in range(cfg.num_epochs):
        net.train()
        for idx in torch.randperm(len(X)).split(cfg.batch_size):
            loss = F.cross_entropy(net(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        curve.append(accuracy(net, X_test, y_test))
    return {"train_acc": accuracy(net, X, y), "test_acc": curve[-1], "curve": curve,
            "cpu_s": time.process_time() - start}
# --8<-- [end:train]


def num_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def plot_signals(ordered, shuffled, out: Path) -> None:
    X, y = ordered[0], ordered[1]
    fig, axes = plt.subplots(2, 5, figsize=(12, 4.4), sharex=True, sharey=True)
    for digit, ax in enumerate(axes.flat):
        i = int((y == digit).nonzero()[0])
        ax.plot(X[i], color="C0", lw=1.8, label="ordered")
        ax.plot(shuffled[0][i], color="C1", lw=1, alpha=0.8, label="shuffled")
        ax.set_title(f"class {digit}")
    axes[1, 0].set_xlabel("position")
    axes[0, 0].legend(loc="lower left", fontsize=8)
    fig.suptitle("The same training example, ordered and with positions shuffled")
    save_figure(fig, out / "signals.svg")


def plot_results(results: dict, out: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, name in enumerate(("logistic", "mlp", "cnn")):
        for variant, style in (("", "-"), ("shuffled_", "--")):
            curve = results[variant + name]["curve"]
            ax1.plot(range(1, len(curve) + 1), curve, style, color=f"C{i}",
                     label=f"{name} ({'shuffled' if variant else 'ordered'})")
    ax1.set(xlabel="epoch", ylabel="test accuracy", title="Learning curves",
            ylim=(0, 1))
    ax1.legend(fontsize=8, ncol=2)
    keys = ["logistic", "mlp", "cnn", "shuffled_cnn"]
    x = np.arange(len(keys))
    ax2.bar(x - 0.2, [PAPER[k] for k in keys], 0.4, color="#bbbbbb",
            label="paper (2020)")
    ax2.bar(x + 0.2, [results[k]["test_acc"] for k in keys], 0.4, color="C0",
            label="measured here")
    ax2.set_xticks(x, keys)
    ax2.set(ylabel="test accuracy", title="Published vs measured", ylim=(0, 1))
    ax2.legend(fontsize=8)
    save_figure(fig, out / "results.svg")


def main(cfg: Config = Config(), out: Path = Path("out/cnn-mnist1d")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    ordered, shuffled = load(cfg), load(cfg, shuffle=True)
    makers = {"logistic": logistic, "mlp": lambda: mlp(cfg.num_hiddens),
              "cnn": lambda: cnn(cfg.num_channels)}
    results, params = {}, {}
    for name, make in progress(list(makers.items()), desc="models"):
        for variant, data in (("", ordered), ("shuffled_", shuffled)):
            torch.manual_seed(cfg.seed)  # same initial weights for both variants
            net = make()
            params[name] = num_params(net)
            results[variant + name] = train(net, data, cfg)
    plot_signals(ordered, shuffled, out)
    plot_results(results, out)
    metrics = {f"{k}_{m}": v[m] for k, v in results.items()
               for m in ("train_acc", "test_acc", "cpu_s")}
    metrics.update({f"{k}_params": v for k, v in params.items()})
    metrics["num_train"], metrics["num_test"] = len(ordered[0]), len(ordered[2])
    return metrics
