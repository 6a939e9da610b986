"""Hand-written backprop equals autograd; the scalar engine equals torch on random
graphs; gradient checking; matrix derivatives of Y = Ax."""

import math
import random

import pytest
import torch

from snippets.foundations.backprop import (Value, backward, check_engine, forward,
                                           mean_ce, numerical_grads, random_expression,
                                           relative_error)


def test_hand_backprop_equals_autograd():
    torch.manual_seed(0)
    X, y = torch.randn(20, 7, dtype=torch.float64), torch.randint(0, 10, (20,))
    params = [torch.randn(*shape, dtype=torch.float64)
              for shape in [(7, 5), (5,), (5, 10), (10,)]]
    O, cache = forward(X, params)
    ours = backward(O, y, cache, params)
    leaves = [p.clone().requires_grad_(True) for p in params]
    loss = torch.nn.functional.cross_entropy(forward(X, leaves)[0], y)
    for g, a in zip(ours, torch.autograd.grad(loss, leaves)):
        assert g.shape == a.shape
        assert torch.allclose(g, a, atol=1e-12)


def test_engine_matches_torch_on_random_expressions():
    assert check_engine(300, seed=1) < 1e-9


def test_engine_accumulates_gradients_over_shared_nodes():
    a = Value(3.0)
    b = a * a + a  # a is used three times: db/da = 2a + 1
    b.backward()
    assert a.grad == pytest.approx(7.0)


def test_engine_on_a_hand_computed_case():
    x, w, b = Value(0.5), Value(-1.5), Value(0.8)
    L = (w * x + b).tanh()
    L.backward()
    t = math.tanh(-1.5 * 0.5 + 0.8)
    assert L.data == pytest.approx(t)
    assert w.grad == pytest.approx((1 - t * t) * 0.5)
    assert x.grad == pytest.approx((1 - t * t) * -1.5)
    assert b.grad == pytest.approx(1 - t * t)


def test_random_expressions_are_not_trivial():
    leaves = [Value(0.3), Value(-1.1), Value(0.7), Value(1.9)]
    sizes = []
    for i in range(20):
        out = random_expression(leaves, random.Random(i))
        seen, stack = set(), [out]
        while stack:
            n = stack.pop()
            if id(n) not in seen:
                seen.add(id(n))
                stack.extend(n.parents)
        sizes.append(len(seen))
    assert max(sizes) > 10


def small_mlp(seed=0, n=6):
    torch.manual_seed(seed)
    X, y = torch.randn(n, 4, dtype=torch.float64), torch.randint(0, 3, (n,))
    params = [torch.randn(*shape, dtype=torch.float64)
              for shape in [(4, 5), (5,), (5, 3), (3,)]]
    return X, y, params


def test_relu_at_exactly_zero_matches_the_hand_mask_clamp_would_not():
    """Rows of X that are 0 with b1 = 0 give Z1 = 0 exactly: the tie where clamp's
    gradient (1) and the mask (Z1 > 0) of the hand-written backward (0) disagree."""
    X, y, params = small_mlp()
    X[:3] = 0.0
    params[1] = torch.zeros(5, dtype=torch.float64)
    O, cache = forward(X, params)
    hand = backward(O, y, cache, params)
    leaves = [p.clone().requires_grad_(True) for p in params]
    auto = torch.autograd.grad(
        torch.nn.functional.cross_entropy(forward(X, leaves)[0], y), leaves)
    assert all(torch.allclose(g, a, atol=1e-12) for g, a in zip(hand, auto))
    W1, b1, W2, b2 = leaves  # the clamp version, differentiated by autograd
    O_clamp = (X @ W1 + b1).clamp(min=0) @ W2 + b2
    clamp = torch.autograd.grad(torch.nn.functional.cross_entropy(O_clamp, y), leaves)
    assert not torch.allclose(clamp[1], hand[1], atol=1e-6)  # db1 differs


def test_numerical_gradients_match_autograd_and_leave_params_unchanged():
    X, y, params = small_mlp(1)
    before = [p.clone() for p in params]
    numeric = numerical_grads(mean_ce(X, y), params, h=1e-6)
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    leaves = [p.clone().requires_grad_(True) for p in params]
    auto = torch.autograd.grad(
        torch.nn.functional.cross_entropy(forward(X, leaves)[0], y), leaves)
    assert relative_error(auto, numeric) < 1e-8
    assert all(g.shape == p.shape for g, p in zip(numeric, params))


def test_gradient_check_passes_the_hand_backward_and_catches_bugs():
    X, y, params = small_mlp(2)
    numeric = numerical_grads(mean_ce(X, y), params)
    O, cache = forward(X, params)
    hand = backward(O, y, cache, params)
    assert relative_error(hand, numeric) < 1e-7
    forgot_mean = [g * len(y) for g in hand]
    assert relative_error(forgot_mean, numeric) > 0.1
    wrong_bias = hand[:3] + [hand[3] * 0]  # db2 left at 0
    assert relative_error(wrong_bias, numeric) > 1e-3


def test_relative_error_is_scale_free():
    g = [torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0]).double()]
    assert relative_error(g, g) == 0
    assert relative_error([t * 1e6 for t in g], [t * 1e6 * 1.001 for t in g]) == \
        pytest.approx(relative_error(g, [t * 1.001 for t in g]), rel=1e-6)
    assert relative_error(g, [-t for t in g]) == pytest.approx(1.0)


def test_matrix_derivative_rules_for_y_equals_ax():
    """The notes: Y = Ax => dY/dx = A^T, dY/dA = x. For a scalar loss L(Y) with
    upstream gradient g = dL/dY: dL/dx = A^T g and dL/dA = g x^T (shape of A)."""
    torch.manual_seed(3)
    A = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    Y = A @ x
    L = (Y**3).sum()
    g = (3 * Y**2).detach()  # dL/dY
    dA, dx = torch.autograd.grad(L, (A, x))
    assert torch.allclose(dx, A.detach().T @ g)
    assert torch.allclose(dA, torch.outer(g, x.detach()))
    # the notes' "dY/dA = x" cannot even be the gradient: wrong shape, and it ignores g
    assert x.shape != A.shape
    # the Jacobian dY/dx (rows: outputs) is A itself; A^T is the other layout
    J = torch.autograd.functional.jacobian(lambda v: A.detach() @ v, x.detach())
    assert torch.equal(J, A.detach())


def test_engine_relu_gradient_at_zero_is_zero_like_torch():
    a = Value(0.0)
    a.relu().backward()
    t = torch.tensor(0.0, requires_grad=True)
    torch.relu(t).backward()
    assert a.grad == t.grad.item() == 0.0
