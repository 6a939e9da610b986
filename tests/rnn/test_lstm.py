"""LSTM cell vs nn.LSTMCell (values, gradients), the adding data, the gate biases,
the paper's stop rule, and the notes' versions of the LSTM."""

from dataclasses import replace

import torch
from torch import nn

from snippets.rnn.lstm import (Config, Net, adding_data, initial_gates, lstm_cell,
                               solved_after, train, writer_unit)


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
        assert torch.allclose(ours.grad, ref.grad, atol=1e-6)


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


def test_output_gate_reads_the_cell_but_never_changes_it():
    """Closing the output gate hides the cell from h_t; c_t is the same either way."""
    n = 3
    torch.manual_seed(0)
    W_ih, W_hh = torch.randn(4 * n, 2), torch.randn(4 * n, n)
    x, state = torch.randn(1, 2), (torch.randn(1, n), torch.randn(1, n))
    results = []
    for o_bias in (-30.0, 30.0):
        b = torch.zeros(4 * n)
        b[3 * n:] = o_bias
        results.append(lstm_cell(x, state, W_ih, W_hh, b, b * 0))
    (h_closed, c_closed), (h_open, c_open) = results
    assert torch.allclose(c_closed, c_open) and h_closed.abs().max() < 1e-6
    assert torch.allclose(h_open, torch.tanh(c_open), atol=1e-6)


def test_seed_mistake_the_standard_lstm_has_no_peepholes():
    """The notes say every gate weights the previous memory cell (peephole
    connections, Gers and Schmidhuber 2000). nn.LSTMCell's gates never read c_{t-1}:
    its dc_t/dc_{t-1} is exactly diag(f_t). A peephole cell, the notes' version, has
    more terms."""
    torch.manual_seed(0)
    cell = nn.LSTMCell(2, 3)
    assert {n for n, _ in cell.named_parameters()} == {
        "weight_ih", "weight_hh", "bias_ih", "bias_hh"}  # nothing that reads c
    x, h, c = torch.randn(1, 2), torch.randn(1, 3), torch.randn(3)
    jac = torch.autograd.functional.jacobian(lambda c_: cell(x, (h, c_[None]))[1][0], c)
    f = torch.sigmoid((x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T
                       + cell.bias_hh).chunk(4, dim=1)[1][0])
    assert torch.allclose(jac, torch.diag(f), atol=1e-6)
    p_f = torch.randn(3)  # a peephole weight on c_{t-1} for the forget gate

    def peephole(c_):
        gates = (x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T
                 + cell.bias_hh)[0]
        i, f_, g, _ = gates.chunk(4)
        return torch.sigmoid(f_ + p_f * c_) * c_ + torch.sigmoid(i) * torch.tanh(g)

    jac_peep = torch.autograd.functional.jacobian(peephole, c)
    assert not torch.allclose(jac_peep, torch.diag(f), atol=1e-2)


def test_adding_data_targets_and_markers():
    X, y = adding_data(50, 30, torch.Generator().manual_seed(0))
    assert X.shape == (50, 30, 2) and y.shape == (50,)
    assert torch.all(X[..., 1].sum(1) == 2)
    assert torch.all(X[:, :15, 1].sum(1) == 1)  # one marker in each half
    assert torch.allclose(y, (X[..., 0] * X[..., 1]).sum(1))
    assert 0 <= X[..., 0].min() and X[..., 0].max() <= 1
    X, _ = adding_data(2000, 10, torch.Generator().manual_seed(1))
    pos = X[..., 1].nonzero()[:, 1].reshape(2000, 2)  # (first, second) per sequence
    assert set(pos[:, 0].tolist()) == set(range(5))  # anywhere in the first half
    assert set(pos[:, 1].tolist()) == set(range(5, 10))  # anywhere in the second


def test_forget_bias_is_added_to_the_forget_block_only():
    torch.manual_seed(0)
    plain = Net("LSTM", 6)
    torch.manual_seed(0)
    opened = Net("LSTM", 6, forget_bias=1.0)
    diff = opened.rnn.bias_hh_l0 - plain.rnn.bias_hh_l0
    assert torch.allclose(diff[6:12], torch.ones(6)) and diff[:6].abs().max() == 0
    assert diff[12:].abs().max() == 0
    torch.manual_seed(0)
    gru = Net("GRU", 6, forget_bias=1.0)  # no forget gate: nothing is changed
    torch.manual_seed(0)
    assert torch.equal(gru.rnn.bias_hh_l0, Net("GRU", 6).rnn.bias_hh_l0)


def test_seed_mistake_gates_start_half_open_not_closed_or_open():
    """The notes: input and output gates are 'normally closed', the forget gate 'open'.
    That LSTM (biases -3, +3, -3) would start with i, o < 0.1 and f > 0.9. The one
    this page trains starts with every gate in the middle; its forget gate sits
    at sigma(1) only because we add a forget bias of 1."""
    torch.manual_seed(0)
    ours = initial_gates(Net("LSTM", 32, forget_bias=0.0))
    for gate in ours.values():
        assert 0.4 < gate.min() and gate.max() < 0.6  # half open, not closed or open
    shifted = initial_gates(Net("LSTM", 32, forget_bias=1.0))["f"]
    assert 0.6 < shifted.min() and shifted.max() < 0.85
    notes = Net("LSTM", 32)
    with torch.no_grad():
        b = notes.rnn.bias_ih_l0
        b[:32], b[32:64], b[96:] = -3.0, 3.0, -3.0  # the notes' default, built by hand
    theirs = initial_gates(notes)
    assert theirs["i"].max() < 0.1 and theirs["o"].max() < 0.1
    assert theirs["f"].min() > 0.9
    assert not torch.allclose(theirs["f"], ours["f"], atol=0.3)


def test_lstm_learns_the_short_adding_problem_and_the_stop_rule_fires():
    """At T = 10 the LSTM must beat predicting the mean (MSE 1/6) clearly."""
    cfg = Config(num_hiddens=16, batch_size=32, num_updates=250, eval_every=125,
                 num_test=300, window=300, tolerance=0.3)
    run = train("LSTM", 10, cfg, lr=0.02)
    assert run["mse"][-1] < 0.05
    assert 0 < run["solved_window"] <= 250 * 32  # 300 recent errors all below 0.3
    assert run["max_grad_norm"] > 0 and 0 <= run["clipped_frac"] <= 1
    assert solved_after({"seen": [1, 2], "mse": [0.5, 0.005]}) == 2
    assert solved_after({"seen": [1, 2], "mse": [0.5, 0.05]}) == -1


def test_writer_unit_reads_the_trained_net():
    torch.manual_seed(0)
    cfg = Config(num_hiddens=4, num_steps=12)
    found, (X, c, gates, u) = writer_unit(Net("LSTM", 4), cfg)
    assert gates.shape == (12, 3) and c.shape == (12,) and 0 <= u < 4
    assert 0 < found["gate_forget_mean"] < 1
    assert found["gate_input_at_markers"] >= found["gate_input_elsewhere"]  # by choice
    big = replace(cfg, num_steps=20)
    assert writer_unit(Net("LSTM", 4), big)[1][0].shape == (20, 2)
