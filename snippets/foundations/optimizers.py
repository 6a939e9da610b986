"""Optimizers from scratch (SGD + momentum, Adagrad, RMSProp, Adam) vs torch.optim.

Each one is checked step for step against torch.optim; the demo also draws their
trajectories on two 2D landscapes, and shows what feature scaling does for GD.

Page: foundations/optimizers.md
Run:  python -m snippets run foundations/optimizers
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    num_steps: int = 60  # steps on each 2D toy function
    n: int = 1000  # samples of the linear-regression problem
    num_epochs: int = 5  # epochs for the batch-size comparison
    scaling_max_steps: int = 20000  # GD step cap for the unscaled problem
    tol: float = 1e-3  # "converged" = loss within tol of the optimum
    num_checks: int = 30  # steps compared with torch.optim for each optimizer
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_steps=20, n=200, num_epochs=1, scaling_max_steps=2000,
                   num_checks=5)


# --8<-- [start:optimizers]
class SGD:
    """theta <- theta - lr * v, v <- momentum * v + g (torch.optim.SGD's convention)."""

    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, v in zip(self.params, self.v):
            v.mul_(self.momentum).add_(p.grad)
            p -= self.lr * v


class Adagrad:
    """Per-parameter step lr / sqrt(sum of all past g^2): big for rarely-moved ones."""

    def __init__(self, params, lr, eps=1e-10):
        self.params, self.lr, self.eps = list(params), lr, eps
        self.s = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, s in zip(self.params, self.s):
            s += p.grad**2
            p -= self.lr * p.grad / (s.sqrt() + self.eps)


class RMSProp:
    """Like Adagrad, but a leaky average of g^2 so old gradients are forgotten."""

    def __init__(self, params, lr, alpha=0.99, eps=1e-8):
        self.params, self.lr, self.alpha, self.eps = list(params), lr, alpha, eps
        self.s = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, s in zip(self.params, self.s):
            s.mul_(self.alpha).add_((1 - self.alpha) * p.grad**2)
            p -= self.lr * p.grad / (s.sqrt() + self.eps)


class Adam:
    """Momentum (m) + RMSProp (v), both bias-corrected for their zero start."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.eps = list(params), lr, eps
        self.beta1, self.beta2 = betas
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            m.mul_(self.beta1).add_((1 - self.beta1) * p.grad)
            v.mul_(self.beta2).add_((1 - self.beta2) * p.grad**2)
            m_hat = m / (1 - self.beta1**self.t)
            v_hat = v / (1 - self.beta2**self.t)
            p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
# --8<-- [end:optimizers]


SCRATCH = {"GD": lambda ps, lr: SGD(ps, lr),
           "Momentum": lambda ps, lr: SGD(ps, lr, 0.9),
           "Adagrad": Adagrad, "RMSProp": RMSProp, "Adam": Adam}
TORCH = {"GD": lambda ps, lr: torch.optim.SGD(ps, lr),
         "Momentum": lambda ps, lr: torch.optim.SGD(ps, lr, momentum=0.9),
         "Adagrad": torch.optim.Adagrad, "RMSProp": torch.optim.RMSprop,
         "Adam": torch.optim.Adam}


def run_steps(make_opt, params, loss_fn, num_steps):
    """Take num_steps steps; return the parameters after each step."""
    opt = make_opt(params)
    history = []
    for _ in range(num_steps):
        for p in params:
            p.grad = None
        loss_fn(*params).backward()
        opt.step()
        history.append(torch.cat([p.detach().flatten().clone() for p in params]))
    return torch.stack(history)


# --8<-- [start:toys]
def quadratic(x, y):  # ill-conditioned: curvature 0.2 along x, 4 along y
    return 0.1 * x**2 + 2 * y**2


def saddle(x, y):  # saddle at (0, 0), minima at (0, +-1), flat ridge along y = 0
    return 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2
# --8<-- [end:toys]


# start point and a hand-picked lr per optimizer (momentum 0.9 multiplies steps by ~10)
TOYS = {"quadratic": (quadratic, (-4.5, 1.5),
                      {"GD": 0.4, "Momentum": 0.04, "Adagrad": 1.0, "RMSProp": 0.05,
                       "Adam": 0.3}),
        "saddle": (saddle, (1.8, 1e-3),
                   {"GD": 0.1, "Momentum": 0.01, "Adagrad": 0.5, "RMSProp": 0.02,
                    "Adam": 0.1})}


def trajectories(cfg: Config) -> dict:
    paths = {}
    for toy, (f, start, lrs) in TOYS.items():
        first = torch.tensor([start], dtype=torch.float64)
        for name, make in SCRATCH.items():
            params = [first[0, i].clone().requires_grad_(True) for i in range(2)]
            hist = run_steps(lambda ps: make(ps, lrs[name]), params, f, cfg.num_steps)
            paths[toy, name] = torch.cat([first, hist])
    return paths


def max_diff_vs_torch(cfg: Config) -> float:
    """Train a small regression net with scratch and torch optimizers; largest gap."""
    gen = torch.Generator().manual_seed(cfg.seed)
    X = torch.randn(32, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(32, generator=gen, dtype=torch.float64)
    W0 = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    v0 = torch.randn(4, generator=gen, dtype=torch.float64)
    loss_fn = lambda W, v: ((torch.tanh(X @ W) @ v - y) ** 2).mean()  # noqa: E731
    gaps = []
    for name in SCRATCH:
        ours, ref = (run_steps(lambda ps: table[name](ps, 0.01),
                               [t.clone().requires_grad_(True) for t in (W0, v0)],
                               loss_fn, cfg.num_checks) for table in (SCRATCH, TORCH))
        gaps.append((ours - ref).abs().max().item())
    return max(gaps)


# --8<-- [start:scaling]
def standardize(X: np.ndarray) -> np.ndarray:
    """Feature scaling: every column to mean 0 and std 1, x <- (x - mu) / sigma."""
    return (X - X.mean(axis=0)) / X.std(axis=0)


def gd_linear_regression(X, y, max_steps, tol):
    """Full-batch GD on mean squared error with the largest safe constant step 1/L."""
    A = np.c_[np.ones(len(X)), X]  # bias column first
    H = 2 * A.T @ A / len(A)  # Hessian of the MSE, the same everywhere
    lr = 1 / np.linalg.eigvalsh(H).max()
    w_star = np.linalg.lstsq(A, y, rcond=None)[0]
    loss = lambda w: ((A @ w - y) ** 2).mean()  # noqa: E731
    w, path = np.zeros(A.shape[1]), []
    for step in range(1, max_steps + 1):
        w = w - lr * 2 * A.T @ (A @ w - y) / len(A)
        path.append(w)
        if loss(w) - loss(w_star) < tol:
            break
    return step, np.array(path), w_star, np.linalg.cond(H), loss(w) - loss(w_star)
# --8<-- [end:scaling]


def scaling_data(cfg: Config, rng):
    """The class notes' example: x1 in single digits, x2 in the hundreds."""
    X = np.c_[rng.uniform(1, 3, cfg.n), rng.uniform(100, 300, cfg.n)]
    y = 3 * X[:, 0] + 0.02 * X[:, 1] + 0.1 * rng.standard_normal(cfg.n)
    return X, y


def batch_size_curves(cfg: Config, rng) -> dict:
    """Loss after every update for batch GD, mini-batch SGD and single-sample SGD."""
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    A = Q * np.arange(1, 6)  # correlated features, Hessian condition number 25
    X = rng.standard_normal((cfg.n, 5)) @ A
    y = X @ np.array([1.0, -2, 3, 0.5, -1]) + 0.3 * rng.standard_normal(cfg.n)
    L = np.linalg.eigvalsh(2 * X.T @ X / cfg.n).max()  # largest curvature of the MSE
    curves = {}
    for batch_size, lr in [(cfg.n, 1 / L), (32, 0.5 / L), (1, 0.05 / L)]:
        w, losses = np.zeros(5), [(y**2).mean()]
        for _ in range(cfg.num_epochs):
            for idx in np.array_split(rng.permutation(cfg.n), cfg.n // batch_size):
                w -= lr * 2 * X[idx].T @ (X[idx] @ w - y[idx]) / len(idx)
                losses.append(((X @ w - y) ** 2).mean())
        curves[batch_size] = np.array(losses)
    return curves


def plot_paths(paths: dict, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for ax, (toy, (f, start, lrs)) in zip(axes, TOYS.items()):
        (x0, x1), (y0, y1) = ((-5, 5), (-2.5, 2.5)) if toy == "quadratic" else \
            ((-2.2, 2.2), (-1.6, 1.6))
        xs, ys = np.linspace(x0, x1, 200), np.linspace(y0, y1, 200)
        Xg, Yg = np.meshgrid(xs, ys)
        ax.contour(Xg, Yg, f(Xg, Yg), levels=25, colors="gray", linewidths=0.6)
        for i, name in enumerate(SCRATCH):
            P = paths[toy, name].numpy()
            ax.plot(P[:, 0], P[:, 1], ".-", color=f"C{i}", ms=3, lw=1,
                    label=f"{name} (lr {lrs[name]:g})")
        ax.plot(*start, "ko", ms=5)
        ax.set_title(f"{toy}: {cfg.num_steps} steps from the black dot")
        ax.set_xlabel("x"), ax.set_ylabel("y")
        ax.set_xlim(xs[0], xs[-1]), ax.set_ylim(ys[0], ys[-1])
    axes[0].legend(fontsize=8, loc="lower right")
    save_figure(fig, out / "trajectories.svg")


def plot_scaling(runs: dict, curves: dict, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (name, (X, y, steps, path, w_star)) in zip(axes, runs.items()):
        A = np.c_[np.ones(len(X)), X]
        span = np.abs(w_star[1:]).max() * 1.2 + 0.5
        g1 = np.linspace(w_star[1] - span, w_star[1] + span, 150)
        g2 = np.linspace(w_star[2] - span, w_star[2] + span, 150)
        G1, G2 = np.meshgrid(g1, g2)
        W = np.stack([np.full_like(G1, w_star[0]), G1, G2], -1)  # bias fixed at optimum
        L = ((W @ A.T - y) ** 2).mean(-1)
        ax.contour(G1, G2, np.log(L - L.min() + 1e-3), levels=20, linewidths=0.7)
        ax.plot(path[:, 1], path[:, 2], "r.-", ms=2, lw=1)
        ax.plot(*w_star[1:], "k*", ms=10)
        ax.set_aspect("equal")
        ax.set_xlabel("w1"), ax.set_ylabel("w2")
        done = "converged" if steps < cfg.scaling_max_steps else "NOT converged"
        ax.set_title(f"{name}: {done} after {steps} GD steps", fontsize=9)
    for bs, losses in curves.items():
        label = {cfg.n: "batch GD", 1: "SGD (batch 1)"}.get(bs, f"mini-batch {bs}")
        axes[2].plot(np.linspace(0, cfg.num_epochs, len(losses)), losses, label=label,
                     lw=1 if bs == 1 else 2, alpha=0.8)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("epochs (passes over the data)")
    axes[2].set_ylabel("training MSE")
    axes[2].set_title("same data, different batch sizes")
    axes[2].legend(fontsize=8)
    save_figure(fig, out / "scaling.svg")


def main(cfg: Config = Config(),
         out: Path = Path("out/foundations-optimizers")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    rng = np.random.default_rng(cfg.seed)
    paths = trajectories(cfg)
    plot_paths(paths, cfg, out)
    X, y = scaling_data(cfg, rng)
    runs, conds, gaps = {}, {}, {}
    for name, Xs in [("raw features", X), ("standardized", standardize(X))]:
        steps, path, w_star, conds[name], gaps[name] = gd_linear_regression(
            Xs, y, cfg.scaling_max_steps, cfg.tol)
        runs[name] = (Xs, y, steps, path, w_star)
    curves = batch_size_curves(cfg, rng)
    plot_scaling(runs, curves, cfg, out)
    final = {f"{toy}_{name}_final_f": float(TOYS[toy][0](*paths[toy, name][-1]))
             for toy, name in paths}
    return {"max_diff_vs_torch": max_diff_vs_torch(cfg),
            "steps_raw": runs["raw features"][2],
            "steps_scaled": runs["standardized"][2],
            "cond_raw": conds["raw features"], "cond_scaled": conds["standardized"],
            "loss_gap_raw": gaps["raw features"],
            "loss_gap_scaled": gaps["standardized"],
            "final_mse_full_batch": curves[cfg.n][-1],
            "final_mse_batch_32": curves[32][-1],
            "final_mse_batch_1": curves[1][-1], **final}
