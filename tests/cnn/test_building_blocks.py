"""Reference tests for snippets/cnn/building_blocks.py."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snippets.cnn.building_blocks import (Inception, NaiveInception, batch_norm2d,
                                          conv1x1, conv_macs, num_params, pool2d,
                                          small_net, trace_shapes)


@pytest.mark.parametrize("mode,ref", [("max", F.max_pool2d), ("avg", F.avg_pool2d)])
@pytest.mark.parametrize("k", [2, 3])
def test_pool2d_matches_torch(mode, ref, k):
    X = torch.randn(2, 3, 7, 9)
    assert torch.allclose(pool2d(X, k, mode), ref(X, k), atol=1e-6)


def test_max_pooling_on_a_hand_example():
    X = torch.tensor([[1.0, 2, 0, 0], [3, 4, 0, 1], [5, 0, 2, 2], [0, 0, 2, 2]])
    X = X[None, None]
    assert pool2d(X, 2).flatten().tolist() == [4, 1, 5, 2]
    assert pool2d(X, 2, "avg").flatten().tolist() == [2.5, 0.25, 1.25, 2]


def test_conv1x1_is_channel_mixing_and_matches_conv2d():
    X, W = torch.randn(2, 5, 4, 3), torch.randn(7, 5)
    Y = conv1x1(X, W)
    assert torch.allclose(Y, F.conv2d(X, W[:, :, None, None]), atol=1e-5)
    # at each pixel it is a matrix-vector product over channels
    assert torch.allclose(Y[1, :, 2, 1], W @ X[1, :, 2, 1], atol=1e-5)
    assert num_params(nn.Conv2d(5, 7, 1)) == 5 * 7 + 7


def test_batch_norm_matches_torch_values_and_gradients():
    X = torch.randn(4, 3, 5, 5, requires_grad=True)
    bn = nn.BatchNorm2d(3).train()
    g = bn.weight.detach().clone().requires_grad_()
    b = bn.bias.detach().clone().requires_grad_()
    ours, ref = batch_norm2d(X, g, b), bn(X)
    assert torch.allclose(ours, ref, atol=1e-5)
    w = torch.randn_like(ref)
    (gx_ours, gg_ours) = torch.autograd.grad((ours * w).sum(), (X, g))
    (gx_ref, gg_ref) = torch.autograd.grad((ref * w).sum(), (X, bn.weight))
    assert torch.allclose(gx_ours, gx_ref, atol=1e-4)
    assert torch.allclose(gg_ours, gg_ref, atol=1e-4)


def test_normalization_is_per_channel():
    X = torch.randn(8, 3, 4, 4) * torch.tensor([1.0, 10, 100]).view(1, 3, 1, 1) + 5
    Y = batch_norm2d(X, torch.ones(3), torch.zeros(3))
    assert torch.allclose(Y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    var = Y.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(var, torch.ones(3), atol=1e-3)


def test_pytorch_dropout_is_inverted_dropout():
    """Seed mistake: scale by (1 - p) at test time. PyTorch scales in training."""
    torch.manual_seed(0)
    drop, x = nn.Dropout(p=0.25), torch.ones(10_000)
    kept = drop.train()(x)
    values = kept.unique()
    assert len(values) == 2 and values[0] == 0
    assert torch.isclose(values[1], torch.tensor(4 / 3))
    assert abs(kept.mean().item() - 1.0) < 0.03  # expectation preserved
    assert torch.equal(drop.eval()(x), x)  # test time: identity, no rescaling


def test_inception_shapes_params_and_macs():
    X = torch.randn(1, 192, 28, 28)
    block = Inception(192, 64, 96, 128, 16, 32, 32)
    naive = NaiveInception(192, 64, 128, 32)
    assert block(X).shape == (1, 256, 28, 28)
    assert naive(X).shape == (1, 192 + 64 + 128 + 32, 28, 28)
    by_hand = (192 * 64 + 64) + (192 * 96 + 96) + (96 * 128 * 9 + 128) + \
        (192 * 16 + 16) + (16 * 32 * 25 + 32) + (192 * 32 + 32)
    assert num_params(block) == by_hand == 163_696
    assert num_params(naive) == (192 * 64 + 64) + (192 * 128 * 9 + 128) \
        + (192 * 32 * 25 + 32)
    macs_3x3_naive = 28 * 28 * 128 * 192 * 9
    assert conv_macs(nn.Conv2d(192, 128, 3, padding=1), X) == macs_3x3_naive
    assert conv_macs(naive, X) > 2 * conv_macs(block, X)


def test_small_net_shape_trace():
    net = small_net().eval()
    rows = trace_shapes(net, torch.zeros(2, 1, 28, 28))
    shapes = [r[1] for r in rows]
    assert shapes[0] == (2, 1, 28, 28)
    assert (2, 16, 14, 14) in shapes and (2, 64, 7, 7) in shapes
    assert shapes[-1] == (2, 10)
    assert sum(r[2] for r in rows) == sum(p.numel() for p in net.parameters())
