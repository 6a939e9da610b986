"""Reference tests for snippets/cnn/building_blocks.py."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snippets.cnn.building_blocks import (CLAIMS, Inception, NaiveInception,
                                          batch_norm2d, batch_norm2d_eval, conv1x1,
                                          conv_macs, layer_macs, num_params, pool2d,
                                          small_net, trace_shapes, update_running)


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
    """Seed 001: "a 1x1 conv reduces channels". It mixes them; here: 5 -> 7."""
    X, W = torch.randn(2, 5, 4, 3), torch.randn(7, 5)
    W = W.sign() * (W.abs() + 0.1)  # no weight near 0: every channel pair is linked
    Y = conv1x1(X, W)
    assert Y.shape == (2, 7, 4, 3)
    assert torch.allclose(Y, F.conv2d(X, W[:, :, None, None]), atol=1e-5)
    # at each pixel it is a matrix-vector product over channels
    assert torch.allclose(Y[1, :, 2, 1], W @ X[1, :, 2, 1], atol=1e-5)
    # every output channel depends on every input channel: not a per-channel scaling
    X2 = X.clone()
    X2[:, 3] += 1.0
    change = conv1x1(X2, W) - Y  # output channel o moves by W[o, 3] at every pixel
    torch.testing.assert_close(change, W[:, 3].view(1, 7, 1, 1).expand_as(change),
                               atol=1e-5, rtol=0)
    assert (change.abs() > 0.1 - 1e-5).all()
    assert num_params(nn.Conv2d(5, 7, 1)) == 5 * 7 + 7


def test_batch_norm_matches_torch_values_and_gradients():
    X = torch.randn(4, 3, 5, 5, requires_grad=True)
    bn = nn.BatchNorm2d(3).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.normal_()
    g = bn.weight.detach().clone().requires_grad_()
    b = bn.bias.detach().clone().requires_grad_()
    ours, ref = batch_norm2d(X, g, b), bn(X)
    assert torch.allclose(ours, ref, atol=1e-5)
    w = torch.randn_like(ref)
    grads_ours = torch.autograd.grad((ours * w).sum(), (X, g, b))
    grads_ref = torch.autograd.grad((ref * w).sum(), (X, bn.weight, bn.bias))
    for mine, theirs in zip(grads_ours, grads_ref):
        assert torch.allclose(mine, theirs, atol=1e-4)


def test_running_statistics_and_eval_mode_match_torch():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=0.3).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.normal_()
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    for _ in range(3):  # a few training batches move the running statistics
        X = torch.randn(4, 3, 5, 6) * 3 + 2
        mean, var = update_running(mean, var, X, momentum=0.3)
        bn(X)
    assert torch.allclose(mean, bn.running_mean, atol=1e-5)
    assert torch.allclose(var, bn.running_var, atol=1e-4)
    X = torch.randn(2, 3, 4, 4)
    ours = batch_norm2d_eval(X, bn.weight, bn.bias, mean, var)
    assert torch.allclose(ours, bn.eval()(X), atol=1e-5)
    # eval mode ignores the batch: one image gets the same answer alone or in a batch
    assert torch.allclose(ours[:1], batch_norm2d_eval(X[:1], bn.weight, bn.bias, mean,
                                                      var))
    # training mode does not (the wrong mode at test time)
    assert not torch.allclose(batch_norm2d(X, bn.weight, bn.bias), ours, atol=1e-2)


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
    # the seed's recipe on top of PyTorch's: test outputs shrink once, by (1 - p),
    # so they no longer match the training-time expectation
    mixed = (1 - 0.25) * drop.eval()(x)
    assert abs(mixed.mean().item() - kept.mean().item()) > 0.2


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


def test_without_activations_conv_and_average_pooling_stay_linear():
    """Seeds 004: "pooling is the CNN's activation function", and the pipeline
    conv -> pool -> ... -> activation -> output. With average pooling and no
    activation between the layers, the whole stack is one linear map."""
    torch.manual_seed(0)
    seed_net = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.AvgPool2d(2),
                             nn.Conv2d(4, 4, 3, bias=False), nn.AvgPool2d(2),
                             nn.Flatten(), nn.Linear(4, 3, bias=False))
    X, Z = torch.randn(5, 1, 12, 12), torch.randn(5, 1, 12, 12)
    f = seed_net
    assert torch.allclose(f(2 * X - 3 * Z), 2 * f(X) - 3 * f(Z), atol=1e-5)
    assert torch.allclose(pool2d(2 * X - 3 * Z, 2, "avg"),
                          2 * pool2d(X, 2, "avg") - 3 * pool2d(Z, 2, "avg"), atol=1e-6)
    right = nn.Sequential(seed_net[0], nn.ReLU(), seed_net[1], seed_net[2], nn.ReLU(),
                          seed_net[3], seed_net[4], seed_net[5])  # same weights
    assert not torch.allclose(right(2 * X - 3 * Z), 2 * right(X) - 3 * right(Z),
                              atol=1e-2)


def test_max_pooling_a_board_loses_where_the_stone_is():
    """Seed 004: in Go, "max pooling picks the best move". Pooling a 19 x 19 board
    maps different positions to the same input for the next layer; a move needs the
    exact point, which is why AlphaGo's policy network does not pool."""
    a, b = torch.zeros(1, 1, 19, 19), torch.zeros(1, 1, 19, 19)
    a[0, 0, 4, 4] = 1.0  # a stone on one point ...
    b[0, 0, 5, 5] = 1.0  # ... or on a neighbouring point
    assert torch.equal(pool2d(a, 2), pool2d(b, 2))  # pooled: indistinguishable
    conv = nn.Conv2d(1, 8, 3, padding=1)
    assert not torch.allclose(conv(a), conv(b))  # convolutions keep the difference


def test_flatten_is_channel_row_column_not_the_notes_row_column_channel():
    """Seed 004 flattens by "row, column, channel" (TensorFlow's NHWC order)."""
    X = torch.arange(2 * 3 * 4 * 5).view(2, 3, 4, 5)  # (N, C, H, W)
    flat = nn.Flatten()(X)
    c, i, j = 2, 1, 3
    assert flat[1, c * 4 * 5 + i * 5 + j] == X[1, c, i, j]
    nhwc = X.permute(0, 2, 3, 1).flatten(1)  # the notes' order
    assert nhwc[1, i * 5 * 3 + j * 3 + c] == X[1, c, i, j]
    assert not torch.equal(flat, nhwc)  # same numbers, different order


def test_pooling_has_no_parameters_but_shrinks_what_follows():
    """Seed 003: pooling "shrinks the model". It has no parameters of its own; it
    shrinks the activations, and so the dense layer after flatten."""
    assert num_params(nn.MaxPool2d(2)) == num_params(nn.AvgPool2d(2)) == 0
    X = torch.randn(1, 16, 28, 28)
    assert pool2d(X, 2).numel() * 4 == X.numel()
    dense_after = lambda Y: num_params(nn.Linear(Y[0].numel(), 10))  # noqa: E731
    assert dense_after(pool2d(X, 2)) < dense_after(X) / 3.9


def test_maps_shrink_because_of_pooling_not_because_of_same_padded_convs():
    """Seed 002: conv layers shrink 20 -> 10 -> 5. A same-padded conv keeps the size;
    the halving comes from pooling (or a stride)."""
    X = torch.randn(1, 3, 20, 20)
    assert nn.Conv2d(3, 8, 3, padding=1)(X).shape[-1] == 20
    assert pool2d(X, 2).shape[-1] == 10 and pool2d(pool2d(X, 2), 2).shape[-1] == 5
    assert nn.Conv2d(3, 8, 3, stride=2, padding=1)(X).shape[-1] == 10


def test_layer_macs_counts_convs_and_dense_layers():
    net = small_net().eval()
    X = torch.zeros(1, 1, 28, 28)
    macs = layer_macs(net, X)
    assert len(macs) == len(trace_shapes(net, X))
    assert macs[1] == 28 * 28 * 16 * 9  # first conv: H W C_out C_in k^2
    assert macs[-1] == 32 * 10 and macs[4] == 0  # the dense layer; a pooling
    assert macs[0] == 0  # the input row costs nothing


def test_claims_return_bools():
    metrics = dict.fromkeys(["pool_err_vs_torch", "conv1x1_err_vs_torch",
                             "batch_norm_err_vs_torch", "batch_norm_eval_err_vs_torch",
                             "macs_ratio", "inception_params", "naive_params",
                             "small_net_params", "small_net_params_by_layer"], 1.0)
    assert all(isinstance(rule(metrics), bool) for rule in CLAIMS.values())


def test_batch_norm_undoes_a_rescaling_that_weight_decay_would_punish():
    """Seed 003 calls normalization layers "regularization layers". Batch norm
    standardizes: scale the conv before it by 10 and nothing changes; an L2
    regularizer on the same weights grows 100-fold."""
    torch.manual_seed(0)
    X = torch.randn(8, 3, 6, 6)
    W = torch.randn(4, 3, 3, 3)
    gamma, beta = torch.rand(4) + 0.5, torch.randn(4)
    out = batch_norm2d(F.conv2d(X, W), gamma, beta)
    out_scaled = batch_norm2d(F.conv2d(X, 10 * W), gamma, beta)
    assert torch.allclose(out, out_scaled, atol=1e-4)
    assert torch.isclose((10 * W).square().sum(), 100 * W.square().sum())


def test_default_momentum_and_a_tiny_variance_match_torch():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(2).train()  # PyTorch's default momentum
    X = torch.randn(3, 2, 4, 4) + 1
    mean, var = update_running(bn.running_mean.clone(), bn.running_var.clone(), X)
    bn(X)
    assert torch.allclose(mean, bn.running_mean, atol=1e-6)
    assert torch.allclose(var, bn.running_var, atol=1e-6)
    with torch.no_grad():  # where eps matters: a variance as small as eps itself
        bn.running_var.fill_(1e-5)
    Y = torch.randn(2, 2, 3, 3) * 1e-3
    ours = batch_norm2d_eval(Y, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    assert torch.allclose(ours, bn.eval()(Y), rtol=1e-4, atol=1e-5)


def test_conv_macs_counts_per_example_as_an_int_and_cleans_up():
    X = torch.randn(3, 4, 6, 6)
    single = nn.Conv2d(4, 1, 3)  # one output channel
    assert conv_macs(single, X) == 4 * 9 * 4 * 4
    assert isinstance(conv_macs(single, X), int)
    net = nn.Sequential(nn.Conv2d(4, 2, 3), nn.ReLU(), nn.Conv2d(2, 5, 1))
    assert conv_macs(net, X) == 4 * 4 * 2 * 4 * 9 + 4 * 4 * 5 * 2
    assert all(not m._forward_hooks for m in net.modules())  # no hook left behind


def test_batch_norm_of_a_constant_channel_is_finite():
    """eps keeps the division defined when a channel has no variance at all."""
    X = torch.randn(4, 2, 3, 3)
    X[:, 1] = 5.0  # a dead channel: every value the same
    Y = batch_norm2d(X, torch.ones(2), torch.tensor([0.0, 0.7]))
    assert torch.isfinite(Y).all() and torch.allclose(Y[:, 1], torch.tensor(0.7))
