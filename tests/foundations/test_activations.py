"""Activations vs torch (values and derivatives); Maxout reproduces ReLU."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snippets.foundations.activations import (Maxout, PReLU, leaky_relu, maxout_as_relu,
                                              relu, sigmoid, softmax, tanh)

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


def test_prelu_equals_nn_prelu_values_and_gradients():
    torch.manual_seed(0)
    z = torch.cat([torch.randn(50), torch.zeros(3)]).requires_grad_(True)
    ours, ref = PReLU(0.3), nn.PReLU(init=0.3)
    a, b = ours(z), ref(z)
    assert torch.allclose(a, b)
    ga_z, ga_a = torch.autograd.grad(a.sum(), (z, ours.a))
    gb_z, gb_a = torch.autograd.grad(b.sum(), (z, ref.weight))
    assert torch.allclose(ga_z, gb_z) and torch.allclose(ga_a, gb_a.squeeze())
    assert ga_a == pytest.approx(z[z < 0].sum().item())  # d/da of a*z, negatives only


def relu_input_with_zeros():
    torch.manual_seed(1)
    X = torch.randn(64, 9)
    X[::4] = 0.0  # exact zeros: where ReLU's derivative is a convention (0 in torch)
    return X.requires_grad_(True)


def test_maxout_reproduces_relu_values_and_gradients():
    X = relu_input_with_zeros()
    a, b = maxout_as_relu(9)(X), F.relu(X)
    assert torch.equal(a, b)
    (ga,) = torch.autograd.grad(a.sum(), X)
    (gb,) = torch.autograd.grad(b.sum(), X)
    assert torch.equal(ga, gb)
    assert ga[::4].abs().sum() == 0  # at z = 0 the gradient is 0, as F.relu's


def test_identity_piece_first_breaks_the_gradient_at_zero():
    """With the pieces in the other order (z, 0), max's tie-break at z = 0 sends the
    gradient to the identity piece: derivative 1 where F.relu has 0."""
    X = relu_input_with_zeros()
    layer = maxout_as_relu(9)
    with torch.no_grad():  # swap the two pieces of every unit
        W = layer.linear.weight.view(9, 2, 9).flip(1).reshape(18, 9).clone()
        layer.linear.weight.copy_(W)
    a = layer(X)
    assert torch.equal(a, F.relu(X))  # same values...
    (ga,) = torch.autograd.grad(a.sum(), X)
    (gb,) = torch.autograd.grad(F.relu(X).sum(), X)
    assert not torch.equal(ga, gb)  # ...but not the same gradient
    assert torch.all(ga[::4] == 1) and torch.all(gb[::4] == 0)


def test_clamp_relu_has_the_wrong_gradient_at_zero():
    z = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    (g_clamp,) = torch.autograd.grad(z.clamp(min=0).sum(), z)
    (g_ours,) = torch.autograd.grad(relu(z).sum(), z)
    assert g_clamp[1] == 1 and g_ours[1] == 0
    (g_ref,) = torch.autograd.grad(F.relu(z).sum(), z)
    assert torch.equal(g_ours, g_ref) and not torch.equal(g_clamp, g_ref)


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
    assert not torch.isfinite((Z + 1000).exp()).all()  # the naive formula overflows
    assert torch.allclose(softmax(Z).sum(-1), torch.ones(8, dtype=torch.float64))


def test_defaults_are_the_ones_the_page_states():
    assert PReLU().a.item() == nn.PReLU().weight.item() == 0.25
    assert Maxout(4, 3).linear.out_features == 6  # k = 2 pieces per output unit


def test_maxout_and_softmax_work_on_the_last_axis_of_any_shape():
    torch.manual_seed(2)
    layer = Maxout(4, 3, k=2)
    X = torch.randn(2, 5, 4)  # (batch, time, features)
    Z = layer.linear(X).view(2, 5, 3, 2)
    assert torch.equal(layer(X), Z.max(-1).values)
    S = torch.randn(2, 5, 6)
    assert torch.allclose(softmax(S), torch.softmax(S, -1), atol=1e-6)


def test_softmax_subtracts_the_max_not_the_min():
    z = torch.tensor([[0.0, 200.0, 150.0]])  # float32: exp(200) overflows
    out = softmax(z)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.softmax(z, -1))
