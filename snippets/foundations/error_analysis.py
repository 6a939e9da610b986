"""Error analysis under a distribution shift: which gap to attack, and what closes it.

Page: foundations/error-analysis.md
Run:  python -m snippets run foundations/error_analysis

Training data: clean, centred scikit-learn digits ("web images"), plus a few images
from a synthetic car "camera" (the deployment domain: off-centre, blurred, dark, noisy
frames, each condition drawn per image and recorded). Dev and test sets come from the
camera only. The demo measures the four errors (Bayes-error proxy, train, train-dev,
dev), tries one cure per gap, counts error categories on the misclassified dev images,
and runs a ceiling analysis of a two-stage pipeline (locate the digit, then read it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.svm import SVC
from torch import nn

from snippets.common import save_figure, seed_everything, use_style

PAD = 2  # the 8x8 digits sit in a 12x12 frame, so a shift never cuts them
SIDE = 8 + 2 * PAD
# The camera's conditions: probability per image, then (normal, affected) ranges.
CONDITIONS = {"off-centre": 0.2, "blurred": 0.3, "dark": 0.3, "noisy": 0.3}
RANGES = {"sigma": ((0.3, 0.5), (0.7, 1.0)), "contrast": ((0.8, 1.0), (0.35, 0.55)),
          "noise": ((0.0, 0.03), (0.08, 0.14))}
# What an engineer guesses from looking at a few camera frames: each condition half
# the time, one typical (normal, affected) setting each; the true ranges are not used.
GUESS = {"sigma": (0.4, 0.8), "contrast": (0.9, 0.5), "noise": (0.02, 0.1)}


@dataclass
class Config:
    num_images: int = 1797  # digits used (all of scikit-learn's); the rest is "web"
    num_dev: int = 400  # camera images in the dev set
    num_test: int = 200  # camera images in the test set
    num_target: int = 497  # camera images that can be collected and labelled to train
    num_target_base: int = 100  # of these, in the baseline's training set
    train_dev_frac: float = 0.15  # share of the training mix held out as train-dev
    num_hiddens: int = 128  # MLP width (two hidden layers)
    big_hiddens: int = 512  # the "bigger model" cure for avoidable bias
    weight_decay: float = 0.5  # the "regularize" cure for variance (AdamW)
    num_epochs: int = 60  # passes over each training set
    lr: float = 3e-3
    batch_size: int = 64
    locate_threshold: float = 0.75  # pixels; above 0.5: most frames are centred
    proxy_draws: int = 4  # camera draws per pool image for the Bayes-error proxy
    seeds: tuple = (0, 1, 2, 3, 4)  # split, camera draws and initialisation all change

    @classmethod
    def tiny(cls) -> Config:
        return cls(num_images=500, num_dev=100, num_test=50, num_target=150,
                   num_target_base=30, num_epochs=2, num_hiddens=16, big_hiddens=32,
                   proxy_draws=1, seeds=(0,))


# --8<-- [start:camera]
def gaussian_kernel(sigma: float, radius: int = 3) -> np.ndarray:
    t = np.arange(-radius, radius + 1)
    k = np.exp(-t ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur, zeros outside the frame: one 1-D pass per axis (separable)."""
    k = gaussian_kernel(sigma)
    r, (h, w) = len(k) // 2, img.shape
    p = np.pad(img, r)
    rows = sum(k[i] * p[:, i:i + w] for i in range(len(k)))  # (h + 2r, w)
    return sum(k[i] * rows[i:i + h] for i in range(len(k)))  # (h, w)


def draw_conditions(n: int, rng, prob=CONDITIONS, guess: bool = False) -> dict:
    """Each image's conditions (flags) and camera settings; the noise is drawn here
    too, so camera() is a pure function of the images and these settings. ``prob``:
    each condition's probability; ``guess``: the engineer's guessed settings."""
    flags = {c: rng.random(n) < prob.get(c, 0.0) for c in CONDITIONS}
    steps = np.array([(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0),
                      (-1, 1)])
    shift = np.where(flags["off-centre"][:, None], steps[rng.integers(0, 8, n)], 0)
    s = {"shift": shift, "brightness": rng.uniform(0.0, 0.1, n),
         "noise_field": rng.standard_normal((n, SIDE, SIDE))}
    for key, cond in (("sigma", "blurred"), ("contrast", "dark"), ("noise", "noisy")):
        normal, affected = (rng.uniform(*r, n) for r in RANGES[key])
        if guess:
            normal, affected = GUESS[key]
        s[key] = np.where(flags[cond], affected, normal)
        s["normal_" + key] = normal + np.zeros(n)  # what a frame without it would get
    return {"flags": flags, **s}


def without(s: dict, cond: str) -> dict:
    """The same frames with one condition removed from the images that had it."""
    key = {"blurred": "sigma", "dark": "contrast", "noisy": "noise"}.get(cond)
    flag, s = s["flags"][cond], dict(s)
    if key is None:
        s["shift"] = np.where(flag[:, None], 0, s["shift"])
    else:
        s[key] = np.where(flag, s["normal_" + key], s[key])
    return s


def camera(X: np.ndarray, s: dict) -> np.ndarray:
    """Frame shift -> lens blur -> exposure (contrast, brightness) -> sensor noise."""
    out = np.empty_like(X)
    for i, img in enumerate(X):
        img = np.roll(img, tuple(s["shift"][i]), axis=(0, 1))
        img = blur(img, s["sigma"][i])
        img = s["brightness"][i] + s["contrast"][i] * img
        out[i] = img + s["noise"][i] * s["noise_field"][i]
    return out
# --8<-- [end:camera]


def clean_digits():
    X, y = load_digits(return_X_y=True)
    return np.pad(X.reshape(-1, 8, 8) / 16.0, ((0, 0), (PAD, PAD), (PAD, PAD))), y


def subset(s: dict, idx) -> dict:
    return {k: ({c: f[idx] for c, f in v.items()} if k == "flags" else v[idx])
            for k, v in s.items()}


# --8<-- [start:split]
def split(y: np.ndarray, cfg: Config, rng) -> dict:
    """Disjoint index sets. Dev and test: camera images only (the deployment
    distribution). Train-dev: a random part of the training mix, never trained on."""
    perm = rng.permutation(len(y))
    a, b = cfg.num_dev, cfg.num_dev + cfg.num_test
    dev, test, target, source = np.split(perm, [a, b, b + cfg.num_target])
    mix = rng.permutation(len(source) + cfg.num_target_base)  # positions in the mix
    held = int(cfg.train_dev_frac * len(mix))
    return {"dev": dev, "test": test, "target": target, "source": source,
            "train_pos": mix[held:], "train_dev_pos": mix[:held]}
# --8<-- [end:split]


# --8<-- [start:model]
def mlp(num_hiddens: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, 10))


def fit(X, y, cfg: Config, seed: int, num_hiddens=None, weight_decay=0.0):
    torch.manual_seed(seed)
    net = mlp(num_hiddens or cfg.num_hiddens)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=weight_decay)
    for _ in range(cfg.num_epochs):
        for idx in torch.randperm(len(X)).split(cfg.batch_size):
            loss = F.cross_entropy(net(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def predict(net, X) -> np.ndarray:
    with torch.no_grad():
        return net(torch.tensor(X, dtype=torch.float32)).argmax(1).numpy()
# --8<-- [end:model]


# --8<-- [start:gaps]
def gaps(proxy: float, train: float, train_dev: float, dev: float) -> dict:
    """The three gaps between consecutive errors; they add up to dev - proxy."""
    return {"avoidable_bias": train - proxy, "variance": train_dev - train,
            "data_mismatch": dev - train_dev}
# --8<-- [end:gaps]


# --8<-- [start:categories]
def count_categories(wrong: np.ndarray, flags: dict) -> dict:
    """For each category: errors that carry it, and the ceiling it sets on the dev
    error (fixing every one of them lowers the error by at most that much)."""
    n = len(wrong)
    return {c: {"errors": int((wrong & f).sum()), "share_of_errors": (wrong & f).sum()
                / max(wrong.sum(), 1), "share_of_dev": f.mean(),
                "ceiling": (wrong & f).sum() / n} for c, f in flags.items()}
# --8<-- [end:categories]


# --8<-- [start:pipeline]
def centre_of_mass(X: np.ndarray) -> np.ndarray:
    """(row, col) of each frame's centre of mass, over the pixels brighter than the
    frame's median (the background)."""
    Z = np.clip(X - np.median(X, axis=(1, 2), keepdims=True), 0, None)
    t = np.arange(SIDE)
    return np.stack([Z.sum(2) @ t, Z.sum(1) @ t], 1) / Z.sum((1, 2))[:, None]


def locate(X: np.ndarray, centre: np.ndarray, threshold: float) -> np.ndarray:
    """Stage 1: the digit's offset from ``centre`` (where clean digits sit), one
    pixel along an axis where the centre of mass is more than ``threshold`` away."""
    d = centre_of_mass(X) - centre
    return (np.sign(d) * (np.abs(d) > threshold)).astype(int)


def recentre(X: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.stack([np.roll(x, tuple(-o), axis=(0, 1)) for x, o in zip(X, offsets)])
# --8<-- [end:pipeline]


def error(pred: np.ndarray, y: np.ndarray) -> float:
    return float((pred != y).mean())


# --8<-- [start:experiment]
def run_seed(X, y, cfg: Config, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    idx = split(y, cfg, rng)
    s = draw_conditions(len(y), rng)  # each image's camera frame
    X_cam = camera(X, s)
    src, tgt, dev = idx["source"], idx["target"], idx["dev"]
    mix = np.concatenate([src, tgt[:cfg.num_target_base]])  # clean, then camera
    X_mix = np.concatenate([X[src], X_cam[tgt[:cfg.num_target_base]]])
    tr, td = idx["train_pos"], idx["train_dev_pos"]
    X_tr, y_tr = X_mix[tr], y[mix][tr]
    X_dev, y_dev = X_cam[dev], y[dev]
    m = {}
    base = fit(X_tr, y_tr, cfg, seed)
    m["train"] = error(predict(base, X_tr), y_tr)
    cam_tr = tr >= len(src)  # the camera images the baseline trained on
    m["train_camera"] = error(predict(base, X_tr[cam_tr]), y_tr[cam_tr])
    m["train_dev"] = error(predict(base, X_mix[td]), y[mix][td])
    wrong = predict(base, X_dev) != y_dev
    m["dev"], m["test"] = wrong.mean(), error(predict(base, X_cam[idx["test"]]),
                                              y[idx["test"]])
    # Bayes-error proxies: a stronger model (RBF SVM) with more data of each kind
    flat = lambda A: A.reshape(len(A), -1)
    svm = SVC(C=10).fit(flat(X_tr), y_tr)
    m["proxy_train"] = error(svm.predict(flat(X_mix[td])), y[mix][td])
    pool = np.concatenate([src, tgt])
    X_many = np.concatenate([camera(X[pool], draw_conditions(len(pool), rng))
                             for _ in range(cfg.proxy_draws)])
    svm = SVC(C=10).fit(flat(X_many), np.tile(y[pool], cfg.proxy_draws))
    m["proxy_dev"] = error(svm.predict(flat(X_dev)), y_dev)
    # one cure per gap, each a single change to the baseline
    clean_tr = X_tr[tr < len(src)]  # the clean images of the training set
    y_clean = y_tr[tr < len(src)]
    more = tgt[cfg.num_target_base:]
    cures = {
        "bigger_net": (X_tr, y_tr, {"num_hiddens": cfg.big_hiddens}),
        "weight_decay": (X_tr, y_tr, {"weight_decay": cfg.weight_decay}),
        "more_camera_data": (np.concatenate([X_tr, X_cam[more]]),
                             np.concatenate([y_tr, y[more]]), {})}
    for name, only in (("synth_noisy", ("noisy",)),
                       ("synth_off_centre", ("off-centre",)),
                       ("synth_all", tuple(CONDITIONS))):
        prob = {c: 0.5 for c in only}  # the engineer's guess: half of the frames
        fake = camera(clean_tr, draw_conditions(len(clean_tr), rng, prob, guess=True))
        cures[name] = (np.concatenate([X_tr, fake]), np.concatenate([y_tr, y_clean]),
                       {})
    for name, (Xc, yc, kw) in cures.items():
        m["dev_" + name] = error(predict(fit(Xc, yc, cfg, seed, **kw), X_dev), y_dev)
    # error analysis: categories of the misclassified dev images, and the truth
    s_dev = subset(s, dev)
    for c, row in count_categories(wrong, s_dev["flags"]).items():
        key = c.replace("-", "_")
        m.update({f"{k}_{key}": v for k, v in row.items()})
        m["removed_" + key] = error(predict(base, camera(X[dev], without(s_dev, c))),
                                    y_dev)
    # a pipeline: stage 1 locates the digit, stage 2 (trained on true crops) reads it
    true_shift = np.concatenate([np.zeros((len(src), 2), int),
                                 s["shift"][tgt[:cfg.num_target_base]]])[tr]
    reader = fit(recentre(X_tr, true_shift), y_tr, cfg, seed)
    centre = centre_of_mass(X[src]).mean(0)
    found = locate(X_dev, centre, cfg.locate_threshold)
    m["locate_acc"] = (found == s_dev["shift"]).all(1).mean()
    m["pipeline"] = error(predict(reader, recentre(X_dev, found)), y_dev)
    m["pipeline_true_stage1"] = error(predict(reader, recentre(X_dev, s_dev["shift"])),
                                      y_dev)
    return m
# --8<-- [end:experiment]


GAP_BARS = ["Bayes proxy", "train", "train-dev", "dev"]
CURES = {"dev": "baseline", "dev_bigger_net": "bigger network",
         "dev_weight_decay": "weight decay", "dev_more_camera_data": "more camera data",
         "dev_synth_noisy": "synthesised: noisy", "dev_synth_off_centre":
         "synthesised: off-centre", "dev_synth_all": "synthesised: all four"}
ZH = {
    "clean (training)": "干净（训练集）", "off-centre": "偏离中心", "blurred": "模糊",
    "dark": "偏暗", "noisy": "噪声大", "camera frame": "摄像头画面",
    "Bayes proxy": "贝叶斯误差代理", "train": "训练", "train-dev": "训练-开发",
    "dev": "开发", "error rate": "错误率", "avoidable bias": "可避免偏差",
    "variance": "方差", "data mismatch": "数据不匹配",
    "Bayes proxy, camera frames": "贝叶斯误差代理（摄像头画面）",
    "Where the error comes from (mean of the seeds)": "误差从哪里来（各种子平均）",
    "Dev error after one change (bar: mean; dots: seeds)":
        "只改一处之后的开发集错误率（柱：平均；点：各种子）",
    "dev error": "开发集错误率", "baseline": "基线", "bigger network": "更大的网络",
    "weight decay": "权重衰减", "more camera data": "更多摄像头数据",
    "synthesised: noisy": "合成：噪声", "synthesised: off-centre": "合成：偏离中心",
    "synthesised: all four": "合成：四种条件", "seed {}": "种子 {}",
    "share of dev images": "占开发集图像的比例", "share of errors": "占错误的比例",
    "Which conditions the misclassified dev images have":
        "被分错的开发集图像带有哪些条件",
    "ceiling (errors with it / dev size)": "上限（带该条件的错误 / 开发集大小）",
    "gain when it is removed": "去掉该条件后的实际降幅",
    "Ceiling vs what removing the condition gains": "上限与去掉该条件的实际收益",
    "fraction": "比例", "drop in dev error": "开发集错误率的降幅",
}


def plot_camera(X, out: Path) -> None:
    """One mosaic: a row per condition, the same eight digits in every row."""
    rng = np.random.default_rng(1)
    rows = {"clean (training)": None, **{c: {c: 1.0} for c in CONDITIONS},
            "camera frame": CONDITIONS}
    tiles = [X[:8] if p is None else camera(X[:8], draw_conditions(8, rng, p))
             for p in rows.values()]
    gap = SIDE + 1  # a white line between tiles
    mosaic = np.ones((len(rows) * gap, 8 * gap))
    for r, imgs in enumerate(tiles):
        for c, img in enumerate(imgs):
            mosaic[r * gap:r * gap + SIDE, c * gap:c * gap + SIDE] = img.clip(0, 1)
    fig, ax = plt.subplots(figsize=(7, 5.6))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(rows)) * gap + SIDE / 2 - 0.5, list(rows))
    ax.set_xticks([])
    ax.grid(False)
    save_figure(fig, out / "camera.svg", zh=ZH)


def plot_gaps(runs: list[dict], out: Path) -> None:
    mean = {k: np.mean([r[k] for r in runs]) for k in runs[0]}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.6),
                                 gridspec_kw={"width_ratios": [1, 1.3]})
    keys = ["proxy_train", "train", "train_dev", "dev"]
    ax.bar(range(4), [mean[k] for k in keys], color=["#bbbbbb", "C0", "C2", "C1"],
           hatch="//", edgecolor="white")
    for i, k in enumerate(keys):
        ax.plot([i] * len(runs), [r[k] for r in runs], "k.", ms=5)
    for i, (a, b, label) in enumerate((("proxy_train", "train", "avoidable bias"),
                                       ("train", "train_dev", "variance"),
                                       ("train_dev", "dev", "data mismatch"))):
        ax.annotate("", (i + 0.5, mean[b]), (i + 0.5, mean[a]),
                    arrowprops={"arrowstyle": "<->"})
        ax.text(i + 0.55, (mean[a] + mean[b]) / 2, label, fontsize=9)
    ax.axhline(mean["proxy_dev"], ls="--", color="k", lw=1)
    ax.text(-0.4, mean["proxy_dev"] + 0.005, "Bayes proxy, camera frames", fontsize=8)
    ax.set_xticks(range(4), GAP_BARS)
    ax.set(ylabel="error rate", title="Where the error comes from (mean of the seeds)")
    names = list(CURES)
    bx.barh(range(len(names)), [mean[k] for k in names], color="#cccccc")
    for j, r in enumerate(runs):
        bx.plot([r[k] for k in names], range(len(names)), "o^sDv"[j % 5], ms=4,
                color="k", ls="none", label=f"seed {j}")
    bx.axvline(mean["dev"], ls=":", color="k")
    bx.set_yticks(range(len(names)), [CURES[k] for k in names])
    bx.invert_yaxis()
    bx.set(xlabel="dev error",
           title="Dev error after one change (bar: mean; dots: seeds)")
    bx.legend(fontsize=8, loc="lower right")
    save_figure(fig, out / "gaps.svg", zh=ZH)


def plot_categories(runs: list[dict], out: Path) -> None:
    mean = {k: np.mean([r[k] for r in runs]) for k in runs[0]}
    keys = [c.replace("-", "_") for c in CONDITIONS]
    x = np.arange(len(keys))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4))
    for j, (what, hatch) in enumerate((("share_of_dev", ""),
                                       ("share_of_errors", "//"))):
        ax.bar(x + (j - 0.5) * 0.38, [mean[f"{what}_{k}"] for k in keys], 0.38,
               hatch=hatch, color=f"C{j}", edgecolor="white",
               label=what.replace("_", " ").replace("dev", "dev images"))
    ax.set_xticks(x, list(CONDITIONS))
    ax.set(ylabel="fraction",
           title="Which conditions the misclassified dev images have")
    ax.legend(fontsize=8)
    gains = [mean["dev"] - mean["removed_" + k] for k in keys]
    bx.bar(x - 0.19, [mean["ceiling_" + k] for k in keys], 0.38, color="#bbbbbb",
           label="ceiling (errors with it / dev size)")
    bx.bar(x + 0.19, gains, 0.38, color="C3", hatch="..", edgecolor="white",
           label="gain when it is removed")
    bx.set_xticks(x, list(CONDITIONS))
    bx.set(ylabel="drop in dev error",
           title="Ceiling vs what removing the condition gains")
    bx.legend(fontsize=8)
    save_figure(fig, out / "categories.svg", zh=ZH)


def main(cfg: Config = Config(),
         out: Path = Path("out/foundations-error_analysis")) -> dict:
    seed_everything(cfg.seeds[0])
    use_style()
    X, y = clean_digits()
    X, y = X[:cfg.num_images], y[:cfg.num_images]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small MLPs: one thread's CPU seconds on any machine
    try:
        runs = [run_seed(X, y, cfg, seed) for seed in cfg.seeds]
    finally:
        torch.set_num_threads(threads)
    plot_camera(X, out)
    plot_gaps(runs, out)
    plot_categories(runs, out)
    keys = [c.replace("-", "_") for c in CONDITIONS]
    for r in runs:  # per-seed quantities the claims need
        g = gaps(r["proxy_train"], r["train"], r["train_dev"], r["dev"])
        r.update(g, mismatch_lead=g["data_mismatch"] - max(g["avoidable_bias"],
                                                           g["variance"]),
                 dev_above_proxy=r["dev"] - r["proxy_dev"],
                 stage1_gain=r["pipeline"] - r["pipeline_true_stage1"])
        over = [r[f"share_of_errors_{k}"] / r[f"share_of_dev_{k}"] for k in keys]
        removed = [r["dev"] - r["removed_" + k] for k in keys]
        r["off_centre_most_overrepresented"] = float(np.argmax(over) == 0)
        r["off_centre_largest_removal_gain"] = float(np.argmax(removed) == 0)
        r["gain_over_ceiling"] = max(g - r["ceiling_" + k]
                                         for g, k in zip(removed, keys))
    m = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    for k in CURES:
        m["gain_" + k.removeprefix("dev_")] = m["dev"] - m[k]
    for k in keys:
        m["removal_gain_" + k] = m["dev"] - m["removed_" + k]
    for k in ("mismatch_lead", "dev_above_proxy", "stage1_gain"):
        m["min_" + k] = min(r[k] for r in runs)
    for k in ("avoidable_bias", "gain_over_ceiling"):
        m["max_" + k] = max(r[k] for r in runs)
    m.update({f"{k}_s{s}": r[k] for s, r in zip(cfg.seeds, runs)
              for k in ("dev", "dev_synth_all", "dev_more_camera_data")})
    m.update(num_seeds=len(cfg.seeds), num_dev=cfg.num_dev, num_test=cfg.num_test,
             num_target=cfg.num_target, num_target_base=cfg.num_target_base,
             num_more_camera=cfg.num_target - cfg.num_target_base,
             num_source=len(y) - cfg.num_dev - cfg.num_test - cfg.num_target,
             proxy_draws=cfg.proxy_draws, num_epochs=cfg.num_epochs,
             one_error=1 / cfg.num_dev)
    return m


CLAIMS = {
    "data_mismatch_is_the_largest_gap_on_every_seed":
        lambda m: m["min_mismatch_lead"] > 0.04,
    "training_error_is_at_or_below_the_proxy_on_every_seed":
        lambda m: m["max_avoidable_bias"] <= 0,
    "dev_error_far_above_the_camera_proxy_on_every_seed":
        lambda m: m["min_dev_above_proxy"] > 0.08,
    "cures_for_the_small_gaps_gain_less_than_cures_for_the_mismatch":
        lambda m: max(m["gain_bigger_net"], m["gain_weight_decay"]) + 0.02
        < min(m["gain_more_camera_data"], m["gain_synth_all"]),
    "more_camera_data_lowers_dev_error_on_average":
        lambda m: m["gain_more_camera_data"] > 0.02,
    "synthesis_of_all_four_conditions_lowers_dev_error_on_average":
        lambda m: m["gain_synth_all"] > 0.04,
    "synthesising_off_centre_alone_gains_most_of_what_all_four_gain":
        lambda m: m["gain_synth_off_centre"] > 0.75 * m["gain_synth_all"],
    "synthesising_the_top_category_beats_synthesising_noise":
        lambda m: m["gain_synth_off_centre"] > m["gain_synth_noisy"] + 0.02,
    "off_centre_is_the_most_overrepresented_category_on_every_seed":
        lambda m: m["off_centre_most_overrepresented"] == 1,
    "removing_off_centre_gains_most_on_every_seed":
        lambda m: m["off_centre_largest_removal_gain"] == 1,
    "no_removal_gains_more_than_its_ceiling":
        lambda m: m["max_gain_over_ceiling"] <= 1e-9,
    "a_perfect_locator_lowers_the_pipeline_error_on_every_seed":
        lambda m: m["min_stage1_gain"] > 0.01,
    "the_reader_has_the_larger_ceiling":
        lambda m: m["pipeline_true_stage1"] > m["stage1_gain"] + 0.03,
}
