"""Bias-variance decomposition and ridge with an unpenalized bias."""

import numpy as np
import pytest
from sklearn.linear_model import Lasso, Ridge

from snippets.foundations.bias_variance import (Config, decompose, features, fit_lasso,
                                                fit_ridge, predict_all, sample_sets,
                                                soft_threshold, true_f)


def test_decomposition_identity_is_exact():
    rng = np.random.default_rng(0)
    f_test = rng.standard_normal(30)
    y_hat = f_test + 0.5 + rng.standard_normal((200, 30))  # biased and noisy models
    r = decompose(y_hat, f_test, noise=0.0)
    direct = ((y_hat - f_test) ** 2).mean()  # mean squared error against the truth
    assert r["bias2"] + r["variance"] == pytest.approx(direct, rel=1e-12)
    assert r["bias2"] == pytest.approx(((y_hat.mean(0) - f_test) ** 2).mean())


def test_ridge_matches_sklearn_which_does_not_penalize_the_intercept():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 40)
    y = np.sin(3 * x) + 5 + 0.1 * rng.standard_normal(40)
    w = fit_ridge(x, y, degree=4, lam=0.7)
    ref = Ridge(alpha=0.7).fit(features(x, 4)[:, 1:], y)
    np.testing.assert_allclose(w[1:], ref.coef_, atol=1e-8)
    assert w[0] == pytest.approx(ref.intercept_, abs=1e-8)


def test_shifting_labels_only_shifts_the_bias():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-1, 1, 30), rng.standard_normal(30)
    w, w_shift = fit_ridge(x, y, 5, lam=10.0), fit_ridge(x, y + 100, 5, lam=10.0)
    np.testing.assert_allclose(w_shift[1:], w[1:], atol=1e-8)
    assert w_shift[0] - w[0] == pytest.approx(100)


def test_penalizing_the_bias_would_pull_it_towards_zero():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 30)
    y = 50 + rng.standard_normal(30)
    Phi = features(x, 2)
    w_all = np.linalg.solve(Phi.T @ Phi + 100 * np.eye(3), Phi.T @ y)  # bias penalized
    assert fit_ridge(x, y, 2, lam=100)[0] == pytest.approx(50, abs=1)
    assert w_all[0] < 40  # a penalized bias cannot even fit the mean


def test_unregularized_ridge_is_least_squares():
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-1, 1, 25), rng.standard_normal(25)
    np.testing.assert_allclose(fit_ridge(x, y, 4), np.polyfit(x, y, 4)[::-1], atol=1e-8)


def test_lasso_matches_sklearn_which_does_not_penalize_the_intercept():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, 40)
    y = 2 * x - x**3 + 7 + 0.1 * rng.standard_normal(40)
    lam = 0.8  # ours: ||r||^2 + lam |w|_1; sklearn: ||r||^2 / (2n) + alpha |w|_1
    w = fit_lasso(x, y, degree=3, lam=lam, num_sweeps=5000)
    ref = Lasso(alpha=lam / (2 * 40), tol=1e-12, max_iter=100000).fit(
        features(x, 3)[:, 1:], y)
    np.testing.assert_allclose(w[1:], ref.coef_, atol=1e-6)
    assert w[0] == pytest.approx(ref.intercept_, abs=1e-6)
    assert (w[1:] == 0).sum() == (ref.coef_ == 0).sum() >= 1  # an exact zero


def test_lasso_solves_many_training_sets_at_once():
    rng = np.random.default_rng(6)
    X, Y = rng.uniform(-1, 1, (3, 20)), rng.standard_normal((3, 20))
    together = fit_lasso(X, Y, 4, 0.3, num_sweeps=200)
    for s in range(3):
        np.testing.assert_allclose(together[s], fit_lasso(X[s], Y[s], 4, 0.3, 200))


def test_soft_threshold_makes_exact_zeros_ridge_only_shrinks():
    a = np.array([-3.0, -0.5, 0.0, 0.2, 2.0])
    np.testing.assert_array_equal(soft_threshold(a, 1.0), [-2.0, 0, 0, 0, 1.0])
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-1, 1, 30), rng.standard_normal(30)
    assert np.all(fit_ridge(x, y, 8, lam=10.0)[1:] != 0)  # L2 never gives exact zeros
    assert np.sum(fit_lasso(x, y, 8, lam=10.0)[1:] == 0) >= 4


def test_a_large_lambda_leaves_the_label_mean():
    rng = np.random.default_rng(8)
    x, y = rng.uniform(-1, 1, 30), 3 + rng.standard_normal(30)
    for w in (fit_ridge(x, y, 5, lam=1e9), fit_lasso(x, y, 5, lam=1e6, num_sweeps=5)):
        np.testing.assert_allclose(w[1:], 0, atol=1e-6)
        assert w[0] == pytest.approx(y.mean(), rel=1e-6)


def test_the_notes_norm_is_the_squared_norm():
    """The notes write ||theta||_2 = w1^2 + ... + wn^2: that is ||theta||_2 squared,
    and the two penalties pull differently (2 lam w vs lam w / ||w||)."""
    w = np.array([3.0, 4.0])
    assert np.linalg.norm(w) == 5.0 and (w**2).sum() == 25.0
    grad_squared, grad_norm = 2 * w, w / np.linalg.norm(w)
    assert not np.allclose(grad_squared, grad_norm)


def test_more_data_shrinks_variance_not_the_bias_of_a_line():
    """The notes: with enough training data the models' mean gets close to the truth, so
    the bias is small. For a fixed model family, more data cuts the variance; the bias
    (the family's best fit vs the truth) stays."""
    x_test = np.linspace(-1, 1, 100)
    rng = np.random.default_rng(9)
    out = {}
    for n in (12, 60):
        X, y = sample_sets(Config(num_datasets=200), rng, n)
        out[n] = decompose(predict_all(X, y, x_test, 1), true_f(x_test), 0.3)
    assert out[60]["bias2"] == pytest.approx(out[12]["bias2"], rel=0.15)  # not smaller
    assert out[60]["bias2"] > 0.15  # a line cannot follow a sine
    assert out[60]["variance"] < 0.4 * out[12]["variance"]


def test_expected_mse_adds_the_noise_variance():
    rng = np.random.default_rng(10)
    f_test = rng.standard_normal(20)
    y_hat = f_test + 0.2 + rng.standard_normal((50, 20))
    r = decompose(y_hat, f_test, noise=0.5)
    assert r["expected_mse"] == pytest.approx(r["bias2"] + r["variance"] + 0.25)
    assert r["variance"] == pytest.approx(y_hat.var(0).mean())


def test_one_lasso_sweep_is_exact_coordinate_minimization_from_zero():
    rng = np.random.default_rng(11)
    x, y = rng.uniform(-1, 1, 25), rng.standard_normal(25) + 2
    lam = 3.0
    w = fit_lasso(x, y, degree=1, lam=lam, num_sweeps=1)
    w0 = y.mean()  # the free bias first: column of ones, starting from w = 0
    rho = (x * (y - w0)).sum()
    w1 = np.sign(rho) * max(abs(rho) - lam / 2, 0) / (x**2).sum()
    np.testing.assert_allclose(w, [w0, w1])
