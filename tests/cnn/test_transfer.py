"""Reference tests for snippets/cnn/transfer.py."""

import torch

from snippets.cnn.transfer import (Config, DigitsCNN, load, make_learner, sample_shots,
                                   shift)


def test_digits_split_and_model_shapes():
    X, y, X_test, y_test = load()
    assert X.shape[1:] == (1, 8, 8) and len(X) + len(X_test) == 1797
    assert float(X.max()) <= 1.0 and set(y_test.tolist()) == set(range(10))
    net = DigitsCNN(32).eval()
    assert net.features(X[:3]).shape == (3, 256) and net(X[:3]).shape == (3, 10)
    c = 32
    by_hand = (9 * c + c) + 2 * c + (9 * c * c + c) + 2 * c + (9 * c * 2 * c + 2 * c) \
        + 4 * c + (8 * c * 10 + 10)
    assert sum(p.numel() for p in net.parameters()) == by_hand


def test_frozen_learner_trains_only_the_head():
    cfg = Config(num_channels=4)
    pretrained = DigitsCNN(4, num_classes=5)
    frozen = make_learner("frozen", pretrained, cfg)
    trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
    assert trainable == 8 * 4 * 5 + 5  # only the new 5-way linear head
    finetune = make_learner("fine-tune", pretrained, cfg)
    assert all(p.requires_grad for p in finetune.parameters())
    # both start from the pretrained features, scratch does not
    w = pretrained.features[0].weight
    assert torch.equal(frozen.features[0].weight, w)
    assert torch.equal(finetune.features[0].weight, w)
    scratch = make_learner("scratch", pretrained, cfg)
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
