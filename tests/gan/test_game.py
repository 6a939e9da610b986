"""Reference tests for snippets/gan/game.py (page: gan/game.md)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from snippets.gan.game import (Config, d_loss, d_loss_scratch, d_step,
                               fit_gaussian_kl, g_loss, g_loss_nonsaturating,
                               g_loss_saturating, g_step, generator_grads, kl_grid,
                               mlp, optimal_d, train, train_d_alone, two_modes)


def _logits(n=50, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 1, generator=gen, dtype=torch.float64) * 3
    return logits.requires_grad_(True)


def test_scratch_losses_equal_torch_values_and_gradients():
    a, b = _logits(seed=1), _logits(seed=2)
    for ours, ref in ((lambda: d_loss_scratch(a, b), lambda: d_loss(a, b)),
                      (lambda: g_loss_saturating(b),
                       lambda: g_loss(b, saturating=True)),
                      (lambda: g_loss_nonsaturating(b), lambda: g_loss(b))):
        v1, v2 = ours(), ref()
        torch.testing.assert_close(v1, v2)
        g1 = torch.autograd.grad(v1, (a, b), allow_unused=True)
        g2 = torch.autograd.grad(v2, (a, b), allow_unused=True)
        for x, y in zip(g1, g2):
            assert (x is None) == (y is None)
            if x is not None:
                torch.testing.assert_close(x, y)


def test_gradient_signs_push_each_player_the_right_way():
    # descending loss_D raises real logits and lowers fake ones; descending either
    # G loss raises the fakes' logits (both generator losses want D(G(z)) larger)
    a, b = _logits(seed=3), _logits(seed=4)
    grad_real, grad_fake = torch.autograd.grad(d_loss(a, b), (a, b))
    assert (grad_real < 0).all() and (grad_fake > 0).all()
    for saturating in (True, False):
        (grad,) = torch.autograd.grad(g_loss(b, saturating), b)
        assert (grad < 0).all()


def test_the_logit_losses_stay_finite_where_the_formulas_overflow():
    # float32: sigmoid(40) rounds to 1 and sigmoid(-200) to 0, so log hits log 0
    big, small = torch.full((4, 1), 40.0), torch.full((4, 1), -200.0)
    zero = torch.zeros(4, 1)
    assert torch.isinf(d_loss_scratch(zero, big))  # log(1 - D(G(z))) = log 0
    assert torch.isinf(g_loss_saturating(big))
    assert torch.isinf(g_loss_nonsaturating(small))  # -log D(G(z)) = -log 0
    for value in (d_loss(zero, big), g_loss(big, saturating=True), g_loss(small)):
        assert torch.isfinite(value)
    assert d_loss(zero, big).item() == pytest.approx(math.log(2) + 40, rel=1e-5)
    assert g_loss(small).item() == pytest.approx(200, rel=1e-5)


def test_generator_gradients_are_D_and_one_minus_D():
    # d/da log(1 - sigmoid(a)) = -D ;  d/da -log sigmoid(a) = -(1 - D)
    p = torch.tensor([0.001, 0.01, 0.5, 0.9], dtype=torch.float64)
    sat, ns = generator_grads(p)
    torch.testing.assert_close(sat, p)
    torch.testing.assert_close(ns, 1 - p)
    # early in training (D(G(z)) = 0.01) the minimax gradient is 99x smaller
    assert ns[1] / sat[1] == pytest.approx(99)
    sat, ns = generator_grads([0.25, 0.75])  # plain numbers work too (the figure)
    assert sat.dtype == torch.float64 and torch.allclose(ns, 1 - sat)


def test_minimax_is_zero_sum_and_the_nonsaturating_game_is_not():
    # the seed calls the GAN a zero-sum game. With log(1 - D) the fake-dependent part
    # of D's loss is exactly minus G's loss: the sum does not depend on the fakes.
    real = torch.zeros(6, 1)
    totals = {True: [], False: []}
    for shift in (-3.0, 0.0, 2.0):
        fake = torch.linspace(-1, 1, 6)[:, None] + shift
        for saturating in totals:
            totals[saturating].append((d_loss(real, fake)
                                       + g_loss(fake, saturating)).item())
    assert max(totals[True]) - min(totals[True]) < 1e-6  # constant: zero-sum
    assert max(totals[False]) - min(totals[False]) > 1  # the practical loss is not


def test_discriminator_loss_at_equilibrium_depends_on_the_convention():
    zero = torch.zeros(10, 1)  # D = 1/2 everywhere
    assert d_loss(zero, zero).item() == pytest.approx(2 * math.log(2))  # two means
    bce = F.binary_cross_entropy_with_logits
    averaged = (bce(zero, torch.ones_like(zero)) + bce(zero, zero)) / 2
    assert averaged.item() == pytest.approx(math.log(2))  # d2l-style average


def test_optimal_discriminator_formula_by_hand():
    # equal densities -> 1/2; far right of N(0,1) vs N(4, .5^2) -> real data dominates
    x = torch.tensor([2.0])
    assert optimal_d(x, 0.0, 1.0, 0.0, 1.0).item() == pytest.approx(0.5)
    pdata = math.exp(-0.5 * 16) / (0.5 * math.sqrt(2 * math.pi))  # N(4, .25) at 2
    pg = math.exp(-0.5 * 4) / math.sqrt(2 * math.pi)  # N(0, 1) at 2
    expected = pdata / (pdata + pg)
    assert optimal_d(x, 4.0, 0.5, 0.0, 1.0).item() == pytest.approx(expected)


def test_training_D_with_G_fixed_approaches_D_star():
    cfg = Config()  # 1500 steps alone against G(z) = z
    x, learned, target = train_d_alone(cfg)
    assert (learned - target).abs().max() < 0.08


def _players(seed=0):
    torch.manual_seed(seed)
    G, D = mlp(1, 8), mlp(1, 8)
    return G, D, torch.optim.Adam(G.parameters(), lr=1e-2)


def test_d_step_ignores_the_gradient_the_g_step_left_in_D():
    # the G step backpropagates through D and fills D's .grad ("fakes are real")
    G, D, opt_G = _players()
    fresh = copy.deepcopy(D)
    g_step(G, D, opt_G, torch.randn(16, 1))
    assert sum(p.grad.abs().sum() for p in D.parameters()) > 0  # stale gradient
    X, X_fake = 4 + torch.randn(16, 1), G(torch.randn(16, 1)).detach()
    wrong = copy.deepcopy(D)  # the mistake: a D step without zero_grad
    for p, q in zip(wrong.parameters(), D.parameters()):
        p.grad = q.grad.clone()  # deepcopy leaves .grad behind
    opt_wrong = torch.optim.SGD(wrong.parameters(), lr=0.1)
    d_loss(wrong(X), wrong(X_fake)).backward()
    opt_wrong.step()
    with torch.no_grad():
        before = d_loss(D(X), D(X_fake)).item()
    assert d_step(D, torch.optim.SGD(D.parameters(), lr=0.1), X, X_fake) == before
    d_step(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), X, X_fake)
    for ours, clean, bad in zip(D.parameters(), fresh.parameters(),
                                wrong.parameters()):
        torch.testing.assert_close(ours, clean)  # as if the G step never happened
    assert any(not torch.allclose(b, c) for b, c in zip(wrong.parameters(),
                                                        fresh.parameters()))


def test_g_step_moves_G_towards_real_and_leaves_D_alone():
    # the G step labels the fakes 1. The seed's worry: with label 0, G would learn
    # to look *more* fake. Under a fixed D, one step each way shows it.
    for label, direction in ((1.0, 1), (0.0, -1)):
        G, D, opt_G = _players(seed=1)
        D_before = copy.deepcopy(D)
        z = torch.randn(64, 1)
        with torch.no_grad():
            before = torch.sigmoid(D(G(z))).mean()
        if label == 1.0:
            g_step(G, D, opt_G, z)
        else:  # the wrong version, written out
            logit = D(G(z))
            loss = F.binary_cross_entropy_with_logits(logit, torch.zeros_like(logit))
            opt_G.zero_grad(), loss.backward(), opt_G.step()
        with torch.no_grad():
            after = torch.sigmoid(D(G(z))).mean()
        assert direction * (after - before) > 0
        for p, q in zip(D.parameters(), D_before.parameters()):
            assert torch.equal(p, q)  # only opt_G stepped


def test_g_step_takes_a_plain_step_on_the_nonsaturating_loss_by_default():
    G, D, _ = _players(seed=3)
    ref = copy.deepcopy(G)
    z = torch.randn(32, 1)
    g_step(G, D, torch.optim.SGD(G.parameters(), lr=0.5), z)
    grads = torch.autograd.grad(g_loss_nonsaturating(D(ref(z))), list(ref.parameters()))
    for p, q, g in zip(G.parameters(), ref.parameters(), grads):
        torch.testing.assert_close(p, q - 0.5 * g)


def test_alternating_loop_moves_G_towards_the_data():
    cfg = Config(num_steps=300)  # with the default head start of D
    run = train(cfg)
    assert run["w1"][0, 1] > 3 and run["w1"][-1, 1] < 1.0
    assert run["d_fake_first"].mean() < 0.1  # after D's head start the fakes score low
    first_sat, first_ns = run["log"][0, 3], run["log"][0, 4]
    assert first_ns > 10 * first_sat  # the non-saturating loss's signal is larger
    # the seed's "D ends up a sharp-eyed judge": at the end it scores fakes about 1/2
    assert abs(run["log"][-50:, 2].mean() - 0.5) < 0.1


def test_kl_on_a_grid_matches_the_closed_form_for_two_gaussians():
    x = torch.linspace(-20, 20, 8001, dtype=torch.float64)
    N = torch.distributions.Normal
    log_a, log_b = N(0.0, 1.0).log_prob(x), N(1.0, 2.0).log_prob(x)
    # KL(N(0,1) || N(1,4)) = log 2 + (1 + 1) / 8 - 1/2
    expected = math.log(2) + 2 / 8 - 0.5
    dx = x[1] - x[0]
    assert kl_grid(log_a, log_b, dx).item() == pytest.approx(expected, rel=1e-6)
    assert kl_grid(log_a, log_a, x[1] - x[0]).item() == pytest.approx(0, abs=1e-12)
    # the two modes are a proper density: it integrates to 1
    x = torch.linspace(-8, 8, 1601)
    mass = two_modes(x).exp().sum().item() * (x[1] - x[0]).item()
    assert mass == pytest.approx(1, rel=1e-4)


def test_forward_kl_matches_moments_and_reverse_kl_picks_a_mode():
    # min KL(p||q) over Gaussians q matches p's mean and variance: 0 and 2^2 + 0.5^2
    mu, s = fit_gaussian_kl(reverse=False, steps=1500)
    assert mu == pytest.approx(0, abs=1e-4)
    assert s == pytest.approx(4.25 ** 0.5, abs=1e-4)
    # min KL(q||p) sits on one mode (the one nearer its start) with that mode's width
    mu, s = fit_gaussian_kl(reverse=True, steps=1500)
    assert mu == pytest.approx(2, abs=2e-3) and s == pytest.approx(0.5, abs=2e-3)


def test_bilinear_game_spirals_out_or_circles_but_never_converges():
    from snippets.gan.game import bilinear_game
    lr, n = 0.1, 200
    sim = bilinear_game(n, lr, alternating=False)
    # simultaneous steps multiply the radius by sqrt(1 + lr^2) each time
    radius = (sim ** 2).sum(axis=1) ** 0.5
    assert radius[-1] == pytest.approx(radius[0] * (1 + lr ** 2) ** (n / 2), rel=1e-9)
    # alternating steps keep x^2 + y^2 - lr*x*y fixed: a closed orbit around (0, 0)
    alt = bilinear_game(n, lr, alternating=True)
    energy = alt[:, 0] ** 2 + alt[:, 1] ** 2 - lr * alt[:, 0] * alt[:, 1]
    assert abs(energy - energy[0]).max() < 1e-9
    assert ((alt ** 2).sum(axis=1) ** 0.5).min() > 0.9  # never near the equilibrium
    assert (alt[:, 0] < 0).any() and (alt[:, 1] < 0).any()  # it does go round
