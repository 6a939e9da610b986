"""Reference tests for snippets/cnn/convolution.py (page: cnn/convolution.md)."""

import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d, correlate2d

from snippets.cnn.convolution import KERNELS, conv2d, conv2d_math, corr2d, output_size


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
    # 3 input channels, 20 filters of shape 3x5x5: 20 output channels, not 3 x 20 images.
    X = torch.randn(1, 3, 32, 32)
    W = torch.randn(20, 3, 5, 5)
    assert conv2d(X, W, padding=2).shape == (1, 20, 32, 32)
    assert torch.nn.Conv2d(3, 20, 5).weight.shape == W.shape
