"""Reference tests for snippets/cnn/transfer.py."""

import pytest
import torch
from torch import nn

from snippets.cnn.transfer import (CLAIMS, Config, DigitsCNN, calibrate_bn,
                                   learn_new_classes, load, make_learner, param_groups,
                                   sample_shots, shift)


def test_digits_split_and_model_shapes():
    X, y, X_test, y_test = load()
    assert X.shape[1:] == (1, 8, 8) and len(X) + len(X_test) == 1797
    assert float(X.max()) <= 1.0 and set(y_test.tolist()) == set(range(10))
    net = DigitsCNN(32).eval()
    assert net.features(X[:3]).shape == (3, 256) and net(X[:3]).shape == (3, 10)
    c = 32  # no conv biases: batch norm follows each conv
    by_hand = 9 * c + 2 * c + 9 * c * c + 2 * c + 9 * c * 2 * c + 4 * c \
        + (8 * c * 10 + 10)
    assert sum(p.numel() for p in net.parameters()) == by_hand


def test_frozen_learner_trains_only_the_head():
    cfg = Config(num_channels=4)
    pretrained = DigitsCNN(4, num_classes=5)
    X_source = torch.rand(20, 1, 8, 8)
    frozen = make_learner("frozen", pretrained, X_source, cfg)
    trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
    assert trainable == 8 * 4 * 5 + 5  # only the new 5-way linear head
    finetune = make_learner("fine-tune", pretrained, X_source, cfg)
    assert all(p.requires_grad for p in finetune.parameters())
    # both start from the pretrained features, scratch does not
    w = pretrained.features[0].weight
    assert torch.equal(frozen.features[0].weight, w)
    assert torch.equal(finetune.features[0].weight, w)
    scratch = make_learner("scratch", pretrained, X_source, cfg)
    assert not torch.equal(scratch.features[0].weight, w)
    # a copy, not the same tensor: fine-tuning must not change the pretrained model
    assert finetune.features[0].weight.data_ptr() != w.data_ptr()


def test_sample_shots_takes_n_per_class():
    y = torch.arange(5).repeat(20)
    idx = sample_shots(y, range(5), 3, torch.Generator().manual_seed(0))
    assert torch.bincount(y[idx]).tolist() == [3] * 5


def test_shift_moves_by_at_most_one_pixel_and_keeps_shape():
    X = torch.zeros(1, 1, 8, 8)
    X[0, 0, 4, 4] = 1
    for _ in range(10):
        Y = shift(X)
        assert Y.shape == X.shape and Y.sum() == 1
        i, j = (Y[0, 0] == 1).nonzero()[0].tolist()
        assert abs(i - 4) <= 1 and abs(j - 4) <= 1


def _bn_state(net):
    return [t.clone() for m in net.features.modules() if isinstance(m, nn.BatchNorm2d)
            for t in (m.running_mean, m.running_var)]


def test_calibrate_bn_sets_the_statistics_of_the_given_images():
    torch.manual_seed(0)
    features = DigitsCNN(4).features.eval()  # whatever mode it arrives in
    X = torch.rand(50, 1, 8, 8) * 3 + 1
    calibrate_bn(features, X)
    bn = features[1]
    with torch.no_grad():
        z = features[0](X)  # what the first batch norm sees
    assert torch.allclose(bn.running_mean, z.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, z.var(dim=(0, 2, 3)), rtol=1e-3)
    assert not features.training and bn.momentum == 0.1


@pytest.mark.parametrize("strategy", ["frozen", "frozen random"])
def test_both_frozen_arms_keep_weights_and_batch_norm_statistics(strategy):
    """Frozen means frozen, for the treatment and for its control alike."""
    torch.manual_seed(0)
    cfg = Config(num_channels=4, transfer_steps=3)
    pretrained = DigitsCNN(4, num_classes=5)
    X_source, X = torch.rand(30, 1, 8, 8), torch.rand(10, 1, 8, 8)
    y = torch.arange(10) % 5
    torch.manual_seed(1)
    before = make_learner(strategy, pretrained, X_source, cfg)
    torch.manual_seed(1)
    after = learn_new_classes(strategy, pretrained, X_source, X, y, cfg)
    assert all(torch.equal(a, b) for a, b in zip(_bn_state(before), _bn_state(after)))
    assert all(torch.equal(a, b) for a, b in
               zip(before.features.parameters(), after.features.parameters()))
    assert not torch.equal(before.head[1].weight, after.head[1].weight)  # head learned


def test_the_reviewed_bug_train_mode_lets_frozen_statistics_drift():
    """The wrong version (features left in train mode, as the control once was): the
    parameters stay put, yet the batch-norm statistics move to the new data."""
    torch.manual_seed(0)
    cfg = Config(num_channels=4)
    net = make_learner("frozen random", DigitsCNN(4, 5), torch.rand(30, 1, 8, 8), cfg)
    before = _bn_state(net)
    net.train()  # the bug: no net.features.eval()
    with torch.no_grad():
        net(torch.rand(10, 1, 8, 8) * 2)
    assert not all(torch.equal(a, b) for a, b in zip(before, _bn_state(net)))


def test_each_strategy_trains_what_it_says_at_its_learning_rate():
    cfg = Config(num_channels=4)
    pretrained = DigitsCNN(4, num_classes=5)
    X_source = torch.rand(10, 1, 8, 8)
    lr, scale = cfg.transfer_lr, cfg.finetune_lr_scale
    expected = {"frozen": [lr], "frozen random": [lr], "fine-tune": [lr, lr * scale],
                "scratch": [lr, lr]}
    for strategy, lrs in expected.items():
        net = make_learner(strategy, pretrained, X_source, cfg)
        groups = param_groups(strategy, net, cfg)
        assert [g["lr"] for g in groups] == lrs
        trained = {id(p) for g in groups for p in g["params"]}
        assert trained == {id(p) for p in net.parameters() if p.requires_grad}
    assert scale < 1


def test_claims_return_bools():
    strategies = ("scratch", "finetune", "frozen", "frozen_random")
    keys = [f"{s}_{n}shot_acc" for s in strategies for n in (1, 2, 5, 10, 20)]
    metrics = {k: 0.5 for k in keys} | {"digits_cnn_test_acc": 0.9,
                                         "pretrain_test_acc": 0.9,
                                         "digits_cnn_test_errors": 4, "num_test": 450}
    metrics |= {k.replace("_acc", "_min"): 0.4 for k in keys}
    metrics |= {f"{s}_mean_acc": 0.5 for s in strategies}
    assert all(isinstance(rule(metrics), bool) for rule in CLAIMS.values())


@pytest.mark.parametrize("strategy", ["frozen", "frozen random"])
def test_frozen_learners_start_with_the_source_images_statistics(strategy):
    torch.manual_seed(0)
    cfg = Config(num_channels=4)
    X_source = torch.rand(40, 1, 8, 8) * 2 + 0.5
    net = make_learner(strategy, DigitsCNN(4, num_classes=5), X_source, cfg)
    with torch.no_grad():
        z = net.features[0](X_source)  # what the first batch norm sees
    assert torch.allclose(net.features[1].running_mean, z.mean(dim=(0, 2, 3)),
                          atol=1e-5)
    assert not net.features.training
