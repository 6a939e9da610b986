"""BPTT: the hand-written backward pass and the Jacobian product equal autograd; how
gradients shrink or grow with the gap; clipping, and the notes' versions of it."""

import torch
from torch import nn

from snippets.rnn.bptt import (Config, check_backward, cliff_loss, clip_by_norm,
                               forget_path, grad_norms_vs_gap, make_cells, one_update,
                               rnn_backward, state_jacobians)
from snippets.rnn.rnn import rnn_forward


def _weights(n=5, d=3, scale=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    W_xh, W_hh = torch.randn(n, d, generator=g), torch.randn(n, n, generator=g)
    W_hh = W_hh * scale / torch.linalg.matrix_norm(W_hh, ord=2)  # sigma_max = scale
    return W_xh, W_hh, torch.randn(n, generator=g) * 0.1


def test_hand_written_bptt_equals_autograd():
    """Loss at every step, a non-zero h0, a batch: all four gradients agree."""
    torch.manual_seed(0)
    W_xh, W_hh, b = _weights(n=6, d=3, scale=0.9)
    X, h0, C = torch.randn(9, 4, 3), torch.randn(4, 6), torch.randn(9, 4, 6)
    leaves = [p.clone().requires_grad_() for p in (W_xh, W_hh, b, h0)]
    H, h_T = rnn_forward(X, leaves[3], *leaves[:3])
    ((H * C).sum() + h_T.square().sum()).backward()  # dl/dh_T gets 2 h_T on top
    dH = C.clone()
    dH[-1] += 2 * H[-1].detach()
    ours = rnn_backward(X, H.detach(), h0, W_hh, dH)
    for mine, leaf in zip(ours, leaves):
        assert mine.shape == leaf.shape
        assert torch.allclose(mine, leaf.grad, atol=1e-5)
    assert check_backward(Config()) < 1e-4  # the check the demo reports


def test_seed_mistake_dL_dA_is_an_outer_product_not_x():
    """The notes write: y = Ax gives dy/dA = x. For a loss L(y) the gradient of A is
    the outer product (dL/dy) x^T, the shape of A; that is BPTT's delta_t h_{t-1}^T."""
    torch.manual_seed(0)
    A, x, c = torch.randn(3, 4, requires_grad=True), torch.randn(4), torch.randn(3)
    (c @ (A @ x)).backward()  # L = c^T A x, so dL/dy = c
    assert torch.allclose(A.grad, torch.outer(c, x))
    notes = x.expand(3, 4)  # the notes' "dY/dA = x", given A's shape row by row
    assert not torch.allclose(A.grad, notes, atol=0.1)


def test_product_of_jacobians_equals_autograd_at_every_gap():
    W_xh, W_hh, b = _weights(scale=0.9)
    X = torch.randn(8, 1, 3, generator=torch.Generator().manual_seed(1))
    h0 = torch.randn(1, 5)
    H, _ = rnn_forward(X, h0, W_xh, W_hh, b)
    jac = state_jacobians(H[:, 0], W_hh)
    assert len(jac) == len(X) + 1 and torch.allclose(jac[-1], torch.eye(5))
    for t in (0, 3, 6):  # dh_T/dh_t, with h_t as the start of the remaining steps
        start = h0[0] if t == 0 else H[t - 1, 0]
        ref = torch.autograd.functional.jacobian(
            lambda h: rnn_forward(X[t:], h[None], W_xh, W_hh, b)[1][0], start)
        assert torch.allclose(jac[t], ref, atol=1e-5)


def test_seed_mistake_the_gradient_reaches_back_and_shrinks_exponentially():
    """The notes: an output 'is not passed on to the node after next'. If that were
    so, dh_T/dh_{T-2} would be zero. It is not; what happens is exponential decay,
    bounded by sigma_max(W_hh)^gap in the spectral norm (not in the Frobenius norm)."""
    W_xh, W_hh, b = _weights(scale=0.6)
    X = torch.randn(30, 1, 3, generator=torch.Generator().manual_seed(2))
    H, _ = rnn_forward(X, torch.zeros(1, 5), W_xh, W_hh, b)
    jac = state_jacobians(H[:, 0], W_hh)
    T = len(X)
    assert torch.linalg.matrix_norm(jac[T - 2]).item() > 1e-3  # two steps back
    spectral = [torch.linalg.matrix_norm(jac[T - g], ord=2).item() for g in range(T)]
    assert all(0 < s <= 0.6**g + 1e-6 for g, s in enumerate(spectral))
    assert spectral[25] < 1e-4 * spectral[1]  # orders of magnitude, not a cut
    assert torch.linalg.matrix_norm(jac[T]).item() > 1  # Frobenius: sqrt(5) at gap 0


def test_grad_norms_vs_gap_equals_the_norms_of_the_jacobian_product():
    torch.manual_seed(0)
    cell = nn.RNNCell(3, 5)
    X = torch.randn(7, 2, 3)
    norms = grad_norms_vs_gap(cell, X)
    W_xh, W_hh = cell.weight_ih.detach(), cell.weight_hh.detach()
    H, _ = rnn_forward(X, torch.zeros(2, 5), W_xh, W_hh,
                       (cell.bias_ih + cell.bias_hh).detach())
    per_seq = [[torch.linalg.matrix_norm(J) for J in state_jacobians(H[:, b], W_hh)]
               for b in range(2)]
    expected = torch.tensor(per_seq).mean(dim=0)[1:]  # states h_1..h_T
    assert torch.allclose(norms, expected, atol=1e-5)


def test_lstm_norms_count_both_parts_of_the_state():
    """For an LSTM the gap-0 Jacobian holds dh_T/dh_T = I and dh_T/dc_T != 0."""
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 4)
    norms = grad_norms_vs_gap(cell, torch.randn(5, 3, 3))
    assert norms[-1] > 4**0.5 + 0.05  # more than the identity's norm alone


def test_gaps_order_rnn_vanishes_open_lstm_keeps_big_lstm_explodes():
    torch.manual_seed(0)
    cfg = Config(batch_size=4)  # h = 32, T = 100
    cells = make_cells(cfg)
    X = torch.randn(cfg.num_steps, cfg.batch_size, cfg.input_size)
    gap = {k: grad_norms_vs_gap(c, X).flip(0) / 32**0.5 for k, c in cells.items()}
    assert gap["rnn"][50] < 1e-6 < gap["lstm_open"][50]
    assert gap["lstm_open"][50] > 0.01
    big = gap["lstm_open_big"]  # gates do not stop the gradient from growing
    assert big[99] > 1 and big[99] > 10 * big[10]


def test_seed_mistake_a_half_open_forget_gate_still_vanishes():
    """The notes: as long as the forget gate is not closed, the gradient persists.
    PyTorch's init leaves it 'not closed' (about 0.5), and the gradient still dies."""
    torch.manual_seed(0)
    cfg = Config(num_hiddens=16, num_steps=60, batch_size=4)
    cells = make_cells(cfg)
    X = torch.randn(cfg.num_steps, cfg.batch_size, cfg.input_size)
    f, _ = forget_path(cells["lstm"], X)
    assert 0.4 < f.mean() < 0.6 and 0.05 < f.min() and f.max() < 0.9  # half open
    fresh = grad_norms_vs_gap(cells["lstm"], X).flip(0)
    opened = grad_norms_vs_gap(cells["lstm_open"], X).flip(0)
    assert fresh[50] < 1e-6 and opened[50] > 1e-2


def test_forget_path_is_the_product_of_the_newest_gates():
    torch.manual_seed(0)
    cell = nn.LSTMCell(2, 3)
    X = torch.randn(6, 1, 2)
    f, direct = forget_path(cell, X)
    assert direct[0] == 1
    prod = f[-1, 0] * f[-2, 0] * f[-3, 0]  # gap 3: f_T f_{T-1} f_{T-2}
    assert torch.isclose(direct[3], prod.square().mean().sqrt())
    h = c = torch.zeros(1, 3)  # the gates are the ones nn.LSTMCell used
    for t, x in enumerate(X):
        h_new, c_new = cell(x, (h, c))
        i, ff, g, o = (x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T
                       + cell.bias_hh).chunk(4, dim=1)
        assert torch.allclose(torch.sigmoid(ff), f[t], atol=1e-6)
        h, c = h_new, c_new


def test_seed_mistake_the_activation_alone_does_not_decide():
    """The notes: vanishing or exploding 'depends on the activation'. Same tanh, two
    recurrent matrices: one vanishes, the other grows."""
    torch.manual_seed(0)
    X = torch.randn(40, 4, 3) * 0.05  # a weak input keeps tanh out of saturation
    result = {}
    for rho in (0.5, 1.5):
        cell = nn.RNNCell(3, 16)
        with torch.no_grad():
            cell.weight_hh *= rho / torch.linalg.eigvals(cell.weight_hh).abs().max()
        result[rho] = grad_norms_vs_gap(cell, X).flip(0)
    assert result[0.5][30] < 1e-6 and result[1.5][30] > 1


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
    for small in ([torch.tensor([0.3, -0.4])], [torch.tensor([3e-7, -4e-7])]):
        assert torch.equal(clip_by_norm(small, 1.0)[0], small[0])  # below: untouched


def test_elementwise_clipping_turns_the_step_but_still_descends():
    """clip_grad_value_ (each component capped at +-1) is a real, used variant: it
    changes the direction, yet g . clip(g) > 0 keeps it a descent direction."""
    g = torch.tensor([100.0, -1.0, 0.5])
    p = nn.Parameter(torch.zeros(3))
    p.grad = g.clone()
    nn.utils.clip_grad_value_([p], 1.0)
    assert torch.allclose(p.grad, torch.tensor([1.0, -1.0, 0.5]))
    assert torch.cosine_similarity(g, p.grad, dim=0) < 0.7
    assert g @ p.grad > 0
    (by_norm,) = clip_by_norm([g], 1.0)
    assert torch.cosine_similarity(g, by_norm, dim=0) > 0.9999


def test_seed_mistake_one_sided_min_leaves_negative_spikes():
    """The notes clip with G = min(G, G_max). On the mirror image of the cliff the
    gradient is about -1100: min(G, 1) leaves it alone and the step is as wild as
    without clipping, while clipping by norm bounds it."""
    cfg = Config()
    steps = {}
    for rule in ("notes_min", "norm"):
        u = nn.Parameter(torch.tensor(-cfg.cliff_w0))
        cliff_loss(-u, cfg.cliff_steps).backward()  # the cliff seen from the left
        assert u.grad < -100
        if rule == "notes_min":
            u.grad = torch.minimum(u.grad, torch.tensor(cfg.max_norm))
        else:
            nn.utils.clip_grad_norm_([u], cfg.max_norm)
        steps[rule] = (cfg.lr * u.grad).abs().item()
    assert steps["notes_min"] > 100 and steps["norm"] <= cfg.lr * cfg.max_norm + 1e-6


def test_clipping_tames_the_cliff_step():
    cfg = Config()
    w_plain, w_clip = one_update(cfg, clip=False), one_update(cfg, clip=True)
    assert abs(w_plain - cfg.cliff_w0) > 10  # thrown far away
    assert abs(w_clip - cfg.cliff_w0) <= cfg.lr * cfg.max_norm + 1e-6
    assert cliff_loss(torch.tensor(w_clip), cfg.cliff_steps) < cliff_loss(
        torch.tensor(cfg.cliff_w0), cfg.cliff_steps)
    assert cliff_loss(torch.tensor(w_plain), cfg.cliff_steps) > 3  # off the cliff
