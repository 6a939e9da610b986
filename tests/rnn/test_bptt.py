"""BPTT: the chain-rule product equals autograd; gradients reach far back; clipping."""

import torch
from torch import nn

from snippets.rnn.bptt import (Config, cliff_loss, clip_by_norm, one_update,
                                state_jacobians)
from snippets.rnn.rnn import rnn_forward


def _states(T=15, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    W_xh, W_hh = torch.randn(n, 3, generator=g), torch.randn(n, n, generator=g) * 0.6
    b, X = torch.randn(n, generator=g), torch.randn(T, 1, 3, generator=g)
    return W_xh, W_hh, b, X


def test_product_of_jacobians_equals_autograd():
    W_xh, W_hh, b, X = _states()
    h0 = torch.randn(1, 5, requires_grad=True)
    H, h_T = rnn_forward(X, h0, W_xh, W_hh, b)
    jac = state_jacobians(H[:, 0].detach(), h0[0].detach(), W_hh)
    ref = torch.autograd.functional.jacobian(
        lambda h: rnn_forward(X, h[None], W_xh, W_hh, b)[1][0], h0[0].detach())
    assert torch.allclose(jac[0], ref, atol=1e-5)  # dh_T/dh_0
    assert torch.allclose(jac[-1], torch.eye(5))  # dh_T/dh_T


def test_seed_mistake_the_gradient_does_reach_early_steps():
    """The notes say an output 'is not passed on to the node after next'. It is:
    dh_T/dh_0 is a product of T factors, small but not zero."""
    W_xh, W_hh, b, X = _states(T=10)
    h0 = torch.zeros(1, 5, requires_grad=True)
    _, h_T = rnn_forward(X, h0, W_xh, W_hh, b)
    h_T.sum().backward()
    assert h0.grad.abs().max() > 1e-6


def test_clip_by_norm_matches_torch_and_keeps_direction():
    g = [torch.tensor([30.0, -40.0]), torch.tensor([0.5])]
    ours = clip_by_norm(g, 1.0)
    params = [nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))]
    for p, gi in zip(params, g):
        p.grad = gi.clone()
    nn.utils.clip_grad_norm_(params, 1.0)
    for a, p in zip(ours, params):
        assert torch.allclose(a, p.grad, atol=1e-5)
    flat, clipped = torch.cat(g), torch.cat(ours)
    assert torch.isclose(clipped.norm(), torch.tensor(1.0), atol=1e-4)
    cos = torch.cosine_similarity(flat, clipped, dim=0)
    assert torch.isclose(cos, torch.tensor(1.0))


def test_seed_mistake_elementwise_min_changes_the_direction():
    """G = min(G, G_max) entry by entry (the notes' version) turns the step."""
    g = torch.tensor([100.0, -1.0, 0.5])  # almost all of it along the first axis
    elementwise = g.clamp(-1.0, 1.0)  # (1, -1, 0.5): now mostly sideways
    assert torch.cosine_similarity(g, elementwise, dim=0) < 0.7
    (by_norm,) = clip_by_norm([g], 1.0)
    assert torch.cosine_similarity(g, by_norm, dim=0) > 0.9999


def test_clipping_tames_the_cliff_step():
    cfg = Config()
    w_plain, w_clip = one_update(cfg, clip=False), one_update(cfg, clip=True)
    assert abs(w_plain - cfg.cliff_w0) > 10  # thrown far away
    assert abs(w_clip - cfg.cliff_w0) <= cfg.lr * cfg.max_norm + 1e-6
    assert cliff_loss(torch.tensor(w_clip), cfg.cliff_steps) < cliff_loss(
        torch.tensor(cfg.cliff_w0), cfg.cliff_steps)
