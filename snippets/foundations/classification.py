"""Classification as a probabilistic model.

Why least squares on class labels is the wrong tool (points that are "too correct",
masking); generative classifiers with Gaussian classes (a shared covariance gives a
linear boundary and a posterior that is a sigmoid of a linear function, separate
covariances a quadratic boundary, a diagonal one naive Bayes); logistic regression
fitted directly by maximum likelihood; and test accuracy against training-set size for
both, the question of Ng & Jordan (NeurIPS 2001), on a 2-D task and on scikit-learn's
digits.

Page: foundations/classification.md
Run:  python -m snippets run foundations/classification
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    # learning curves, 2-D task: x | class ~ N(-+mu/2, S), one S for both classes
    rho: float = 0.6  # correlation of the two features inside a class
    delta: float = 3.0  # Mahalanobis distance between the class means
    sizes_2d: tuple = (3, 5, 10, 20, 50, 100, 300)  # training points per class
    draws_2d: int = 100  # random training sets per size, one fixed test set
    num_test_2d: int = 10_000  # test points per class
    # learning curves, digits (shipped with scikit-learn), all ten classes
    num_components: int = 10  # principal components kept; the other panel: 64 pixels
    sizes_digits: tuple = (3, 5, 10, 20, 40, 80, 120)  # training images per class
    draws_digits: int = 40  # random splits (test set and order of the pool)
    test_per_class: int = 50  # test images per class; the rest is the training pool
    C: float = 1.0  # inverse strength of the L2 penalty of the penalised logistic fit
    few_2d: int = 10  # the sizes at which the page's claims compare the methods
    many_2d: int = 300
    few_digits: int = 10
    many_digits: int = 120
    # pictures: "too correct" points, masking, the two Gaussian models
    n_points: int = 100  # points per class
    num_far: int = 40  # correctly labelled class-1 points added far on its side
    seed: int = 0

    @classmethod
    def tiny(cls) -> Config:
        return cls(sizes_2d=(3, 20), draws_2d=2, num_test_2d=500, sizes_digits=(3, 20),
                   draws_digits=2, few_2d=3, many_2d=20, few_digits=3, many_digits=20)


# --8<-- [start:regression]
def least_squares_on_labels(X, y):
    """Regress the targets -1 / +1 on x (with a bias); class 1 where w.x + b > 0."""
    A = np.c_[X, np.ones(len(X))]
    sol = np.linalg.lstsq(A, 2.0 * y - 1, rcond=None)[0]
    return sol[:-1], sol[-1]


def indicator_regression(X, y, K):
    """K classes: regress each one-hot column on x, predict the largest fit."""
    B = np.linalg.lstsq(np.c_[X, np.ones(len(X))], np.eye(K)[y], rcond=None)[0]
    return lambda Xn: np.c_[Xn, np.ones(len(Xn))] @ B  # (n, K) fitted indicators
# --8<-- [end:regression]


# --8<-- [start:generative]
def fit_gaussians(X, y, shared=True, diagonal=False):
    """Maximum likelihood: priors N_k/N, class means, class covariances (divided by
    N_k); shared: their average weighted by N_k/N; diagonal: naive Bayes."""
    K, d = y.max() + 1, X.shape[1]
    priors = np.bincount(y, minlength=K) / len(y)  # (K,)
    means = np.stack([X[y == k].mean(0) for k in range(K)])  # (K, d)
    R = X - means[y]  # every point minus its class mean
    covs = np.stack([R[y == k].T @ R[y == k] / np.sum(y == k) for k in range(K)])
    if shared:  # Sigma = sum_k (N_k / N) Sigma_k
        covs = np.broadcast_to(np.tensordot(priors, covs, 1), covs.shape)
    if diagonal:  # independent features given the class
        covs = covs * np.eye(d)
    return priors, means, covs  # (K,), (K, d), (K, d, d)


def log_joint(params, X):
    """ln P(C_k) + ln N(x; mu_k, Sigma_k) for every row x and class k: (n, K)."""
    cols = []
    for p, mu, S in zip(*params):
        R = X - mu
        maha = np.sum(R * np.linalg.solve(S, R.T).T, 1)  # (x-mu)^T S^-1 (x-mu)
        logdet = np.linalg.slogdet(S)[1]
        cols.append(np.log(p) - 0.5 * (maha + logdet + len(mu) * math.log(2 * math.pi)))
    return np.stack(cols, 1)


def posterior(params, X):
    """Bayes' rule: P(C_k | x) = P(x | C_k) P(C_k) / sum_j P(x | C_j) P(C_j)."""
    a = log_joint(params, X)
    e = np.exp(a - a.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
# --8<-- [end:generative]


# --8<-- [start:linear]
def linear_discriminants(params):
    """Shared Sigma: ln P(C_k) P(x | C_k) = w_k.x + b_k + (a term equal for all k)."""
    priors, means, covs = params
    W = np.linalg.lstsq(covs[0], means.T, rcond=None)[0].T  # w_k = Sigma^-1 mu_k
    b = -0.5 * np.sum(W * means, 1) + np.log(priors)  # -mu_k.w_k / 2 + ln P(C_k)
    return W, b  # (K, d), (K,)


def sigmoid_form(params):
    """Two classes: P(C_1 | x) = sigmoid(w.x + b), w = Sigma^-1 (mu_1 - mu_0)."""
    W, b = linear_discriminants(params)
    return W[1] - W[0], b[1] - b[0]
# --8<-- [end:linear]


# --8<-- [start:logistic]
def sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))  # 1 / (1 + e^-z), no overflow


def fit_logistic(X, y, C=np.inf, lr=1.0, num_steps=20_000):
    """Binary logistic regression, gradient descent on the negative log-likelihood
    -sum_n [y_n ln f(x_n) + (1 - y_n) ln(1 - f(x_n))] + |w|^2 / (2C)."""
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(num_steps):
        err = y - sigmoid(X @ w + b)  # y_n - f(x_n)
        w -= lr * (-err @ X + w / C) / len(y)  # gradient: -sum_n (y_n - f(x_n)) x_n
        b -= lr * -err.sum() / len(y)
    return w, b
# --8<-- [end:logistic]


# --8<-- [start:methods]
def gaussian_classifier(shared=True, diagonal=False):
    def fit(X, y):
        params = fit_gaussians(X, y, shared, diagonal)
        if not shared:  # quadratic boundary: compare the full log-joints
            return lambda Xn: log_joint(params, Xn).argmax(1)
        W, b = linear_discriminants(params)
        return lambda Xn: (Xn @ W.T + b).argmax(1)
    return fit


def logistic_classifier(C):
    def fit(X, y):  # scikit-learn's, tested equal to fit_logistic
        with warnings.catch_warnings():  # separable sets: no maximum (see the page)
            warnings.simplefilter("ignore")
            return LogisticRegression(C=C, max_iter=1000).fit(X, y).predict
    return fit
# --8<-- [end:methods]


def gaussian_task(cfg: Config, rng, n):
    """n points per class, ordered class 0 then class 1."""
    S = np.array([[1.0, cfg.rho], [cfg.rho, 1.0]])
    mu = np.array([cfg.delta * math.sqrt(1 - cfg.rho**2), 0.0])  # mu S^-1 mu = delta^2
    X = rng.standard_normal((2 * n, 2)) @ np.linalg.cholesky(S).T
    return X + np.repeat([-mu / 2, mu / 2], n, 0), np.repeat([0, 1], n)


def digits_draw(cfg: Config, rng, num_components):
    """A test set of test_per_class images per class; the pool in a random order,
    projected on principal components fitted to the pool's images (no labels)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixels in [0, 1]
    test = np.concatenate([rng.permutation(np.flatnonzero(y == k))[:cfg.test_per_class]
                           for k in range(10)])
    pool = rng.permutation(np.setdiff1d(np.arange(len(y)), test))
    if num_components < X.shape[1]:
        X = PCA(num_components, svd_solver="full").fit(X[pool]).transform(X)
    return X[pool], y[pool], X[test], y[test]


def learning_curves(cfg: Config, task: str, fits: dict):
    """Test accuracy, shape (method, draw, size), and whether each fit got every
    training point right; one draw's training sets are nested (first n per class)."""
    sizes = cfg.sizes_2d if task == "2d" else cfg.sizes_digits
    draws = cfg.draws_2d if task == "2d" else cfg.draws_digits
    if task == "2d":
        test_rng = np.random.default_rng(10**6)  # one fixed test set for every draw
        X_test, y_test = gaussian_task(cfg, test_rng, cfg.num_test_2d)
    acc = np.zeros((len(fits), draws, len(sizes)))
    perfect = np.zeros_like(acc)
    for i in range(draws):
        rng = np.random.default_rng([cfg.seed, i])
        if task == "2d":
            X, y = gaussian_task(cfg, rng, max(sizes))
        else:
            num_components = int(task.removeprefix("digits"))
            X, y, X_test, y_test = digits_draw(cfg, rng, num_components)
        for j, n in enumerate(sizes):
            idx = np.concatenate([np.flatnonzero(y == k)[:n] for k in np.unique(y)])
            for m, fit in enumerate(fits.values()):
                predict = fit(X[idx], y[idx])
                acc[m, i, j] = np.mean(predict(X_test) == y_test)
                perfect[m, i, j] = np.all(predict(X[idx]) == y[idx])
    return list(sizes), acc, perfect


def regression_pictures(cfg: Config, rng):
    """Far, correct points and three boundaries; three classes on a line."""
    n = cfg.n_points
    X = rng.standard_normal((2 * n, 2)) + np.repeat([[-1.5, -1.5], [1.5, 1.5]], n, 0)
    y = np.repeat([0, 1], n)
    far = rng.standard_normal((cfg.num_far, 2)) * 0.7 + [3.0, 10.0]
    X2, y2 = np.r_[X, far], np.r_[y, np.ones(cfg.num_far, int)]
    fits = {"ls": least_squares_on_labels,
            "lda": lambda X, y: sigmoid_form(fit_gaussians(X, y)),
            "lr": lambda X, y: fit_logistic(X, y, lr=0.05, num_steps=20_000)}
    m, lines = {}, {}
    for name, fit in fits.items():
        for when, (Xf, yf) in {"before": (X, y), "after": (X2, y2)}.items():
            w, b = lines[name, when] = fit(Xf, yf)
            m[f"{name}_acc_{when}"] = np.mean((X @ w + b > 0) == y)  # original points
    (w_ls, _), (w_lda, _) = lines["ls", "after"], lines["lda", "after"]
    m["cos_ls_lda"] = w_ls @ w_lda / np.linalg.norm(w_ls) / np.linalg.norm(w_lda)
    x1 = (rng.standard_normal(3 * n) + np.repeat([-4.0, 0.0, 4.0], n))[:, None]
    y1 = np.repeat([0, 1, 2], n)
    fitted = indicator_regression(x1, y1, 3)
    softmax = LogisticRegression(C=cfg.C, max_iter=1000).fit(x1, y1)
    m["middle_recall_ls"] = np.mean(fitted(x1[y1 == 1]).argmax(1) == 1)
    m["middle_recall_lr"] = np.mean(softmax.predict(x1[y1 == 1]) == 1)
    return m, (X2, y2, lines, x1, y1, fitted, softmax)


def generative_pictures(cfg: Config, rng):
    """Two Gaussian classes with different covariances, fitted both ways."""
    n = cfg.n_points
    L0 = np.linalg.cholesky([[1.0, 0.5], [0.5, 0.8]])
    L1 = np.linalg.cholesky([[0.3, -0.1], [-0.1, 1.5]])
    X = np.r_[rng.standard_normal((n, 2)) @ L0.T, rng.standard_normal((n, 2)) @ L1.T
              + [2.5, 1.0]]
    y = np.repeat([0, 1], n)
    shared, separate = fit_gaussians(X, y), fit_gaussians(X, y, shared=False)
    w, b = sigmoid_form(shared)
    A = np.c_[X, np.ones(len(X))]  # how far is each log-odds from a linear function?
    m = {"sigmoid_form_max_err": np.abs(posterior(shared, X)[:, 1]
                                        - sigmoid(X @ w + b)).max()}
    for name, params in {"shared": shared, "separate": separate}.items():
        logodds = log_joint(params, X) @ [-1.0, 1.0]
        resid = logodds - A @ np.linalg.lstsq(A, logodds, rcond=None)[0]
        m[f"logodds_nonlinearity_{name}"] = np.sqrt(np.mean(resid**2))
    w_lr, b_lr = fit_logistic(X, y)  # maximum likelihood, no penalty
    sk = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(X, y)
    diff = np.r_[w_lr - sk.coef_[0], b_lr - sk.intercept_]
    m["logistic_vs_sklearn"] = np.abs(diff).max()
    m["w_lda_minus_w_lr"] = np.linalg.norm(w - w_lr)
    return m, (X, y, shared, separate, (w, b), (w_lr, b_lr))


LABELS = {"lda": "Gaussian, shared Σ (LDA)", "qda": "Gaussian, separate Σ (QDA)",
          "nb": "Gaussian, shared diagonal Σ (naive Bayes)",
          "lr_ml": "logistic regression, no penalty",
          "lr_l2": "logistic regression, L2 penalty, C = {:g}"}
STYLES = {"lda": ("-", "o"), "qda": ("-.", "x"), "nb": (":", "v"), "lr_ml": ("--", "s"),
          "lr_l2": ((0, (6, 2)), "D")}
ZH = {
    "class 0": "类别 0", "class 1": "类别 1",
    "far, correct class-1 points": "远处、分对了的类别 1 点",
    "least squares on ±1 labels, without the far points": "对 ±1 标签做最小二乘（不含远处的点）",
    "least squares on ±1 labels": "对 ±1 标签做最小二乘",
    "Gaussian, shared Σ (LDA)": "高斯，共享 Σ（LDA）",
    "Gaussian, separate Σ (QDA)": "高斯，各自的 Σ（QDA）",
    "Gaussian, shared diagonal Σ (naive Bayes)": "高斯，共享对角 Σ（朴素贝叶斯）",
    "logistic regression": "逻辑回归",
    "logistic regression, no penalty": "逻辑回归，无惩罚",
    "logistic regression, L2 penalty, C = {}": "逻辑回归，L2 惩罚，C = {}",
    "far, correct points pull two of the boundaries": "远处分对了的点拉动了其中两条边界",
    "least squares on one-hot labels": "对独热标签做最小二乘",
    "logistic (softmax) regression": "逻辑（softmax）回归",
    "fitted value": "拟合值", "P(class | x)": "P(类别 | x)",
    "class {}": "类别 {}", "fit for class {}": "类别 {} 的拟合",
    "two Gaussian classes: linear and quadratic boundaries":
        "两个高斯类别：线性边界与二次边界",
    "P(C₁ | x) against z = w·x + b of the shared-Σ model":
        "P(C₁ | x) 与共享 Σ 模型的 z = w·x + b",
    "shared Σ: Bayes' rule": "共享 Σ：贝叶斯公式", "separate Σ: Bayes' rule": "各自的 Σ：贝叶斯公式",
    "σ(z)": "σ(z)",
    "2-D: Gaussian classes, one shared Σ": "二维：高斯类别，共享同一个 Σ",
    "digits: {} principal components": "手写数字：{} 个主成分",
    "digits: all 64 pixels": "手写数字：全部 64 个像素",
    "training examples per class": "每类训练样本数",
    "test accuracy (mean over draws)": "测试准确率（多次抽样的平均）",
    "Bayes-optimal": "贝叶斯最优",
}


def boundary(ax, w, b, x1, **kw):
    ax.plot(x1, -(w[0] * x1 + b) / w[1], **kw)  # w.x + b = 0


def plot_regression(pic, out: Path) -> None:
    X2, y2, lines, x1, y1, fitted, softmax = pic
    n = np.sum(y2 == 0)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ax = axes[0]
    ax.scatter(*X2[:n].T, s=10, marker="o", label="class 0")
    ax.scatter(*X2[n:2 * n].T, s=12, marker="^", label="class 1")
    ax.scatter(*X2[2 * n:].T, s=14, marker="^", facecolors="none", edgecolors="C1",
               label="far, correct class-1 points")
    grid = np.linspace(-5, 6, 2)
    boundary(ax, *lines["ls", "before"], grid, color="grey", ls=":", lw=2,
             label="least squares on ±1 labels, without the far points")
    for (name, label), ls in zip([("ls", "least squares on ±1 labels"),
                                  ("lda", "Gaussian, shared Σ (LDA)"),
                                  ("lr", "logistic regression")], ["-", "-.", "--"]):
        boundary(ax, *lines[name, "after"], grid, color="k", ls=ls, lw=1.6, label=label)
    ax.set(xlim=(-5, 6), ylim=(-5, 13), xlabel="x₁", ylabel="x₂",
           title="far, correct points pull two of the boundaries")
    ax.legend(fontsize=7, loc="upper left")
    xs = np.linspace(x1.min(), x1.max(), 200)[:, None]
    for k, ls in enumerate(["-", "--", ":"]):
        axes[1].plot(xs, fitted(xs)[:, k], ls=ls, lw=2, label=f"fit for class {k}")
        axes[2].plot(xs, softmax.predict_proba(xs)[:, k], ls=ls, lw=2,
                     label=f"class {k}")
        for ax, y0 in ((axes[1], -0.25), (axes[2], -0.08)):
            ax.plot(x1[y1 == k, 0], np.full(np.sum(y1 == k), y0 + 0.03 * k), "o^s"[k],
                    ms=3, color=f"C{k}", alpha=0.4)
    axes[1].set(xlabel="x", ylabel="fitted value",
                title="least squares on one-hot labels")
    axes[2].set(xlabel="x", ylabel="P(class | x)",
                title="logistic (softmax) regression")
    for ax in axes[1:]:
        ax.legend(fontsize=8)
    save_figure(fig, out / "regression.svg", zh=ZH)


def plot_generative(pic, out: Path) -> None:
    X, y, shared, separate, (w, b), (w_lr, b_lr) = pic
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    ax = axes[0]
    for k, marker in enumerate("o^"):
        ax.scatter(*X[y == k].T, s=10, marker=marker, label=f"class {k}")
    g1, g2 = np.meshgrid(np.linspace(-3, 5, 300), np.linspace(-3.5, 5, 300))
    G = np.c_[g1.ravel(), g2.ravel()]
    for k in range(2):  # each fitted class density, separate covariances
        dens = np.exp(log_joint(separate, G)[:, k]).reshape(g1.shape)
        ax.contour(g1, g2, dens, levels=3, colors=f"C{k}", linewidths=0.6, alpha=0.6)
    logodds = (log_joint(separate, G) @ [-1.0, 1.0]).reshape(g1.shape)
    ax.contour(g1, g2, logodds, levels=[0], colors="k", linestyles="-.", linewidths=1.6)
    ax.plot([], [], "k-.", label="Gaussian, separate Σ (QDA)")
    grid = np.linspace(-3, 5, 2)
    boundary(ax, w, b, grid, color="k", ls="-", lw=1.6,
             label="Gaussian, shared Σ (LDA)")
    boundary(ax, w_lr, b_lr, grid, color="k", ls="--", lw=1.6,
             label="logistic regression, no penalty")
    ax.set(xlim=(-3, 5), ylim=(-3.5, 5), xlabel="x₁", ylabel="x₂",
           title="two Gaussian classes: linear and quadratic boundaries")
    ax.legend(fontsize=7, loc="lower right")
    ax = axes[1]
    z = X @ w + b
    ax.scatter(z, posterior(separate, X)[:, 1], s=10, marker="x", color="C2",
               label="separate Σ: Bayes' rule")
    ax.scatter(z, posterior(shared, X)[:, 1], s=8, marker="o", color="C0",
               label="shared Σ: Bayes' rule")
    zs = np.linspace(z.min(), z.max(), 200)
    ax.plot(zs, sigmoid(zs), "k-", lw=1, label="σ(z)")
    ax.set(xlabel="z", ylabel="P(C₁ | x)",
           title="P(C₁ | x) against z = w·x + b of the shared-Σ model")
    ax.legend(fontsize=8)
    save_figure(fig, out / "generative.svg", zh=ZH)


def plot_curves(cfg: Config, results: dict, bayes: float, out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    titles = ["2-D: Gaussian classes, one shared Σ",
              f"digits: {cfg.num_components} principal components",
              "digits: all 64 pixels"]
    for ax, (names, sizes, acc), title in zip(axes, results.values(), titles):
        for name, a in zip(names, acc):
            ls, marker = STYLES[name]
            ax.errorbar(sizes, a.mean(0), a.std(0) / np.sqrt(len(a)), ls=ls,
                        marker=marker, ms=4, lw=1.4, capsize=2, color="C" + str(
                            list(STYLES).index(name)), label=LABELS[name].format(cfg.C))
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set(title=title, xlabel="training examples per class")
    axes[0].axhline(bayes, color="grey", lw=1, label="Bayes-optimal")
    axes[0].set_ylabel("test accuracy (mean over draws)")
    axes[0].legend(fontsize=7, loc="lower right")
    save_figure(fig, out / "curves.svg", zh=ZH)


# (a, b, size): the page compares mean accuracy(a) - accuracy(b) with its standard error
LEADS = {"d2": [("lda", "lr_ml", "few"), ("lda", "lr_ml", "many"),
                ("lda", "qda", "few")],
         "pca": [("nb", "lr_ml", "few"), ("lr_ml", "nb", "many"),
                 ("lda", "lr_ml", "few"), ("lr_ml", "lda", "many"),
                 ("lr_l2", "nb", "few"), ("lr_l2", "lda", "few")],
         "pix": [("lr_ml", "lda", "few")]}


def main(cfg: Config = Config(),
         out: Path = Path("out/foundations-classification")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    rng = np.random.default_rng(cfg.seed)
    m1, pic1 = regression_pictures(cfg, rng)
    m2, pic2 = generative_pictures(cfg, rng)
    plot_regression(pic1, out)
    plot_generative(pic2, out)
    fits = {"lda": gaussian_classifier(), "qda": gaussian_classifier(shared=False),
            "nb": gaussian_classifier(diagonal=True),
            "lr_ml": logistic_classifier(np.inf),
            "lr_l2": logistic_classifier(cfg.C)}
    phi = lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2)))  # standard normal CDF
    bayes = phi(cfg.delta / 2)  # the best any classifier can do on the 2-D task
    nb_limit = phi(cfg.delta * math.sqrt(1 - cfg.rho**2) / 2)  # naive Bayes, N -> inf
    metrics = {**m1, **m2, "bayes_acc_2d": bayes, "nb_limit_2d": nb_limit,
               "rho": cfg.rho, "delta": cfg.delta,
               "C": cfg.C, "draws_2d": cfg.draws_2d, "draws_digits": cfg.draws_digits,
               "num_components": cfg.num_components, "num_far": cfg.num_far,
               "test_per_class": cfg.test_per_class, "num_test_2d": cfg.num_test_2d}
    results = {}
    for key, task in [("d2", "2d"), ("pca", f"digits{cfg.num_components}"),
                      ("pix", "digits64")]:
        names = [k for k in fits if key == "d2" or k != "qda"]
        sizes, acc, perfect = learning_curves(cfg, task, {k: fits[k] for k in names})
        results[key] = names, sizes, acc
        few, many = (cfg.few_2d, cfg.many_2d) if key == "d2" else (cfg.few_digits,
                                                                   cfg.many_digits)
        metrics |= {f"{key}_few": few, f"{key}_many": many}
        for name, a in zip(names, acc):
            metrics |= {f"{key}_{name}_{n}": v for n, v in zip(sizes, a.mean(0))}
            metrics[f"{key}_{name}_many"] = a.mean(0)[sizes.index(many)]
        separable = perfect[names.index("lr_ml")].mean(0)  # fraction of the draws
        metrics |= {f"{key}_lr_ml_separable_{n}": v for n, v in zip(sizes, separable)}
        for a, b, when in LEADS[key]:
            d = acc[names.index(a)] - acc[names.index(b)]  # (draw, size)
            j = sizes.index(few if when == "few" else many)
            metrics[f"{key}_{a}_lead_over_{b}_{when}"] = d[:, j].mean()
            metrics[f"{key}_{a}_lead_over_{b}_{when}_se"] = d[:, j].std() / math.sqrt(
                len(d))
    d = acc[names.index("lr_ml")] - acc[names.index("nb")]  # digits, 64 pixels
    metrics["pix_lr_ml_min_lead_over_nb"] = d.mean(0).min()
    metrics["pix_lr_ml_lead_over_nb_min_in_se"] = (d.mean(0) / d.std(0) * math.sqrt(
        len(d))).min()
    plot_curves(cfg, results, bayes, out)
    return {k: v if isinstance(v, int) else float(v) for k, v in metrics.items()}


CLAIMS = {
    "least_squares_on_labels_points_along_the_lda_direction": lambda m:
        m["cos_ls_lda"] > 1 - 1e-9,
    "far_correct_points_pull_least_squares": lambda m:
        m["ls_acc_after"] < m["ls_acc_before"] - 0.02,
    "far_correct_points_pull_the_shared_covariance_model_too": lambda m:
        m["lda_acc_after"] < m["lda_acc_before"] - 0.02,
    "logistic_regression_ignores_far_correct_points": lambda m:
        m["lr_acc_after"] >= m["lr_acc_before"] - 0.005,
    "least_squares_on_one_hot_labels_masks_the_middle_class": lambda m:
        m["middle_recall_ls"] < 0.1,
    "softmax_regression_finds_the_middle_class": lambda m: m["middle_recall_lr"] > 0.8,
    "shared_covariance_posterior_is_a_sigmoid_of_a_linear_function": lambda m:
        m["sigmoid_form_max_err"] < 1e-9 and m["logodds_nonlinearity_shared"] < 1e-9,
    "separate_covariances_give_a_nonlinear_log_odds": lambda m:
        m["logodds_nonlinearity_separate"] > 0.1,
    "our_logistic_regression_equals_sklearn": lambda m: m["logistic_vs_sklearn"] < 1e-4,
    "generative_and_logistic_fits_differ": lambda m: m["w_lda_minus_w_lr"] > 0.1,
    # learning curves: averages over the draws, margins of 3 standard errors
    "lda_ahead_of_unpenalised_logistic_with_few_points_2d": lambda m:
        m["d2_lda_lead_over_lr_ml_few"] > 3 * m["d2_lda_lead_over_lr_ml_few_se"],
    "unpenalised_logistic_level_with_lda_with_many_points_2d": lambda m:
        abs(m["d2_lda_lead_over_lr_ml_many"]) < 0.003,
    "lda_and_logistic_reach_the_bayes_accuracy_2d": lambda m:
        m["bayes_acc_2d"] - min(m["d2_lda_many"], m["d2_lr_ml_many"]) < 0.005,
    "qda_behind_lda_with_few_points_2d": lambda m:
        m["d2_lda_lead_over_qda_few"] > 3 * m["d2_lda_lead_over_qda_few_se"],
    "naive_bayes_stays_below_the_bayes_accuracy_2d": lambda m:
        m["bayes_acc_2d"] - m["d2_nb_many"] > 0.02,
    "naive_bayes_reaches_its_own_limit_2d": lambda m:
        abs(m["d2_nb_many"] - m["nb_limit_2d"]) < 0.005,
    "naive_bayes_ahead_of_unpenalised_logistic_with_few_images": lambda m:
        m["pca_nb_lead_over_lr_ml_few"] > 3 * m["pca_nb_lead_over_lr_ml_few_se"],
    "unpenalised_logistic_ahead_of_naive_bayes_with_many_images": lambda m:
        m["pca_lr_ml_lead_over_nb_many"] > 3 * m["pca_lr_ml_lead_over_nb_many_se"],
    "lda_ahead_of_unpenalised_logistic_with_few_images": lambda m:
        m["pca_lda_lead_over_lr_ml_few"] > 3 * m["pca_lda_lead_over_lr_ml_few_se"],
    "unpenalised_logistic_ahead_of_lda_with_many_images": lambda m:
        m["pca_lr_ml_lead_over_lda_many"] > 3 * m["pca_lr_ml_lead_over_lda_many_se"],
    "penalised_logistic_ahead_of_naive_bayes_with_few_images": lambda m:
        m["pca_lr_l2_lead_over_nb_few"] > 3 * m["pca_lr_l2_lead_over_nb_few_se"],
    "penalised_logistic_level_with_lda_with_few_images": lambda m:
        abs(m["pca_lr_l2_lead_over_lda_few"]) < 0.01,
    "unpenalised_logistic_fits_every_training_image_with_few": lambda m:
        m["pca_lr_ml_separable_" + str(int(m["pca_few"]))] == 1,
    "unpenalised_logistic_ahead_of_naive_bayes_at_every_size_on_pixels": lambda m:
        m["pix_lr_ml_lead_over_nb_min_in_se"] > 3,
    "lda_behind_unpenalised_logistic_with_few_images_on_pixels": lambda m:
        m["pix_lr_ml_lead_over_lda_few"] > 3 * m["pix_lr_ml_lead_over_lda_few_se"],
}
