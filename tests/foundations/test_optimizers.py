"""Scratch optimizers track torch.optim step for step; feature scaling is (x - mu)/sigma
with the training set's mu and sigma; minima are rare among random critical points."""

import numpy as np
import pytest
import torch

from snippets.foundations.optimizers import (SCRATCH, SGD, TORCH, Adagrad, Adam,
                                             RMSProp, fit_standardizer,
                                             gd_linear_regression, minima_fraction,
                                             permute_hidden, profile_loss, run_steps,
                                             sgd_run, standardize)


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


def leaves(W, v):
    return [W.clone().requires_grad_(True), v.clone().requires_grad_(True)]


@pytest.mark.parametrize("name", CASES)
def test_scratch_optimizer_tracks_torch_step_for_step(name):
    (W, v), loss_fn = problem()
    ours, ref = CASES[name]
    runs = [run_steps(make, leaves(W, v), loss_fn, 100) for make in (ours, ref)]
    # float64 rounding only: a different eps (1e-8 vs 1e-10) already moves ~1e-7
    assert (runs[0] - runs[1]).abs().max() < 1e-12
    assert (runs[0][-1] - runs[0][0]).abs().max() > 1e-2  # the parameters did move


def test_default_hyperparameters_match_torch_too():
    (W, v), loss_fn = problem()
    for name in SCRATCH:
        runs = [run_steps(lambda ps: table[name](ps, 0.01), leaves(W, v), loss_fn, 100)
                for table in (SCRATCH, TORCH)]
        assert (runs[0] - runs[1]).abs().max() < 1e-12, name


def test_adam_first_step_moves_every_parameter_by_about_lr():
    w = torch.tensor([1e-3, 5.0, -200.0], dtype=torch.float64, requires_grad=True)
    (w * torch.tensor([1e-4, 1.0, 1e4], dtype=torch.float64)).sum().backward()
    before = w.detach().clone()
    Adam([w], lr=0.1).step()
    np.testing.assert_allclose((before - w.detach()).numpy(), 0.1, rtol=1e-4)


def test_momentum_conventions_differ_only_by_a_rescaled_learning_rate():
    """Ng's v = b v + (1 - b) g with lr / (1 - b) is PyTorch's v = b v + g with lr."""
    (W, v), loss_fn = problem()
    lr, beta = 0.05, 0.9
    params = leaves(W, v)
    ema = [torch.zeros_like(p) for p in params]
    ours = []
    for _ in range(50):
        for p in params:
            p.grad = None
        loss_fn(*params).backward()
        with torch.no_grad():
            for p, m in zip(params, ema):
                m.mul_(beta).add_((1 - beta) * p.grad)
                p -= lr / (1 - beta) * m
        ours.append(torch.cat([p.detach().flatten().clone() for p in params]))
    ref = run_steps(lambda ps: SGD(ps, lr, momentum=beta), leaves(W, v), loss_fn, 50)
    assert (torch.stack(ours) - ref).abs().max() < 1e-10


def scaling_problem(rng, n=300):
    X = np.c_[rng.uniform(1, 3, n), rng.uniform(100, 300, n)]
    y = 3 * X[:, 0] + 0.02 * X[:, 1] + 0.1 * rng.standard_normal(n)
    return X, y


def test_standardize_gives_mean_zero_std_one():
    X, _ = scaling_problem(np.random.default_rng(0), 500)
    Z = standardize(X, *fit_standardizer(X))
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(0), 1, atol=1e-12)


def test_test_data_are_scaled_with_the_training_mu_and_sigma():
    rng = np.random.default_rng(1)
    X_train = rng.normal(200, 50, (400, 1))
    X_test = rng.normal(260, 50, (400, 1))  # the test distribution has shifted
    mu, sigma = fit_standardizer(X_train)
    Z_test = standardize(X_test, mu, sigma)
    assert Z_test.mean() == pytest.approx((X_test.mean() - mu[0]) / sigma[0])
    assert Z_test.mean() > 0.8  # the shift stays visible, as the model will meet it
    leaked = standardize(X_test, *fit_standardizer(X_test))  # test statistics: a leak
    assert abs(leaked.mean()) < 1e-12  # ...which silently hides the shift
    assert fit_standardizer(X_train)[0] == pytest.approx(X_train.mean(0))


def test_the_notes_plus_sign_does_not_center_and_leaves_gd_ill_conditioned():
    """The class notes wrote (x + mu) / sigma: the mean becomes 2 mu / sigma, not 0."""
    rng = np.random.default_rng(0)
    X, y = scaling_problem(rng)
    mu, sigma = fit_standardizer(X)
    right = standardize(X, mu, sigma)
    wrong = standardize(X, -mu, sigma)  # = (x + mu) / sigma
    np.testing.assert_allclose(wrong.mean(0), 2 * mu / sigma)
    assert np.abs(wrong.mean(0)).min() > 3 and np.abs(right.mean(0)).max() < 1e-12
    steps_right, *_, cond_right, _ = gd_linear_regression(right, y, 2000, 1e-3)
    steps_wrong, *_, cond_wrong, _ = gd_linear_regression(wrong, y, 2000, 1e-3)
    assert cond_wrong > 100 * cond_right  # still a long valley along the bias column
    assert steps_wrong > 20 * steps_right


def test_scaling_makes_gd_converge_in_far_fewer_steps():
    X, y = scaling_problem(np.random.default_rng(0))
    steps_raw, *_, cond_raw, _ = gd_linear_regression(X, y, 3000, 1e-3)
    Z = standardize(X, *fit_standardizer(X))
    steps_scaled, *_, cond_scaled, gap = gd_linear_regression(Z, y, 3000, 1e-3)
    assert steps_scaled < 20 and gap < 1e-3
    assert steps_raw == 3000  # hit the cap
    assert cond_raw > 1e4 * cond_scaled


def test_gd_step_is_half_the_stability_limit():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 3))
    y = X @ np.array([1.0, 2.0, 3.0])
    steps, path, w_star, cond, gap = gd_linear_regression(X, y, 5000, 1e-10)
    A = np.c_[np.ones(50), X]
    lam = np.linalg.eigvalsh(2 * A.T @ A / 50)
    # with lr = 1/lam_max the error shrinks at least by (1 - lam_min/lam_max) per step
    err = np.linalg.norm(path - w_star, axis=1)
    assert np.all(err[1:] <= err[:-1] * (1 - lam.min() / lam.max()) + 1e-12)
    assert gap < 1e-10 and cond == pytest.approx(lam.max() / lam.min())


def test_profile_loss_is_the_loss_at_the_best_bias():
    rng = np.random.default_rng(3)
    X, y = scaling_problem(rng, 50)
    A = np.c_[np.ones(50), X]
    for g1, g2 in [(1.0, 0.01), (3.0, 0.03)]:
        r = y - g1 * X[:, 0] - g2 * X[:, 1]
        bs = np.linspace(r.mean() - 1, r.mean() + 1, 2001)
        brute = min(((r - b) ** 2).mean() for b in bs)
        assert profile_loss(A, y, np.array(g1), np.array(g2)) == pytest.approx(brute)


def test_sgd_run_full_batch_descends_and_decay_only_changes_the_rate():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([1.0, -1.0, 2.0]) + 0.1 * rng.standard_normal(64)
    L = np.linalg.eigvalsh(2 * X.T @ X / 64).max()
    full = sgd_run(X, y, 64, 1 / L, 20, np.random.default_rng(0))
    best = ((X @ np.linalg.lstsq(X, y, rcond=None)[0] - y) ** 2).mean()
    assert len(full) == 21 and full[0] == pytest.approx((y**2).mean() - best)
    assert np.all(np.diff(full) <= 1e-15) and full[-1] < 1e-3 * full[0]
    slow = sgd_run(X, y, 64, 1 / L, 20, np.random.default_rng(0), decay_steps=1)
    assert slow[1] == pytest.approx(full[1])  # step 0 uses the full rate
    assert slow[-1] > full[-1]  # then the rate shrinks like 1/t


def test_minima_are_rare_among_random_critical_points():
    rng = np.random.default_rng(5)
    assert minima_fraction(1, 20000, rng) == pytest.approx(0.5, abs=0.02)
    fractions = [minima_fraction(d, 20000, rng) for d in (2, 3, 4)]
    assert fractions[0] > fractions[1] > fractions[2]
    assert fractions[1] < 2.0**-3  # rarer than independent coin flips per direction
    H = np.eye(3)  # a known minimum: positive definite
    assert np.linalg.eigvalsh(H).min() > 0


def test_permuting_hidden_units_gives_another_minimum_with_the_same_loss():
    """The notes: 'most models have a unique minimum'. A net with h hidden units has
    at least h! points with exactly the same loss, one per ordering of the units."""
    torch.manual_seed(0)
    X = torch.randn(30, 4, dtype=torch.float64)
    W1, b1 = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    W2 = torch.randn(2, 5, dtype=torch.float64)
    perm = torch.tensor([3, 0, 4, 1, 2])
    P1, c1, P2 = permute_hidden(W1, b1, W2, perm)
    out = torch.tanh(X @ W1.T + b1) @ W2.T
    out_perm = torch.tanh(X @ P1.T + c1) @ P2.T
    assert torch.allclose(out, out_perm, atol=1e-12)
    assert not torch.allclose(W1, P1)  # a different parameter vector


def test_gd_starts_at_zero_and_stops_at_the_first_step_within_tol():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((40, 2))
    y = X @ np.array([2.0, -1.0]) + 0.5 + 0.1 * rng.standard_normal(40)
    tol = 1e-4
    steps, path, w_star, cond, gap = gd_linear_regression(X, y, 1000, tol)
    A = np.c_[np.ones(40), X]
    lr = 1 / np.linalg.eigvalsh(2 * A.T @ A / 40).max()
    np.testing.assert_allclose(path[0], lr * 2 * A.T @ y / 40)  # one step from w = 0
    assert steps == len(path)

    def mse_gap(w):
        return ((A @ w - y) ** 2).mean() - ((A @ w_star - y) ** 2).mean()

    assert mse_gap(path[-1]) < tol <= mse_gap(path[-2])
    assert gap == pytest.approx(mse_gap(path[-1]))


def test_sgd_run_uses_the_decaying_rate_at_every_step():
    """On y = mean + noise with a constant feature, each full-batch step multiplies
    (w - mean)^2, the excess MSE, by (1 - 2 eta_t)^2: the rates can be read back."""
    rng = np.random.default_rng(8)
    X, y = np.ones((50, 1)), 3 + rng.standard_normal(50)
    lr, decay = 0.2, 3
    excess = sgd_run(X, y, 50, lr, 6, np.random.default_rng(0), decay_steps=decay)
    assert excess[0] == pytest.approx(y.mean() ** 2)  # w = 0 at the start
    etas = (1 - np.sqrt(excess[1:] / excess[:-1])) / 2
    np.testing.assert_allclose(etas, [lr / (1 + t / decay) for t in range(6)])
