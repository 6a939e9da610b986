"""LSTM cell vs nn.LSTMCell (values, gradients), the adding data, the gate biases."""

import torch
from torch import nn

from snippets.rnn.lstm import Config, Net, adding_data, lstm_cell, solved_after, train


def test_scratch_lstm_cell_equals_nn_lstmcell_values_and_grads():
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 5)
    x, h, c = torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 5)
    h_ref, c_ref = cell(x, (h, c))
    (h_ref.sum() + 2 * c_ref.sum()).backward()
    p = [w.detach().clone().requires_grad_() for w in
         (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    h_new, c_new = lstm_cell(x, (h, c), *p)
    (h_new.sum() + 2 * c_new.sum()).backward()
    assert torch.allclose(h_new, h_ref, atol=1e-6)
    assert torch.allclose(c_new, c_ref, atol=1e-6)
    refs = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    for ours, ref in zip(p, refs):
        assert torch.allclose(ours.grad, ref.grad, atol=1e-5)


def test_closed_forget_gate_erases_open_one_keeps():
    """Forget gate ~1 and input gate ~0: c passes unchanged; forget gate ~0 erases."""
    n = 4
    W_ih, W_hh = torch.zeros(4 * n, 2), torch.zeros(4 * n, n)
    c0 = torch.randn(1, n)
    for f_bias, expect in ((20.0, c0), (-20.0, torch.zeros(1, n))):
        b = torch.zeros(4 * n)
        b[:n], b[n:2 * n] = -20.0, f_bias  # i closed; f open or closed
        state = (torch.zeros(1, n), c0)
        _, c = lstm_cell(torch.randn(1, 2), state, W_ih, W_hh, b, b * 0)
        assert torch.allclose(c, expect, atol=1e-6)


def test_adding_data_targets_and_markers():
    X, y = adding_data(50, 30, torch.Generator().manual_seed(0))
    assert X.shape == (50, 30, 2) and y.shape == (50,)
    assert torch.all(X[..., 1].sum(1) == 2)
    assert torch.all(X[:, :15, 1].sum(1) == 1)  # one marker in each half
    assert torch.allclose(y, (X[..., 0] * X[..., 1]).sum(1))


def test_forget_bias_is_added_to_the_forget_block_only():
    torch.manual_seed(0)
    plain, opened = Net("LSTM", 6), None
    torch.manual_seed(0)
    opened = Net("LSTM", 6, forget_bias=1.0)
    diff = opened.rnn.bias_hh_l0 - plain.rnn.bias_hh_l0
    assert torch.allclose(diff[6:12], torch.ones(6)) and diff[:6].abs().max() == 0
    assert diff[12:].abs().max() == 0


def test_lstm_learns_short_adding_problem():
    """At T = 10 the LSTM must beat predicting the mean (MSE 1/6) clearly."""
    cfg = Config(num_hiddens=16, num_updates=300, eval_every=100, num_test=300)
    run = train("LSTM", 10, cfg)
    assert run["mse"][-1] < 0.05
    assert solved_after({"seen": [1, 2], "mse": [0.5, 0.005]}) == 2
    assert solved_after({"seen": [1, 2], "mse": [0.5, 0.05]}) == -1


def test_seed_mistake_pytorch_gates_start_half_open_not_closed_or_open():
    """The notes say input/output gates are 'closed by default', the forget gate 'open'.
    PyTorch draws every bias from [-1/sqrt(h), 1/sqrt(h)]: all gates start near 0.5.
    An open forget gate is something you set (forget_bias) or that training learns."""
    torch.manual_seed(0)
    h = 32
    lstm = nn.LSTM(2, h)
    b = lstm.bias_ih_l0 + lstm.bias_hh_l0
    gates = torch.sigmoid(b)  # gate values for a zero input and zero state
    assert gates.min() > torch.sigmoid(torch.tensor(-2 / h**0.5))
    assert gates.max() < torch.sigmoid(torch.tensor(2 / h**0.5))
    assert 0.4 < gates[h:2 * h].mean() < 0.6  # the forget block
