"""Reference tests for snippets/cnn/convolution.py (page: cnn/convolution.md)."""

import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d, correlate2d

from snippets.cnn.convolution import (CLAIMS, KERNELS, conv2d, conv2d_math, corr2d,
                                     output_size, padding_for)


def test_seed_kernel_flip_example():
    # The class notes' example: flip left-right, then up-down, before correlating.
    K = torch.tensor([[3.0, 4, 5], [1, 0, 2], [-1, 9, 7]])
    expected = torch.tensor([[7.0, 9, -1], [2, 0, 1], [5, 4, 3]])
    assert torch.equal(torch.flip(K, dims=(0, 1)), expected)
    assert torch.equal(
        torch.flip(torch.fliplr(K), dims=(0,)), expected
    )  # the notes' order


def test_convolution_is_correlation_with_the_flipped_kernel():
    X, K = (
        torch.randn(7, 9, dtype=torch.float64),
        torch.randn(3, 3, dtype=torch.float64),
    )
    ours = conv2d_math(X, K).numpy()
    assert ours == pytest.approx(convolve2d(X.numpy(), K.numpy(), mode="valid"))
    assert corr2d(X, K).numpy() == pytest.approx(
        correlate2d(X.numpy(), K.numpy(), "valid")
    )
    # and they differ unless the kernel is symmetric under a 180° turn
    assert not torch.allclose(conv2d_math(X, K), corr2d(X, K))


def test_torch_conv2d_does_not_flip():
    """F.conv2d is SciPy's correlate2d, not its convolve2d."""
    torch.manual_seed(0)
    X, K = torch.randn(7, 8, dtype=torch.float64), KERNELS["sobel_x"].double()
    ours = F.conv2d(X[None, None], K[None, None])[0, 0].numpy()
    assert ours == pytest.approx(correlate2d(X.numpy(), K.numpy(), "valid"))
    assert ours == pytest.approx(-convolve2d(X.numpy(), K.numpy(), "valid"))  # negated
    assert ours != pytest.approx(convolve2d(X.numpy(), K.numpy(), "valid"))


def test_convolution_equals_correlation_with_the_turned_kernel_up_to_the_index():
    """(X * K)[i, j] (full convolution, indices as in the formula) equals the valid
    correlation with rot180(K) at [i - (k - 1), j - (k - 1)]: same numbers, moved."""
    torch.manual_seed(0)
    X = torch.randn(6, 7, dtype=torch.float64)
    K = torch.randn(3, 3, dtype=torch.float64)
    full = convolve2d(X.numpy(), K.numpy(), "full")  # index i runs from 0 to n + k - 2
    valid = corr2d(X, torch.flip(K, dims=(0, 1))).numpy()
    assert valid == pytest.approx(full[2:-2, 2:-2])  # k - 1 = 2 rows and columns in


def test_seed_elementwise_product_without_the_sum_is_not_a_feature_map():
    """Seed 000: convolution "computes the element-wise multiplication". Without the
    sum each position gives k x k numbers, not one: no feature map comes out."""
    X, K = torch.randn(5, 5), KERNELS["sobel_x"]
    patch = X[1:4, 2:5]
    seed_version = patch * K  # what the notes describe
    assert seed_version.shape == (3, 3)  # nine numbers for one position
    assert corr2d(X, K)[1, 2] == pytest.approx(seed_version.sum().item(), abs=1e-5)
    assert corr2d(X, K).shape == (3, 3)  # one number per position


@pytest.mark.parametrize("k", [1, 3, 5])
def test_valid_same_and_full_padding(k):
    n = 9
    X, K = torch.randn(n, n), torch.randn(k, k)
    sizes = {m: output_size(n, k, padding_for(m, k)) for m in ("valid", "same", "full")}
    assert sizes == {"valid": n - k + 1, "same": n, "full": n + k - 1}
    for mode in ("valid", "same"):  # PyTorch names two of them
        ref = F.conv2d(X[None, None], K[None, None], padding=mode)[0, 0]
        ours = corr2d(F.pad(X, (padding_for(mode, k),) * 4), K)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    full = corr2d(F.pad(X, (k - 1,) * 4), K).numpy()  # every partial overlap
    ref = correlate2d(X.double().numpy(), K.double().numpy(), "full")
    assert full == pytest.approx(ref, abs=1e-5)


def test_claims_return_bools():
    metrics = dict.fromkeys(["max_abs_err_vs_torch", "flip_identity_err",
                             "conv2d_vs_corr_err", "conv2d_vs_math_conv_err",
                             "padding_stride_out"], 0.5)
    assert all(isinstance(rule(metrics), bool) for rule in CLAIMS.values())


def test_symmetric_kernels_do_not_care_about_the_flip():
    X = torch.randn(6, 6)
    for name in ("blur", "sharpen"):
        torch.testing.assert_close(
            conv2d_math(X, KERNELS[name]), corr2d(X, KERNELS[name])
        )


@pytest.mark.parametrize(
    "n,k,p,s,expected",
    [
        (6, 3, 0, 1, 4),
        (5, 3, 1, 2, 3),
        (7, 3, 1, 1, 7),
        (32, 5, 2, 1, 32),
        (224, 7, 3, 2, 112),
    ],
)
def test_output_size_formula(n, k, p, s, expected):
    assert output_size(n, k, p, s) == expected
    assert (
        F.conv2d(
            torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p
        ).shape[-1]
        == expected
    )


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 0), (2, 2), (3, 1)])
def test_scratch_conv2d_matches_torch_values_and_gradients(stride, padding):
    torch.manual_seed(stride * 10 + padding)
    X = torch.randn(2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    W = torch.randn(4, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    ours = conv2d(X, W, b, stride, padding)
    ref = F.conv2d(X, W, b, stride=stride, padding=padding)
    torch.testing.assert_close(ours, ref)
    g = torch.randn_like(ref)
    grads = torch.autograd.grad(ours, (X, W, b), g)
    ref_grads = torch.autograd.grad(ref, (X, W, b), g)
    for mine, theirs in zip(grads, ref_grads):
        torch.testing.assert_close(mine, theirs)


def test_multichannel_shapes():
    # 3 input channels, 20 filters of shape 3x5x5: 20 output channels, not 3 x 20.
    X = torch.randn(1, 3, 32, 32)
    W = torch.randn(20, 3, 5, 5)
    assert conv2d(X, W, padding=2).shape == (1, 20, 32, 32)
    assert torch.nn.Conv2d(3, 20, 5).weight.shape == W.shape


def test_default_arguments_mean_no_padding_and_stride_one():
    assert output_size(6, 3) == 4
    X, W = torch.randn(1, 2, 6, 5), torch.randn(3, 2, 3, 3)
    assert conv2d(X, W).shape == (1, 3, 4, 3)
    torch.testing.assert_close(conv2d(X, W), F.conv2d(X, W))
