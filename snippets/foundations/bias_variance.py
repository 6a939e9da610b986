"""Bias and variance measured by refitting polynomials on many resampled training sets.

Page: foundations/bias-variance.md
Run:  python -m snippets run foundations/bias_variance

Each training set is a fresh noisy sample of y = sin(pi x). For every polynomial degree
we fit all sets, then measure bias^2 (mean fit vs truth), variance (spread of the fits)
and test error: the U-curve. L2 regularization (ridge, bias term not penalized) moves
a too-flexible degree-10 model back down the curve; L1 (lasso) does too, and sets some
coefficients exactly to zero.
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
    more_data: int = 4  # the "more data" check: training sets this many times larger
    noise: float = 0.3  # std of the label noise (irreducible error = noise**2)
    max_degree: int = 10  # degrees 0..max_degree
    ridge_degree: int = 10  # the flexible model that L2 regularization tames
    num_lambdas: int = 25  # lambda values on a log grid for the ridge sweep
    num_l1_lambdas: int = 5  # lambda values on a log grid for the lasso
    num_l1_sets: int = 100  # training sets for the L1-vs-L2 comparison (the first ones)
    l1_sweeps: int = 1000  # coordinate-descent sweeps of the lasso
    n_test: int = 200  # test inputs on [-1, 1]
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_datasets=20, max_degree=6, ridge_degree=6, num_lambdas=5,
                   num_l1_lambdas=3, l1_sweeps=100, num_l1_sets=10, n_test=50)


def true_f(x: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * x)


def sample_sets(cfg: Config, rng: np.random.Generator, n: int | None = None):
    """num_datasets training sets: X (S, n) and y (S, n), x spread over [-1, 1]."""
    n = n or cfg.n_train
    grid = np.linspace(-1, 1, n)  # one x per cell, jittered within the cell
    half = 1 / (n - 1)
    X = np.clip(grid + rng.uniform(-half, half, (cfg.num_datasets, n)), -1, 1)
    y = true_f(X) + cfg.noise * rng.standard_normal(X.shape)
    return X, y


# --8<-- [start:ridge]
def features(x: np.ndarray, degree: int) -> np.ndarray:
    """Polynomial features [1, x, x^2, ..., x^degree]; column 0 is the bias."""
    return x[..., None] ** np.arange(degree + 1)


def fit_ridge(X, y, degree: int, lam: float = 0.0) -> np.ndarray:
    """Minimize ||Phi w - y||^2 + lam * sum_{j>=1} w_j^2 (the bias w_0 is free)."""
    Phi = features(X, degree)  # (n, degree + 1)
    penalty = lam * np.eye(degree + 1)
    penalty[0, 0] = 0.0  # shifting y by a constant must only shift the bias
    return np.linalg.lstsq(Phi.T @ Phi + penalty, Phi.T @ y, rcond=None)[0]
# --8<-- [end:ridge]


# --8<-- [start:lasso]
def soft_threshold(a, t):
    """Move a towards 0 by t, and stop at 0: how an L1 penalty makes exact zeros."""
    return np.sign(a) * np.maximum(np.abs(a) - t, 0.0)


def fit_lasso(X, y, degree: int, lam: float, num_sweeps: int = 1000) -> np.ndarray:
    """Minimize ||Phi w - y||^2 + lam * sum_{j>=1} |w_j| by coordinate descent.

    X, y: (n,) or (S, n) for S training sets at once; returns (degree+1,) or (S, ...).
    """
    Phi = features(X, degree)  # (..., n, d + 1)
    w = np.zeros(Phi.shape[:-2] + (degree + 1,))
    col_sq = (Phi**2).sum(-2)  # ||phi_j||^2 per column
    r = y - (Phi @ w[..., None])[..., 0]  # residual
    for _ in range(num_sweeps):
        for j in range(degree + 1):
            rho = (Phi[..., j] * r).sum(-1) + col_sq[..., j] * w[..., j]
            # exact minimiser in w_j with the others fixed; the bias is not penalized
            new = rho / col_sq[..., j] if j == 0 else \
                soft_threshold(rho, lam / 2) / col_sq[..., j]
            r = r - Phi[..., j] * (new - w[..., j])[..., None]
            w[..., j] = new
    return w
# --8<-- [end:lasso]


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


ZH = {
    "mean of the 20 fits": "20 条拟合的平均",
    "truth sin(πx)": "真实函数 sin(πx)",
    "degree {}: 20 fits (axis clipped at ±2)": "{} 次：20 条拟合（纵轴截断于 ±2）",
    "bias²": "偏差²", "variance": "方差", "bias² + variance + σ²": "偏差² + 方差 + σ²",
    "measured test MSE": "实测测试 MSE", "noise σ²": "噪声 σ²",
    "polynomial degree": "多项式次数",
    "{} training sets of {} points": "{} 个训练集，每个 {} 个点",
    "λ (L2 strength)": "λ（L2 强度）", "ridge, degree {}": "岭回归，{} 次",
    "test MSE at λ = 0 (no penalty)": "λ = 0（不加惩罚）时的测试 MSE",
    "coefficient index j": "系数下标 j",
    "|w_j| on one training set": "某一个训练集上的 |w_j|",
    "share of the {} sets where w_j = 0 exactly": "{} 个训练集中 w_j 恰为 0 的比例",
    "L2 (ridge), λ = {}": "L2（岭回归），λ = {}",
    "L1 (lasso), λ = {}": "L1（lasso），λ = {}",
    "degree {}: L1 zeroes coefficients, L2 only shrinks them":
        "{} 次：L1 把系数压成 0，L2 只把它们缩小",
}


def plot_fits(X, y, x_test, cfg: Config, out: Path) -> float:
    """Three panels of 20 fits; returns the largest |y_hat| (the axis clips at 2)."""
    degrees = [1, 3, cfg.max_degree]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    largest = 0.0
    for ax, d in zip(axes, degrees):
        y_hat = predict_all(X[:20], y[:20], x_test, d)
        largest = max(largest, float(np.abs(y_hat).max()))
        ax.plot(x_test, y_hat.T, color="C0", alpha=0.25, lw=0.8)
        ax.plot(x_test, y_hat.mean(0), color="C1", lw=2.5, label="mean of the 20 fits")
        ax.plot(x_test, true_f(x_test), "k--", lw=1.5, label="truth sin(πx)")
        ax.set_title(f"degree {d}: 20 fits (axis clipped at ±2)", fontsize=9)
        ax.set_ylim(-2, 2)
        ax.set_xlabel("x")
    axes[0].legend(loc="lower right", fontsize=8)
    save_figure(fig, out / "fits.png", zh=ZH)
    return largest


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
    bx.axhline(rows[cfg.ridge_degree]["test_mse"], color="k", ls="--", lw=1,
               label="test MSE at λ = 0 (no penalty)")
    bx.axhline(cfg.noise**2, color="gray", ls=":", label="noise σ²")
    bx.set_xscale("log"), bx.set_yscale("log")
    bx.set_xlabel("λ (L2 strength)")
    bx.set_title(f"ridge, degree {cfg.ridge_degree}")
    bx.legend(fontsize=8)
    save_figure(fig, out / "u_curve.svg", zh=ZH)


def plot_l1_l2(w_l2, w_l1, lam_l2, lam_l1, cfg: Config, out: Path) -> None:
    """One set's coefficients under both penalties; how often L1 zeroes each one."""
    j = np.arange(1, cfg.ridge_degree + 1)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.4))
    ax.bar(j - 0.2, np.abs(w_l2[0, 1:]), 0.4, label=f"L2 (ridge), λ = {lam_l2:.2g}")
    ax.bar(j + 0.2, np.abs(w_l1[0, 1:]), 0.4, hatch="//", edgecolor="k",
           label=f"L1 (lasso), λ = {lam_l1:.2g}")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("coefficient index j"), ax.set_title("|w_j| on one training set")
    ax.set_xticks(j), ax.legend(fontsize=8)
    bx.bar(j - 0.2, (w_l2[:, 1:] == 0).mean(0), 0.4,
           label=f"L2 (ridge), λ = {lam_l2:.2g}")
    bx.bar(j + 0.2, (w_l1[:, 1:] == 0).mean(0), 0.4, hatch="//", edgecolor="k",
           label=f"L1 (lasso), λ = {lam_l1:.2g}")
    bx.set_ylim(0, 1), bx.set_xticks(j)
    bx.set_xlabel("coefficient index j"), bx.set_title(
        f"share of the {len(w_l1)} sets where w_j = 0 exactly")
    bx.legend(fontsize=8)
    fig.suptitle(f"degree {cfg.ridge_degree}: L1 zeroes coefficients, L2 only shrinks "
                 "them", fontsize=10, y=1.03)
    save_figure(fig, out / "l1_l2.svg", zh=ZH)


def l1_vs_l2(X, y, x_test, f_test, lam_l2, cfg: Config, rng, out: Path) -> dict:
    """Lasso over a lambda grid (all sets at once) against ridge at its best lambda,
    on the same num_l1_sets training sets."""
    d = cfg.ridge_degree
    X, y = X[:cfg.num_l1_sets], y[:cfg.num_l1_sets]
    rows = []
    for lam in np.logspace(-3, 0, cfg.num_l1_lambdas):
        W = fit_lasso(X, y, d, lam, cfg.l1_sweeps)  # (S, d + 1)
        test_mse = measured_test_mse(W @ features(x_test, d).T, f_test, cfg.noise, rng)
        rows.append((test_mse, lam, W))
    test_mse_l1, lam_l1, W_l1 = min(rows, key=lambda r: r[0])
    W_l2 = np.stack([fit_ridge(Xs, ys, d, lam_l2) for Xs, ys in zip(X, y)])
    y_hat_l2 = W_l2 @ features(x_test, d).T
    test_mse_l2 = measured_test_mse(y_hat_l2, f_test, cfg.noise, rng)
    plot_l1_l2(W_l2, W_l1, lam_l2, lam_l1, cfg, out)
    return {"l1_best_lambda": lam_l1, "l1_test_mse": test_mse_l1,
            "l2_subset_test_mse": test_mse_l2, "num_l1_sets": cfg.num_l1_sets,
            "l1_mean_zero_coefs": float((W_l1[:, 1:] == 0).sum(1).mean()),
            "l2_mean_zero_coefs": float((W_l2[:, 1:] == 0).sum(1).mean())}


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
    largest_fit = plot_fits(X, y, x_test, cfg, out)
    plot_curves(rows, lam_rows, cfg, out)
    best = min(rows, key=lambda r: r["test_mse"])
    best_lam = min(lam_rows, key=lambda r: r["test_mse"])
    unreg, smallest = rows[cfg.ridge_degree], lam_rows[0]
    l1 = l1_vs_l2(X, y, x_test, f_test, best_lam["lam"], cfg, rng, out)
    X4, y4 = sample_sets(cfg, rng, cfg.more_data * cfg.n_train)  # more data, same model
    more = {d: decompose(predict_all(X4, y4, x_test, d), f_test, cfg.noise)
            for d in (1, cfg.max_degree)}
    return {"best_degree": best["degree"], "best_test_mse": best["test_mse"],
            "noise_var": cfg.noise**2, "n_train": cfg.n_train,
            "num_datasets": cfg.num_datasets, "max_degree": cfg.max_degree,
            "min_test_mse": min(r["test_mse"] for r in rows + lam_rows),
            "deg1_bias2": rows[1]["bias2"], "deg1_variance": rows[1]["variance"],
            "n_train_more": cfg.more_data * cfg.n_train,
            "deg1_bias2_more_data": more[1]["bias2"],
            "deg1_variance_more_data": more[1]["variance"],
            "maxdeg_variance_more_data": more[cfg.max_degree]["variance"],
            "maxdeg_bias2": rows[-1]["bias2"], "maxdeg_variance": rows[-1]["variance"],
            "maxdeg_test_mse": rows[-1]["test_mse"],
            "fits_largest_abs": largest_fit,
            "ridge_best_lambda": best_lam["lam"],
            "ridge_best_test_mse": best_lam["test_mse"],
            "ridge_best_variance": best_lam["variance"],
            "ridge_best_bias2": best_lam["bias2"],
            "ridge_unreg_test_mse": unreg["test_mse"],
            "ridge_unreg_variance": unreg["variance"],
            "ridge_smallest_lambda": smallest["lam"],
            "ridge_smallest_lambda_test_mse": smallest["test_mse"],
            "ridge_smallest_lambda_variance": smallest["variance"],
            "ridge_largest_lambda_bias2": lam_rows[-1]["bias2"],
            "max_decomp_gap": max(abs(r["test_mse"] - r["expected_mse"]) / r["test_mse"]
                                  for r in rows),
            **l1}


CLAIMS = {
    "line_underfits_bias_dominates": lambda m: m["deg1_bias2"] > 5 * m["deg1_variance"],
    "best_degree_is_in_the_middle": lambda m: 2 <= m["best_degree"] <= 5,
    "more_data_cuts_variance_not_the_lines_bias": lambda m: abs(
        m["deg1_bias2_more_data"] / m["deg1_bias2"] - 1) < 0.2
    and m["deg1_variance_more_data"] < 0.5 * m["deg1_variance"]
    and m["maxdeg_variance_more_data"] < 0.1 * m["maxdeg_variance"],
    "high_degree_error_is_variance": lambda m: m["maxdeg_variance"]
    > 100 * m["maxdeg_bias2"],
    "test_error_never_below_noise": lambda m: m["min_test_mse"] > m["noise_var"],
    "decomposition_matches_fresh_labels": lambda m: m["max_decomp_gap"] < 0.03,
    "smallest_lambda_already_cuts_variance": lambda m:
        m["ridge_smallest_lambda_variance"] < 0.5 * m["ridge_unreg_variance"],
    "best_ridge_beats_unregularized": lambda m: m["ridge_best_test_mse"]
    < 0.2 * m["ridge_unreg_test_mse"],
    "huge_lambda_underfits": lambda m: m["ridge_largest_lambda_bias2"]
    > 2 * m["ridge_best_bias2"],
    "l1_zeroes_coefficients_l2_does_not": lambda m: m["l1_mean_zero_coefs"] >= 3
    and m["l2_mean_zero_coefs"] == 0,
    "l1_about_as_good_as_l2": lambda m: m["l1_test_mse"]
    < 1.5 * m["l2_subset_test_mse"],
}
