"""Classification as a probabilistic model: from scratch against scikit-learn and the
formulas of the page."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB

from snippets.foundations.classification import (
    Config,
    fit_gaussians,
    fit_logistic,
    gaussian_classifier,
    gaussian_task,
    indicator_regression,
    least_squares_on_labels,
    linear_discriminants,
    log_joint,
    posterior,
    sigmoid,
    sigmoid_form,
)


def blobs(seed=0, sizes=(30, 50, 40), d=3):
    """Unequal classes with different means and covariances: nothing symmetric."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
                        + 2 * rng.standard_normal(d) for n in sizes])
    return X, np.repeat(np.arange(len(sizes)), sizes)


def test_gaussian_fit_matches_sklearn_lda():
    X, y = blobs()
    priors, means, covs = fit_gaussians(X, y)
    lda = LinearDiscriminantAnalysis(solver="lsqr", store_covariance=True).fit(X, y)
    np.testing.assert_allclose(priors, lda.priors_)
    np.testing.assert_allclose(means, lda.means_)
    for S in covs:  # the within-class covariance weighted by N_k / N, divided by N_k
        np.testing.assert_allclose(S, lda.covariance_, atol=1e-12)
    W, b = linear_discriminants((priors, means, covs))
    np.testing.assert_allclose(W, lda.coef_, atol=1e-10)
    np.testing.assert_allclose(b, lda.intercept_, atol=1e-10)
    P = posterior((priors, means, covs), X)
    np.testing.assert_allclose(P, lda.predict_proba(X), atol=1e-10)
    assert np.array_equal(gaussian_classifier()(X, y)(X), lda.predict(X))


def test_shared_covariance_is_weighted_by_class_size_not_a_plain_average():
    X, y = blobs()
    covs = fit_gaussians(X, y, shared=False)[2]
    n = np.bincount(y)
    shared = fit_gaussians(X, y)[2][0]
    np.testing.assert_allclose(shared, np.tensordot(n / n.sum(), covs, 1))
    assert np.abs(shared - covs.mean(0)).max() > 1e-3  # the plain average differs


def test_log_joint_is_log_prior_plus_gaussian_log_density():
    X, y = blobs(1)
    params = fit_gaussians(X, y, shared=False)
    ref = np.stack([np.log(p) + multivariate_normal(mu, S).logpdf(X)
                    for p, mu, S in zip(*params)], 1)
    np.testing.assert_allclose(log_joint(params, X), ref, atol=1e-10)


def test_separate_diagonal_covariances_are_sklearns_gaussian_naive_bayes():
    X, y = blobs(2)
    params = fit_gaussians(X, y, shared=False, diagonal=True)
    nb = GaussianNB(var_smoothing=0.0).fit(X, y)
    np.testing.assert_allclose(posterior(params, X), nb.predict_proba(X), atol=1e-9)


def test_two_class_posterior_is_the_sigmoid_of_a_linear_function():
    X, y = blobs(3, sizes=(40, 70))
    params = fit_gaussians(X, y)
    w, b = sigmoid_form(params)
    np.testing.assert_allclose(posterior(params, X)[:, 1], sigmoid(X @ w + b),
                               atol=1e-12)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)  # one row for two classes
    np.testing.assert_allclose(w, lda.coef_[0], atol=1e-10)
    np.testing.assert_allclose(b, lda.intercept_[0], atol=1e-10)
    # with separate covariances the log-odds is quadratic: no sigmoid of w.x + b fits it
    sep = fit_gaussians(X, y, shared=False)
    logodds = log_joint(sep, X) @ [-1.0, 1.0]
    A = np.c_[X, np.ones(len(X))]
    resid = logodds - A @ np.linalg.lstsq(A, logodds, rcond=None)[0]
    assert np.abs(resid).max() > 0.5


def test_sigmoid_is_stable_and_symmetric():
    z = np.array([-1000.0, -30.0, 0.0, 2.0, 1000.0])
    s = sigmoid(z)
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    np.testing.assert_allclose(s + sigmoid(-z), 1.0)
    np.testing.assert_allclose(s[3], 1 / (1 + np.exp(-2.0)))


@pytest.mark.parametrize("C", [np.inf, 0.1])
def test_logistic_regression_from_scratch_matches_sklearn(C):
    X, y = blobs(4, sizes=(60, 50), d=2)
    X[:10] += 3.0 * np.sign(X[:10] - X.mean(0))  # overlapping classes: a finite maximum
    y = y.copy()
    y[:5] = 1
    w, b = fit_logistic(X, y, C=C, lr=0.2, num_steps=40_000)
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-5)
    assert b == pytest.approx(ref.intercept_[0], abs=1e-5)


def test_logistic_gradient_is_zero_at_the_optimum_and_matches_finite_differences():
    X, y = blobs(5, sizes=(30, 30), d=2)
    y = y.copy()
    y[::7] = 1 - y[::7]  # label noise: not separable

    def nll(w, b):
        z = X @ w + b
        return np.sum(np.logaddexp(0, z) - y * z)  # -sum y ln f + (1-y) ln(1-f)

    w0, b0 = np.array([0.3, -0.2]), 0.1
    err = y - sigmoid(X @ w0 + b0)
    eps = 1e-6
    fd = [(nll(w0 + eps * e, b0) - nll(w0 - eps * e, b0)) / (2 * eps)
          for e in np.eye(2)]
    np.testing.assert_allclose(-err @ X, fd, rtol=1e-6)  # the page's gradient
    w, b = fit_logistic(X, y, lr=0.5, num_steps=20_000)
    assert np.abs((y - sigmoid(X @ w + b)) @ X).max() < 1e-6


def test_least_squares_on_labels_matches_linear_regression_and_lda_direction():
    X, y = blobs(6, sizes=(30, 90), d=3)
    w, b = least_squares_on_labels(X, y)
    ref = LinearRegression().fit(X, 2.0 * y - 1)
    np.testing.assert_allclose(w, ref.coef_, atol=1e-10)
    assert b == pytest.approx(ref.intercept_, abs=1e-10)
    w_lda = sigmoid_form(fit_gaussians(X, y))[0]
    cos = w @ w_lda / np.linalg.norm(w) / np.linalg.norm(w_lda)
    assert cos == pytest.approx(1.0, abs=1e-10)  # same direction, another threshold


def test_regression_on_labels_is_pulled_by_correct_points_and_logistic_is_not():
    """The seed's point, run the wrong way: least squares treats far, correctly
    classified points as errors (their fit is 'too correct') and moves its boundary."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 2)) + np.repeat([[-1.5, -1.5], [1.5, 1.5]], 100, 0)
    y = np.repeat([0, 1], 100)
    far = rng.standard_normal((40, 2)) * 0.7 + [3.0, 10.0]
    X2, y2 = np.r_[X, far], np.r_[y, np.ones(40, int)]
    w, b = least_squares_on_labels(X, y)  # fitted without the far points
    assert np.all(far @ w + b > 2)  # correct, far beyond the target +1: "too correct"
    acc = {}
    for name, fit in {"ls": least_squares_on_labels,
                      "lr": lambda X, y: fit_logistic(X, y, lr=0.05)}.items():
        for when, (Xf, yf) in {"before": (X, y), "after": (X2, y2)}.items():
            w, b = fit(Xf, yf)
            acc[name, when] = np.mean((X @ w + b > 0) == y)
    assert acc["ls", "after"] < acc["ls", "before"] - 0.02
    assert acc["lr", "after"] >= acc["lr", "before"] - 0.005


def test_counting_errors_gives_no_gradient():
    """The seed's loss 'number of training errors' is flat almost everywhere: a small
    step of w changes it by nothing, so gradient descent cannot start from it."""
    X, y = blobs(8, sizes=(50, 50), d=2)
    w, b = np.array([0.4, -0.7]), 0.2
    errors = lambda w: np.sum((X @ w + b > 0) != y)
    nll = lambda w: np.sum(np.logaddexp(0, X @ w + b) - y * (X @ w + b))
    for e in np.eye(2) * 1e-6:
        assert errors(w + e) == errors(w)
        assert nll(w + e) != nll(w)


def test_indicator_regression_masks_the_middle_class():
    rng = np.random.default_rng(9)
    x = (rng.standard_normal(300) + np.repeat([-4.0, 0.0, 4.0], 100))[:, None]
    y = np.repeat([0, 1, 2], 100)
    fitted = indicator_regression(x, y, 3)
    F = fitted(x)
    np.testing.assert_allclose(F.sum(1), 1.0, atol=1e-10)  # fitted rows sum to 1
    assert np.mean(F[y == 1].argmax(1) == 1) < 0.1  # the middle class almost never wins
    softmax = LogisticRegression(max_iter=1000).fit(x, y)
    assert np.mean(softmax.predict(x[y == 1]) == 1) > 0.8


def test_gaussian_task_has_the_stated_mahalanobis_distance():
    cfg = Config()
    X, y = gaussian_task(cfg, np.random.default_rng(0), 20_000)
    S = np.array([[1.0, cfg.rho], [cfg.rho, 1.0]])
    d = X[y == 1].mean(0) - X[y == 0].mean(0)
    assert np.sqrt(d @ np.linalg.solve(S, d)) == pytest.approx(cfg.delta, rel=0.02)
    np.testing.assert_allclose(np.cov(X[y == 0].T), S, atol=0.03)

