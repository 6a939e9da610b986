"""Without the other player: an autoencoder's decoder as a generator, and a
discriminator that generates by gradient ascent on its input, on the 8-Gaussian ring.

Page: gan/without-adversary.md
Run:  python -m snippets run gan/without_adversary
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style
from snippets.gan.ring import mode_coverage, ring_centers, sample_ring


@dataclass
class Config:
    sigma: float = 0.02  # the ring of gan/ring: 8 modes, radius 2
    latent_dim: int = 2  # autoencoder code size (same as the GAN's z)
    num_hiddens: int = 64
    ae_steps: int = 2500  # autoencoder training steps
    d_steps: int = 1500  # discriminator (real vs uniform noise) training steps
    batch_size: int = 256
    lr: float = 2e-3
    ascent_steps: int = 300  # gradient-ascent steps on D's input
    ascent_lr: float = 0.02  # step size; each step's gradient is clipped to norm <= 1
    num_eval: int = 2500
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(ae_steps=100, d_steps=100, ascent_steps=20, num_eval=500)


def mlp(num_in: int, num_out: int, num_hiddens: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(num_in, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_out))


# --8<-- [start:autoencoder]
def train_autoencoder(cfg: Config, centers):
    encoder = mlp(2, cfg.latent_dim, cfg.num_hiddens)
    decoder = mlp(cfg.latent_dim, 2, cfg.num_hiddens)  # the would-be generator
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=cfg.lr)
    for _ in progress(range(cfg.ae_steps), desc="autoencoder"):
        X = sample_ring(cfg.batch_size, centers, cfg.sigma)
        loss = F.mse_loss(decoder(encoder(X)), X)  # reconstruct every training point
        opt.zero_grad(), loss.backward(), opt.step()
    return encoder, decoder


def fit_gaussian(codes: torch.Tensor):
    """Mean and covariance of the codes, from scratch: the prior we sample z from."""
    mean = codes.mean(dim=0)
    centered = codes - mean
    cov = centered.T @ centered / (len(codes) - 1)  # unbiased, like torch.cov
    return mean, cov


def sample_decoder(decoder, mean, cov, n: int):
    z = torch.distributions.MultivariateNormal(mean, cov).sample((n,))
    with torch.no_grad():
        return decoder(z), z
# --8<-- [end:autoencoder]


# --8<-- [start:discriminator]
def train_discriminator(cfg: Config, centers):
    """D(x): real ring samples -> 1, uniform noise on the square -> 0. No generator."""
    D = mlp(2, 1, cfg.num_hiddens)
    opt = torch.optim.Adam(D.parameters(), lr=cfg.lr)
    for _ in progress(range(cfg.d_steps), desc="discriminator"):
        X = sample_ring(cfg.batch_size, centers, cfg.sigma)
        noise = 6 * torch.rand(cfg.batch_size, 2) - 3  # uniform on [-3, 3]^2
        logit_real, logit_fake = D(X), D(noise)
        bce = F.binary_cross_entropy_with_logits
        loss = (bce(logit_real, torch.ones_like(logit_real))
                + bce(logit_fake, torch.zeros_like(logit_fake)))
        opt.zero_grad(), loss.backward(), opt.step()
    return D


def ascend_scratch(D, X0, steps: int, lr: float, keep_path: bool = False):
    """Gradient ascent on log D(x) with respect to the input x; D's weights stay."""
    X, path = X0.clone(), [X0.clone()]
    for _ in range(steps):
        X.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.logsigmoid(D(X)).sum(), X)
        grad = grad / grad.norm(dim=1, keepdim=True).clamp(min=1.0)  # step <= lr
        X = (X + lr * grad).detach()  # step uphill
        if keep_path:
            path.append(X.clone())
    return (X, torch.stack(path)) if keep_path else X


def ascend_torch(D, X0, steps: int, lr: float):
    """The same ascent with an optimizer that owns the inputs instead of the weights."""
    X = X0.clone().requires_grad_(True)
    # the same cap as above, applied to the gradient before SGD sees it
    X.register_hook(lambda g: g / g.norm(dim=1, keepdim=True).clamp(min=1.0))
    opt = torch.optim.SGD([X], lr=lr, maximize=True)
    for _ in range(steps):
        opt.zero_grad()
        F.logsigmoid(D(X)).sum().backward()
        opt.step()
    return X.detach()
# --8<-- [end:discriminator]


def spread_ratio(X, centers, sigma: float) -> float:
    """Std of good samples around their mode, divided by sigma (1 = like the data)."""
    dist, nearest = torch.cdist(X, centers).min(dim=1)
    good = dist < 3 * sigma
    if good.sum() < 2:
        return 0.0
    offsets = X[good] - centers[nearest[good]]
    return float(offsets.pow(2).sum(dim=1).mean().div(2).sqrt() / sigma)


def share_ratio(X, centers) -> float:
    """Largest / smallest share of samples per nearest mode (1 = balanced, data: ~1)."""
    nearest = torch.cdist(X, centers).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=len(centers))
    return float(counts.max() / counts.min().clamp(min=1))


ZH = {
    "z ~ fitted Gaussian": "z ~ 拟合的高斯",
    "codes of real points (number = mode)\nand the prior we sample from":
        "真实点的编码（数字 = 模式编号）\n以及我们从中抽样的先验",
    "decoder(z): {}/8 modes, {} high quality": "解码器(z)：{}/8 个模式，{} 高质量",
    "mode centre": "模式中心",
    "log D(x) and the capped ascent step": "log D(x) 与截断后的上升步",
    "log D(x) (clipped at -8)": "log D(x)（低于 −8 截断）",
    "start": "起点", "after ascent": "上升之后",
    "gradient ascent: {}/8 modes, {} HQ": "梯度上升：{}/8 个模式，{} 高质量",
}


def plot_autoencoder(centers, codes, labels, mean, cov, X_gen, z_gen, cfg, out: Path):
    modes, good = mode_coverage(X_gen, centers, cfg.sigma)
    centers, codes, labels, X_gen, z_gen = (t.numpy() for t in
                                            (centers, codes, labels, X_gen, z_gen))
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 4))
    ax = axes[0]
    ax.scatter(z_gen[:, 0], z_gen[:, 1], s=2, color="0.75", label="z ~ fitted Gaussian")
    colours = plt.get_cmap("Dark2").colors  # eight distinct colours, one per mode
    for k in range(len(centers)):
        ax.scatter(*codes[labels == k].T, s=3, color=colours[k])
        ax.annotate(str(k), codes[labels == k].mean(axis=0), fontsize=9,
                    fontweight="bold", xytext=(4, 4), textcoords="offset points")
    ax.set_title("codes of real points (number = mode)\nand the prior we sample from")
    ax.set_xlabel("$z_1$"), ax.set_ylabel("$z_2$"), ax.legend(fontsize=8, markerscale=4)
    ax = axes[1]
    ax.scatter(*X_gen.T, s=1, alpha=0.3, color="C0")
    ax.scatter(*centers.T, marker="x", color="C1", label="mode centre")
    ax.set_aspect("equal"), ax.set_xlim(-2.7, 2.7), ax.set_ylim(-2.7, 2.7)
    ax.set_title(f"decoder(z): {modes}/8 modes, {good:.0%} high quality")
    ax.legend(fontsize=8, loc="center")
    save_figure(fig, out / "autoencoder.png", zh=ZH)


def plot_field(D, centers, X0, path, cfg, out: Path):
    g = torch.linspace(-3, 3, 121)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    grid = torch.stack([xx.flatten(), yy.flatten()], dim=1).requires_grad_(True)
    logd = F.logsigmoid(D(grid))
    (grad,) = torch.autograd.grad(logd.sum(), grid)
    step = grad / grad.norm(dim=1, keepdim=True).clamp(min=1.0)  # the capped step / lr
    modes, good = mode_coverage(path[-1], centers, cfg.sigma)
    logd, xx, yy = logd.detach().numpy(), xx.numpy(), yy.numpy()
    step, centers, X0, path = step.numpy(), centers.numpy(), X0.numpy(), path.numpy()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    ax = axes[0]
    im = ax.imshow(logd.reshape(121, 121).clip(-8, 0), extent=(-3, 3, -3, 3),
                   origin="lower", cmap="viridis", vmin=-8, vmax=0)
    k = 8  # one arrow every k grid points; length = the step ascent really takes
    ax.quiver(xx[::k, ::k], yy[::k, ::k], step[:, 0].reshape(121, 121)[::k, ::k],
              step[:, 1].reshape(121, 121)[::k, ::k], color="w", scale=18,
              width=0.004)
    ax.scatter(*centers.T, marker="x", color="C1")
    fig.colorbar(im, ax=ax, shrink=0.8, label="log D(x) (clipped at -8)")
    ax.set_title("log D(x) and the capped ascent step"), ax.grid(False)
    ax = axes[1]
    for i in range(0, path.shape[1], max(1, path.shape[1] // 60)):
        ax.plot(path[:, i, 0], path[:, i, 1], lw=0.6, color="0.6")
    final = path[-1]
    ax.scatter(*X0.T, s=2, color="0.8", label="start")
    ax.scatter(*final.T, s=14, color="C0", label="after ascent", zorder=3)
    ax.scatter(*centers.T, marker="+", s=20, lw=0.8, color="C1", zorder=4,
               label="mode centre")
    ax.set_aspect("equal"), ax.set_xlim(-3, 3), ax.set_ylim(-3, 3)
    ax.set_title(f"gradient ascent: {modes}/8 modes, {good:.0%} HQ")
    ax.legend(fontsize=8)
    save_figure(fig, out / "discriminator_field.png", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/gan-without_adversary")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    centers = ring_centers()
    start = time.process_time()
    encoder, decoder = train_autoencoder(cfg, centers)
    X_real = sample_ring(cfg.num_eval, centers, cfg.sigma)
    labels = torch.cdist(X_real, centers).argmin(dim=1)
    with torch.no_grad():
        codes = encoder(X_real)
        recon_mse = F.mse_loss(decoder(codes), X_real).item()
    mean, cov = fit_gaussian(codes)
    X_gen, z_gen = sample_decoder(decoder, mean, cov, cfg.num_eval)
    ae_modes, ae_good = mode_coverage(X_gen, centers, cfg.sigma)
    ae_cpu = time.process_time() - start
    plot_autoencoder(centers, codes, labels, mean, cov, X_gen, z_gen, cfg, out)

    start = time.process_time()
    D = train_discriminator(cfg, centers)
    X0 = 6 * torch.rand(cfg.num_eval, 2) - 3  # start from the same noise D was shown
    X_up, path = ascend_scratch(D, X0, cfg.ascent_steps, cfg.ascent_lr, keep_path=True)
    d_modes, d_good = mode_coverage(X_up, centers, cfg.sigma)
    d_cpu = time.process_time() - start
    plot_field(D, centers, X0, path, cfg, out)
    real_modes, real_good = mode_coverage(X_real, centers, cfg.sigma)
    third = cfg.ascent_steps // 3  # the spread a third of the way up, and at the end
    return {"ae_recon_mse": recon_mse, "ae_modes": ae_modes, "ae_hq": ae_good,
            "ae_spread_ratio": spread_ratio(X_gen, centers, cfg.sigma),
            "dgen_modes": d_modes, "dgen_hq": d_good,
            "dgen_spread_ratio": spread_ratio(X_up, centers, cfg.sigma),
            "dgen_spread_ratio_early": spread_ratio(path[third], centers, cfg.sigma),
            "dgen_steps_early": third, "ascent_steps": cfg.ascent_steps,
            "num_eval": cfg.num_eval,
            "dgen_share_ratio": share_ratio(X_up, centers),
            "real_share_ratio": share_ratio(X_real, centers),
            "dgen_far": float((torch.cdist(X_up, centers).min(dim=1)[0] > 0.5).float()
                              .mean()),
            "real_hq": real_good, "real_modes": real_modes, "ae_cpu_s": ae_cpu,
            "dgen_cpu_s": d_cpu}


CLAIMS = {
    "autoencoder_reconstructs_almost_perfectly":
        lambda m: m["ae_recon_mse"] < 0.02 ** 2,  # below the modes' variance sigma^2
    "autoencoder_samples_are_mostly_low_quality": lambda m: m["ae_hq"] < 0.1,
    "ascent_reaches_every_mode": lambda m: m["dgen_modes"] == 8,
    "ascent_quality_is_above_the_data_own": lambda m: m["dgen_hq"] > m["real_hq"],
    "ascent_spread_is_below_the_data": lambda m: m["dgen_spread_ratio"] < 0.8,
    "longer_climbing_barely_changes_the_spread":
        lambda m: abs(m["dgen_spread_ratio"] - m["dgen_spread_ratio_early"]) < 0.15,
    "ascent_proportions_are_less_even_than_the_data":
        lambda m: m["dgen_share_ratio"] > m["real_share_ratio"],
}
