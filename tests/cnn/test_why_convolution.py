"""Reference tests for snippets/cnn/why_convolution.py."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snippets.cnn.why_convolution import (conv_as_matrix, conv_params, dense_params,
                                          equivariance_error, shift)


def test_the_notes_120000_weights_per_neuron():
    layer = nn.Linear(200 * 200 * 3, 1, bias=False)
    assert layer.weight.numel() == 120_000 == dense_params(200 * 200 * 3, 1) - 1


@pytest.mark.parametrize("n_in,n_out", [(12, 5), (300, 7), (1, 1)])
def test_dense_count_matches_numel(n_in, n_out):
    layer = nn.Linear(n_in, n_out)
    assert dense_params(n_in, n_out) == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("c_in,c_out,k",
                         [(3, 16, 3), (1, 1, 5), (8, 4, 1), (64, 128, 7)])
def test_conv_count_matches_numel_and_ignores_image_size(c_in, c_out, k):
    layer = nn.Conv2d(c_in, c_out, k)
    assert conv_params(c_in, c_out, k) == sum(p.numel() for p in layer.parameters())
    for size in (k, 32, 200):  # the same layer works on any image size
        assert layer(torch.zeros(1, c_in, size, size)).shape[1] == c_out


def test_conv_matrix_equals_conv1d_and_is_banded():
    torch.manual_seed(0)
    w, x = torch.randn(3), torch.randn(10)
    M = conv_as_matrix(w, 10)
    assert torch.allclose(M @ x, F.conv1d(x.view(1, 1, -1), w.view(1, 1, -1)).flatten(),
                          atol=1e-6)
    assert (M != 0).sum() == 3 * 8  # 3 non-zeros per row: sparse interactions
    assert torch.equal(M[0, :3], M[5, 5:8])  # every row holds the same weights: sharing


def test_translation_equivariance_circular_padding():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")
    X = torch.randn(2, 3, 16, 20)
    for dy, dx in [(0, 1), (3, -2), (7, 11)]:
        assert equivariance_error(conv, X, dy, dx) < 1e-5


def test_equivariance_with_zero_padding_breaks_only_at_the_border():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, 3, padding=1)
    X = torch.rand(1, 1, 12, 12)
    diff = (conv(shift(X, 0, 1)) - shift(conv(X), 0, 1)).abs().detach()
    assert diff[..., 2:-2].max() < 1e-6
    assert diff.max() > 1e-3  # a test that could fail: the border really differs


def test_a_dense_layer_is_not_equivariant():
    torch.manual_seed(0)
    dense = nn.Linear(16, 16)
    x = torch.randn(16)
    assert (dense(torch.roll(x, 1)) - torch.roll(dense(x), 1)).abs().max() > 1e-2


def test_global_max_pooling_is_invariant_to_circular_shifts():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")
    X = torch.randn(1, 3, 10, 10)
    pooled = conv(X).amax(dim=(2, 3))
    assert torch.allclose(conv(shift(X, 2, 5)).amax(dim=(2, 3)), pooled)
    assert not torch.allclose(conv(shift(X, 2, 5)), conv(X))  # the maps did move
