"""Hand-written backprop equals autograd; the scalar engine equals torch on random graphs."""

import math
import random

import pytest
import torch

from snippets.foundations.backprop import Value, backward, check_engine, forward, \
    random_expression


def test_hand_backprop_equals_autograd():
    torch.manual_seed(0)
    X, y = torch.randn(20, 7, dtype=torch.float64), torch.randint(0, 10, (20,))
    params = [torch.randn(7, 5, dtype=torch.float64), torch.randn(5, dtype=torch.float64),
              torch.randn(5, 10, dtype=torch.float64), torch.randn(10, dtype=torch.float64)]
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
