"""Dropout (both conventions, run through the module's own training branches), early
stopping restores the best weights, the variance argument of He initialization, and
gradient norms of deep nets."""

import itertools

import pytest
import torch
from torch import nn

import snippets.foundations.training as training
from snippets.foundations.training import (MLP, Config, deep_net, dropout_classic,
                                           dropout_inverted, ensemble_acc, fit,
                                           init_check, layer_grad_norms, load,
                                           signal_per_layer)


def exact_expectation(h, w, p, scale):
    """E over all 2^n keep-masks of w . (mask * h * scale), computed exactly."""
    total = 0.0
    for mask in itertools.product([0.0, 1.0], repeat=len(h)):
        m = torch.tensor(mask, dtype=torch.float64)
        prob = torch.prod(torch.where(m == 1, 1 - p, p))
        total += prob * (w @ (m * h * scale))
    return total


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_both_conventions_have_the_test_time_value_as_expectation(p):
    torch.manual_seed(0)
    h, w = torch.rand(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    inverted = exact_expectation(h, w, p, 1 / (1 - p))
    classic = exact_expectation(h, w, p, 1.0)
    test_inverted = (w @ dropout_inverted(h, p, training=False)).item()
    assert inverted == pytest.approx(test_inverted)
    assert classic == pytest.approx((w @ dropout_classic(h, p, training=False)).item())
    # the module's own training branches, averaged over many masks, agree too
    H = h.expand(400_000, -1)
    for fn, exact in [(dropout_inverted, inverted), (dropout_classic, classic)]:
        samples = fn(H, p, training=True) @ w
        se = samples.std() / len(samples) ** 0.5
        assert abs(samples.mean() - exact) < 5 * se, fn.__name__
    # mixing the conventions is the bug: inverted training + (1-p) scaling at test
    mixed_test = (w @ dropout_classic(h, p, training=False)).item()
    assert abs(inverted - mixed_test) > 0.1 * abs(inverted)


@pytest.mark.parametrize("fn", [dropout_inverted, dropout_classic])
def test_p_is_the_probability_of_dropping(fn):
    torch.manual_seed(1)
    H = torch.rand(500, 400) + 0.5
    out = fn(H, 0.2, training=True)
    assert abs((out == 0).float().mean().item() - 0.2) < 0.005  # not 0.8: p drops


def test_inverted_dropout_behaves_like_torch():
    torch.manual_seed(0)
    H = torch.rand(200, 300) + 0.5
    p = 0.3
    ours = dropout_inverted(H, p, training=True)
    ref = torch.nn.functional.dropout(H, p, training=True)
    for out in (ours, ref):
        kept = out != 0
        assert torch.allclose(out[kept], H[kept] / (1 - p))
        assert abs((~kept).float().mean().item() - p) < 0.01
    assert abs(ours.mean() - H.mean()) < 0.01
    assert torch.equal(dropout_inverted(H, p, training=False), H)
    assert torch.equal(torch.nn.functional.dropout(H, p, training=False), H)
    assert torch.equal(dropout_inverted(H, 0.0, training=True), H)
    for q in (0.0, 1.0):  # the edge cases agree with torch as well
        ref = torch.nn.functional.dropout(H, q, training=True)
        assert torch.equal(dropout_inverted(H, q, training=True), ref)


def test_classic_dropout_keeps_units_unscaled_and_scales_at_test():
    torch.manual_seed(2)
    H = torch.rand(50, 60) + 0.5
    out = dropout_classic(H, 0.3, training=True)
    kept = out != 0
    assert torch.equal(out[kept], H[kept])
    assert torch.allclose(dropout_classic(H, 0.3, training=False), 0.7 * H)


def test_weight_scaling_is_exact_only_before_a_nonlinearity():
    torch.manual_seed(3)
    h, w = torch.rand(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    p = 0.5
    test_value = (w @ dropout_inverted(h, p, training=False)).item()
    linear = exact_expectation(h, w, p, 1 / (1 - p))
    relu_mean = 0.0  # E[relu(w . h~ - test_value)] over all masks, exactly
    for mask in itertools.product([0.0, 1.0], repeat=8):
        m = torch.tensor(mask, dtype=torch.float64)
        prob = torch.prod(torch.where(m == 1, 1 - p, p))
        relu_mean += prob * torch.relu(w @ (m * h / (1 - p)) - test_value)
    assert linear == pytest.approx(test_value)  # linear: exact
    assert relu_mean > 0.05  # after a ReLU the test-time value relu(0) = 0 is off


@pytest.fixture(scope="module")
def tiny_fit():
    cfg = Config(num_epochs=40, patience=5, n_train=100, n_val=100, num_hiddens=32,
                 lr=0.03)
    torch.manual_seed(0)
    data = load(cfg)
    hist, net = fit(cfg, data, 0.0)
    return cfg, data, hist, net


def test_early_stopping_stops_at_best_plus_patience_and_restores_the_best(tiny_fit):
    cfg, (_, (X_val, y_val), _), hist, net = tiny_fit
    assert "stop" in hist, "the tiny run should trigger early stopping"
    stop = hist["stop"]
    seen = hist["val"][:stop]
    assert hist["best_epoch"] == 1 + min(range(stop), key=seen.__getitem__)
    assert stop == hist["best_epoch"] + cfg.patience
    assert len(hist["val"]) == cfg.num_epochs  # went on after the stop, for the plots
    net.eval()
    with torch.no_grad():
        restored = torch.nn.functional.cross_entropy(net(X_val), y_val).item()
    assert restored == pytest.approx(hist["best_val"], rel=1e-6)
    assert restored == pytest.approx(min(seen), rel=1e-6)
    assert restored < hist["val"][-1]  # not the last epoch's weights


def test_ensemble_of_sub_networks_agrees_with_weight_scaling(tiny_fit):
    cfg, data, _, _ = tiny_fit
    hist, net = fit(cfg, data, 0.5)
    X_test, y_test = data[2]
    assert abs(ensemble_acc(net, X_test, y_test, 30) - hist["best_acc"]) < 0.05
    assert not net.training  # left in eval mode


def test_he_initialization_keeps_the_scale_other_variances_do_not():
    fwd_he, bwd_he = init_check(20, 256, 2.0)
    fwd_small, bwd_small = init_check(20, 256, 1.0)
    fwd_big, bwd_big = init_check(20, 256, 4.0)
    assert 0.25 < fwd_he[-1] / fwd_he[0] < 4 and 0.25 < bwd_he[0] / bwd_he[-1] < 4
    # Var(z) changes by c/2 per ReLU layer: about 2^(-19/2) and 2^(19/2) in std
    assert fwd_small[-1] / fwd_small[0] < 0.01 and fwd_big[-1] / fwd_big[0] > 100
    assert bwd_small[0] / bwd_small[-1] < 0.01 and bwd_big[0] / bwd_big[-1] > 100
    W = torch.empty(256, 256)
    nn.init.kaiming_normal_(W, nonlinearity="relu")  # He: std sqrt(2 / fan_in)
    assert W.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.02)


def test_sigmoid_gradients_vanish_towards_the_input_relu_does_not():
    torch.manual_seed(0)
    X, y = torch.rand(64, 64), torch.randint(0, 10, (64,))
    cfg = Config(depth=8)
    net = deep_net(nn.Sigmoid, cfg)
    sig = layer_grad_norms(net, X, y)
    assert layer_grad_norms(net, X, y) == sig  # old gradients are cleared, not summed
    rel = layer_grad_norms(deep_net(nn.ReLU, cfg), X, y)
    assert len(sig) == 9
    assert sig[0] / sig[-1] < 1e-3
    assert 0.1 < rel[0] / rel[-1] < 10


def test_the_sigmoid_forward_signal_collapses_too():
    torch.manual_seed(0)
    X = torch.rand(128, 64)
    cfg = Config(depth=8)
    sig = signal_per_layer(deep_net(nn.Sigmoid, cfg), X)
    rel = signal_per_layer(deep_net(nn.ReLU, cfg), X)
    assert len(sig) == 8
    assert sig[-1] < 1e-2 * sig[0] and rel[-1] > 0.1 * rel[0]


def test_fit_is_plain_full_batch_adam_and_reports_honest_accuracies(tiny_fit):
    cfg, data, hist, net = tiny_fit
    (X, y), (X_val, y_val), (X_test, y_test) = data
    torch.manual_seed(123)  # fit must seed itself (seed=0 by default)
    again, _ = fit(cfg, data, 0.0)
    assert again["val"] == hist["val"]
    torch.manual_seed(0)  # the same three epochs written out by hand
    ref = MLP(cfg, 0.0)
    opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr)
    for epoch in range(3):
        loss = torch.nn.functional.cross_entropy(ref(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            assert hist["train"][epoch] == pytest.approx(
                torch.nn.functional.cross_entropy(ref(X), y).item(), rel=1e-6)
            assert hist["val"][epoch] == pytest.approx(
                torch.nn.functional.cross_entropy(ref(X_val), y_val).item(), rel=1e-6)
    with torch.no_grad():  # accuracies of the returned (restored) network
        assert hist["val_acc"] == (net(X_val).argmax(1) == y_val).float().mean().item()
        test_acc = (net(X_test).argmax(1) == y_test).float().mean().item()
        assert hist["best_acc"] == test_acc
    assert 0.5 < hist["last_acc"] <= 1
    assert abs(hist["last_acc"] - hist["best_acc"]) < 0.1


def count_training_dropouts(monkeypatch):
    calls = []

    def recorded(H, p, training_flag):
        calls.append(training_flag)
        return dropout_inverted(H, p, training_flag)

    monkeypatch.setattr(training, "dropout_inverted", recorded)
    return calls


def test_fit_trains_with_dropout_on_and_measures_with_it_off(tiny_fit, monkeypatch):
    cfg, data, _, _ = tiny_fit
    calls = count_training_dropouts(monkeypatch)
    hist, _ = fit(cfg, data, 0.5)
    assert calls.count(True) == cfg.num_epochs  # one training forward per epoch
    assert calls.count(False) >= 2 * cfg.num_epochs  # train and val losses, dropout off


def test_ensemble_acc_averages_random_sub_networks(tiny_fit, monkeypatch):
    cfg, data, _, _ = tiny_fit
    _, net = fit(cfg, data, 0.5)
    X_test, y_test = data[2]
    calls = count_training_dropouts(monkeypatch)
    ensemble_acc(net, X_test, y_test, 7)
    assert calls == [True] * 7


def test_init_check_is_seeded_and_its_gradients_have_the_expected_scale():
    assert init_check(4, 32, 2.0) == init_check(4, 32, 2.0, seed=0)
    fwd, bwd = init_check(20, 256, 2.0)
    # dL/da = r ~ N(0, 1) at the top; through the last ReLU half survive: std sqrt(1/2)
    assert bwd[-1] == pytest.approx(0.5**0.5, rel=0.05)
    assert fwd[0] == pytest.approx(2**0.5, rel=0.05)  # Var(z1) = 2 Var(x) = 2


def test_signal_per_layer_is_the_mean_over_units_of_the_std_over_samples():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
    X = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    expected = X.std(0).mean().item()  # ReLU changes nothing on positive inputs
    assert signal_per_layer(net, X) == [pytest.approx(expected)]
