"""The GAN game in 1-D: the two losses, the alternating loop, why G uses -log D, and
what that loss minimises (a reverse KL, which seeks modes).

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
    kl_steps: int = 1500  # Adam steps fitting one Gaussian to two modes (both KLs)
    bilinear_steps: int = 200  # gradient steps on min_x max_y xy (lr 0.1)
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_steps=150, d_head_start=30, dstar_steps=150, kl_steps=150,
                   bilinear_steps=50)


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
    """The same discriminator loss, numerically stable: BCE on logits (two means,
    summed: 2 log 2 when D = 1/2 everywhere)."""
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
    def pdf(v, m, s):  # the Gaussian's 1/sqrt(2 pi) cancels in the ratio
        return torch.exp(-0.5 * ((v - m) / s) ** 2) / s
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
def d_step(D, opt_D, X, X_fake):
    """Train D with G fixed: real -> 1, fake -> 0 (X_fake made under no_grad)."""
    loss_D = d_loss(D(X), D(X_fake))
    opt_D.zero_grad()  # also drops what the last G step left in D's .grad
    loss_D.backward()
    opt_D.step()
    return loss_D.item()


def g_step(G, D, opt_G, z, saturating=False):
    """Train G with D fixed: backward runs through D, but only opt_G steps."""
    logit_fake = D(G(z))
    loss_G = g_loss(logit_fake, saturating)
    opt_G.zero_grad()
    loss_G.backward()
    opt_G.step()
    return torch.sigmoid(logit_fake).detach().squeeze(1)  # D(G(z)) before the step


def train(cfg: Config, saturating=False, snapshots=()):
    torch.manual_seed(cfg.seed)
    G, D = mlp(1, cfg.num_hiddens), mlp(1, cfg.num_hiddens)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    log, w1s, shots = [], [], {}
    for step in progress(range(cfg.d_head_start + cfg.num_steps), desc="game"):
        X = real_batch(cfg, cfg.batch_size)
        with torch.no_grad():  # no gradient flows into G here
            X_fake = G(torch.randn(cfg.batch_size, 1))
        loss_D = d_step(D, opt_D, X, X_fake)
        t = step - cfg.d_head_start
        if t < 0:  # D's head start: G waits
            continue
        z = torch.randn(cfg.batch_size, 1)
        grads = g_grad_norms(G, D, z)  # both losses' signal, measured before G moves
        D_fake = g_step(G, D, opt_G, z, saturating)
        log.append((t, loss_D, D_fake.mean().item(), *grads))
        if t == 0:
            d_fake_first = D_fake.numpy()  # where fakes score at G's first update
        if t % 25 == 0 or t == cfg.num_steps - 1:
            w1s.append((t, w1(cfg, G)))
        if t in snapshots:
            shots[t] = snapshot(G, D)
    return {"G": G, "D": D, "log": np.array(log), "w1": np.array(w1s),
            "shots": shots, "d_fake_first": d_fake_first}
# --8<-- [end:train]


def g_grad_norms(G, D, z):
    """Norm of G's parameter gradient under [minimax, non-saturating], same G, D, z."""
    logit = D(G(z))
    norms = []
    for saturating in (True, False):
        grads = torch.autograd.grad(g_loss(logit, saturating), list(G.parameters()),
                                    retain_graph=True)
        norms.append(torch.cat([g.flatten() for g in grads]).norm().item())
    return norms


def generator_grads(D_values):
    """|d loss_G / d logit| for both generator losses, by autograd, at given D(G(z))."""
    D_values = torch.as_tensor(D_values, dtype=torch.float64)
    logit = torch.logit(D_values).requires_grad_(True)
    out = []
    for saturating in (True, False):
        (grad,) = torch.autograd.grad(g_loss(logit, saturating) * len(logit), logit)
        out.append(grad.abs())
    return out  # [saturating, non-saturating]


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
        d_step(D, opt, real_batch(cfg, cfg.batch_size), torch.randn(cfg.batch_size, 1))
    x = torch.linspace(-1.5, 5.5, 200)[:, None]
    with torch.no_grad():
        learned = torch.sigmoid(D(x)).squeeze(1)
    target = optimal_d(x.squeeze(1), cfg.data_mean, cfg.data_std, 0.0, 1.0)
    return x.squeeze(1), learned, target


# --8<-- [start:kl_fit]
def two_modes(x):
    """log-density of 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2): a data set with two modes."""
    logs = [torch.distributions.Normal(m, 0.5).log_prob(x) for m in (-2.0, 2.0)]
    return torch.logsumexp(torch.stack(logs), dim=0) + math.log(0.5)


def kl_grid(log_a, log_b, dx):
    """KL(a || b) = sum of a log(a / b) dx, for densities given as logs on a grid."""
    return (log_a.exp() * (log_a - log_b)).sum() * dx


def fit_gaussian_kl(reverse: bool, steps: int, x=torch.linspace(-8, 8, 1601)):
    """Fit q = N(mu, s^2) to the two modes on a grid by minimising KL(p||q) (forward)
    or KL(q||p) (reverse, the direction the non-saturating G loss contains)."""
    mu, log_s = torch.tensor(0.5, requires_grad=True), torch.tensor(0.0,
                                                                   requires_grad=True)
    opt, dx, log_p = torch.optim.Adam([mu, log_s], lr=0.05), x[1] - x[0], two_modes(x)
    for _ in range(steps):
        log_q = torch.distributions.Normal(mu, log_s.exp()).log_prob(x)
        if reverse:  # q log(q/p): q is punished wherever p is small
            kl = kl_grid(log_q, log_p, dx)
        else:  # p log(p/q): q is punished wherever it misses p
            kl = kl_grid(log_p, log_q, dx)
        opt.zero_grad(), kl.backward(), opt.step()
    return mu.item(), log_s.exp().item()
# --8<-- [end:kl_fit]


# --8<-- [start:bilinear]
def bilinear_game(steps: int, lr: float, alternating: bool):
    """Gradient play on min_x max_y x*y from (1, 1): x descends, y ascends. The only
    equilibrium is (0, 0)."""
    x, y, path = 1.0, 1.0, [(1.0, 1.0)]
    for _ in range(steps):
        x_new = x - lr * y  # d(xy)/dx = y
        y = y + lr * (x_new if alternating else x)  # d(xy)/dy = x, before or after
        x = x_new
        path.append((x, y))
    return np.array(path)
# --8<-- [end:bilinear]


ZH = {
    "D(G(z)) of the fakes at G's first step (5-95%)":
        "G 第一次更新时假样本的 D(G(z))（中间 90%）",
    r"minimax $\log(1-D(G(z)))$: |grad| $= D$": "极小极大 log(1−D(G(z)))：|梯度| = D",
    r"non-saturating $-\log D(G(z))$: |grad| $= 1-D$":
        "非饱和 −log D(G(z))：|梯度| = 1−D",
    r"$D(G(z))$ (log scale)": "D(G(z))（对数刻度）",
    "|d loss / d logit|": "|∂损失 / ∂logit|",
    "the formula, and where the first fakes sit": "公式，以及第一批假样本所在的位置",
    "measured along the non-saturating run": "沿非饱和损失的训练实测",
    "G step": "G 的步数", "norm of G's parameter gradient": "G 参数梯度的范数",
    r"minimax $\log(1-D)$": "极小极大 log(1−D)", r"non-saturating $-\log D$": "非饱和 −log D",
    "real": "真实数据", "step {}": "第 {} 步", "density": "密度",
    r"$W_1$(fake, real)": "W₁（生成，真实）", "distance to the data": "到真实数据的距离",
    r"$-\log D$ (non-saturating)": "−log D（非饱和）",
    r"$\log(1-D)$ (minimax)": "log(1−D)（极小极大）",
    "discriminator loss (sum of two BCE means)": "判别器损失（两个 BCE 均值之和）",
    r"$2\log 2$: D = 1/2 everywhere": "2 log 2：处处 D = 1/2",
    "D trained with G fixed": "固定 G 训练出的 D",
    r"data $p$: two modes": "数据 p：两个模式",
    r"min KL$(p\|q)$: spreads over both": "最小化 KL(p‖q)：摊开盖住两个模式",
    r"min KL$(q\|p)$: sits on one": "最小化 KL(q‖p)：只占一个模式",
    "one Gaussian q fitted to two modes": "用一个高斯 q 拟合两个模式",
    "simultaneous steps: spirals out": "同时更新：向外盘旋",
    "alternating steps: circles forever": "交替更新：永远绕圈",
    "equilibrium (0, 0)": "平衡点 (0, 0)", "start": "起点",
    "x (minimises xy)": "x（最小化 xy）", "y (maximises xy)": "y（最大化 xy）",
    r"gradient play on $\min_x \max_y\, xy$": "在 min_x max_y xy 上做梯度博弈",
}


BAND = (0.05, 0.95)  # quantiles of the first fakes' scores drawn as the grey band


def plot_gradients(cfg, run, out: Path) -> None:
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.9))
    p = np.logspace(-4, np.log10(0.999), 300)
    lo, hi = np.quantile(run["d_fake_first"], BAND)
    ax.axvspan(lo, hi, color="0.85", zorder=0,
               label="D(G(z)) of the fakes at G's first step (5-95%)")
    sat, ns = generator_grads(p)
    ax.loglog(p, sat, label=r"minimax $\log(1-D(G(z)))$: |grad| $= D$")
    ax.loglog(p, ns, "--", label=r"non-saturating $-\log D(G(z))$: |grad| $= 1-D$")
    ax.set_xlabel(r"$D(G(z))$ (log scale)"), ax.set_ylabel("|d loss / d logit|")
    ax.set_ylim(5e-5, 3), ax.legend(fontsize=7.5, loc="lower right")
    ax.set_title("the formula, and where the first fakes sit", fontsize=10)
    early = run["log"][:300]  # the gap closes within the first few hundred G steps
    t, sat, ns = early[:, 0], early[:, 3], early[:, 4]
    ax2.semilogy(t, sat, lw=0.9, label=r"minimax $\log(1-D)$")
    ax2.semilogy(t, ns, "--", lw=0.9, label=r"non-saturating $-\log D$")
    ax2.set_xlabel("G step"), ax2.set_ylabel("norm of G's parameter gradient")
    ax2.set_title("measured along the non-saturating run", fontsize=10)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "gradients.svg", zh=ZH)


def plot_training(cfg, shots, run_ns, run_sat, out: Path) -> None:
    fig = plt.figure(figsize=(12.4, 6.2))
    grid_spec = fig.add_gridspec(2, 4)
    grid = np.linspace(-2, 7, 200)
    real = real_batch(cfg, 4000).squeeze(1).numpy()
    for i, (t, (fake, d_curve)) in enumerate(sorted(shots.items())):
        ax = fig.add_subplot(grid_spec[0, i])
        ax.hist(real, bins=60, range=(-2, 7), density=True, alpha=0.45, label="real")
        ax.hist(fake, bins=60, range=(-2, 7), density=True, histtype="step", lw=1.4,
                color="C1", label="G(z)")
        ax.set_title(f"step {t}"), ax.set_xlabel("x")
        if i == 0:
            ax.set_ylabel("density")
        twin = ax.twinx()  # D is a probability: its own axis, 0 to 1
        twin.plot(grid, d_curve, "k", lw=1.2, label="D(x)")
        twin.set_ylim(0, 1.05), twin.grid(False)
        twin.set_ylabel("D(x)") if i == len(shots) - 1 else twin.set_yticklabels([])
        if i == 0:
            handles = ax.get_legend_handles_labels()
            twin_handles = twin.get_legend_handles_labels()
            ax.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1],
                      fontsize=8, loc="upper left")
    ax = fig.add_subplot(grid_spec[1, :2])
    for run, style, label in ((run_ns, "-", r"$-\log D$ (non-saturating)"),
                              (run_sat, "--", r"$\log(1-D)$ (minimax)")):
        ax.semilogy(run["w1"][:, 0], run["w1"][:, 1], style, label=label)
    ax.set_xlabel("G step"), ax.set_ylabel(r"$W_1$(fake, real)"), ax.legend(fontsize=8)
    ax.set_yticks([0.1, 0.2, 0.5, 1, 2, 5]), ax.yaxis.set_minor_formatter("")
    ax.yaxis.set_major_formatter("{x:g}")
    ax.set_title("distance to the data")
    ax = fig.add_subplot(grid_spec[1, 2:])
    for run, style, label in ((run_ns, "-", r"$-\log D$ (non-saturating)"),
                              (run_sat, "--", r"$\log(1-D)$ (minimax)")):
        ax.plot(run["log"][:, 0], run["log"][:, 1], style, lw=0.7, label=label)
    ax.axhline(2 * math.log(2), color="k", ls=":",
               label=r"$2\log 2$: D = 1/2 everywhere")
    ax.set_xlabel("G step"), ax.set_title("discriminator loss (sum of two BCE means)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "training.png", zh=ZH)


def plot_optimal_d(dstar, out: Path) -> None:
    x, learned, target = dstar
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(x, target, lw=3, alpha=0.5, label=r"$D^*=p_{data}/(p_{data}+p_g)$")
    ax.plot(x, learned, "k--", label="D trained with G fixed")
    ax.set_xlabel("x"), ax.set_ylabel("D(x)"), ax.legend(fontsize=8)
    ax.set_title(r"$p_g=\mathcal{N}(0,1)$, $p_{data}=\mathcal{N}(4, 0.5^2)$")
    save_figure(fig, out / "optimal_d.svg", zh=ZH)


def plot_kl(fits, out: Path) -> None:
    x = torch.linspace(-5, 5, 400)
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    ax.fill_between(x, two_modes(x).exp(), color="0.8", label=r"data $p$: two modes")
    for (mu, s), style, label in zip(fits, ("--", "-"),
                                     (r"min KL$(p\|q)$: spreads over both",
                                      r"min KL$(q\|p)$: sits on one")):
        ax.plot(x, torch.distributions.Normal(mu, s).log_prob(x).exp(), style,
                label=label)
    ax.set_xlabel("x"), ax.set_ylabel("density"), ax.legend(fontsize=8)
    ax.set_title("one Gaussian q fitted to two modes")
    save_figure(fig, out / "kl_fit.svg", zh=ZH)


def plot_bilinear(paths, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    labels = ("simultaneous steps: spirals out", "alternating steps: circles forever")
    looks = ({"ls": "-", "lw": 1}, {"ls": "none", "marker": ".", "ms": 4})
    for path, look, label in zip(paths, looks, labels):  # the orbit repeats: dots
        ax.plot(path[:, 0], path[:, 1], label=label, **look)
    ax.plot(0, 0, "k*", ms=10, label="equilibrium (0, 0)")
    ax.plot(1, 1, "ko", ms=5, label="start")
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_xlabel("x (minimises xy)"), ax.set_ylabel("y (maximises xy)")
    ax.set_title(r"gradient play on $\min_x \max_y\, xy$")
    save_figure(fig, out / "bilinear.svg", zh=ZH)


def main(cfg: Config = Config(), out: Path = Path("out/gan-game")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    last = cfg.num_steps - 1
    picks = (0, cfg.num_steps // 10, cfg.num_steps // 3, last)
    ns = train(cfg, saturating=False, snapshots=picks)
    sat = train(cfg, saturating=True)
    dstar = train_d_alone(cfg)
    fits = [fit_gaussian_kl(reverse, cfg.kl_steps) for reverse in (False, True)]
    plot_gradients(cfg, ns, out)
    plot_training(cfg, ns["shots"], ns, sat, out)
    plot_optimal_d(dstar, out)
    plot_kl(fits, out)
    sim, alt = (bilinear_game(cfg.bilinear_steps, 0.1, alternating) for alternating
                in (False, True))
    plot_bilinear((sim, alt), out)
    radius = [np.hypot(*p.T) for p in (sim, alt)]
    x, learned, target = dstar
    tail = ns["log"][-100:]  # the last 100 G steps of the non-saturating run
    with torch.no_grad():
        fake = ns["G"](torch.randn(4000, 1))
        d_centre = torch.sigmoid(ns["D"](torch.tensor([[cfg.data_mean]]))).item()
    # D* at the data's mean if G's output were the Gaussian it resembles
    dstar_centre = optimal_d(torch.tensor(cfg.data_mean), cfg.data_mean, cfg.data_std,
                             fake.mean().item(), fake.std().item()).item()
    first_sat, first_ns = ns["log"][0, 3], ns["log"][0, 4]  # same G, D and z
    return {"w1_nonsaturating": float(ns["w1"][-1, 1]),
            "w1_saturating": float(sat["w1"][-1, 1]),
            "init_w1": float(ns["w1"][0, 1]),
            "d_fake_start": float(ns["log"][0, 2]),
            "d_fake_end": float(tail[:, 2].mean()),
            "d_loss_end": float(tail[:, 1].mean()),
            "d_loss_equilibrium": 2 * math.log(2),
            "g_std_end": fake.std().item(), "data_std": cfg.data_std,
            "d_centre_end": d_centre, "dstar_centre_end": dstar_centre,
            "dstar_max_err": float((learned - target).abs().max()),
            "first_grad_nonsaturating": float(first_ns),
            "first_grad_saturating": float(first_sat),
            "first_grad_ratio": float(first_ns / first_sat),
            "end_grad_ratio": float(np.median(tail[:, 4] / tail[:, 3])),
            "d_head_start": cfg.d_head_start, "num_steps": cfg.num_steps,
            "tail_steps": len(tail), "band_share": BAND[1] - BAND[0],
            "kl_forward_mu": fits[0][0], "kl_forward_std": fits[0][1],
            "kl_reverse_mu": fits[1][0], "kl_reverse_std": fits[1][1],
            "bilinear_steps": cfg.bilinear_steps,
            "simultaneous_radius_growth": float(radius[0][-1] / radius[0][0]),
            "alternating_radius_min": float(radius[1].min() / radius[1][0]),
            "alternating_radius_max": float(radius[1].max() / radius[1][0])}


CLAIMS = {
    "first_fakes_score_low": lambda m: m["d_fake_start"] < 0.1,
    "nonsaturating_gradient_is_larger_at_first": lambda m: m["first_grad_ratio"] > 10,
    "gradient_gap_closes_once_fakes_score_one_half":
        lambda m: abs(m["d_fake_end"] - 0.5) < 0.05 and m["end_grad_ratio"] < 1.5,
    "both_losses_bring_G_to_the_data":
        lambda m: max(m["w1_nonsaturating"], m["w1_saturating"]) < m["init_w1"] / 5,
    "d_loss_at_2log2_while_distributions_still_differ":
        lambda m: abs(m["d_loss_end"] - m["d_loss_equilibrium"]) < 0.02
        and m["w1_nonsaturating"] > 0.1,
    "d_trained_alone_matches_dstar": lambda m: m["dstar_max_err"] < 0.1,
    "forward_kl_fit_spreads_over_both_modes":
        lambda m: abs(m["kl_forward_mu"]) < 0.1 and m["kl_forward_std"] > 1.5,
    "simultaneous_steps_spiral_away_from_the_equilibrium":
        lambda m: m["simultaneous_radius_growth"] > 2,
    "alternating_steps_circle_without_converging":
        lambda m: m["alternating_radius_min"] > 0.5 and m["alternating_radius_max"] < 2,
    "reverse_kl_fit_sits_on_one_mode":
        lambda m: abs(m["kl_reverse_mu"] - 2) < 0.1 and m["kl_reverse_std"] < 0.6,
}
