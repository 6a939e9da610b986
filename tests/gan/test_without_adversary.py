"""Reference tests for snippets/gan/without_adversary.py
(page: gan/without-adversary.md)."""

import torch
import torch.nn.functional as F

from snippets.gan.ring import ring_centers, sample_ring
from snippets.gan.without_adversary import (ascend_scratch, ascend_torch, fit_gaussian,
                                            mlp, share_ratio, spread_ratio)

C = ring_centers()


def test_fit_gaussian_matches_torch():
    torch.manual_seed(0)
    mix = torch.tensor([[2.0, 0, 0], [1, 1, 0], [0, 0.5, 3]])
    codes = torch.randn(500, 3) @ mix + 1
    mean, cov = fit_gaussian(codes)
    torch.testing.assert_close(mean, codes.mean(0))
    torch.testing.assert_close(cov, torch.cov(codes.T))


def test_scratch_ascent_equals_sgd_on_the_input():
    torch.manual_seed(0)
    D = mlp(2, 1, 16)
    X0 = 3 * torch.randn(50, 2)  # far away too: the clip is active there
    before = [p.clone() for p in D.parameters()]
    X1 = ascend_scratch(D, X0, 25, 0.05)
    torch.testing.assert_close(X1, ascend_torch(D, X0, 25, 0.05))
    assert not torch.allclose(X1, X0)  # the input moved ...
    for p, q in zip(D.parameters(), before):
        assert torch.equal(p, q)  # ... the weights did not


def test_ascent_raises_log_D_and_steps_are_bounded():
    torch.manual_seed(1)
    D = mlp(2, 1, 16)
    X0 = torch.randn(40, 2)
    X1, path = ascend_scratch(D, X0, 10, 0.01, keep_path=True)
    with torch.no_grad():
        assert F.logsigmoid(D(X1)).sum() > F.logsigmoid(D(X0)).sum()
    assert path.shape == (11, 40, 2)
    assert (path[1:] - path[:-1]).norm(dim=2).max() <= 0.01 + 1e-6


def test_spread_and_share_on_hand_made_sets():
    torch.manual_seed(0)
    assert spread_ratio(C.repeat(5, 1), C, 0.02) == 0.0  # all on the peak: no variety
    assert abs(spread_ratio(sample_ring(20000, C, 0.02), C, 0.02) - 1) < 0.05
    X = torch.cat([C[0].repeat(6, 1), C[1:].repeat(2, 1)])  # 6 at mode 0, 2 elsewhere
    assert share_ratio(X, C) == 3.0


def test_seed_mistake_the_decoder_is_not_a_good_generator():
    # the class notes: "the decoder is the generator we want". It reconstructs every
    # training point, yet z drawn from the fitted prior decode to poor samples.
    from snippets.gan.ring import mode_coverage
    from snippets.gan.without_adversary import (Config, sample_decoder,
                                                train_autoencoder)
    torch.manual_seed(0)
    cfg = Config(ae_steps=800)
    encoder, decoder = train_autoencoder(cfg, C)
    X = sample_ring(2000, C, cfg.sigma)
    with torch.no_grad():
        codes = encoder(X)
        recon = F.mse_loss(decoder(codes), X).item()
    X_gen, _ = sample_decoder(decoder, *fit_gaussian(codes), 2000)
    _, good_gen = mode_coverage(X_gen, C, cfg.sigma)
    _, good_recon = mode_coverage(decoder(codes).detach(), C, cfg.sigma)
    assert recon < cfg.sigma ** 2 and good_recon > 0.9  # reconstruction: fine
    assert good_gen < 0.2  # sampling: mostly between the modes


def test_seed_idea_ascent_on_a_trained_D_piles_points_narrower_than_the_data():
    # "let D generate by descending its loss on the input": on a trained D the points
    # reach the modes, with less spread than the data and uneven proportions
    from snippets.gan.ring import mode_coverage
    from snippets.gan.without_adversary import Config, train_discriminator
    torch.manual_seed(0)
    cfg = Config(d_steps=600)
    D = train_discriminator(cfg, C)
    X = ascend_scratch(D, 6 * torch.rand(1000, 2) - 3, 150, cfg.ascent_lr)
    modes, good = mode_coverage(X, C, cfg.sigma)
    assert modes == 8 and good > 0.95
    assert spread_ratio(X, C, cfg.sigma) < 0.9  # the data would give 1


def _steep_D():
    torch.manual_seed(2)
    D = mlp(2, 1, 16)
    with torch.no_grad():
        D[-1].weight.mul_(50)  # a steep logit: the gradient of log D is far above 1
    return D


def test_the_cap_is_active_on_a_steep_D_and_both_ascents_apply_it():
    D, X0 = _steep_D(), 3 * torch.randn(40, 2)
    X1, path = ascend_scratch(D, X0, 5, 0.1, keep_path=True)
    steps = (path[1:] - path[:-1]).norm(dim=2)
    assert steps.max() <= 0.1 + 1e-5 and (steps > 0.1 - 1e-4).float().mean() > 0.5
    X2 = ascend_torch(D, X0, 5, 0.1)
    torch.testing.assert_close(X1, X2)  # the hook caps exactly like the scratch code
    assert not X1.requires_grad and not X2.requires_grad and not path.requires_grad


def test_spread_ratio_by_hand():
    centers = torch.tensor([[0.0, 0.0]])
    # binary-exact: sigma 0.5, so 1.5 is exactly 3 sigma and does not count
    X = torch.tensor([[1.5, 0.0], [0.5, 0.0], [-0.5, 0.0]])
    # two good points at distance 0.5: sqrt(mean(0.25) / 2) / 0.5 = sqrt(1/2)
    assert abs(spread_ratio(X, centers, 0.5) - 0.5 ** 0.5) < 1e-6
    assert spread_ratio(X[:2], centers, 0.5) == 0.0  # one good point: no spread


def test_share_ratio_by_hand():
    centers = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    X = torch.tensor([[0.0, 0.1]] * 3 + [[1.1, 0.0], [4.0, 0.0]])  # counts 3, 1, 1
    assert share_ratio(X, centers) == 3.0
    assert share_ratio(X[:4], centers) == 3.0  # an empty mode counts as 1, not 0


def test_seed_fix_retraining_D_on_its_own_climbs_pushes_its_foxes_down():
    """Seed 004 (garbled): "let the discriminator generate images itself and use them as
    fakes". A weakly trained D rates many places far from every mode as real (the notes'
    fox that passes for a cat); climbing its score finds them. One round of training D
    on real samples against its own climbs as negatives pushes those places down while
    real samples keep a high score: what a GAN's discriminator does every step, with a
    generator making the negatives in one pass (page question 5)."""
    from snippets.gan.without_adversary import Config, train_discriminator
    torch.manual_seed(0)
    cfg = Config(d_steps=60)
    D = train_discriminator(cfg, C)
    X = ascend_scratch(D, 6 * torch.rand(1000, 2) - 3, 150, cfg.ascent_lr)
    with torch.no_grad():
        far = torch.cdist(X, C).min(dim=1).values > 0.3  # 15 sigma from every mode
        fox = far & (torch.sigmoid(D(X)).squeeze(1) > 0.5)
    assert fox.float().mean() > 0.5  # most climbs end on a fox
    opt = torch.optim.Adam(D.parameters(), lr=cfg.lr)
    bce = F.binary_cross_entropy_with_logits
    for _ in range(200):
        real, fake = D(sample_ring(cfg.batch_size, C, cfg.sigma)), D(
            X[torch.randint(0, len(X), (cfg.batch_size,))])
        loss = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
        opt.zero_grad(), loss.backward(), opt.step()
    with torch.no_grad():
        assert torch.sigmoid(D(X[fox])).mean() < 0.1
        assert torch.sigmoid(D(sample_ring(1000, C, cfg.sigma))).mean() > 0.8
