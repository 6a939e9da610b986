"""The GAN game in 1-D: the two losses, the alternating loop, and why G uses -log D.

Page: gan/game.md
Run:  python -m snippets run gan/game
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import wasserstein_distance
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    data_mean: float = 4.0  # real data: N(data_mean, data_std^2)
    data_std: float = 0.5
    num_hiddens: int = 32  # width of both two-layer MLPs
    num_steps: int = 1500  # alternating steps (one D step, then one G step)
    d_head_start: int = 200  # D steps before G moves: D gets confident, as in practice
    batch_size: int = 256
    lr: float = 1e-3  # Adam, both players
    dstar_steps: int = 1500  # steps to train D alone against a fixed G (checks D*)
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_steps=150, d_head_start=30, dstar_steps=150)


# --8<-- [start:losses]
def d_loss_scratch(logit_real, logit_fake):
    """-[log D(x) + log(1 - D(G(z)))], averaged; D = sigmoid(logit)."""
    D_real, D_fake = torch.sigmoid(logit_real), torch.sigmoid(logit_fake)
    return -(torch.log(D_real) + torch.log(1 - D_fake)).mean()


def g_loss_saturating(logit_fake):
    """The minimax generator loss: minimise log(1 - D(G(z)))."""
    return torch.log(1 - torch.sigmoid(logit_fake)).mean()


def g_loss_nonsaturating(logit_fake):
    """The loss used in practice: minimise -log D(G(z))."""
    return -torch.log(torch.sigmoid(logit_fake)).mean()
# --8<-- [end:losses]


# --8<-- [start:losses_torch]
def d_loss(logit_real, logit_fake):
    """The same discriminator loss, numerically stable: BCE on logits."""
    bce = F.binary_cross_entropy_with_logits
    return (bce(logit_real, torch.ones_like(logit_real))
            + bce(logit_fake, torch.zeros_like(logit_fake)))


def g_loss(logit_fake, saturating=False):
    if saturating:  # log(1 - sigmoid(a)) = -softplus(a)
        return -F.softplus(logit_fake).mean()
    return F.binary_cross_entropy_with_logits(logit_fake, torch.ones_like(logit_fake))
# --8<-- [end:losses_torch]


# --8<-- [start:optimal_d]
def optimal_d(x, mean_data, std_data, mean_g, std_g):
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) for two Gaussians."""
    def pdf(v, m, s):
        return torch.exp(-0.5 * ((v - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    p_data, p_g = pdf(x, mean_data, std_data), pdf(x, mean_g, std_g)
    return p_data / (p_data + p_g)
# --8<-- [end:optimal_d]


def mlp(num_in, num_hiddens):
    return nn.Sequential(nn.Linear(num_in, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, 1))


def real_batch(cfg: Config, n: int) -> torch.Tensor:
    return cfg.data_mean + cfg.data_std * torch.randn(n, 1)


# --8<-- [start:train]
def train(cfg: Config, saturating=False, snapshots=()):
    torch.manual_seed(cfg.seed)
    G, D = mlp(1, cfg.num_hiddens), mlp(1, cfg.num_hiddens)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    history, shots = [], {}
    for step in progress(range(cfg.d_head_start + cfg.num_steps), desc="game"):
        # 1) train D with G fixed: real -> 1, fake -> 0
        X = real_batch(cfg, cfg.batch_size)
        with torch.no_grad():  # no gradient flows into G here
            X_fake = G(torch.randn(cfg.batch_size, 1))
        loss_D = d_loss(D(X), D(X_fake))
        opt_D.zero_grad(), loss_D.backward(), opt_D.step()
        if step < cfg.d_head_start:
            continue
        # 2) train G with D fixed: only opt_G steps, D's weights stay as they are
        logit_fake = D(G(torch.randn(cfg.batch_size, 1)))
        loss_G = g_loss(logit_fake, saturating)
        opt_G.zero_grad(), loss_G.backward()
        t = step - cfg.d_head_start
        if t == 0:  # G's first update: how big is its signal, where do fakes score?
            grads = torch.cat([p.grad.flatten() for p in G.parameters()])
            first = {"grad": grads.norm().item(),
                     "d_fake": torch.sigmoid(logit_fake).detach().squeeze(1).numpy()}
        opt_G.step()
        if t % 25 == 0 or t == cfg.num_steps - 1:
            history.append((t, w1(cfg, G), torch.sigmoid(logit_fake).mean().item()))
        if t in snapshots:
            shots[t] = snapshot(G, D)
    return G, D, np.array(history), shots, first
# --8<-- [end:train]


def w1(cfg: Config, G, n: int = 2000) -> float:
    """Wasserstein-1 distance between generated and real samples (exact in 1-D)."""
    with torch.no_grad():
        fake = G(torch.randn(n, 1)).squeeze(1).numpy()
    return float(wasserstein_distance(fake, real_batch(cfg, n).squeeze(1).numpy()))


def snapshot(G, D, n: int = 4000):
    grid = torch.linspace(-2, 7, 200)[:, None]
    with torch.no_grad():
        fake = G(torch.randn(n, 1)).squeeze(1).numpy()
        return fake, torch.sigmoid(D(grid)).squeeze(1).numpy()


def train_d_alone(cfg: Config):
    """Train D against a fixed G(z) = z; compare with the formula for the optimal D*."""
    torch.manual_seed(cfg.seed + 1)
    D = mlp(1, cfg.num_hiddens)
    opt = torch.optim.Adam(D.parameters(), lr=cfg.lr)
    for _ in range(cfg.dstar_steps):
        X, X_fake = real_batch(cfg, cfg.batch_size), torch.randn(cfg.batch_size, 1)
        loss = d_loss(D(X), D(X_fake))
        opt.zero_grad(), loss.backward(), opt.step()
    x = torch.linspace(-1.5, 5.5, 200)[:, None]
    with torch.no_grad():
        learned = torch.sigmoid(D(x)).squeeze(1)
    target = optimal_d(x.squeeze(1), cfg.data_mean, cfg.data_std, 0.0, 1.0)
    return x.squeeze(1), learned, target


def generator_grads(D_values):
    """|d loss_G / d logit| for both generator losses, by autograd, at given D(G(z))."""
    D_values = torch.as_tensor(D_values, dtype=torch.float64)
    logit = torch.logit(D_values).requires_grad_(True)
    out = []
    for saturating in (True, False):
        (grad,) = torch.autograd.grad(g_loss(logit, saturating) * len(logit), logit)
        out.append(grad.abs())
    return out  # [saturating, non-saturating]


def plot_gradients(d_fake_first: np.ndarray, out: Path) -> None:
    p = np.logspace(-4, np.log10(0.999), 300)
    sat, ns = generator_grads(p)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    lo, hi = np.quantile(d_fake_first, [0.05, 0.95])
    ax.axvspan(lo, hi, color="0.85", zorder=0,
               label="D(G(z)) of the fakes at G's first step (5-95%)")
    ax.loglog(p, sat, label=r"minimax $\log(1-D(G(z)))$: |grad| $= D$")
    ax.loglog(p, ns, label=r"non-saturating $-\log D(G(z))$: |grad| $= 1-D$")
    ax.set_xlabel(r"$D(G(z))$ (log scale)"), ax.set_ylabel(r"|d loss / d logit|")
    ax.set_ylim(5e-5, 3)
    ax.set_title("Generator gradient through the discriminator's logit")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, out / "gradients.svg")


def plot_training(cfg, shots, hist_ns, hist_sat, dstar, out: Path) -> None:
    fig, axes = plt.subplots(1, len(shots) + 1, figsize=(3.1 * (len(shots) + 1), 3))
    grid = np.linspace(-2, 7, 200)
    real = real_batch(cfg, 4000).squeeze(1).numpy()
    for ax, (t, (fake, d_curve)) in zip(axes, sorted(shots.items())):
        ax.hist(real, bins=60, range=(-2, 7), density=True, alpha=0.5, label="real")
        ax.hist(fake, bins=60, range=(-2, 7), density=True, alpha=0.5, label="G(z)")
        ax.plot(grid, d_curve, "k", lw=1.2, label="D(x)")
        ax.set_ylim(0, 1.2), ax.set_title(f"step {t}"), ax.set_xlabel("x")
    axes[0].legend(fontsize=8)
    ax = axes[-1]
    ax.semilogy(hist_ns[:, 0], hist_ns[:, 1], label=r"$-\log D$ (non-saturating)")
    ax.semilogy(hist_sat[:, 0], hist_sat[:, 1], label=r"$\log(1-D)$ (minimax)")
    ax.set_xlabel("G step"), ax.set_ylabel(r"$W_1$(fake, real)"), ax.legend(fontsize=8)
    ax.set_title("distance to the data")
    fig.tight_layout()
    save_figure(fig, out / "training.png")
    x, learned, target = dstar
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(x, target, lw=3, alpha=0.5, label=r"$D^*=p_{data}/(p_{data}+p_g)$")
    ax.plot(x, learned, "k--", label="D trained with G fixed")
    ax.set_xlabel("x"), ax.set_ylabel("D(x)"), ax.legend(fontsize=8)
    ax.set_title(r"$p_g=\mathcal{N}(0,1)$, $p_{data}=\mathcal{N}(4, 0.5^2)$")
    save_figure(fig, out / "optimal_d.svg")


def main(cfg: Config = Config(), out: Path = Path("out/gan-game")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    last = cfg.num_steps - 1
    picks = (0, cfg.num_steps // 10, cfg.num_steps // 3, last)
    _, _, hist_ns, shots, first_ns = train(cfg, saturating=False, snapshots=picks)
    _, _, hist_sat, _, first_sat = train(cfg, saturating=True)
    grad_ns, grad_sat = first_ns["grad"], first_sat["grad"]
    dstar = train_d_alone(cfg)
    plot_gradients(first_ns["d_fake"], out)
    plot_training(cfg, shots, hist_ns, hist_sat, dstar, out)
    x, learned, target = dstar
    return {"w1_nonsaturating": float(hist_ns[-1, 1]),
            "w1_saturating": float(hist_sat[-1, 1]),
            "d_fake_start": float(hist_sat[0, 2]),
            "dstar_max_err": float((learned - target).abs().max()),
            "init_w1": float(hist_ns[0, 1]), "first_grad_nonsaturating": grad_ns,
            "first_grad_saturating": grad_sat, "first_grad_ratio": grad_ns / grad_sat}
