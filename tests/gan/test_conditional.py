"""Reference tests for snippets/gan/conditional.py (page: gan/conditional.md)."""

import numpy as np
import torch
import torch.nn.functional as F

from snippets.gan.conditional import (NUM_CLASSES, Config, Discriminator, Generator,
                                      d_label_scores, first_layer_with_embedding,
                                      load_data, mean_pairwise_distance,
                                      nearest_distance, train)


def test_one_hot_concat_equals_linear_plus_embedding():
    torch.manual_seed(0)
    latent_dim = 5
    linear = torch.nn.Linear(latent_dim + NUM_CLASSES, 7)
    lin, emb = first_layer_with_embedding(linear, latent_dim)
    z, y = torch.randn(12, latent_dim), torch.randint(NUM_CLASSES, (12,))
    ours = linear(torch.cat([z, F.one_hot(y, NUM_CLASSES).float()], dim=1))
    torch.testing.assert_close(ours, lin(z) + emb(y))


def test_generator_and_discriminator_both_read_the_label():
    # a D that dropped y (or a G that ignored it) would give equal outputs here
    torch.manual_seed(0)
    G = Generator(4, 16)
    z = torch.randn(3, 4)
    X3, X5 = G(z, torch.full((3,), 3)), G(z, torch.full((3,), 5))
    assert X3.shape == (3, 64) and X3.abs().max() <= 1
    assert not torch.allclose(X3, X5)
    D = Discriminator(16)
    assert D(X3, torch.full((3,), 3)).shape == (3, 1)
    assert not torch.allclose(D(X3, torch.full((3,), 3)), D(X3, torch.full((3,), 5)))


def test_d_label_scores_by_hand():
    class ByLabel(torch.nn.Module):  # scores only the label: logit +4 for y = 2
        def forward(self, X, y):
            return torch.where(y == 2, 4.0, -4.0)[:, None]
    X, y = np.zeros((3, 64), dtype=np.float32), np.array([2, 2, 5])
    true, wrong, acc = d_label_scores(ByLabel(), X, y)
    s_hi, s_lo = torch.sigmoid(torch.tensor(4.0)).item(), torch.sigmoid(
        torch.tensor(-4.0)).item()
    assert abs(true - (2 * s_hi + s_lo) / 3) < 1e-6  # two right, one wrong
    assert abs(wrong - (s_hi + 26 * s_lo) / 27) < 1e-6  # 27 wrong pairs, one hits 2
    assert acc == 2 / 3  # label 2 wins for every image: right twice


def test_mismatched_pairs_teach_D_to_reject_real_digits_with_a_wrong_label():
    # the plain objective never shows D a real digit with a wrong label; with the
    # mismatched pairs the gap between true and wrong labels is much larger
    X_train, X_test, y_train, y_test = load_data(0)
    gaps, firsts = {}, {}
    for mismatch in (False, True):  # the plain objective, then the matching-aware one
        torch.manual_seed(0)
        cfg = Config(num_steps=600, num_hiddens=64, mismatch=mismatch)
        _, D = train(cfg, X_train, y_train)
        true, wrong, firsts[mismatch] = d_label_scores(D, X_test, y_test)
        gaps[mismatch] = true - wrong
    assert gaps[True] > 0.15 and gaps[True] > gaps[False] + 0.1
    assert firsts[True] > 0.6 and firsts[True] > firsts[False] + 0.3


def test_fake_labels_follow_the_data_label_frequencies():
    # y_fake is drawn from the training labels, so its marginal is the data's p(y)
    _, _, y_train, _ = load_data(0)
    torch.manual_seed(0)
    y_all = torch.from_numpy(y_train).long()
    drawn = y_all[torch.randint(len(y_all), (200000,))]
    freq = torch.bincount(drawn, minlength=NUM_CLASSES).double() / len(drawn)
    data = torch.bincount(y_all, minlength=NUM_CLASSES).double() / len(y_all)
    torch.testing.assert_close(freq, data, atol=3e-3, rtol=0)


def test_data_is_scaled_to_tanh_range_and_stratified():
    X_train, X_test, y_train, y_test = load_data(0)
    assert X_train.min() == -1 and X_train.max() == 1 and X_train.shape[1] == 64
    assert len(np.unique(y_test)) == NUM_CLASSES


def test_mean_pairwise_distance_by_hand():
    X = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])  # distances 5, 0, 5
    assert mean_pairwise_distance(X) == 10 / 3
    assert mean_pairwise_distance(np.zeros((4, 2))) == 0  # collapsed: no variety


def test_nearest_distance_finds_copies_by_hand():
    ref = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    X = np.array([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]], dtype=np.float32)
    np.testing.assert_allclose(nearest_distance(X, ref), [0.0, 1.0, 5.0], atol=1e-6)
