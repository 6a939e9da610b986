"""Reference tests for snippets/cnn/mnist1d.py."""

import pytest
import torch
import torch.nn.functional as F

from snippets.cnn.mnist1d import Config, cnn, conv1d, load, logistic, mlp, num_params


@pytest.mark.parametrize("c_in,c_out,k,padding",
                         [(1, 4, 5, 2), (3, 2, 3, 0), (2, 2, 1, 0)])
def test_conv1d_from_scratch_matches_torch(c_in, c_out, k, padding):
    X = torch.randn(3, c_in, 17, requires_grad=True)
    W = torch.randn(c_out, c_in, k, requires_grad=True)
    b = torch.randn(c_out)
    ours, ref = conv1d(X, W, b, padding), F.conv1d(X, W, b, padding=padding)
    assert torch.allclose(ours, ref, atol=1e-5)
    g_ours = torch.autograd.grad(ours.square().sum(), (X, W))
    g_ref = torch.autograd.grad(ref.square().sum(), (X, W))
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_ours, g_ref))


def test_generated_data_shapes_and_shuffle_is_a_fixed_permutation():
    cfg = Config(num_samples=200)
    X, y, X_test, y_test = load(cfg)
    Xs, ys, _, _ = load(cfg, shuffle=True)
    assert X.shape == (160, 40) and X_test.shape == (40, 40)
    assert set(y.tolist()) <= set(range(10))
    assert torch.equal(y, ys)  # same examples in the same order
    # every shuffled column is one of the ordered columns: positions moved, values kept
    match = [(Xs[:, j:j + 1] - X).abs().amax(0).argmin().item() for j in range(40)]
    assert sorted(match) == list(range(40)) and match != list(range(40))
    assert all(torch.allclose(Xs[:, j], X[:, match[j]], atol=1e-5) for j in range(40))


def test_shapes_and_parameter_counts():
    X = torch.randn(7, 40)
    for net in (logistic(), mlp(100), cnn(32)):
        assert net.eval()(X).shape == (7, 10)
    assert num_params(logistic()) == 40 * 10 + 10
    assert num_params(mlp(100)) == (40 * 100 + 100) + (100 * 100 + 100) \
        + (100 * 10 + 10)
    c = 32
    by_hand = (1 * c * 5 + c) + 2 * c + (c * c * 5 + c) + 2 * c \
        + (c * 2 * c * 3 + 2 * c) + 4 * c + (2 * c * 2 * c * 3 + 2 * c) + 4 * c \
        + (2 * c * 10 * 10 + 10)
    assert num_params(cnn(c)) == by_hand == sum(p.numel() for p in cnn(c).parameters())


def test_permuting_inputs_is_invisible_to_a_dense_layer_but_not_to_a_conv():
    """Why shuffling hurts only the CNN: a dense layer can permute its columns."""
    torch.manual_seed(0)
    perm = torch.randperm(40)
    X = torch.randn(5, 40)
    dense = mlp(16)
    permuted = mlp(16)
    permuted.load_state_dict(dense.state_dict())
    with torch.no_grad():
        permuted[0].weight.copy_(dense[0].weight[:, perm])  # column j <- column perm[j]
    assert torch.allclose(permuted(X[:, perm]), dense(X), atol=1e-5)
    # a convolution has no such freedom: shared weights cannot follow the permutation
    conv = cnn(4).eval()
    assert not torch.allclose(conv(X[:, perm]), conv(X), atol=1e-3)
