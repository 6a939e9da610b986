"""RNN cell vs nn.RNN, the shapes of the usual layouts, parameter counts."""

import torch
from torch import nn

from snippets.rnn.rnn import Config, check_against_torch, rnn_forward, shapes


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
