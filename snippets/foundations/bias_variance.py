"""Bias and variance measured by refitting polynomials on many resampled training sets.

Page: foundations/bias-variance.md
Run:  python -m snippets run foundations/bias_variance

Each training set is a fresh noisy sample of y = sin(pi x). For every polynomial degree
we fit all sets, then measure bias^2 (mean fit vs truth), variance (spread of the fits)
and test error: the U-curve. L2 regularization (ridge, bias term not penalized) moves
a too-flexible degree-10 model back down the curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    num_datasets: int = 300  # resampled training sets per degree
    n_train: int = 12  # points in each training set
    noise: float = 0.3  # std of the label noise (irreducible error = noise**2)
    max_degree: int = 10  # degrees 0..max_degree
    ridge_degree: int = 10  # the flexible model that L2 regularization tames
    num_lambdas: int = 25  # lambda values on a log grid for the ridge sweep
    n_test: int = 200  # test inputs on [-1, 1]
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_datasets=20, max_degree=6, ridge_degree=6, num_lambdas=5,
                   n_test=50)


def true_f(x: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * x)


def sample_sets(cfg: Config, rng: np.random.Generator):
    """num_datasets training sets: X (S, n) and y (S, n), x spread over [-1, 1]."""
    grid = np.linspace(-1, 1, cfg.n_train)  # one x per cell, jittered within the cell
    half = 1 / (cfg.n_train - 1)
    X = np.clip(grid + rng.uniform(-half, half, (cfg.num_datasets, cfg.n_train)), -1, 1)
    y = true_f(X) + cfg.noise * rng.standard_normal(X.shape)
    return X, y


# --8<-- [start:ridge]
def features(x: np.ndarray, degree: int) -> np.ndarray:
    """Polynomial features [1, x, x^2, ..., x^degree]; column 0 is the bias."""
    return x[..., None] ** np.arange(degree + 1)


def fit_ridge(X, y, degree: int, lam: float = 0.0) -> np.ndarray:
    """Minimise ||Phi w - y||^2 + lam * sum_{j>=1} w_j^2 (the bias w_0 is free)."""
    Phi = features(X, degree)  # (n, degree + 1)
    penalty = lam * np.eye(degree + 1)
    penalty[0, 0] = 0.0  # shifting y by a constant must only shift the bias
    return np.linalg.lstsq(Phi.T @ Phi + penalty, Phi.T @ y, rcond=None)[0]
# --8<-- [end:ridge]


# --8<-- [start:decompose]
def decompose(y_hat: np.ndarray, f_test: np.ndarray, noise: float) -> dict:
    """y_hat: (S, n_test) predictions of S models fit on S training sets."""
    mean_pred = y_hat.mean(axis=0)  # the "average model"
    bias2 = ((mean_pred - f_test) ** 2).mean()
    variance = y_hat.var(axis=0).mean()
    # expected squared error on a fresh noisy label = bias^2 + variance + noise^2
    expected_mse = bias2 + variance + noise**2
    return {"bias2": bias2, "variance": variance, "expected_mse": expected_mse}
# --8<-- [end:decompose]


def predict_all(X, y, x_test, degree: int, lam: float = 0.0) -> np.ndarray:
    W = np.stack([fit_ridge(Xs, ys, degree, lam) for Xs, ys in zip(X, y)])
    return W @ features(x_test, degree).T  # (S, n_test)


def measured_test_mse(y_hat, f_test, noise, rng) -> float:
    """Test error counted directly on freshly drawn noisy test labels."""
    y_test = f_test + noise * rng.standard_normal(y_hat.shape)
    return float(((y_hat - y_test) ** 2).mean())


def plot_fits(X, y, x_test, cfg: Config, out: Path) -> None:
    degrees = [1, 3, cfg.max_degree]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    for ax, d in zip(axes, degrees):
        y_hat = predict_all(X[:20], y[:20], x_test, d)
        ax.plot(x_test, y_hat.T, color="C0", alpha=0.25, lw=0.8)
        ax.plot(x_test, y_hat.mean(0), color="C1", lw=2, label="mean of the 20 fits")
        ax.plot(x_test, true_f(x_test), "k--", lw=1.5, label="truth sin(πx)")
        ax.set_title(f"degree {d}: 20 fits")
        ax.set_ylim(-2, 2)
        ax.set_xlabel("x")
    axes[0].legend(loc="lower right", fontsize=8)
    save_figure(fig, out / "fits.png")


def plot_curves(rows, lam_rows, cfg: Config, out: Path) -> None:
    deg = np.array([r["degree"] for r in rows])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax.plot(deg, [r["bias2"] for r in rows], "o-", label="bias²")
    ax.plot(deg, [r["variance"] for r in rows], "s-", label="variance")
    ax.plot(deg, [r["expected_mse"] for r in rows], "-", lw=3, alpha=0.5,
            label="bias² + variance + σ²")
    ax.plot(deg, [r["test_mse"] for r in rows], "kx", label="measured test MSE")
    ax.axhline(cfg.noise**2, color="gray", ls=":", label="noise σ²")
    ax.set_yscale("log")
    ax.set_xlabel("polynomial degree")
    ax.set_title(f"{cfg.num_datasets} training sets of {cfg.n_train} points")
    ax.legend(fontsize=8)
    lams = np.array([r["lam"] for r in lam_rows])
    bx.plot(lams, [r["bias2"] for r in lam_rows], "o-", label="bias²")
    bx.plot(lams, [r["variance"] for r in lam_rows], "s-", label="variance")
    bx.plot(lams, [r["test_mse"] for r in lam_rows], "kx-", label="measured test MSE")
    bx.set_xscale("log"), bx.set_yscale("log")
    bx.set_xlabel("λ (L2 strength)")
    bx.set_title(f"ridge, degree {cfg.ridge_degree}")
    bx.legend(fontsize=8)
    save_figure(fig, out / "u_curve.svg")


def main(cfg: Config = Config(),
         out: Path = Path("out/foundations-bias_variance")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    rng = np.random.default_rng(cfg.seed)
    X, y = sample_sets(cfg, rng)
    x_test = np.linspace(-1, 1, cfg.n_test)
    f_test = true_f(x_test)
    rows = []
    for d in range(cfg.max_degree + 1):
        y_hat = predict_all(X, y, x_test, d)
        r = decompose(y_hat, f_test, cfg.noise)
        test_mse = measured_test_mse(y_hat, f_test, cfg.noise, rng)
        rows.append(dict(r, degree=d, test_mse=test_mse))
    lam_rows = []
    for lam in np.logspace(-6, 2, cfg.num_lambdas):
        y_hat = predict_all(X, y, x_test, cfg.ridge_degree, lam)
        r = decompose(y_hat, f_test, cfg.noise)
        test_mse = measured_test_mse(y_hat, f_test, cfg.noise, rng)
        lam_rows.append(dict(r, lam=lam, test_mse=test_mse))
    plot_fits(X, y, x_test, cfg, out)
    plot_curves(rows, lam_rows, cfg, out)
    best = min(rows, key=lambda r: r["test_mse"])
    best_lam = min(lam_rows, key=lambda r: r["test_mse"])
    return {"best_degree": best["degree"], "best_test_mse": best["test_mse"],
            "deg1_bias2": rows[1]["bias2"], "deg1_variance": rows[1]["variance"],
            "maxdeg_bias2": rows[-1]["bias2"], "maxdeg_variance": rows[-1]["variance"],
            "maxdeg_test_mse": rows[-1]["test_mse"],
            "ridge_best_lambda": best_lam["lam"],
            "ridge_best_test_mse": best_lam["test_mse"],
            "ridge_unreg_test_mse": lam_rows[0]["test_mse"],
            "max_decomp_gap": max(abs(r["test_mse"] - r["expected_mse"]) / r["test_mse"]
                                  for r in rows)}
