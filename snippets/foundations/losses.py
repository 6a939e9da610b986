"""Loss functions: MSE, classification error, cross-entropy, and why MSE after a sigmoid
learns slowly from a confident wrong answer.

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

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    n: int = 400  # points of a 2-class 2D toy problem
    num_steps: int = 300  # full-batch gradient steps for each loss
    lr: float = 1.0  # step size shared by both losses
    init_bias: float = -6.0  # confidently wrong start: every p = sigmoid(-6) ~ 0.0025
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


def train(X, y, cfg: Config, loss_name: str) -> list[float]:
    """Logistic regression from a confidently wrong start; returns accuracy per step."""
    w = torch.zeros(2, requires_grad=True)
    b = torch.tensor(cfg.init_bias, requires_grad=True)
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


def plot(cfg: Config, curves: dict, out: Path) -> None:
    p = torch.linspace(1e-3, 1 - 1e-3, 400)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].plot(p, (p - 1) ** 2, label="MSE (p − 1)²")
    axes[0].plot(p, -torch.log(p), label="cross-entropy −log p")
    axes[0].set_ylim(0, 5)
    axes[0].set_xlabel("predicted probability p of the true class")
    axes[0].set_title("loss, true label y = 1")
    axes[0].legend(fontsize=8)
    for name, label in [("mse", "MSE: 2(p−1)p(1−p)"), ("ce", "cross-entropy: p − 1")]:
        axes[1].plot(p, grad_wrt_logit(p, name).abs(), label=label)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("predicted probability p of the true class")
    axes[1].set_title("|∂L/∂z| through the sigmoid")
    axes[1].legend(fontsize=8)
    for name, accs in curves.items():
        axes[2].plot(accs, label=name)
    axes[2].set_xlabel("gradient step")
    axes[2].set_ylabel("training accuracy")
    p0 = torch.sigmoid(torch.tensor(cfg.init_bias)).item()
    axes[2].set_title(f"every p starts at sigmoid({cfg.init_bias:g}) ≈ {p0:.3f}")
    axes[2].legend(fontsize=8)
    save_figure(fig, out / "mse_vs_ce.svg")


def steps_to(accs: list[float], level: float) -> int:
    hit = [i for i, a in enumerate(accs) if a >= level]
    return hit[0] + 1 if hit else len(accs) + 1


def main(cfg: Config = Config(), out: Path = Path("out/foundations-losses")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    gen = torch.Generator().manual_seed(cfg.seed)
    X, y = make_data(cfg, gen)
    curves = {"MSE": train(X, y, cfg, "mse"), "cross-entropy": train(X, y, cfg, "ce")}
    plot(cfg, curves, out)
    p = torch.tensor(0.01)
    logits = torch.randn(64, 10, generator=gen)
    labels = torch.randint(0, 10, (64,), generator=gen)
    return {"grad_mse_at_p001": grad_wrt_logit(p, "mse").abs().item(),
            "grad_ce_at_p001": grad_wrt_logit(p, "ce").abs().item(),
            "steps_to_90_mse": steps_to(curves["MSE"], 0.9),
            "steps_to_90_ce": steps_to(curves["cross-entropy"], 0.9),
            "final_acc_mse": curves["MSE"][-1],
            "final_acc_ce": curves["cross-entropy"][-1],
            "ce_err_vs_torch": (cross_entropy(logits, labels)
                                - F.cross_entropy(logits, labels)).abs().item()}
