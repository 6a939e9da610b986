"""RNN cell vs nn.RNN, the shapes of the usual layouts, padded batches, and the memory
curves behind the figure."""

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from snippets.rnn.rnn import (Config, check_against_torch, last_valid, masked_mean,
                              memory_curves, padded_batch, rnn_forward, shapes,
                              steps_to_forget)


def test_scratch_rnn_equals_nn_rnn_values_and_grads():
    torch.manual_seed(0)
    found = check_against_torch(Config())
    assert found["max_abs_err_vs_torch"] < 1e-5
    assert found["max_grad_err_vs_torch"] < 1e-4


def test_one_step_by_hand():
    W_xh, W_hh, b = torch.tensor([[2.0]]), torch.tensor([[0.5]]), torch.tensor([0.1])
    X = torch.tensor([[[1.0]], [[0.0]]])  # T=2, B=1, d=1
    H, h = rnn_forward(X, torch.zeros(1, 1), W_xh, W_hh, b)
    h1 = torch.tanh(torch.tensor(2.1))
    assert torch.allclose(H[0, 0, 0], h1)
    assert torch.allclose(h[0, 0], torch.tanh(0.5 * h1 + 0.1))
    assert torch.equal(H[-1], h)


def test_seed_mistake_an_rnn_is_not_a_feed_forward_net():
    """The notes call an RNN 'a feed-forward network with links through time'. A
    feed-forward net applied step by step (no W_hh) forgets x_1 at once; the RNN's
    last state still depends on x_1. Only the unrolled graph is feed-forward."""
    torch.manual_seed(0)
    W_xh, W_hh, b = torch.randn(4, 2), torch.randn(4, 4) * 0.3, torch.zeros(4)
    for recurrent, expect_dependence in ((W_hh, True), (torch.zeros(4, 4), False)):
        X = torch.randn(5, 1, 2, requires_grad=True)
        _, h_T = rnn_forward(X, torch.zeros(1, 4), W_xh, recurrent, b)
        (grad,) = torch.autograd.grad(h_T.sum(), X)
        assert (grad[0].abs().max() > 1e-4) == expect_dependence


def test_shapes_of_each_layout():
    s = shapes(B=2, T=7, d=3, h=16, V=10)
    assert s["many_to_many"] == (2, 7, 10)
    assert s["many_to_one"] == (2, 10)
    assert s["one_to_many"] == (2, 7, 16)
    assert s["bidirectional_out"] == (2, 7, 32) and s["bidirectional_h_n"] == (2, 2, 16)
    assert s["stacked_out"] == (2, 7, 16) and s["stacked_h_n"] == (3, 2, 16)


def test_parameter_count_of_nn_rnn():
    # W_xh (h x d) + W_hh (h x h) + two bias vectors (PyTorch keeps b_ih and b_hh)
    n = sum(p.numel() for p in nn.RNN(3, 16).parameters())
    assert n == 16 * 3 + 16 * 16 + 2 * 16
    deep = nn.RNN(3, 16, num_layers=2)  # layer 2 reads the 16-dim states of layer 1
    assert sum(p.numel() for p in deep.parameters()) == (16 * 3 + 16 * 16 + 32) + (
        16 * 16 + 16 * 16 + 32)


def test_bidirectional_last_output_is_not_the_backward_summary():
    """Common mistake: out[:, -1] of a bidirectional RNN. Its backward half has read
    only the last step; the backward summary of the whole sequence is out[:, 0]."""
    torch.manual_seed(0)
    bi = nn.RNN(3, 4, batch_first=True, bidirectional=True)
    X = torch.randn(2, 6, 3)
    out, h_n = bi(X)
    assert torch.allclose(out[:, -1, :4], h_n[0])  # forward: last step = summary
    assert torch.allclose(out[:, 0, 4:], h_n[1])  # backward: summary sits at step 0
    only_last, _ = bi(X[:, -1:])  # the backward half at step T has seen x_T only
    assert torch.allclose(out[:, -1, 4:], only_last[:, 0, 4:], atol=1e-6)


def test_last_valid_picks_each_sequence_own_last_step():
    out = torch.arange(2 * 4 * 1, dtype=torch.float).reshape(2, 4, 1)
    assert last_valid(out, torch.tensor([4, 2])).flatten().tolist() == [3.0, 5.0]


def test_common_mistake_out_last_step_of_a_padded_batch():
    """out[:, -1] reads padding for every sequence shorter than the longest; the
    packed run and last_valid give what each sequence gives on its own."""
    torch.manual_seed(0)
    found = padded_batch(Config())
    assert found["pad_packed_err"] < 1e-5 and found["pad_last_valid_err"] < 1e-5
    assert found["pad_out_last_err"] > 1e-2
    same = padded_batch(Config(lengths=(5, 5, 5)))  # no padding: all three agree
    assert same["pad_out_last_err"] < 1e-5


def test_masked_mean_ignores_padding():
    lengths = torch.tensor([3, 1])
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 99.0, -7.0]])  # 99, -7: padding
    assert torch.isclose(masked_mean(loss, lengths), torch.tensor(10.0 / 4))
    seqs = [torch.randn(n, 2) for n in (5, 2, 4)]
    X = pad_sequence(seqs, batch_first=True)
    per_step = X.square().sum(-1)  # padded steps are zeros here, still not counted
    lengths = torch.tensor([5, 2, 4])
    expected = torch.cat([s.square().sum(-1) for s in seqs]).mean()
    assert torch.isclose(masked_mean(per_step, lengths), expected)
    assert not torch.isclose(per_step.mean(), expected)  # the unmasked mean is off


def test_memory_decays_faster_for_smaller_radius_and_saturation_tames_1_5():
    cfg = Config(memory_hiddens=32, memory_steps=40, memory_draws=2,
                 radii=(0.5, 0.9, 1.5))
    strong, slope_strong = memory_curves(cfg, drive=0.5)
    weak, slope_weak = memory_curves(cfg, drive=0.1)
    assert steps_to_forget(strong[0.5]) < steps_to_forget(strong[0.9])
    assert all(a > b for a, b in zip(strong[0.9][5:], strong[0.5][5:]))
    assert strong[1.5][-1] < 1 < weak[1.5][-1]  # saturation decides, not rho alone
    assert slope_strong[1.5] < slope_weak[1.5] <= 1


def test_steps_to_forget_reports_never_as_minus_one():
    assert steps_to_forget([0.5, 0.01, 1e-4]) == 3
    assert steps_to_forget([0.5, 0.2]) == -1
