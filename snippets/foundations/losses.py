"""Loss functions: MSE, classification error, cross-entropy, and why MSE after a sigmoid
learns slowly from a confident wrong answer (but not from a normal start), and why
least squares on class labels punishes points that are "too correct".

Page: foundations/losses.md
Run:  python -m snippets run foundations/losses
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    n: int = 400  # points of a 2-class 2D toy problem
    num_steps: int = 300  # full-batch gradient steps for each loss
    acc_level: float = 0.9  # count the steps until training accuracy reaches this
    lr: float = 1.0  # step size shared by both losses
    init_bias: float = -6.0  # confidently wrong start: every p = sigmoid(-6) ~ 0.0025
    num_far: int = 100  # extra, correctly labelled points far on the positive side
    far_at: float = 10.0  # ... centred at (far_at, far_at)
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(n=100, num_steps=30)


# --8<-- [start:losses]
def mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error: mean over all entries of (y_hat - y)^2."""
    return ((y_hat - y) ** 2).mean()


def classification_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose arg-max class is wrong. Piecewise constant."""
    return (logits.argmax(dim=1) != y).float().mean()


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-(1/n) sum_i log softmax(logits_i)[y_i], with the max shifted out for safety."""
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()  # (n, K)
    return -log_probs[torch.arange(len(y)), y].mean()
# --8<-- [end:losses]


# --8<-- [start:grads]
def grad_wrt_logit(p: torch.Tensor, loss: str) -> torch.Tensor:
    """dL/dz for one sample with label 1, where p = sigmoid(z)."""
    if loss == "mse":  # L = (p - 1)^2  ->  2 (p - 1) * p (1 - p)
        return 2 * (p - 1) * p * (1 - p)
    return p - 1  # L = -log p  ->  p - 1: the sigmoid's slope cancels out
# --8<-- [end:grads]


def make_data(cfg: Config, gen: torch.Generator):
    """Two Gaussian blobs; labels 0/1."""
    y = torch.randint(0, 2, (cfg.n,), generator=gen)
    X = torch.randn(cfg.n, 2, generator=gen) + 1.5 * (2 * y[:, None] - 1)
    return X, y.float()


def train(X, y, cfg: Config, loss_name: str, init_bias: float) -> list[float]:
    """Logistic regression from p = sigmoid(init_bias) everywhere; accuracy per step."""
    w = torch.zeros(2, requires_grad=True)
    b = torch.tensor(init_bias, requires_grad=True)
    accs = []
    for _ in range(cfg.num_steps):
        z = X @ w + b
        p = torch.sigmoid(z)
        loss = mse(p, y) if loss_name == "mse" else F.binary_cross_entropy(p, y)
        loss.backward()
        with torch.no_grad():
            for t in (w, b):
                t -= cfg.lr * t.grad
                t.grad = None
        accs.append(((p > 0.5).float() == y).float().mean().item())
    return accs


# --8<-- [start:too_correct]
def with_bias(X):
    return torch.cat([torch.ones(len(X), 1, dtype=X.dtype), X], 1)


def least_squares_classifier(X, y):
    """Regression on targets -1/+1, classify by the sign: MSE on class labels."""
    return torch.linalg.lstsq(with_bias(X), (2 * y - 1)[:, None]).solution[:, 0]


def logistic_classifier(X, y, num_steps=300, lr=1.0):
    """The same linear model trained with cross-entropy (full-batch GD)."""
    w = torch.zeros(X.shape[1] + 1, dtype=X.dtype, requires_grad=True)
    for _ in range(num_steps):
        loss = F.binary_cross_entropy_with_logits(with_bias(X) @ w, y)
        (g,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= lr * g
    return w.detach()
# --8<-- [end:too_correct]


def accuracy(w, X, y) -> float:
    return ((with_bias(X) @ w > 0).to(y.dtype) == y).double().mean().item()


def too_correct(X, y, cfg: Config, gen) -> dict:
    """Add points far on the right side; does each boundary still fit the others?"""
    X, y = X.double(), y.double()
    far = torch.randn(cfg.num_far, 2, generator=gen, dtype=torch.double) + cfg.far_at
    X2, y2 = torch.cat([X, far]), torch.cat([y, torch.ones(cfg.num_far).double()])
    res = {}
    for name, fit in [("lsq", least_squares_classifier), ("ce", logistic_classifier)]:
        res[f"{name}_acc_before"] = accuracy(fit(X, y), X, y)
        res[f"{name}_acc_after"] = accuracy(fit(X2, y2), X, y)  # on the original points
    return res


def default_init_confidence(seed: int) -> float:
    """Mean largest softmax probability of a freshly initialized digits MLP."""
    torch.manual_seed(seed)
    X = torch.tensor(load_digits().data / 16, dtype=torch.float32)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        return torch.softmax(net(X), 1).max(1).values.mean().item()


ZH = {
    "MSE (p − 1)²": "MSE (p − 1)²", "cross-entropy −log p": "交叉熵 −log p",
    "predicted probability p of the true class": "对真实类别预测的概率 p",
    "loss, true label y = 1": "损失（真实标签 y = 1）",
    "MSE: 2(p−1)p(1−p)": "MSE：2(p−1)p(1−p)", "cross-entropy: p − 1": "交叉熵：p − 1",
    "|∂L/∂z| through the sigmoid": "经过 sigmoid 后的 |∂L/∂z|",
    "gradient step": "梯度步数", "training accuracy": "训练准确率",
    "MSE, confidently wrong start": "MSE，从自信地答错开始",
    "cross-entropy, confidently wrong start": "交叉熵，从自信地答错开始",
    "MSE, neutral start (p = 0.5)": "MSE，从中性起点开始（p = 0.5）",
    "start at p = sigmoid({}) ≈ {} or at p = 0.5":
        "起点：p = sigmoid({}) ≈ {}，或 p = 0.5",
}


def plot(cfg: Config, curves: dict, out: Path) -> None:
    p = torch.linspace(1e-3, 1 - 1e-3, 400)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].plot(p, (p - 1) ** 2, label="MSE (p − 1)²")
    axes[0].plot(p, -torch.log(p), "--", label="cross-entropy −log p")
    axes[0].set_ylim(0, 5)
    axes[0].set_xlabel("predicted probability p of the true class")
    axes[0].set_title("loss, true label y = 1")
    axes[0].legend(fontsize=8)
    for (name, label), style in zip([("mse", "MSE: 2(p−1)p(1−p)"),
                                     ("ce", "cross-entropy: p − 1")], ["-", "--"]):
        axes[1].plot(p, grad_wrt_logit(p, name).abs(), style, label=label)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("predicted probability p of the true class")
    axes[1].set_title("|∂L/∂z| through the sigmoid")
    axes[1].legend(fontsize=8)
    for (name, accs), style in zip(curves.items(), ["-", "--", ":"]):
        axes[2].plot(accs, style, lw=2, label=name)
    axes[2].set_xlabel("gradient step")
    axes[2].set_ylabel("training accuracy")
    p0 = torch.sigmoid(torch.tensor(cfg.init_bias)).item()
    axes[2].set_title(f"start at p = sigmoid({cfg.init_bias:g}) ≈ {p0:.2g} "
                      "or at p = 0.5",
                      fontsize=9)
    axes[2].legend(fontsize=8, loc="center right")
    save_figure(fig, out / "mse_vs_ce.svg", zh=ZH)


def steps_to(accs: list[float], level: float) -> int:
    hit = [i for i, a in enumerate(accs) if a >= level]
    return hit[0] + 1 if hit else len(accs) + 1


def main(cfg: Config = Config(), out: Path = Path("out/foundations-losses")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    gen = torch.Generator().manual_seed(cfg.seed)
    X, y = make_data(cfg, gen)
    curves = {"MSE, confidently wrong start": train(X, y, cfg, "mse", cfg.init_bias),
              "cross-entropy, confidently wrong start": train(X, y, cfg, "ce",
                                                              cfg.init_bias),
              "MSE, neutral start (p = 0.5)": train(X, y, cfg, "mse", 0.0)}
    plot(cfg, curves, out)
    mse_wrong, ce_wrong, mse_neutral = curves.values()
    p = torch.tensor(0.01)
    logits = torch.randn(64, 10, generator=gen)
    labels = torch.randint(0, 10, (64,), generator=gen)
    g_mse = grad_wrt_logit(p, "mse").abs().item()
    g_ce = grad_wrt_logit(p, "ce").abs().item()
    return {"grad_mse_at_p001": g_mse, "grad_ce_at_p001": g_ce,
            "grad_ratio_at_p001": g_ce / g_mse,
            "init_p": torch.sigmoid(torch.tensor(cfg.init_bias)).item(),
            "init_acc": mse_wrong[0], "num_steps": cfg.num_steps,
            "acc_level": cfg.acc_level, "num_far": cfg.num_far,
            "steps_to_90_mse": steps_to(mse_wrong, cfg.acc_level),
            "steps_to_90_ce": steps_to(ce_wrong, cfg.acc_level),
            "steps_to_90_mse_neutral": steps_to(mse_neutral, cfg.acc_level),
            "final_acc_mse": mse_wrong[-1], "final_acc_ce": ce_wrong[-1],
            "final_acc_mse_neutral": mse_neutral[-1],
            "default_init_max_prob": default_init_confidence(cfg.seed),
            **too_correct(X, y, cfg, gen),
            "ce_err_vs_torch": (cross_entropy(logits, labels)
                                - F.cross_entropy(logits, labels)).abs().item()}


CLAIMS = {
    "ce_pushes_much_harder_when_confidently_wrong": lambda m: m["grad_ratio_at_p001"]
    > 40,
    "ce_reaches_the_level_much_sooner_from_wrong_start": lambda m:
        5 * m["steps_to_90_ce"] < m["steps_to_90_mse"],
    "mse_from_neutral_start_has_no_plateau": lambda m: 2 * m["steps_to_90_mse_neutral"]
    < m["steps_to_90_mse"],
    "wrong_start_is_about_half_right": lambda m: 0.35 < m["init_acc"] < 0.65,
    "fresh_net_is_not_confident": lambda m: m["default_init_max_prob"] < 0.3,
    "far_correct_points_move_the_least_squares_boundary": lambda m:
        m["lsq_acc_after"] < m["lsq_acc_before"] - 0.02,
    "cross_entropy_ignores_far_correct_points": lambda m: m["ce_acc_after"]
    >= m["ce_acc_before"] - 0.005,
    "our_cross_entropy_equals_torch": lambda m: m["ce_err_vs_torch"] < 1e-5,
}
