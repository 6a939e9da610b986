"""Bias-variance decomposition and ridge with an unpenalized bias."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from snippets.foundations.bias_variance import decompose, features, fit_ridge


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
