"""Scratch optimizers track torch.optim step for step; feature scaling is (x - mu)/sigma."""

import numpy as np
import pytest
import torch

from snippets.foundations.optimizers import (SCRATCH, TORCH, Adagrad, Adam, RMSProp, SGD,
                                             gd_linear_regression, run_steps, standardize)


def problem():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(64, generator=gen, dtype=torch.float64)
    W = torch.randn(5, 8, generator=gen, dtype=torch.float64)
    v = torch.randn(8, generator=gen, dtype=torch.float64)
    loss_fn = lambda W, v: ((torch.tanh(X @ W) @ v - y) ** 2).mean()  # noqa: E731
    return (W, v), loss_fn


CASES = {
    "SGD+momentum": (lambda ps: SGD(ps, 0.05, momentum=0.9),
                     lambda ps: torch.optim.SGD(ps, 0.05, momentum=0.9)),
    "Adagrad": (lambda ps: Adagrad(ps, 0.1), lambda ps: torch.optim.Adagrad(ps, 0.1)),
    "RMSProp": (lambda ps: RMSProp(ps, 0.01), lambda ps: torch.optim.RMSprop(ps, 0.01)),
    "Adam": (lambda ps: Adam(ps, 0.01, betas=(0.8, 0.99)),
             lambda ps: torch.optim.Adam(ps, 0.01, betas=(0.8, 0.99))),
}


@pytest.mark.parametrize("name", CASES)
def test_scratch_optimizer_tracks_torch_step_for_step(name):
    (W, v), loss_fn = problem()
    ours, ref = CASES[name]
    runs = [run_steps(make, [W.clone().requires_grad_(True), v.clone().requires_grad_(True)],
                      loss_fn, 100) for make in (ours, ref)]
    assert (runs[0] - runs[1]).abs().max() < 1e-6
    assert (runs[0][-1] - runs[0][0]).abs().max() > 1e-2  # the parameters did move


def test_default_hyperparameters_match_torch_too():
    (W, v), loss_fn = problem()
    for name in SCRATCH:
        runs = [run_steps(lambda ps: table[name](ps, 0.01),
                          [W.clone().requires_grad_(True), v.clone().requires_grad_(True)],
                          loss_fn, 20) for table in (SCRATCH, TORCH)]
        assert (runs[0] - runs[1]).abs().max() < 1e-6, name


def test_standardize_gives_mean_zero_std_one():
    rng = np.random.default_rng(0)
    X = np.c_[rng.uniform(1, 3, 500), rng.uniform(100, 300, 500)]
    Z = standardize(X)
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(0), 1, atol=1e-12)


def test_the_notes_plus_sign_does_not_center():
    """The class notes wrote (x + mu) / sigma: the mean becomes 2 mu / sigma, not 0."""
    X = np.array([[100.0], [200.0], [300.0]])
    mu, sigma = X.mean(0), X.std(0)
    wrong = (X + mu) / sigma
    assert wrong.mean() == pytest.approx(2 * mu[0] / sigma[0])
    assert abs(wrong.mean()) > 1
    assert standardize(X).mean() == pytest.approx(0)


def test_scaling_makes_gd_converge_in_far_fewer_steps():
    rng = np.random.default_rng(0)
    X = np.c_[rng.uniform(1, 3, 300), rng.uniform(100, 300, 300)]
    y = 3 * X[:, 0] + 0.02 * X[:, 1] + 0.1 * rng.standard_normal(300)
    steps_raw, *_, cond_raw, _ = gd_linear_regression(X, y, 3000, 1e-3)
    steps_scaled, *_, cond_scaled, gap = gd_linear_regression(standardize(X), y, 3000, 1e-3)
    assert steps_scaled < 20 and gap < 1e-3
    assert steps_raw == 3000  # hit the cap
    assert cond_raw > 1e4 * cond_scaled
