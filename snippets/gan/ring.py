"""Eight Gaussians on a ring: mode coverage of a plain GAN and of a packed one (PacGAN).

Page: gan/ring.md
Run:  python -m snippets run gan/ring
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    num_modes: int = 8  # Gaussians at angles 2*pi*k/num_modes
    radius: float = 2.0  # ring radius (VEEGAN / PacGAN setting)
    sigma: float = 0.02  # std of each Gaussian; "high quality" = within 3 sigma
    latent_dim: int = 2  # z ~ N(0, I)
    num_hiddens: int = 64  # width of G and D (3 hidden ReLU layers each)
    num_steps: int = 3600  # alternating D/G steps per run
    lr: float = 3e-3  # Adam, cosine-decayed to 0 (precise modes need a small final lr)
    # arms compared: name -> (pack, samples per step). pack = points per D input
    # (1 = plain GAN); each D step sees `samples` real and `samples` fake points, in
    # samples // pack rows, and each G step makes `samples` points.
    methods: dict = field(default_factory=lambda: {
        "GAN": (1, 128), "GAN-256": (1, 256), "PacGAN2": (2, 256)})
    # metrics are averaged over these; fixed before the runs, unused while tuning (0-3)
    seeds: tuple = (100, 101, 102, 103, 104, 105)
    num_eval: int = 2500  # samples scored per run (as in PacGAN's code)
    snapshots: tuple = (200, 500, 1000, 2000, 3600)  # steps drawn in the grid
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_steps=120, seeds=(0,), snapshots=(60, 120), num_hiddens=32)


# --8<-- [start:data]
def ring_centers(num_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """Mode k at angle 2*pi*k/num_modes. (linspace(0, 2*pi, 8) would repeat mode 0.)"""
    angles = 2 * math.pi * torch.arange(num_modes) / num_modes
    return radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (K, 2)


def sample_ring(n: int, centers: torch.Tensor, sigma: float) -> torch.Tensor:
    k = torch.randint(len(centers), (n,))  # each mode equally likely
    return centers[k] + sigma * torch.randn(n, 2)
# --8<-- [end:data]


# --8<-- [start:metrics]
def mode_coverage_scratch(X, centers, sigma):
    """Loop version: (modes covered, share of high-quality samples)."""
    covered, good = set(), 0
    for x in X.tolist():
        dists = [math.dist(x, c) for c in centers.tolist()]
        k = min(range(len(dists)), key=dists.__getitem__)  # nearest mode
        if dists[k] < 3 * sigma:  # high quality: within 3 sigma of it
            good += 1
            covered.add(k)  # a mode counts once it has one good sample
    return len(covered), good / len(X)


def mode_coverage(X, centers, sigma):
    """The same numbers, vectorised."""
    dist, nearest = torch.cdist(X, centers).min(dim=1)  # (N,), (N,)
    good = dist < 3 * sigma
    return len(torch.unique(nearest[good])), good.float().mean().item()


def mode_kl(X, centers, sigma):
    """KL(p || uniform) of the high-quality samples' mode histogram p (0 = balanced)."""
    dist, nearest = torch.cdist(X, centers).min(dim=1)
    counts = torch.bincount(nearest[dist < 3 * sigma], minlength=len(centers)).double()
    if counts.sum() == 0:
        return math.log(len(centers))  # nothing good: as bad as one mode
    p = counts[counts > 0] / counts.sum()  # 0 * log 0 = 0
    return float((p * torch.log(p * len(centers))).sum())
# --8<-- [end:metrics]


def mlp(num_in: int, num_out: int, num_hiddens: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(num_in, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_out))


# --8<-- [start:pack]
def pack_scratch(X: torch.Tensor, pack: int) -> torch.Tensor:
    """Glue each group of `pack` consecutive samples into one row for D."""
    rows = [torch.cat([X[i + j] for j in range(pack)]) for i in range(0, len(X), pack)]
    return torch.stack(rows)  # (N / pack, 2 * pack)


def pack_samples(X: torch.Tensor, pack: int) -> torch.Tensor:
    return X.reshape(len(X) // pack, pack * X.shape[1])  # same rows, no copy
# --8<-- [end:pack]


# --8<-- [start:train]
def d_batches(G, centers, cfg: Config, pack: int, samples: int):
    """What D sees in one step: `samples` real and `samples` fake points, packed into
    samples // pack rows of 2 * pack numbers."""
    X = pack_samples(sample_ring(samples, centers, cfg.sigma), pack)
    with torch.no_grad():
        X_fake = pack_samples(G(torch.randn(samples, cfg.latent_dim)), pack)
    return X, X_fake


def train(cfg: Config, pack: int, samples: int, seed: int, on_snapshot=None):
    torch.manual_seed(seed)
    centers = ring_centers(cfg.num_modes, cfg.radius)
    G = mlp(cfg.latent_dim, 2, cfg.num_hiddens)
    D = mlp(2 * pack, 1, cfg.num_hiddens)  # D judges `pack` samples at once
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    def decay(step):  # cosine from lr down to 0
        return 0.5 * (1 + math.cos(math.pi * step / cfg.num_steps))
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, decay) for o in (opt_G, opt_D)]
    bce = F.binary_cross_entropy_with_logits
    for step in progress(range(1, cfg.num_steps + 1), desc=f"pack={pack} seed={seed}"):
        X, X_fake = d_batches(G, centers, cfg, pack, samples)
        logit_real, logit_fake = D(X), D(X_fake)
        loss_D = (bce(logit_real, torch.ones_like(logit_real))
                  + bce(logit_fake, torch.zeros_like(logit_fake)))
        opt_D.zero_grad(), loss_D.backward(), opt_D.step()
        logit_fake = D(pack_samples(G(torch.randn(samples, cfg.latent_dim)), pack))
        loss_G = bce(logit_fake, torch.ones_like(logit_fake))
        opt_G.zero_grad(), loss_G.backward(), opt_G.step()  # non-saturating loss
        for sched in scheds:
            sched.step()
        if on_snapshot and step in cfg.snapshots:
            on_snapshot(step, sample(G, cfg))
    return G
# --8<-- [end:train]


def sample(G, cfg: Config) -> torch.Tensor:
    """num_eval samples from noise of its own: evaluating never moves training's RNG."""
    z = torch.randn(cfg.num_eval, cfg.latent_dim,
                    generator=torch.Generator().manual_seed(cfg.seed))
    with torch.no_grad():
        return G(z)


ZH = {
    "{}, step {}\n{}/{} modes, {} HQ": "{}，第 {} 步\n{}/{} 个模式，{} 高质量",
    "samples over training (seed {}; +: mode centres, 3 sigma is smaller than a +)":
        "训练过程中的样本（种子 {}；十字：模式中心，3σ 半径比十字还小）",
    "{}, seed {}: {} modes, {} HQ, KL {}": "{}，种子 {}：{} 个模式，{} 高质量，KL {}",
    "nearest mode k": "最近的模式 k", "share of HQ samples": "高质量样本中的比例",
    "GAN-256": "GAN-256",
}
LOOKS = ["C0", "C3", "C2", "C4"]  # one colour per arm; titles name the arm too


def plot_grid(cfg: Config, shots: dict, seed: int, out: Path) -> None:
    centers = ring_centers(cfg.num_modes, cfg.radius)
    names, steps = list(shots), list(cfg.snapshots)
    fig, axes = plt.subplots(len(names), len(steps), squeeze=False,
                             figsize=(2.3 * len(steps), 2.4 * len(names)))
    for r, name in enumerate(names):
        for c, step in enumerate(steps):
            ax, X = axes[r, c], shots[name][step]
            modes, good = mode_coverage(X, centers, cfg.sigma)
            ax.scatter(X[:, 0], X[:, 1], s=1.5, alpha=0.4, rasterized=True,
                       color=LOOKS[r])
            ax.scatter(centers[:, 0], centers[:, 1], s=40, marker="+", lw=0.8,
                       color="k")
            ax.set_xlim(-2.7, 2.7), ax.set_ylim(-2.7, 2.7), ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{name}, step {step}\n{modes}/{cfg.num_modes} modes, "
                         f"{good:.0%} HQ", fontsize=8)
    fig.suptitle(f"samples over training (seed {seed}; +: mode centres, 3 sigma is "
                 "smaller than a +)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out / "samples_grid.png", zh=ZH)


def plot_final(cfg: Config, finals: dict, out: Path) -> None:
    """Each run's high-quality samples by mode: the histogram its KL and modes read."""
    centers = ring_centers(cfg.num_modes, cfg.radius)
    names = list(finals)
    fig, axes = plt.subplots(len(names), len(cfg.seeds), squeeze=False, sharey=True,
                             figsize=(3.2 * len(cfg.seeds), 2.4 * len(names)))
    for r, name in enumerate(names):
        for c, X in enumerate(finals[name]):
            ax = axes[r, c]
            dist, nearest = torch.cdist(X, centers).min(dim=1)
            counts = torch.bincount(nearest[dist < 3 * cfg.sigma],
                                    minlength=cfg.num_modes).numpy()
            modes, good = mode_coverage(X, centers, cfg.sigma)
            kl = mode_kl(X, centers, cfg.sigma)
            ax.bar(np.arange(cfg.num_modes), counts / max(counts.sum(), 1),
                   color=LOOKS[r])
            ax.axhline(1 / cfg.num_modes, color="k", lw=1, ls="--")
            ax.set_xticks(range(cfg.num_modes))
            ax.set_title(f"{name}, seed {cfg.seeds[c]}: {modes} modes, {good:.0%} HQ,"
                         f" KL {kl:.2f}", fontsize=8)
            ax.set_xlabel("nearest mode k", fontsize=8)
        axes[r, 0].set_ylabel("share of HQ samples")
    fig.tight_layout()
    save_figure(fig, out / "mode_histograms.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/gan-ring")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    centers = ring_centers(cfg.num_modes, cfg.radius)
    shots, finals, metrics = {}, {}, {}
    for name, (pack, samples) in cfg.methods.items():
        shots[name], finals[name], modes, goods, kls, secs = {}, [], [], [], [], []
        for seed in cfg.seeds:
            shots[name][seed] = {}
            start = time.process_time()
            keep = shots[name][seed].__setitem__
            G = train(cfg, pack, samples, seed, on_snapshot=keep)
            secs.append(time.process_time() - start)
            # score the samples drawn in the grid's last column, if there is one
            X = shots[name][seed].get(cfg.num_steps, None)
            X = sample(G, cfg) if X is None else X
            finals[name].append(X)
            m, g = mode_coverage(X, centers, cfg.sigma)
            modes.append(m), goods.append(g), kls.append(mode_kl(X, centers, cfg.sigma))
        key = name.lower().replace("-", "")
        metrics.update({f"{key}_modes": float(np.mean(modes)),
                        f"{key}_modes_min": float(np.min(modes)),
                        f"{key}_hq": float(np.mean(goods)),
                        f"{key}_hq_min": float(np.min(goods)),
                        f"{key}_kl": float(np.mean(kls)),
                        f"{key}_kl_max": float(np.max(kls)),
                        f"{key}_kl_se": float(np.std(kls, ddof=1) / np.sqrt(len(kls)))
                        if len(kls) > 1 else 0.0,
                        f"{key}_full_seeds": sum(k == cfg.num_modes for k in modes),
                        f"{key}_samples_per_step": samples,
                        f"{key}_rows_per_step": samples // pack,
                        f"{key}_cpu_s_per_run": float(np.mean(secs))})
    # draw the seed on which the first method (the plain GAN) covered the fewest modes
    first = list(cfg.methods)[0]
    worst = min(range(len(cfg.seeds)),
                key=lambda i: mode_coverage(finals[first][i], centers, cfg.sigma))
    seed = cfg.seeds[worst]
    plot_grid(cfg, {n: shots[n][seed] for n in shots}, seed, out)
    plot_final(cfg, finals, out)
    X_real = sample_ring(cfg.num_eval, centers, cfg.sigma)  # a perfect G's score
    real_modes, real_good = mode_coverage(X_real, centers, cfg.sigma)
    se = [metrics.get(f"{k}_kl_se", 0.0) for k in ("gan256", "pacgan2")]
    metrics["kl_diff_se"] = math.hypot(*se)  # s.e. of the difference of two means
    metrics.update({"num_seeds": len(cfg.seeds), "grid_seed": cfg.seeds[worst],
                    "num_steps": cfg.num_steps, "num_eval": cfg.num_eval,
                    "real_hq": real_good, "real_modes": real_modes,
                    "real_kl": mode_kl(X_real, centers, cfg.sigma)})
    return metrics


CLAIMS = {
    # modes: packing keeps them, at the paper's budget and at the fair one
    "pacgan2_keeps_all_modes_on_at_least_as_many_seeds_as_gan":
        lambda m: m["pacgan2_full_seeds"] >= m["gan_full_seeds"],
    "pacgan2_keeps_all_modes_on_at_least_as_many_seeds_as_gan256":
        lambda m: m["pacgan2_full_seeds"] >= m["gan256_full_seeds"],
    "pacgan2_covers_at_least_as_many_modes_as_gan256":
        lambda m: m["pacgan2_modes"] >= m["gan256_modes"],
    # quality: at this budget packing costs precision
    "gan256_has_more_high_quality_samples_than_pacgan2":
        lambda m: m["gan256_hq"] > m["pacgan2_hq"] + 0.02,
    # proportions: the difference is not resolved by this many seeds
    "kl_difference_is_within_three_standard_errors":
        lambda m: abs(m["pacgan2_kl"] - m["gan256_kl"]) < 3 * m["kl_diff_se"],
    "every_arm_stays_below_the_data_ceiling":
        lambda m: max(m["gan_hq"], m["gan256_hq"], m["pacgan2_hq"]) < m["real_hq"],
}
