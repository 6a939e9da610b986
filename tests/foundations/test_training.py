"""Dropout expectation (inverted vs test-time scaling) and gradient norms of deep nets."""

import itertools

import pytest
import torch
from torch import nn

from snippets.foundations.training import (Config, deep_net, dropout_classic,
                                           dropout_inverted, layer_grad_norms)


def exact_expectation(h, w, p, scale):
    """E over all 2^n keep-masks of w . (mask * h * scale), computed exactly."""
    total = 0.0
    for mask in itertools.product([0.0, 1.0], repeat=len(h)):
        m = torch.tensor(mask, dtype=torch.float64)
        prob = torch.prod(torch.where(m == 1, 1 - p, p))
        total += prob * (w @ (m * h * scale))
    return total


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_both_conventions_have_the_test_time_value_as_expectation(p):
    torch.manual_seed(0)
    h, w = torch.rand(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    inverted = exact_expectation(h, w, p, 1 / (1 - p))
    classic = exact_expectation(h, w, p, 1.0)
    assert inverted == pytest.approx((w @ dropout_inverted(h, p, training=False)).item())
    assert classic == pytest.approx((w @ dropout_classic(h, p, training=False)).item())
    # mixing the conventions is the bug: inverted training + (1-p) scaling at test
    assert inverted != pytest.approx((w @ (h * (1 - p))).item())


def test_inverted_dropout_behaves_like_torch():
    torch.manual_seed(0)
    H = torch.rand(200, 300) + 0.5
    p = 0.3
    ours = dropout_inverted(H, p, training=True)
    ref = torch.nn.functional.dropout(H, p, training=True)
    for out in (ours, ref):
        kept = out != 0
        assert torch.allclose(out[kept], H[kept] / (1 - p))
        assert abs((~kept).float().mean().item() - p) < 0.01
    assert abs(ours.mean() - H.mean()) < 0.01
    assert torch.equal(dropout_inverted(H, p, training=False), H)
    assert torch.equal(torch.nn.functional.dropout(H, p, training=False), H)


def test_sigmoid_gradients_vanish_towards_the_input_relu_does_not():
    torch.manual_seed(0)
    X, y = torch.rand(64, 64), torch.randint(0, 10, (64,))
    cfg = Config(depth=8)
    sig = layer_grad_norms(deep_net(nn.Sigmoid, cfg), X, y)
    rel = layer_grad_norms(deep_net(nn.ReLU, cfg), X, y)
    assert sig[0] / sig[-1] < 1e-3
    assert 0.1 < rel[0] / rel[-1] < 10
