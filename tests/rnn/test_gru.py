"""GRU cell vs nn.GRUCell (values and gradients); parameter counts of RNN, GRU, LSTM."""

from pathlib import Path

import pytest
import torch
from torch import nn

from snippets.rnn import gru
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


def test_gru_has_three_quarters_of_lstm_parameters_by_formula():
    assert count_formula("GRU", 7, 33) * 4 == count_formula("LSTM", 7, 33) * 3


def test_ng_update_gate_is_one_minus_pytorch_z():
    """Ng's course writes c_t = G_u * c_tilde + (1 - G_u) * c_{t-1}: his G_u = 1 means
    'overwrite'. PyTorch's z = 1 means 'keep'. Same cell, with G_u = 1 - z."""
    torch.manual_seed(0)
    n, d = 4, 3
    W_ih, W_hh = torch.randn(3 * n, d), torch.randn(3 * n, n)
    b_ih, b_hh = torch.randn(3 * n), torch.randn(3 * n)
    x, h = torch.randn(2, d), torch.randn(2, n)
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    z = torch.sigmoid(x_z + h_z)
    c_tilde = torch.tanh(x_n + torch.sigmoid(x_r + h_r) * h_n)
    gamma_u = 1 - z
    ng = gamma_u * c_tilde + (1 - gamma_u) * h
    assert torch.allclose(gru_cell(x, h, W_ih, W_hh, b_ih, b_hh), ng, atol=1e-6)
    swapped = z * c_tilde + (1 - z) * h  # reading Ng's gate as PyTorch's z: wrong
    ours = gru_cell(x, h, W_ih, W_hh, b_ih, b_hh)
    assert not torch.allclose(ours, swapped, atol=1e-2)


def test_the_cell_tests_do_not_import_mnist1d():
    """gru.py imports mnist1d inside load(), so testing a cell needs no dataset code."""
    src = Path(gru.__file__).read_text(encoding="utf-8")
    top_level = [ln for ln in src.splitlines() if ln.startswith(("import", "from"))]
    assert not any("mnist1d" in line for line in top_level)
