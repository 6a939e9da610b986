"""Reference tests for snippets/gan/ring.py (page: gan/ring.md): the ring, the metrics
on hand-made sample sets with known answers, and packing."""

import math

import numpy as np
import pytest
import torch

from snippets.gan.ring import (mode_coverage, mode_coverage_scratch, mode_kl,
                               pack_samples, pack_scratch, ring_centers, sample_ring)

SIGMA = 0.02
C = ring_centers(8, 2.0)


def test_ring_has_eight_distinct_modes_at_2_pi_k_over_8():
    C = ring_centers(8, 2.0)
    assert C.shape == (8, 2)
    torch.testing.assert_close(C.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(C[2], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)  # 90°
    gaps = torch.cdist(C, C) + 10 * torch.eye(8)
    assert gaps.min() == pytest.approx(2 * 2.0 * math.sin(math.pi / 8), abs=1e-5)


def test_linspace_off_by_one_gives_seven_modes():
    # the common mistake: 0 and 2*pi are the same angle, so mode 0 appears twice
    wrong = np.linspace(0, 2 * np.pi, 8)
    points = np.round(np.stack([np.cos(wrong), np.sin(wrong)], 1), 6) + 0.0
    assert len(np.unique(points, axis=0)) == 7
    right = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ours = 2 * np.stack([np.cos(right), np.sin(right)], 1)
    assert np.allclose(ours, ring_centers(8, 2.0).numpy(), atol=1e-6)
    # other sizes too: 6 modes on a unit circle start at angle 0, 60 degrees apart
    six = ring_centers(6, 1.0)
    assert np.allclose(six[1].numpy(), [0.5, 3 ** 0.5 / 2], atol=1e-6)
    assert ring_centers().shape == (8, 2) and torch.allclose(ring_centers(), C)


@pytest.mark.parametrize("metric", [mode_coverage, mode_coverage_scratch])
def test_metrics_on_hand_made_sets(metric):
    # every mode hit exactly: 8 modes, all high quality
    assert metric(C, C, SIGMA) == (8, 1.0)
    # a collapsed generator: perfect quality, one mode
    assert metric(C[3].repeat(100, 1), C, SIGMA) == (1, 1.0)
    # everything at the origin: far from all modes
    assert metric(torch.zeros(10, 2), C, SIGMA) == (0, 0.0)
    # 4 good at mode 0, 1 good at mode 3 (2.5 sigma off), 1 bad near mode 5
    # (3.5 sigma off),
    # 2 at the origin -> modes {0, 3}, quality 5/8
    X = torch.cat([C[0].repeat(4, 1), (C[3] + torch.tensor([2.5 * SIGMA, 0]))[None],
                   (C[5] + torch.tensor([0, 3.5 * SIGMA]))[None], torch.zeros(2, 2)])
    modes, good = metric(X, C, SIGMA)
    assert modes == 2 and good == pytest.approx(5 / 8)
    # a bad sample does not make its mode covered, even if it is the nearest mode
    modes, good = metric((C[6] + torch.tensor([0.1, 0.0]))[None], C, SIGMA)
    assert (modes, good) == (0, 0.0)


def test_scratch_and_vectorised_metrics_agree_on_random_sets():
    torch.manual_seed(0)
    for spread in (0.01, 0.05, 0.5):
        X = C[torch.randint(8, (300,))] + spread * torch.randn(300, 2)
        m1, g1 = mode_coverage(X, C, SIGMA)
        m2, g2 = mode_coverage_scratch(X, C, SIGMA)
        assert m1 == m2 and g1 == pytest.approx(g2)


def test_perfect_generator_scores_98_9_percent_not_100():
    # P(|x - mu| < 3 sigma) for a 2-D isotropic Gaussian is 1 - exp(-9/2)
    torch.manual_seed(0)
    modes, good = mode_coverage(sample_ring(40000, C, SIGMA), C, SIGMA)
    assert modes == 8 and good == pytest.approx(1 - math.exp(-4.5), abs=0.003)


@pytest.mark.parametrize("pack", [1, 2, 4])
def test_pack_scratch_equals_reshape(pack):
    X = torch.randn(12, 2)
    torch.testing.assert_close(pack_scratch(X, pack), pack_samples(X, pack))
    assert pack_samples(X, pack).shape == (12 // pack, 2 * pack)
    torch.testing.assert_close(pack_samples(X, pack)[1, :2], X[pack])  # row 1 start


def test_mode_kl_on_hand_made_sets():
    assert mode_kl(C.repeat(10, 1), C, SIGMA) == pytest.approx(0.0)  # balanced
    one = C[2].repeat(10, 1)  # collapsed onto one mode
    assert mode_kl(one, C, SIGMA) == pytest.approx(math.log(8))
    two = torch.cat([C[0].repeat(5, 1), C[4].repeat(5, 1)])
    assert mode_kl(two, C, SIGMA) == pytest.approx(math.log(4))  # two modes, equal
    # bad samples are ignored: adding far-away points changes nothing
    assert mode_kl(torch.cat([two, torch.zeros(7, 2)]), C, SIGMA) == pytest.approx(
        math.log(4))
    # 3/4 on one mode, 1/4 on another: sum p log(8 p)
    X = torch.cat([C[1].repeat(3, 1), C[2][None]])
    expected = 0.75 * math.log(8 * 0.75) + 0.25 * math.log(8 * 0.25)
    assert mode_kl(X, C, SIGMA) == pytest.approx(expected)


def test_sample_ring_is_balanced_and_has_the_right_width():
    torch.manual_seed(0)
    X = sample_ring(80000, C, SIGMA)
    dist, nearest = torch.cdist(X, C).min(dim=1)
    share = torch.bincount(nearest, minlength=8).double() / len(X)
    torch.testing.assert_close(share, torch.full((8,), 1 / 8, dtype=torch.float64),
                               atol=0.005, rtol=0)  # 1/8 each, +- 4 s.e.
    # squared distance / sigma^2 is chi-squared with 2 degrees of freedom: mean 2
    assert (dist ** 2).mean().item() / SIGMA ** 2 == pytest.approx(2, rel=0.03)


def _mode_kl_loop(X, centers, sigma):
    """KL of the HQ samples' mode shares against uniform, with plain Python."""
    counts = [0] * len(centers)
    for x in X.tolist():
        dists = [math.dist(x, c) for c in centers.tolist()]
        k = min(range(len(dists)), key=dists.__getitem__)
        if dists[k] < 3 * sigma:
            counts[k] += 1
    total = sum(counts)
    return sum(c / total * math.log(len(centers) * c / total) for c in counts if c)


def test_mode_kl_equals_a_loop_on_random_sets():
    torch.manual_seed(1)
    for spread in (0.01, 0.03):
        weights = torch.tensor([5.0, 1, 1, 3, 0, 0, 2, 1])  # uneven, two empty modes
        k = torch.multinomial(weights, 400, replacement=True)
        X = C[k] + spread * torch.randn(400, 2)
        assert mode_kl(X, C, SIGMA) == pytest.approx(_mode_kl_loop(X, C, SIGMA))


def test_d_batches_hold_samples_points_in_rows_of_pack():
    # the fair comparison rests on this: GAN-256 and PacGAN2 see the same number of
    # real and fake points per D step, in 256 rows of 2 numbers or 128 rows of 4
    from snippets.gan.ring import Config, d_batches, mlp
    cfg = Config()
    G = mlp(cfg.latent_dim, 2, 8)
    for pack, samples, rows in ((1, 256, 256), (2, 256, 128), (1, 128, 128)):
        X, X_fake = d_batches(G, C, cfg, pack, samples)
        assert X.shape == X_fake.shape == (rows, 2 * pack)
        assert X.numel() == X_fake.numel() == 2 * samples  # points, not rows
    X, _ = d_batches(G, C, cfg, 2, 256)  # a row holds two independent ring points
    dist = torch.cdist(X.reshape(-1, 2), C).min(dim=1)[0]
    assert (dist < 5 * SIGMA).all()


@pytest.mark.parametrize("metric", [mode_coverage, mode_coverage_scratch])
def test_high_quality_means_strictly_closer_than_3_sigma(metric):
    # binary-exact numbers: sigma 0.5, a sample exactly 1.5 away is not high quality
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    on_the_edge = torch.tensor([[1.5, 0.0], [10.0, 1.5]])
    assert metric(on_the_edge, centers, 0.5) == (0, 0.0)
    inside = torch.tensor([[1.499, 0.0], [10.0, 1.499]])
    assert metric(inside, centers, 0.5) == (2, 1.0)  # just inside: good
    assert mode_kl(on_the_edge, centers, 0.5) == pytest.approx(math.log(2))  # none


def test_mode_kl_without_any_good_sample_is_as_bad_as_one_mode():
    assert mode_kl(torch.zeros(5, 2), C, SIGMA) == pytest.approx(math.log(8))
    assert mode_kl(C[4][None], C, SIGMA) == pytest.approx(math.log(8))  # one sample
