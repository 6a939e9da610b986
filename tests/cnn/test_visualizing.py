"""Reference tests for snippets/cnn/visualizing.py."""

import torch
from torch import nn

from snippets.cnn.visualizing import (CLAIMS, Config, gram_matrix, make_net,
                                      maximise_class, mean_correlations, saliency,
                                      total_variation)


def test_net_shapes():
    net = make_net(8, 16)
    assert net(torch.zeros(3, 1, 16, 16)).shape == (3, 10)
    assert sum(p.numel() for p in net.parameters()) == \
        (25 * 8 + 8) + (9 * 8 * 16 + 16) + (16 * 16 * 10 + 10)


def test_saliency_of_a_linear_model_is_its_weight_row():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    X = torch.randn(3, 1, 4, 4)
    y = torch.tensor([2, 7, 7])
    sal = saliency(net, X, y)
    W = net[1].weight.detach()
    for i in range(3):
        assert torch.allclose(sal[i].flatten(), W[y[i]].abs())


def test_total_variation_by_hand():
    X = torch.tensor([[0.0, 1.0], [0.0, 3.0]])
    assert total_variation(X).item() == (0 + 4) + (1 + 9)
    assert total_variation(torch.full((5, 5), 0.7)).item() == 0


def test_ascent_with_l2_finds_the_closed_form_optimum():
    """max w.x - l2 |x|^2 has its optimum at x = w / (2 l2) (inside [0, 1] here)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, bias=False))
    with torch.no_grad():
        net[1].weight.uniform_(0.05, 0.9)
    cfg = Config(size=4, ascent_steps=600, ascent_lr=0.02)
    X = maximise_class(net, 1, cfg, l2=0.5)
    w = net[1].weight[1].detach()
    assert torch.allclose(X.flatten(), w / (2 * 0.5), atol=1e-2)


def test_ascent_raises_the_class_score_and_leaves_the_weights_alone():
    torch.manual_seed(0)
    net = make_net(4, 16)
    before = [p.clone() for p in net.parameters()]
    cfg = Config(ascent_steps=20)
    start = torch.full((1, 1, 16, 16), 0.1)
    X = maximise_class(net, 3, cfg)
    assert net(X)[0, 3] > net(start)[0, 3] + 0.1  # ascent, not descent
    assert X.min() >= 0 and X.max() <= 1  # still a valid image
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_gram_matrix_by_hand_and_blind_to_where_things_are():
    """Seed 004: style transfer "trains a CNN that outputs a style vector". Style is
    a Gram matrix of a fixed network's features: shuffling the positions leaves it
    unchanged, while the feature maps themselves (the content) change."""
    F_ = torch.tensor([[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 1.0]]])  # (2, 2, 2)
    G = gram_matrix(F_)
    assert torch.allclose(G, torch.tensor([[6.0, 3.0], [3.0, 3.0]]) / 4)
    torch.manual_seed(0)
    feats = torch.randn(8, 6, 6)
    perm = torch.randperm(36)
    moved = feats.flatten(1)[:, perm].view(8, 6, 6)
    assert torch.allclose(gram_matrix(moved), gram_matrix(feats), atol=1e-5)
    assert not torch.allclose(moved, feats)  # content features did change


def test_mean_correlations_finds_each_class_mean_itself():
    torch.manual_seed(0)
    means = torch.rand(10, 1, 4, 4)
    C = mean_correlations(means + 0.01 * torch.randn_like(means), means)
    assert C.shape == (10, 10) and torch.equal(C.argmax(1), torch.arange(10))
    assert torch.allclose(mean_correlations(means, means).diagonal(), torch.ones(10),
                          atol=1e-5)


def test_claims_return_bools():
    metrics = dict.fromkeys(["test_acc", "ascent_prob_plain", "ascent_prob_reg",
                             "ascent_tv_plain", "ascent_tv_reg",
                             "ascent_own_mean_plain",
                             "ascent_own_mean_reg", "ascent_corr_plain",
                             "ascent_corr_reg"], 0.5)
    assert all(isinstance(rule(metrics), bool) for rule in CLAIMS.values())


def test_the_total_variation_penalty_smooths_the_ascent_image():
    torch.manual_seed(0)
    net = make_net(4, 16)
    cfg = Config(ascent_steps=40)
    plain = maximise_class(net, 5, cfg)
    smooth = maximise_class(net, 5, cfg, tv=0.3)
    assert total_variation(smooth) < 0.7 * total_variation(plain)


def test_total_variation_on_a_3x3_by_loops():
    X = torch.tensor([[0.0, 1.0, 4.0], [2.0, 7.0, 3.0], [5.0, 5.0, 9.0]])
    by_loops = sum((X[i + 1, j] - X[i, j]) ** 2 for i in range(2) for j in range(3)) \
        + sum((X[i, j + 1] - X[i, j]) ** 2 for i in range(3) for j in range(2))
    assert total_variation(X).item() == by_loops.item() == 157
    assert total_variation(X[None, None]).item() == 157  # batch and channel axes too


def test_saliency_leaves_the_callers_tensor_alone():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    X = torch.randn(1, 1, 2, 2)
    saliency(net, X, torch.tensor([1]))
    assert not X.requires_grad and X.grad is None


def test_ascent_starts_from_a_grey_image_and_returns_a_plain_tensor():
    net = make_net(4, 16)
    X0 = maximise_class(net, 0, Config(ascent_steps=0))
    assert torch.equal(X0, torch.full((1, 1, 16, 16), 0.1))
    X = maximise_class(net, 0, Config(ascent_steps=2))
    assert not X.requires_grad
