"""GRU cell vs nn.GRUCell (values and gradients); parameter counts of RNN, GRU, LSTM."""

import pytest
import torch
from torch import nn

from snippets.rnn.gru import count_formula, count_torch, gru_cell


def test_scratch_gru_cell_equals_nn_grucell_values_and_grads():
    torch.manual_seed(0)
    cell = nn.GRUCell(3, 5)
    x, h = torch.randn(4, 3), torch.randn(4, 5)
    ref = cell(x, h)
    ref.square().sum().backward()
    p = [w.detach().clone().requires_grad_() for w in
         (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    ours = gru_cell(x, h, *p)
    ours.square().sum().backward()
    assert torch.allclose(ours, ref, atol=1e-6)
    for a, b in zip(p, (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)):
        assert torch.allclose(a.grad, b.grad, atol=1e-5)


def test_update_gate_one_copies_the_state():
    """z = 1 keeps h exactly (the GRU's 'forget nothing'); z = 0 replaces it."""
    n = 3
    W_ih, W_hh, h = torch.zeros(3 * n, 2), torch.zeros(3 * n, n), torch.randn(1, n)
    b = torch.zeros(3 * n)
    b[n:2 * n] = 30.0
    assert torch.allclose(gru_cell(torch.randn(1, 2), h, W_ih, W_hh, b, b * 0), h)
    b[n:2 * n] = -30.0
    assert torch.allclose(gru_cell(torch.zeros(1, 2), h, W_ih, W_hh, b, b * 0),
                          torch.zeros(1, n), atol=1e-6)


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("d,h", [(1, 64), (10, 20), (32, 128)])
def test_parameter_count_formula_matches_torch(kind, d, h):
    assert count_formula(kind, d, h) == count_torch(kind, d, h)


def test_gru_has_three_quarters_of_lstm_parameters():
    assert count_formula("GRU", 7, 33) * 4 == count_formula("LSTM", 7, 33) * 3
