"""Transfer learning on scikit-learn digits: frozen vs fine-tuned vs from scratch.

Page: cnn/transfer.md
Run:  python -m snippets run cnn/transfer

A small CNN is first trained on all ten digits (the digits CNN itself). Then a CNN is
pretrained on digits 0-4 only and reused to learn 5-9 from a few examples per class.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_channels: int = 32  # channels of the first conv layer (doubled later)
    num_epochs: int = 30  # epochs for the digits CNN and for pretraining on 0-4
    batch_size: int = 64
    lr: float = 1e-2  # peak one-cycle learning rate (AdamW)
    shots: tuple = (1, 2, 5, 10, 20)  # training examples per new class (5-9)
    repeats: int = 5  # random draws of the few examples, per shot count
    transfer_steps: int = 100  # full-batch steps when learning 5-9
    transfer_lr: float = 1e-2
    finetune_lr_scale: float = 0.1  # fine-tuning: pretrained layers get 10x less lr
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_channels=4, num_epochs=1, repeats=1, transfer_steps=3)


def load(seed: int = 0):
    """Digits as (N, 1, 8, 8) in [0, 1]; a fixed stratified 75/25 split."""
    digits = load_digits()  # 1797 images shipped with scikit-learn
    X = torch.tensor(digits.images / 16, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    train, test = train_test_split(np.arange(len(y)), test_size=0.25, random_state=seed,
                                   stratify=digits.target)
    return X[train], y[train], X[test], y[test]


# --8<-- [start:model]
class DigitsCNN(nn.Module):
    """features: everything up to the flattened vector; head: the last linear layer."""

    def __init__(self, num_channels: int = 32, num_classes: int = 10):
        super().__init__()
        c = num_channels
        conv = lambda i, o: nn.Conv2d(i, o, 3, padding=1, bias=False)  # noqa: E731
        self.features = nn.Sequential(  # no conv bias: batch norm cancels it
            conv(1, c), nn.BatchNorm2d(c), nn.ReLU(),  # (N, c, 8, 8)
            conv(c, c), nn.BatchNorm2d(c), nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c, 4, 4)
            conv(c, 2 * c), nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten())  # (N, 2c * 2 * 2)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(8 * c, num_classes))

    def forward(self, X):
        return self.head(self.features(X))
# --8<-- [end:model]


def shift(X: torch.Tensor) -> torch.Tensor:
    """Augmentation: move the whole batch by up to one pixel, filling with zeros."""
    dy, dx = (int(v) for v in torch.randint(-1, 2, (2,)))
    return torch.roll(F.pad(X, (1, 1, 1, 1)), (dy, dx), (2, 3))[:, :, 1:-1, 1:-1]


def accuracy(net: nn.Module, X, y) -> float:
    net.eval()
    with torch.no_grad():
        return (net(X).argmax(1) == y).float().mean().item()


def fit(net: nn.Module, X, y, cfg: Config) -> nn.Module:
    """Mini-batch AdamW with a one-cycle schedule and one-pixel shifts."""
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-2)
    steps = cfg.num_epochs * -(-len(X) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    for _ in range(cfg.num_epochs):
        net.train()
        for idx in torch.randperm(len(X)).split(cfg.batch_size):
            loss = F.cross_entropy(net(shift(X[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net


# --8<-- [start:transfer]
def calibrate_bn(features: nn.Module, X: torch.Tensor) -> nn.Module:
    """Set each batch-norm layer's running statistics to those of X; eval mode."""
    bns = [m for m in features.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0  # one pass: the running statistics become X's own
    features.train()
    with torch.no_grad():
        features(X)
    for bn in bns:
        bn.momentum = 0.1  # PyTorch's default again
    return features.eval()


def make_learner(strategy: str, pretrained: DigitsCNN, X_source, cfg: Config):
    """A 5-class model for digits 5-9 and the parameters it will train."""
    net = DigitsCNN(cfg.num_channels, num_classes=5)  # fresh head (and fresh features)
    if strategy in ("fine-tune", "frozen"):
        net.features = copy.deepcopy(pretrained.features)  # reuse what 0-4 taught
    if strategy.startswith("frozen"):  # "frozen" and its control "frozen random"
        calibrate_bn(net.features, X_source)  # both: statistics of the 0-4 images
        net.features.requires_grad_(False)  # only the new head learns
    return net


def param_groups(strategy: str, net: DigitsCNN, cfg: Config) -> list[dict]:
    """What a strategy trains, and how fast: frozen features are left out."""
    groups = [{"params": list(net.head.parameters()), "lr": cfg.transfer_lr}]
    if not strategy.startswith("frozen"):  # fine-tuned features move more gently
        scale = cfg.finetune_lr_scale if strategy == "fine-tune" else 1.0
        groups.append({"params": list(net.features.parameters()),
                       "lr": cfg.transfer_lr * scale})
    return groups


def learn_new_classes(strategy, pretrained, X_source, X, y, cfg: Config) -> DigitsCNN:
    net = make_learner(strategy, pretrained, X_source, cfg)
    opt = torch.optim.AdamW(param_groups(strategy, net, cfg), weight_decay=1e-2)
    for _ in range(cfg.transfer_steps):  # full batch: the data is tiny
        net.train()
        if strategy.startswith("frozen"):
            net.features.eval()  # frozen means frozen: batch-norm statistics too
        loss = F.cross_entropy(net(shift(X)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net
# --8<-- [end:transfer]


def sample_shots(y: torch.Tensor, classes, n: int, gen: torch.Generator):
    """Indices of n random examples of each class (all of them if fewer)."""
    picks = []
    for c in classes:
        idx = (y == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
    return torch.cat(picks)


ZH = {
    "scratch": "从头训练", "fine-tune": "微调", "frozen": "冻结（预训练特征）",
    "frozen random": "冻结（随机特征）",
    "training examples per new class (digits 5-9)": "每个新类别的训练样本数（数字 5-9）",
    "test accuracy": "测试准确率", "Pretrained on 0-4, learning 5-9":
        "在 0-4 上预训练，再学 5-9",
    "predicted": "预测类别", "true": "真实类别",
    "Digits CNN on the test set": "手写数字 CNN（测试集）",
}
STYLES = {"scratch": "o-", "fine-tune": "s--", "frozen": "^-.", "frozen random": "v:"}


def plot_transfer(shots, curves: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (strategy, accs) in enumerate(curves.items()):
        accs = np.array(accs)  # (len(shots), repeats)
        ax.plot(shots, accs.mean(1), STYLES[strategy], color=f"C{i}", label=strategy)
        ax.fill_between(shots, accs.min(1), accs.max(1), color=f"C{i}", alpha=0.15)
    lowest = min(float(np.min(a)) for a in curves.values())
    ax.set_xscale("log")
    ax.set_xticks(shots, [str(n) for n in shots])
    ax.minorticks_off()
    ax.set(xlabel="training examples per new class (digits 5-9)",
           ylabel="test accuracy", title="Pretrained on 0-4, learning 5-9",
           ylim=(max(0.0, np.floor(lowest * 10) / 10 - 0.05), 1.0))
    ax.legend(loc="lower right")
    save_figure(fig, out / "transfer.svg", zh=ZH)


def plot_confusion(net: nn.Module, X, y, out: Path) -> None:
    net.eval()
    with torch.no_grad():
        y_hat = net(X).argmax(1)
    M = np.zeros((10, 10), dtype=int)
    np.add.at(M, (y.numpy(), y_hat.numpy()), 1)
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.imshow(np.log1p(M), cmap="Blues")
    for (i, j), v in np.ndenumerate(M):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if i == j else "black")
    ax.set(xlabel="predicted", ylabel="true", title="Digits CNN on the test set",
           xticks=range(10), yticks=range(10))
    ax.grid(False)
    save_figure(fig, out / "confusion.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/cnn-transfer")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    X, y, X_test, y_test = load()
    start = time.process_time()  # 1) the digits CNN on all ten classes
    digits_cnn = fit(DigitsCNN(cfg.num_channels), X, y, cfg)
    acc = accuracy(digits_cnn, X_test, y_test)
    metrics = {"digits_cnn_cpu_s": time.process_time() - start,
               "digits_cnn_test_acc": acc,
               "digits_cnn_test_errors": round((1 - acc) * len(y_test)),
               "digits_cnn_params": sum(p.numel() for p in digits_cnn.parameters()),
               "num_train": len(y), "num_test": len(y_test)}
    plot_confusion(digits_cnn, X_test, y_test, out)

    old, new = y < 5, y >= 5  # 2) pretrain on 0-4, then learn 5-9 from few examples
    pretrained = fit(DigitsCNN(cfg.num_channels, num_classes=5), X[old], y[old], cfg)
    metrics["pretrain_test_acc"] = accuracy(pretrained, X_test[y_test < 5],
                                            y_test[y_test < 5])
    metrics["pretrain_num_train"] = int(old.sum())
    X_new, y_new = X[new], y[new] - 5
    X_new_test, y_new_test = X_test[y_test >= 5], y_test[y_test >= 5] - 5
    gen = torch.Generator().manual_seed(cfg.seed)
    curves = {s: [] for s in ("scratch", "fine-tune", "frozen", "frozen random")}
    for n in progress(cfg.shots, desc="shots"):
        draws = [sample_shots(y_new, range(5), n, gen) for _ in range(cfg.repeats)]
        for strategy, accs in curves.items():
            accs.append([accuracy(learn_new_classes(strategy, pretrained, X[old],
                                                    X_new[i], y_new[i], cfg),
                                  X_new_test, y_new_test) for i in draws])
    plot_transfer(list(cfg.shots), curves, out)
    for strategy, accs in curves.items():
        key = strategy.replace("-", "").replace(" ", "_")
        for n, a in zip(cfg.shots, accs):
            metrics[f"{key}_{n}shot_acc"] = float(np.mean(a))  # over the draws
            metrics[f"{key}_{n}shot_min"] = float(np.min(a))
        metrics[f"{key}_mean_acc"] = float(np.mean(accs))  # over shots and draws
    metrics["transfer_cpu_s"] = time.process_time() - start
    metrics.update(repeats=cfg.repeats, transfer_steps=cfg.transfer_steps)
    return metrics


CLAIMS = {
    "the_digits_cnn_learns_all_ten_digits": lambda m: m["digits_cnn_test_acc"] > 0.97,
    "few_test_digits_are_misclassified":
        lambda m: m["digits_cnn_test_errors"] < 0.03 * m["num_test"],
    "pretraining_on_0_to_4_succeeds": lambda m: m["pretrain_test_acc"] > 0.97,
    "from_scratch_beats_both_frozen_arms_on_average":
        lambda m: m["scratch_mean_acc"]
        > max(m["frozen_mean_acc"], m["frozen_random_mean_acc"]) + 0.02,
    "fine_tuning_does_not_beat_from_scratch_on_average":
        lambda m: m["finetune_mean_acc"] < m["scratch_mean_acc"] + 0.01,
    "frozen_pretrained_within_5_points_of_frozen_random_on_average":
        lambda m: abs(m["frozen_mean_acc"] - m["frozen_random_mean_acc"]) < 0.05,
    "more_examples_help_every_strategy":
        lambda m: all(m[f"{k}_20shot_acc"] > m[f"{k}_1shot_acc"] + 0.15
                      for k in ("scratch", "finetune", "frozen", "frozen_random")),
}
