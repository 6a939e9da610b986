"""Activations vs torch (values and derivatives); Maxout reproduces ReLU."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snippets.foundations.activations import (PReLU, Maxout, leaky_relu, maxout_as_relu, relu,
                                              sigmoid, softmax, tanh)

PAIRS = {"sigmoid": (sigmoid, torch.sigmoid), "tanh": (tanh, torch.tanh),
         "relu": (relu, F.relu), "leaky": (leaky_relu, F.leaky_relu)}


@pytest.mark.parametrize("name", PAIRS)
def test_values_and_derivatives_match_torch(name):
    ours, ref = PAIRS[name]
    z = torch.linspace(-6, 6, 97, dtype=torch.float64, requires_grad=True)
    a, b = ours(z), ref(z)
    (ga,) = torch.autograd.grad(a.sum(), z)
    (gb,) = torch.autograd.grad(b.sum(), z)
    assert torch.allclose(a, b, atol=1e-12) and torch.allclose(ga, gb, atol=1e-12)


def test_sigmoid_derivative_formula_and_its_max():
    z = torch.linspace(-6, 6, 101, requires_grad=True)
    (g,) = torch.autograd.grad(sigmoid(z).sum(), z)
    s = sigmoid(z).detach()
    assert torch.allclose(g, s * (1 - s), atol=1e-7)
    assert g.max() <= 0.25 + 1e-7


def test_prelu_equals_nn_prelu():
    z = torch.randn(50)
    assert torch.allclose(PReLU(0.3)(z), nn.PReLU(init=0.3)(z))


def test_maxout_reproduces_relu_values_and_gradients():
    X = torch.randn(64, 9, requires_grad=True)
    a, b = maxout_as_relu(9)(X), F.relu(X)
    assert torch.equal(a, b)
    (ga,) = torch.autograd.grad(a.sum(), X)
    (gb,) = torch.autograd.grad(b.sum(), X)
    assert torch.equal(ga, gb)


def test_maxout_is_max_over_k_linear_pieces():
    torch.manual_seed(0)
    layer = Maxout(4, 3, k=5)
    X = torch.randn(10, 4)
    Z = X @ layer.linear.weight.T + layer.linear.bias  # (10, 15)
    assert torch.allclose(layer(X), Z.view(10, 3, 5).max(-1).values)


def test_softmax_matches_torch_and_is_shift_invariant():
    Z = torch.randn(8, 6, dtype=torch.float64) * 50
    assert torch.allclose(softmax(Z), torch.softmax(Z, -1), atol=1e-12)
    assert torch.allclose(softmax(Z + 1000), softmax(Z), atol=1e-9)  # no overflow
    assert not torch.isfinite((Z + 1000).exp()).all()  # the naive formula would overflow
    assert torch.allclose(softmax(Z).sum(-1), torch.ones(8, dtype=torch.float64))
