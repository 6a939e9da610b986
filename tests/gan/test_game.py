"""Reference tests for snippets/gan/game.py (page: gan/game.md)."""

import math

import pytest
import torch

from snippets.gan.game import (Config, d_loss, d_loss_scratch, g_loss,
                               g_loss_nonsaturating, g_loss_saturating, generator_grads,
                               optimal_d, train, train_d_alone)


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


def test_generator_gradients_are_D_and_one_minus_D():
    # d/da log(1 - sigmoid(a)) = -D ;  d/da -log sigmoid(a) = -(1 - D)
    p = torch.tensor([0.001, 0.01, 0.5, 0.9], dtype=torch.float64)
    sat, ns = generator_grads(p)
    torch.testing.assert_close(sat, p)
    torch.testing.assert_close(ns, 1 - p)
    # early in training (D(G(z)) = 0.01) the minimax gradient is 99x smaller
    assert ns[1] / sat[1] == pytest.approx(99)


def test_discriminator_loss_at_equilibrium_is_2_log_2():
    zero = torch.zeros(10, 1)  # D = 1/2 everywhere
    assert d_loss(zero, zero).item() == pytest.approx(2 * math.log(2))


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


def test_alternating_loop_moves_G_towards_the_data():
    cfg = Config(num_steps=300)  # with the default head start of D
    _, _, hist, _, first = train(cfg)
    assert hist[0, 1] > 3 and hist[-1, 1] < 1.0 and first["grad"] > 0
    assert first["d_fake"].mean() < 0.1  # after D's head start the fakes score low


def test_g_step_fills_D_grads_that_must_be_zeroed():
    # the G step backpropagates through D: D's .grad fills up ("fakes are real")
    from snippets.gan.game import mlp
    torch.manual_seed(0)
    G, D = mlp(1, 8), mlp(1, 8)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-2)
    D_before = [p.clone() for p in D.parameters()]
    loss_G = g_loss(D(G(torch.randn(16, 1))))
    opt_G.zero_grad(), loss_G.backward(), opt_G.step()
    assert all(torch.equal(p, q) for p, q in zip(D.parameters(), D_before))  # D kept
    stale = [p.grad.clone() for p in D.parameters()]
    assert sum(g.abs().sum() for g in stale) > 0  # ... but its gradients are filled
    # without zero_grad the next D step would use (D-step grad + stale G-step grad)
    X, X_fake = 4 + torch.randn(16, 1), G(torch.randn(16, 1)).detach()
    d_loss(D(X), D(X_fake)).backward()
    polluted = [p.grad.clone() for p in D.parameters()]
    for p in D.parameters():
        p.grad = None
    d_loss(D(X), D(X_fake)).backward()
    clean = [p.grad for p in D.parameters()]
    for a, b, s in zip(polluted, clean, stale):
        torch.testing.assert_close(a, b + s)
    assert any(not torch.allclose(a, b) for a, b in zip(polluted, clean))
