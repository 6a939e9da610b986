"""Reference tests for snippets/cnn/mnist1d.py."""

import pytest
import torch
import torch.nn.functional as F

from snippets.cnn.mnist1d import (CLAIMS, Config, PaperMLP, cnn, conv1d, load, logistic,
                                  mlp, num_params, paper_cnn, train_paper)


@pytest.mark.parametrize("c_in,c_out,k,padding",
                         [(1, 4, 5, 2), (3, 2, 3, 0), (2, 2, 1, 0)])
def test_conv1d_from_scratch_matches_torch(c_in, c_out, k, padding):
    X = torch.randn(3, c_in, 17, requires_grad=True)
    W = torch.randn(c_out, c_in, k, requires_grad=True)
    b = torch.randn(c_out, requires_grad=True)
    ours, ref = conv1d(X, W, b, padding), F.conv1d(X, W, b, padding=padding)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5)
    g = torch.randn_like(ref)  # a random upstream gradient: no symmetry to hide behind
    g_ours = torch.autograd.grad(ours, (X, W, b), g)
    g_ref = torch.autograd.grad(ref, (X, W, b), g)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_ours, g_ref))


def test_conv1d_on_a_hand_example():
    X = torch.tensor([[[1.0, 2, 3, 4]]])
    W = torch.tensor([[[1.0, 0, -1]]])  # no flip: y[l] = x[l] - x[l + 2]
    assert conv1d(X, W, torch.zeros(1)).flatten().tolist() == [-2, -2]
    assert conv1d(X, W, torch.ones(1), padding=1).flatten().tolist() == [-1, -1, -1, 4]


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
    for net in (logistic(), mlp(100), cnn(32), PaperMLP(100), paper_cnn(25)):
        assert net.eval()(X).shape == (7, 10)
    assert num_params(logistic()) == 40 * 10 + 10
    assert num_params(mlp(100)) == (40 * 100 + 100) + (100 * 100 + 100) \
        + (100 * 10 + 10) == num_params(PaperMLP(100)) == 15_210
    c = 32  # no conv biases: each conv is followed by batch norm (2 per channel)
    by_hand = (1 * c * 5) + 2 * c + (c * c * 5) + 2 * c \
        + (c * 2 * c * 3) + 4 * c + (2 * c * 2 * c * 3) + 4 * c \
        + (2 * c * 10 * 10 + 10)
    assert num_params(cnn(c)) == by_hand
    c = 25  # the paper's ConvBase: 5,210 parameters, as its repository prints
    assert num_params(paper_cnn(c)) == (5 * c + c) + 2 * (3 * c * c + c) \
        + (5 * c * 10 + 10) == 5_210


def test_the_paper_mlp_is_residual_and_ours_is_not():
    torch.manual_seed(0)
    net = PaperMLP(8)
    x = torch.randn(4, 40)
    h = net.linear1(x).relu()
    assert torch.allclose(net(x), net.linear3(h + net.linear2(h).relu()), atol=1e-6)
    assert not torch.allclose(net(x), net.linear3(net.linear2(h).relu()), atol=1e-3)


def _fit_shift(M: torch.Tensor, target: torch.Tensor) -> float:
    """Relative residual of the best least-squares solution of M w = target."""
    w = torch.linalg.lstsq(M, target).solution
    return ((M @ w - target).norm() / target.norm()).item()


def test_a_dense_layer_can_follow_a_permutation_and_a_conv_cannot():
    """Why shuffling hurts only the CNN: a dense layer can permute its columns.

    For the dense layer, some weights W' give W'(Px) = W x for every x (W' = W P^T).
    For a convolution, no kernel w' gives conv(Px; w') = conv(x; w): least squares
    over all kernels leaves a large residual. Without the permutation it leaves none,
    so the test can tell the two cases apart."""
    torch.manual_seed(0)
    perm = torch.randperm(40)
    X = torch.randn(200, 40, dtype=torch.float64)
    W = torch.randn(16, 40, dtype=torch.float64)
    dense_target = (X @ W.T).flatten()
    # W'(Px) is linear in W': stack the design matrix of all 16 x 40 entries of W'
    design = torch.kron(torch.eye(16, dtype=torch.float64), X[:, perm])
    design = design.view(16, 200, 16 * 40).transpose(0, 1).reshape(-1, 16 * 40)
    assert _fit_shift(design, dense_target) < 1e-8
    w = torch.randn(5, dtype=torch.float64)
    conv_target = F.conv1d(X[:, None], w.view(1, 1, 5)).flatten()

    def conv_design(Z):  # conv(Z; w') = design @ w': the windows of Z
        return Z.unfold(1, 5, 1).reshape(-1, 5)

    assert _fit_shift(conv_design(X), conv_target) < 1e-8  # ordered: w' = w works
    assert _fit_shift(conv_design(X[:, perm]), conv_target) > 0.5  # shuffled: none does


def test_an_mlp_on_shuffled_data_is_the_same_problem_step_for_step():
    """With its first layer's columns permuted like the data, an MLP trained on the
    shuffled signals follows the ordered MLP's training exactly; a CNN has no twin."""
    cfg = Config(num_samples=300, paper_steps=30, eval_every=30)
    X, y, X_test, y_test = load(cfg)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    shuffled = (X[:, perm], y, X_test[:, perm], y_test)
    torch.manual_seed(0)
    net = PaperMLP(32)
    twin = PaperMLP(32)
    twin.load_state_dict(net.state_dict())
    with torch.no_grad():
        twin.linear1.weight.copy_(net.linear1.weight[:, perm])
    a = train_paper(net, (X, y, X_test, y_test), cfg)
    b = train_paper(twin, shuffled, cfg)
    assert torch.allclose(net(X), twin(X[:, perm]), atol=1e-4)
    assert a["test_acc"] == b["test_acc"] and a["curve"] == b["curve"]


def test_shuffling_costs_a_small_cnn_far_more_than_an_mlp():
    """The page's headline at a small scale (2500 signals, the paper's models)."""
    cfg = Config(num_samples=2500, paper_steps=600, eval_every=600)
    ordered, shuffled = load(cfg), load(cfg, shuffle=True)
    acc = {}
    for name, make in (("cnn", lambda: paper_cnn(16)), ("mlp", lambda: PaperMLP(64))):
        for variant, data in (("", ordered), ("shuffled_", shuffled)):
            torch.manual_seed(0)
            acc[variant + name] = train_paper(make(), data, cfg)["test_acc"]
    cnn_cost = acc["cnn"] - acc["shuffled_cnn"]
    mlp_cost = acc["mlp"] - acc["shuffled_mlp"]
    assert cnn_cost > 0.2 and abs(mlp_cost) < 0.06


def test_claims_read_only_existing_metrics_and_return_bools():
    metrics = {k: 0.5 for k in (
        "cnn_test_acc", "shuffled_cnn_test_acc", "mlp_test_acc",
        "shuffled_mlp_test_acc",
        "logistic_test_acc", "shuffled_logistic_test_acc", "shuffled_cnn_train_acc",
        "mlp_train_acc")}
    metrics.update({"paper_setup_" + k: v for k, v in metrics.items()})
    assert all(isinstance(rule(metrics), bool) for rule in CLAIMS.values())
