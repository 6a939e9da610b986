"""Optimizers from scratch (SGD + momentum, Adagrad, RMSProp, Adam) vs torch.optim.

Each one is checked step for step against torch.optim; the demo also draws their
trajectories on two 2D landscapes, shows what feature scaling does for GD, compares
batch sizes and a decaying learning rate, and counts how rare minima are among random
critical points as the dimension grows.

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
    batch_size: int = 32  # the mini-batch size compared with 1 and n
    decay_steps: int = 200  # SGD's decayed rate: lr / (1 + t / decay_steps)
    scaling_max_steps: int = 20000  # GD step cap for the unscaled problem
    tol: float = 1e-3  # "converged" = loss within tol of the optimum
    num_checks: int = 30  # steps compared with torch.optim for each optimizer
    max_dim: int = 6  # random Hessians of dimension 1..max_dim
    num_hessians: int = 20000  # random symmetric matrices per dimension
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_steps=20, n=200, num_epochs=1, scaling_max_steps=2000,
                   num_checks=5, num_hessians=500, decay_steps=40)


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
def fit_standardizer(X_train: np.ndarray):
    """mu and sigma of every column, from the TRAINING set only."""
    return X_train.mean(axis=0), X_train.std(axis=0)


def standardize(X: np.ndarray, mu, sigma) -> np.ndarray:
    """Feature scaling x <- (x - mu) / sigma, with the training set's mu and sigma."""
    return (X - mu) / sigma


def gd_linear_regression(X, y, max_steps, tol):
    """Full-batch GD on mean squared error with the safe constant step 1/L (half the
    stability limit 2/L, where L is the largest curvature)."""
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


def batch_data(cfg: Config, rng):
    """Correlated features (covariance Q diag(1..25) Q^T): Hessian condition ~25."""
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    X = rng.standard_normal((cfg.n, 5)) @ np.diag(np.arange(1, 6)) @ Q.T
    y = X @ np.array([1.0, -2, 3, 0.5, -1]) + 0.3 * rng.standard_normal(cfg.n)
    return X, y


# --8<-- [start:schedule]
def sgd_run(X, y, batch_size, lr, num_epochs, rng, decay_steps=None):
    """Excess training MSE (over the optimum) after every update; lr may decay."""
    best = ((X @ np.linalg.lstsq(X, y, rcond=None)[0] - y) ** 2).mean()
    w, excess, t = np.zeros(X.shape[1]), [(y**2).mean() - best], 0
    for _ in range(num_epochs):
        for idx in np.array_split(rng.permutation(len(X)), len(X) // batch_size):
            eta = lr if decay_steps is None else lr / (1 + t / decay_steps)
            w -= eta * 2 * X[idx].T @ (X[idx] @ w - y[idx]) / len(idx)
            excess.append(((X @ w - y) ** 2).mean() - best)
            t += 1
    return np.array(excess)
# --8<-- [end:schedule]


def batch_size_curves(cfg: Config, X, y, rng) -> dict:
    """Batch GD vs mini-batch at the same lr; SGD with a constant vs a decaying lr."""
    L = np.linalg.eigvalsh(2 * X.T @ X / cfg.n).max()  # largest curvature of the MSE
    runs = {"batch GD": (cfg.n, 1.0, None),
            f"mini-batch {cfg.batch_size}": (cfg.batch_size, 1.0, None),
            "SGD (batch 1)": (1, 0.2, None),
            "SGD (batch 1), decaying lr": (1, 0.2, cfg.decay_steps)}
    return {name: (k, sgd_run(X, y, bs, k / L, cfg.num_epochs, rng, decay))
            for name, (bs, k, decay) in runs.items()}


# --8<-- [start:critical]
def minima_fraction(dim: int, num: int, rng) -> float:
    """Share of random symmetric 'Hessians' whose eigenvalues are all > 0: how often a
    random critical point in `dim` dimensions is a minimum rather than a saddle."""
    A = rng.standard_normal((num, dim, dim))
    H = (A + A.transpose(0, 2, 1)) / 2
    return float((np.linalg.eigvalsh(H).min(-1) > 0).mean())


def permute_hidden(W1, b1, W2, perm):
    """Reorder the hidden units of W2 g(W1 x + b1): other weights, same function."""
    return W1[perm], b1[perm], W2[:, perm]
# --8<-- [end:critical]


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
            ax.plot(P[:, 0], P[:, 1], MARKERS[i] + "-", color=f"C{i}", ms=3, lw=1,
                    label=f"{name} (lr {lrs[name]:g})")
        ax.plot(*start, "ko", ms=5)
        ax.set_title(f"{toy}: {cfg.num_steps} steps from the black dot")
        ax.set_xlabel("x"), ax.set_ylabel("y")
        ax.set_xlim(xs[0], xs[-1]), ax.set_ylim(ys[0], ys[-1])
        ax.legend(fontsize=7, loc="lower right", framealpha=0.9)  # lrs differ per panel
    save_figure(fig, out / "trajectories.svg", zh=ZH)


MARKERS = ["o", "s", "^", "v", "D"]
ZH = {
    "quadratic: {} steps from the black dot": "二次函数：从黑点出发走 {} 步",
    "saddle: {} steps from the black dot": "鞍点函数：从黑点出发走 {} 步",
    "GD (lr {})": "GD（学习率 {}）", "Momentum (lr {})": "Momentum（学习率 {}）",
    "Adagrad (lr {})": "Adagrad（学习率 {}）", "RMSProp (lr {})": "RMSProp（学习率 {}）",
    "Adam (lr {})": "Adam（学习率 {}）",
    "{}: converged after {} GD steps": "{}：{} 步 GD 后收敛",
    "{}: NOT converged after {} GD steps": "{}：{} 步 GD 后仍未收敛",
    "raw features": "原始特征", "standardized": "标准化后",
    "epochs (passes over the data)": "轮数（遍历数据的次数）",
    "training MSE − optimum": "训练 MSE − 最优值",
    "batch GD, lr {}/L": "批量 GD，学习率 {}/L",
    "mini-batch {}, lr {}/L": "小批量 {}，学习率 {}/L",
    "SGD (batch 1), lr {}/L": "SGD（批量 1），学习率 {}/L",
    "SGD (batch 1), decaying lr, lr {}/L": "SGD（批量 1），学习率从 {}/L 开始衰减",
    "batch size and learning-rate decay": "批量大小与学习率衰减",
    "dimension d of the critical point": "临界点的维数 d",
    "share that are minima": "其中是极小值的比例",
    "random symmetric Hessians (all eigenvalues > 0)": "随机对称 Hessian（特征值全为正）",
    "coin flip per direction: 2^(−d)": "每个方向各抛一次硬币：2^(−d)",
    "minima among random critical points": "随机临界点中极小值的比例",
    "0 of {}": "{} 个中 0 个",
}


def profile_loss(A, y, G1, G2):
    """MSE over (w1, w2) with the bias re-optimized at every point (its minimum)."""
    R = y - G1[..., None] * A[:, 1] - G2[..., None] * A[:, 2]  # residual before bias
    return R.var(-1)  # best bias = mean residual, leaving the residual variance


def plot_scaling(runs: dict, curves: dict, cfg: Config, out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (name, (X, y, steps, path, w_star)) in zip(axes, runs.items()):
        A = np.c_[np.ones(len(X)), X]
        span = np.abs(w_star[1:]).max() * 1.2 + 0.5
        g1 = np.linspace(w_star[1] - span, w_star[1] + span, 150)
        g2 = np.linspace(w_star[2] - span, w_star[2] + span, 150)
        G1, G2 = np.meshgrid(g1, g2)
        L = profile_loss(A, y, G1, G2)
        ax.contour(G1, G2, np.log(L - L.min() + 1e-3), levels=20, linewidths=0.7)
        ax.plot(path[:, 1], path[:, 2], "r.-", ms=2, lw=1)
        ax.plot(*w_star[1:], "k*", ms=10)
        ax.set_aspect("equal")
        ax.set_xlabel("w1"), ax.set_ylabel("w2")
        done = "converged" if steps < cfg.scaling_max_steps else "NOT converged"
        ax.set_title(f"{name}: {done} after {steps} GD steps", fontsize=9)
    for (name, (k, excess)), style in zip(curves.items(), ["-", "--", ":", "-."]):
        axes[2].plot(np.linspace(0, cfg.num_epochs, len(excess)), excess, style,
                     label=f"{name}, lr {k:g}/L", lw=1.5, alpha=0.85)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("epochs (passes over the data)")
    axes[2].set_ylabel("training MSE − optimum")
    axes[2].set_title("batch size and learning-rate decay")
    axes[2].legend(fontsize=7, loc="lower left")
    save_figure(fig, out / "scaling.svg", zh=ZH)


def plot_minima(fractions: dict, cfg: Config, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    dims = np.array(list(fractions))
    seen = np.array([f > 0 for f in fractions.values()])
    ax.plot(dims[seen], np.array(list(fractions.values()))[seen], "ko-",
            label="random symmetric Hessians (all eigenvalues > 0)")
    ax.plot(dims, 2.0**-dims, "--", color="gray",
            label="coin flip per direction: 2^(−d)")
    for d in dims[~seen]:  # none seen: below the resolution 1 / num_hessians
        ax.plot(d, 1 / cfg.num_hessians, "kv")
        ax.annotate(f"0 of {cfg.num_hessians}", (d, 1 / cfg.num_hessians),
                    (d, 4 / cfg.num_hessians), fontsize=8, ha="center")
    ax.set_yscale("log"), ax.set_xticks(dims)
    ax.set_xlabel("dimension d of the critical point")
    ax.set_ylabel("share that are minima")
    ax.set_title("minima among random critical points"), ax.legend(fontsize=8)
    save_figure(fig, out / "minima.svg", zh=ZH)


def main(cfg: Config = Config(),
         out: Path = Path("out/foundations-optimizers")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    rng = np.random.default_rng(cfg.seed)
    paths = trajectories(cfg)
    plot_paths(paths, cfg, out)
    X, y = scaling_data(cfg, rng)
    runs, conds, gaps = {}, {}, {}
    for name, Xs in [("raw features", X),
                     ("standardized", standardize(X, *fit_standardizer(X)))]:
        steps, path, w_star, conds[name], gaps[name] = gd_linear_regression(
            Xs, y, cfg.scaling_max_steps, cfg.tol)
        runs[name] = (Xs, y, steps, path, w_star)
    Xb, yb = batch_data(cfg, rng)
    curves = batch_size_curves(cfg, Xb, yb, rng)
    plot_scaling(runs, curves, cfg, out)
    fractions = {d: minima_fraction(d, cfg.num_hessians, rng)
                 for d in range(1, cfg.max_dim + 1)}
    plot_minima(fractions, cfg, out)
    final = {f"{toy}_{name}_final_f": float(TOYS[toy][0](*paths[toy, name][-1]))
             for toy, name in paths}
    final_y = {f"saddle_{name}_final_y": abs(float(paths["saddle", name][-1, 1]))
               for name in SCRATCH}
    corr = np.corrcoef(Xb.T) - np.eye(5)
    H = 2 * Xb.T @ Xb / cfg.n
    gd, mb, sgd, sgd_decay = (c[1][-1] for c in curves.values())
    return {"max_diff_vs_torch": max_diff_vs_torch(cfg),
            "steps_raw": runs["raw features"][2],
            "steps_scaled": runs["standardized"][2],
            "scaling_max_steps": cfg.scaling_max_steps,
            "cond_raw": conds["raw features"], "cond_scaled": conds["standardized"],
            "loss_gap_raw": gaps["raw features"],
            "loss_gap_scaled": gaps["standardized"],
            "num_steps": cfg.num_steps, "num_epochs": cfg.num_epochs,
            "num_checks": cfg.num_checks,
            "batch_size": cfg.batch_size, "decay_steps": cfg.decay_steps,
            "batch_cond": float(np.linalg.cond(H)),
            "batch_max_corr": float(np.abs(corr).max()),
            "excess_full_batch": gd, "excess_mini_batch": mb,
            "excess_sgd_constant": sgd, "excess_sgd_decayed": sgd_decay,
            "updates_full_batch": len(curves["batch GD"][1]) - 1,
            **{f"minima_fraction_d{d}": f for d, f in fractions.items()},
            "num_hessians": cfg.num_hessians, **final, **final_y}


ADAPTIVE = ["Adagrad", "RMSProp", "Adam"]
CLAIMS = {
    "scratch_equals_torch_to_rounding": lambda m: m["max_diff_vs_torch"] < 1e-12,
    "gd_does_fine_on_the_quadratic": lambda m: m["quadratic_GD_final_f"]
    < m["quadratic_Adam_final_f"],
    "adaptive_methods_reach_a_minimum_of_the_saddle_toy": lambda m: all(
        m[f"saddle_{k}_final_f"] < -0.24 for k in ADAPTIVE),
    "gd_and_momentum_still_near_the_saddle": lambda m: m["saddle_GD_final_f"] > -0.1
    and m["saddle_Momentum_final_f"] > -0.1,
    "gd_is_leaving_the_saddle_slowly": lambda m: m["saddle_GD_final_y"] > 100 * 1e-3
    and m["saddle_GD_final_f"] < 0,
    "scaling_shrinks_the_condition_number": lambda m: m["cond_raw"]
    > 1e4 * m["cond_scaled"],
    "raw_gd_hits_the_cap_scaled_gd_converges_fast": lambda m: m["steps_raw"]
    == m["scaling_max_steps"] and m["steps_scaled"] <= 10,
    "batch_features_are_correlated": lambda m: m["batch_max_corr"] > 0.3,
    "mini_batches_beat_full_batch_per_epoch": lambda m: m["excess_mini_batch"]
    < 0.01 * m["excess_full_batch"],
    "decaying_lr_beats_constant_sgd": lambda m: m["excess_sgd_decayed"]
    < 0.2 * m["excess_sgd_constant"],
    "minima_get_rare_as_dimension_grows": lambda m: m["minima_fraction_d1"]
    > m["minima_fraction_d2"] > m["minima_fraction_d3"] > m["minima_fraction_d4"]
    and m["minima_fraction_d4"] < 0.01,
}
