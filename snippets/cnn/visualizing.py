"""What does a CNN see? Kernels, feature maps, saliency and activation maximization.

Page: cnn/visualizing.md
Run:  python -m snippets run cnn/visualizing

A small CNN is trained on scikit-learn's digits (upsampled to 16 x 16 so the pictures
are readable); then we look inside it and ask it, by gradient ascent, to draw digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from snippets.common import progress, save_figure, seed_everything, use_style


@dataclass
class Config:
    size: int = 16  # digits are upsampled from 8 x 8 to size x size
    num_channels: int = 8  # first-layer kernels (5 x 5 each)
    num_epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    ascent_steps: int = 200  # gradient-ascent steps per class
    ascent_lr: float = 0.05
    l2: float = 0.05  # weight of the L2 penalty in the regularised ascent
    tv: float = 0.3  # weight of the total-variation (smoothness) penalty
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(num_epochs=1, ascent_steps=5)


def load(cfg: Config):
    """Digits as (N, 1, size, size) in [0, 1], stratified 75/25 split."""
    digits = load_digits()
    X = torch.tensor(digits.images / 16, dtype=torch.float32).unsqueeze(1)
    X = F.interpolate(X, size=cfg.size, mode="bilinear", align_corners=False)
    y = torch.tensor(digits.target)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=digits.target)
    return X_train, y_train, X_test, y_test


# --8<-- [start:model]
def make_net(c: int, size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, c, 5, padding=2), nn.ReLU(),  # (N, c, s, s)
        nn.MaxPool2d(2),  # (N, c, s/2, s/2)
        nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 2c, s/4, s/4)
        nn.Flatten(), nn.Linear(2 * c * (size // 4) ** 2, 10))
# --8<-- [end:model]


def train(net: nn.Module, X, y, cfg: Config) -> nn.Module:
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    for _ in progress(range(cfg.num_epochs), desc="epochs"):
        for idx in torch.randperm(len(X)).split(cfg.batch_size):
            loss = F.cross_entropy(net(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


# --8<-- [start:saliency]
def saliency(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|d score_y / d X|: which pixels would change the class score most."""
    X = X.clone().requires_grad_(True)
    scores = net(X).gather(1, y.view(-1, 1)).sum()  # each image's own class score
    scores.backward()
    return X.grad.abs()
# --8<-- [end:saliency]


# --8<-- [start:ascent]
def total_variation(X: torch.Tensor) -> torch.Tensor:
    """Sum of squared differences of neighbouring pixels: small for smooth images."""
    return ((X[..., 1:, :] - X[..., :-1, :]) ** 2).sum() + \
        ((X[..., :, 1:] - X[..., :, :-1]) ** 2).sum()


def maximise_class(net, c: int, cfg: Config, l2: float = 0.0, tv: float = 0.0):
    """Gradient ascent on the INPUT (weights fixed): maximise score_c - penalties."""
    X = torch.full((1, 1, cfg.size, cfg.size), 0.1, requires_grad=True)
    opt = torch.optim.Adam([X], lr=cfg.ascent_lr)  # only X is optimised
    for _ in range(cfg.ascent_steps):
        objective = net(X)[0, c] - l2 * (X ** 2).sum() - tv * total_variation(X)
        opt.zero_grad()
        (-objective).backward()  # ascent = descent on the negative
        opt.step()
        with torch.no_grad():
            X.clamp_(0, 1)  # stay a valid image
    return X.detach()
# --8<-- [end:ascent]


# --8<-- [start:gram]
def gram_matrix(F: torch.Tensor) -> torch.Tensor:
    """Style in Gatys et al.: channel-by-channel correlations of a feature map.

    F: (C, H, W) -> (C, C); the sum over positions forgets where anything was."""
    C = F.shape[0]
    flat = F.reshape(C, -1)  # (C, H * W)
    return flat @ flat.T / flat.shape[1]
# --8<-- [end:gram]


def mean_correlations(images: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """(n, 10): correlation of each image with each class's mean training image."""
    a = images.flatten(1) - images.flatten(1).mean(1, keepdim=True)
    b = means.flatten(1) - means.flatten(1).mean(1, keepdim=True)
    return (a / a.norm(dim=1, keepdim=True)) @ (b / b.norm(dim=1, keepdim=True)).T


def show(ax, M, title=None, cmap="gray_r", **kw):
    M = torch.as_tensor(M).detach().numpy()
    image = ax.imshow(M, cmap=cmap, interpolation="nearest", **kw)
    ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    return image


def plot_kernels_and_maps(net, x, out: Path) -> None:
    K = net[0].weight.detach()[:, 0]  # (c, 5, 5)
    with torch.no_grad():
        maps1 = F.relu(net[0](x))[0]  # (c, s, s)
        maps2 = net[:5](x)[0]  # (2c, s/2, s/2)
    c = len(K)
    fig, axes = plt.subplots(3, c + 1, figsize=(1.35 * (c + 1), 4.4))
    show(axes[0, 0], x[0, 0], "input")
    axes[1, 0].axis("off"), axes[2, 0].axis("off")
    lim = float(K.abs().max())
    for i in range(c):
        show(axes[0, i + 1], K[i], f"kernel {i}", cmap="RdBu_r", vmin=-lim, vmax=lim)
        show(axes[1, i + 1], maps1[i], f"conv1 map {i}", cmap="magma")
        show(axes[2, i + 1], maps2[2 * i], f"conv2 map {2 * i}", cmap="magma")
    save_figure(fig, out / "kernels_maps.png", zh=ZH)


def plot_saliency(X, y, sal, out: Path) -> None:
    n = len(X)
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n + 0.8, 3.3))
    vmax = float(sal.max())  # one scale for every digit: the noise is comparable
    for i in range(n):
        show(axes[0, i], X[i, 0], f"digit {int(y[i])}")
        im = show(axes[1, i], sal[i, 0], "saliency", cmap="hot", vmin=0, vmax=vmax)
    fig.colorbar(im, ax=axes[1, :].tolist(), fraction=0.02, pad=0.01,
                 label="|d score / d pixel|")
    save_figure(fig, out / "saliency.png", zh=ZH)


def plot_ascent(rows: dict, probs: dict, out: Path) -> None:
    fig, axes = plt.subplots(len(rows), 10, figsize=(13, 1.7 * len(rows) + 0.4))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(10):
            show(axes[r, c], images[c][0, 0], f"{c}: p={probs[name][c]:.2f}",
                 vmin=0, vmax=1)
        axes[r, 0].set_ylabel(name, fontsize=9)
    save_figure(fig, out / "activation_max.png", zh=ZH)


ZH = {
    "input": "输入", "kernel {}": "卷积核 {}", "conv1 map {}": "第 1 层特征图 {}",
    "conv2 map {}": "第 2 层特征图 {}", "digit {}": "数字 {}", "saliency": "显著图",
    "|d score / d pixel|": "|∂得分 / ∂像素|", "no regularizer": "不加正则项",
    "L2 + TV": "L2 + TV", "{}: p={}": "{}：p={}",
}


def main(cfg: Config = Config(), out: Path = Path("out/cnn-visualizing")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    X, y, X_test, y_test = load(cfg)
    net = train(make_net(cfg.num_channels, cfg.size), X, y, cfg)
    for p in net.parameters():
        p.requires_grad_(False)  # from now on only inputs are differentiated
    with torch.no_grad():
        test_acc = (net(X_test).argmax(1) == y_test).float().mean().item()
    plot_kernels_and_maps(net, X_test[:1], out)
    idx = torch.stack([(y_test == d).nonzero()[0, 0] for d in range(10)])
    X_show, y_show = X_test[idx], y_test[idx]  # one test image per digit
    plot_saliency(X_show, y_show, saliency(net, X_show, y_show), out)

    rows, probs, tvs, own, corr = {}, {}, {}, {}, {}
    means = torch.stack([X[y == c].mean(0) for c in range(10)])  # (10, 1, s, s)
    for name, l2, tv in (("no regularizer", 0.0, 0.0), ("L2 + TV", cfg.l2, cfg.tv)):
        rows[name] = [maximise_class(net, c, cfg, l2, tv) for c in range(10)]
        with torch.no_grad():
            p = F.softmax(net(torch.cat(rows[name])), dim=1)
        probs[name] = p.diagonal().tolist()  # probability of the class asked for
        tvs[name] = sum(total_variation(img).item() for img in rows[name]) / 10
        C = mean_correlations(torch.cat(rows[name]), means)  # (10 images, 10 means)
        own[name] = int((C.argmax(1) == torch.arange(10)).sum())
        corr[name] = C.diagonal().mean().item()
    plot_ascent(rows, probs, out)
    plain, reg = "no regularizer", "L2 + TV"
    return {"test_acc": test_acc,
            "first_test_digit": int(y_test[0]),
            "ascent_prob_plain": sum(probs[plain]) / 10,
            "ascent_prob_reg": sum(probs[reg]) / 10,
            "ascent_tv_plain": tvs[plain], "ascent_tv_reg": tvs[reg],
            "ascent_own_mean_plain": own[plain], "ascent_own_mean_reg": own[reg],
            "ascent_corr_plain": corr[plain], "ascent_corr_reg": corr[reg],
            "params": sum(p.numel() for p in net.parameters())}


CLAIMS = {
    "the_small_cnn_learns_the_digits": lambda m: m["test_acc"] > 0.9,
    "the_network_is_sure_of_every_unregularised_image":
        lambda m: m["ascent_prob_plain"] > 0.9,
    "regularised_images_are_still_classified_as_asked":
        lambda m: m["ascent_prob_reg"] > 0.5,
    "the_regularizer_makes_images_smoother":
        lambda m: m["ascent_tv_reg"] < m["ascent_tv_plain"] / 2,
    "even_unregularised_images_are_nearest_their_own_digit":
        lambda m: min(m["ascent_own_mean_plain"], m["ascent_own_mean_reg"]) >= 8,
    "regularised_images_correlate_more_with_their_digit":
        lambda m: m["ascent_corr_reg"] > m["ascent_corr_plain"] + 0.05,
}
