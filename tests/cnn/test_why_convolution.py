"""Reference tests for snippets/cnn/why_convolution.py."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snippets.cnn.why_convolution import (CLAIMS, RF_STACKS, conv_as_matrix,
                                          conv_params, dense_params, equivariance_error,
                                          measured_receptive_field, receptive_field,
                                          relative_change, shift,
                                          strided_equivariance_error)


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


@pytest.mark.parametrize("k,s", [(3, 1), (3, 2), (5, 1), (5, 3)])
def test_zero_padding_breaks_equivariance_in_a_band_of_k_half_plus_shift(k, s):
    """With a circular shift by s and zero padding, the two orders differ in the
    first floor(k/2) + s columns (where content comes in) and the last floor(k/2)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, k, padding=k // 2)
    X = torch.rand(1, 1, 12, 16) + 0.5
    diff = (conv(shift(X, 0, s)) - shift(conv(X), 0, s)).abs().detach()[0, 0]
    r, W = k // 2, X.shape[-1]
    assert diff[:, r + s : W - r].max() < 1e-5  # exact in between
    assert diff[:, r + s - 1].min() > 1e-4 and diff[:, W - r].min() > 1e-4
    assert diff[:, :r + s].min() > 1e-4 and diff[:, W - r:].min() > 1e-4


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


def test_a_conv_layer_is_equivariant_not_invariant():
    """The seed's and many readers' slip: "convolution is translation invariant"."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")
    X = torch.randn(1, 3, 10, 10)
    moved = conv(shift(X, 2, 5))
    assert not torch.allclose(moved, conv(X), atol=1e-3)  # not invariant: maps move
    assert torch.allclose(moved, shift(conv(X), 2, 5), atol=1e-5)  # equivariant


def test_stride_and_pooling_keep_equivariance_only_for_even_shifts():
    torch.manual_seed(0)
    X = torch.randn(1, 3, 16, 16)
    strided = nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="circular")
    assert strided_equivariance_error(strided, X, 2) < 1e-5
    assert strided_equivariance_error(strided, X, 4) < 1e-5
    assert strided_equivariance_error(strided, X, 1) > 0.05  # between two grid steps
    assert strided_equivariance_error(strided, X, 3) > 0.05
    pool = lambda Z: F.max_pool2d(Z, 2)  # noqa: E731  2 x 2 pooling: the same story
    assert torch.equal(pool(shift(X, 0, 2)), shift(pool(X), 0, 1))
    assert not any(torch.allclose(pool(shift(X, 0, 1)), shift(pool(X), 0, j))
                   for j in (0, 1))


@pytest.mark.parametrize("layers,expected", [
    ([(3, 1)], 3), ([(3, 1), (3, 1)], 5), ([(5, 1), (5, 1)], 9),
    ([(3, 1), (2, 2), (3, 1)], 8), ([(3, 2), (3, 2), (3, 2)], 15),
    ([(7, 2), (3, 2), (3, 1)], 19), ([(3, 2), (3, 1), (3, 1)], 11)])
def test_receptive_field_formula_by_hand_and_by_gradient(layers, expected):
    assert receptive_field(layers) == expected
    assert measured_receptive_field(layers, size=41) == expected


def test_two_3x3_convs_see_as_far_as_one_5x5_with_fewer_weights():
    assert receptive_field(RF_STACKS["two 3×3 convs"]) == receptive_field([(5, 1)])
    c = 64
    assert 2 * conv_params(c, c, 3) < conv_params(c, c, 5)


def test_relative_change_is_zero_without_a_shift_and_grows_with_it():
    torch.manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(16.0), torch.arange(24.0), indexing="ij")
    scene = torch.sin(cols / 6 + rows / 9).expand(1, 3, 16, 24)  # smooth, like a photo
    conv = nn.Conv2d(3, 4, 3, padding=1)
    f = lambda X: F.relu(conv(X))  # noqa: E731
    assert relative_change(f, scene, 16, 0) == 0
    assert 0 < relative_change(f, scene, 16, 1) < relative_change(f, scene, 16, 8)


def test_claims_return_bools():
    metrics = dict.fromkeys(["equivariance_err_circular",
                             "equivariance_err_zero_pad_interior", "stride2_err_shift2",
                             "stride2_err_shift1", "dense_over_conv",
                             "change_global_pool_shift1", "change_no_pool_shift1",
                             "change_global_pool_unrelated"], 0.5)
    metrics |= {f"rf_{k}_{i}": 3 for k in ("formula", "measured") for i in range(4)}
    assert all(isinstance(rule(metrics), bool) for rule in CLAIMS.values())


def test_global_pooling_changes_less_than_the_maps_under_a_pan():
    torch.manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")
    scene = torch.sin(cols / 5 + rows / 7).expand(1, 3, 24, 32).contiguous()
    conv = nn.Conv2d(3, 6, 3, padding=1)
    maps = lambda X: F.relu(conv(X))  # noqa: E731
    pooled = lambda X: maps(X).amax(dim=(2, 3))  # noqa: E731
    assert relative_change(pooled, scene, 24, 2) < relative_change(maps, scene, 24, 2) / 3


def test_footprint_of_two_3x3_convs_counts_the_paths_and_is_centred():
    from snippets.cnn.why_convolution import footprint

    size = 33
    fp = footprint([(3, 1), (3, 1)], size)
    v = torch.tensor([1.0, 2, 3, 2, 1])  # paths through a 3-then-3 window, per axis
    c = size // 2
    assert torch.equal(fp[c - 2:c + 3, c - 2:c + 3], torch.outer(v, v))
    assert fp.sum() == 81 and (fp != 0).sum() == 25  # 9 x 9 paths, a 5 x 5 patch


def test_shift_moves_rows_by_dy_and_columns_by_dx():
    X = torch.arange(12.0).view(1, 1, 3, 4)
    Y = shift(X, 1, 0)
    assert torch.equal(Y[0, 0, 1], X[0, 0, 0]) and torch.equal(Y[0, 0, 0], X[0, 0, 2])
    Z = shift(X, 0, 1)
    assert torch.equal(Z[0, 0, :, 1], X[0, 0, :, 0])


def test_equivariance_error_is_the_largest_gap():
    torch.manual_seed(0)
    X = torch.randn(1, 3, 12, 12)
    zeros = nn.Conv2d(3, 4, 3, padding=1)  # zero padding: the border breaks it
    with torch.no_grad():
        gap = (zeros(shift(X, 2, -1)) - shift(zeros(X), 2, -1)).abs()
    assert equivariance_error(zeros, X, 2, -1) == pytest.approx(gap.max().item())
    assert equivariance_error(zeros, X, 2, -1) > 1e-2


def test_strided_equivariance_error_takes_the_nearer_of_two_output_shifts():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="circular")
    nearer = set()
    with torch.no_grad():
        for dx in (1, 3, 5, 7, 9, 11):
            X = torch.randn(1, 3, 20, 20)  # a fresh image: either neighbour may win
            Y = conv(X)
            moved = conv(shift(X, 0, dx))
            gaps = [((moved - shift(Y, 0, j)).norm() / Y.norm()).item()
                    for j in (dx // 2, dx // 2 + 1)]
            assert strided_equivariance_error(conv, X, dx) == pytest.approx(min(gaps))
            assert abs(gaps[0] - gaps[1]) > 1e-3  # the choice matters
            nearer.add(gaps[0] < gaps[1])
    assert nearer == {True, False}  # both candidates are needed


def test_relative_change_by_hand():
    scene = torch.tensor([[[[1.0, 2.0, 4.0]]]])  # (1, 1, 1, 3)
    f = lambda X: X  # noqa: E731
    # windows [1, 2] and [2, 4]: |(1, 2) - (2, 4)| / |(1, 2)| = 1
    assert relative_change(f, scene, 2, 1) == pytest.approx(1.0)
    scene = torch.tensor([[[[3.0, 4.0, 0.0]]]])
    # windows [3, 4] and [4, 0]: |(-1, 4)| / 5
    assert relative_change(f, scene, 2, 1) == pytest.approx(17 ** 0.5 / 5)
