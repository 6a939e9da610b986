"""Reference tests for snippets/cnn/visualizing.py."""

import torch
from torch import nn

from snippets.cnn.visualizing import Config, make_net, maximise_class, saliency, \
    total_variation


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


def test_ascent_does_not_change_the_weights():
    net = make_net(4, 16)
    before = [p.clone() for p in net.parameters()]
    maximise_class(net, 3, Config(ascent_steps=3))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
