"""Error analysis: the camera, the splits, the gaps, error categories, the pipeline."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from snippets.foundations.error_analysis import (
    CONDITIONS,
    SIDE,
    Config,
    blur,
    camera,
    centre_of_mass,
    clean_digits,
    count_categories,
    draw_conditions,
    error,
    fit,
    gaps,
    gaussian_kernel,
    locate,
    predict,
    recentre,
    split,
    subset,
    without,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Small MLPs: one thread is faster than two on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def identity_settings(n: int) -> dict:
    return {"shift": np.zeros((n, 2), int), "sigma": np.full(n, 1e-3),
            "contrast": np.ones(n), "brightness": np.zeros(n), "noise": np.zeros(n),
            "noise_field": np.zeros((n, SIDE, SIDE))}


def test_blur_matches_scipy_gaussian_filter_with_zeros_outside():
    img = np.random.default_rng(0).random((SIDE, SIDE))
    for sigma in (0.4, 0.8, 1.0):
        ref = ndimage.gaussian_filter(img, sigma, mode="constant", cval=0.0,
                                      truncate=3 / sigma)  # radius 3, as ours
        np.testing.assert_allclose(blur(img, sigma), ref, atol=1e-12)
    k = gaussian_kernel(0.7)
    assert k.sum() == pytest.approx(1) and np.allclose(k, k[::-1])


def test_camera_with_neutral_settings_is_the_identity():
    X, _ = clean_digits()
    np.testing.assert_allclose(camera(X[:5], identity_settings(5)), X[:5], atol=1e-12)


def test_camera_applies_shift_exposure_and_noise_as_written():
    X, _ = clean_digits()
    s = identity_settings(3)
    s["shift"] = np.array([[1, 0], [0, -1], [-1, 1]])
    s["contrast"], s["brightness"] = np.array([0.5, 1.0, 0.4]), np.array([0.1, 0, 0.05])
    s["noise"], s["noise_field"] = np.full(3, 0.1), np.ones((3, SIDE, SIDE))
    out = camera(X[:3], s)
    for i in range(3):
        want = (s["brightness"][i] + s["contrast"][i]
                * np.roll(X[i], tuple(s["shift"][i]), axis=(0, 1)) + 0.1)
        np.testing.assert_allclose(out[i], want, atol=1e-9)


def test_conditions_have_their_stated_rates_and_ranges():
    s = draw_conditions(20000, np.random.default_rng(0))
    for c, p in CONDITIONS.items():
        assert s["flags"][c].mean() == pytest.approx(p, abs=0.015)
    dark = s["flags"]["dark"]
    assert s["contrast"][dark].max() <= 0.55  # dark frames: contrast in [0.35, 0.55]
    assert s["contrast"][~dark].min() >= 0.8  # the others: in [0.8, 1.0]
    moved = np.abs(s["shift"]).sum(1) > 0
    assert np.array_equal(moved, s["flags"]["off-centre"])


def test_without_removes_one_condition_and_touches_nothing_else():
    s = draw_conditions(500, np.random.default_rng(1))
    for c, key in (("blurred", "sigma"), ("dark", "contrast"), ("noisy", "noise"),
                   ("off-centre", "shift")):
        w = without(s, c)
        f = s["flags"][c]
        if key == "shift":
            assert (w["shift"][f] == 0).all()
        else:
            np.testing.assert_array_equal(w[key][f], s["normal_" + key][f])
        np.testing.assert_array_equal(w[key][~f], s[key][~f])  # others untouched
        for other in ("sigma", "contrast", "noise", "shift", "brightness"):
            if other != key:
                np.testing.assert_array_equal(w[other], s[other])


def test_split_is_disjoint_and_dev_test_are_camera_only():
    cfg = Config()
    y = np.arange(cfg.num_images) % 10
    idx = split(y, cfg, np.random.default_rng(0))
    named = [idx[k] for k in ("dev", "test", "target", "source")]
    together = np.concatenate(named)
    assert len(together) == len(set(together)) == cfg.num_images
    assert (len(idx["dev"]), len(idx["test"])) == (cfg.num_dev, cfg.num_test)
    pos = np.concatenate([idx["train_pos"], idx["train_dev_pos"]])
    assert sorted(pos) == list(range(len(idx["source"]) + cfg.num_target_base))
    assert len(idx["train_dev_pos"]) == int(cfg.train_dev_frac * len(pos))


def test_the_three_gaps_add_up_to_dev_minus_proxy():
    g = gaps(0.01, 0.03, 0.06, 0.20)
    assert g == pytest.approx({"avoidable_bias": 0.02, "variance": 0.03,
                               "data_mismatch": 0.14})
    assert sum(g.values()) == pytest.approx(0.20 - 0.01)


def test_count_categories_by_hand():
    wrong = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0], bool)
    flags = {"a": np.array([1, 0, 0, 1, 1, 0, 0, 0, 0, 0], bool),
             "b": np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)}
    r = count_categories(wrong, flags)
    assert r["a"] == pytest.approx({"errors": 2, "share_of_errors": 2 / 3,
                                    "share_of_dev": 0.3, "ceiling": 0.2})
    assert r["b"] == pytest.approx({"errors": 2, "share_of_errors": 2 / 3,
                                    "share_of_dev": 0.4, "ceiling": 0.2})
    # an image can carry several categories: the shares of errors need not add to 1
    assert sum(v["share_of_errors"] for v in r.values()) > 1


def test_ceiling_is_the_share_of_errors_times_the_error_not_the_share_of_images():
    rng = np.random.default_rng(2)
    flags = {"c": rng.random(400) < 0.3}
    wrong = rng.random(400) < np.where(flags["c"], 0.5, 0.1)  # c is error-prone
    r = count_categories(wrong, flags)["c"]
    assert r["ceiling"] == pytest.approx(r["share_of_errors"] * wrong.mean())
    assert r["share_of_errors"] > r["share_of_dev"] + 0.2  # over-represented
    assert r["ceiling"] > r["share_of_dev"] * wrong.mean() + 0.05  # the wrong rule


def test_removing_a_condition_cannot_gain_more_than_its_ceiling():
    """Images without the condition are unchanged, so only its errors can be fixed."""
    X, y = clean_digits()
    rng = np.random.default_rng(3)
    s = draw_conditions(len(y), rng)
    cfg = Config(num_epochs=3, num_hiddens=32)
    net = fit(X[:1000], y[:1000], cfg, seed=0)
    dev = np.arange(1000, len(y))
    s_dev = subset(s, dev)
    pred = predict(net, camera(X[dev], s_dev))
    wrong = pred != y[dev]
    for c in CONDITIONS:
        pred_c = predict(net, camera(X[dev], without(s_dev, c)))
        f = s_dev["flags"][c]
        np.testing.assert_array_equal(pred_c[~f], pred[~f])
        gain = wrong.mean() - (pred_c != y[dev]).mean()
        assert gain <= count_categories(wrong, s_dev["flags"])[c]["ceiling"] + 1e-12


def test_centre_of_mass_matches_scipy_on_frames_without_background():
    X, _ = clean_digits()
    X = X[:20].copy()
    X[X <= np.median(X, axis=(1, 2), keepdims=True)] = 0  # median of a digit frame is 0
    ref = np.array([ndimage.center_of_mass(x) for x in X])
    np.testing.assert_allclose(centre_of_mass(X), ref, atol=1e-12)


def test_locate_and_recentre_undo_a_known_shift_on_clean_digits():
    X, _ = clean_digits()
    X = X[:300]
    centre = centre_of_mass(X).mean(0)
    steps = np.random.default_rng(4).integers(-1, 2, (300, 2))
    moved = np.stack([np.roll(x, tuple(o), axis=(0, 1)) for x, o in zip(X, steps)])
    np.testing.assert_array_equal(recentre(moved, steps), X)  # recentre inverts
    found = locate(moved, centre, Config().locate_threshold)
    assert (found == steps).all(1).mean() > 0.7  # a crude locator, right most times


def test_fit_is_deterministic_and_learns_clean_digits():
    X, y = clean_digits()
    cfg = Config(num_epochs=5)
    a, b = fit(X[:800], y[:800], cfg, seed=0), fit(X[:800], y[:800], cfg, seed=0)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert error(predict(a, X[800:]), y[800:]) < 0.15


def test_a_dev_set_shuffled_from_the_training_mix_hides_the_mismatch():
    """The wrong way: pool web and camera images, shuffle, cut a random dev set. That
    dev set has the training distribution and reports a far lower error than the
    camera frames the system will meet (the right dev set)."""
    X, y = clean_digits()
    cfg = Config(num_epochs=15)
    rng = np.random.default_rng(5)
    idx = split(y, cfg, rng)
    X_cam = camera(X, draw_conditions(len(y), rng))
    src, tgt = idx["source"], idx["target"][:cfg.num_target_base]
    X_all = np.concatenate([X[src], X_cam[tgt]])  # everything the team has, pooled
    y_all = np.concatenate([y[src], y[tgt]])
    order = rng.permutation(len(y_all))
    cut = len(order) // 5
    wrong_dev, train = order[:cut], order[cut:]  # the wrong split: a shuffled dev set
    net = fit(X_all[train], y_all[train], cfg, seed=0)
    shuffled_dev_error = error(predict(net, X_all[wrong_dev]), y_all[wrong_dev])
    camera_dev_error = error(predict(net, X_cam[idx["dev"]]), y[idx["dev"]])
    assert shuffled_dev_error + 0.08 < camera_dev_error
