"""Why convolution: sparse interactions, parameter sharing, translation equivariance.

Page: cnn/why-convolution.md
Run:  python -m snippets run cnn/why_convolution
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_sample_image
from torch import nn

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    image_size: int = 200  # the class notes' 200 x 200 x 3 image
    out_channels: int = 16  # filters in the conv layer we compare with a dense layer
    kernel_size: int = 3
    seq_len: int = 12  # length of the 1-D input drawn as a weight matrix
    max_shift: int = 8  # largest shift when testing what pooling adds
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(image_size=48, max_shift=3)


def load_image(size: int, extra: int = 0) -> torch.Tensor:
    """A (1, 3, size, size + extra) crop of a sample photo, values in [0, 1]."""
    rgb = torch.from_numpy(load_sample_image("flower.jpg").copy()).float() / 255
    step = max(1, 400 // size)
    crop = rgb[::step, ::step][:size, :size + extra].permute(2, 0, 1)  # (3, H, W)
    return crop.unsqueeze(0).contiguous()


# --8<-- [start:count]
def dense_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out  # a weight per (input, output) pair, a bias per output


def conv_params(c_in: int, c_out: int, k: int) -> int:
    return c_out * c_in * k * k + c_out  # one k x k x c_in filter per output channel
# --8<-- [end:count]


# --8<-- [start:conv_matrix]
def conv_as_matrix(w: torch.Tensor, n: int) -> torch.Tensor:
    """The (n - k + 1, n) matrix M with M @ x == conv1d(x, w) (no padding, no flip)."""
    k = len(w)
    M = torch.zeros(n - k + 1, n)
    for i in range(n - k + 1):
        M[i, i:i + k] = w  # the same k weights, moved one step right per row
    return M
# --8<-- [end:conv_matrix]


# --8<-- [start:equivariance]
def shift(X: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translate an image batch by (dy, dx) pixels, wrapping around the border."""
    return torch.roll(X, shifts=(dy, dx), dims=(2, 3))


def equivariance_error(conv: nn.Conv2d, X: torch.Tensor, dy: int, dx: int) -> float:
    """max |conv(shift(X)) - shift(conv(X))|; zero when conv pads circularly."""
    with torch.no_grad():
        return (conv(shift(X, dy, dx)) - shift(conv(X), dy, dx)).abs().max().item()
# --8<-- [end:equivariance]


# --8<-- [start:pooling]
def relative_change(f, scene: torch.Tensor, n: int, s: int) -> float:
    """How much features f move when an n-wide window slides s pixels over a scene."""
    with torch.no_grad():
        a, b = f(scene[..., :n]), f(scene[..., s:s + n])  # the camera pans by s pixels
        return ((a - b).norm() / a.norm()).item()
# --8<-- [end:pooling]


def plot_weight_matrices(cfg: Config, out: Path) -> None:
    n, k = cfg.seq_len, cfg.kernel_size
    gen = torch.Generator().manual_seed(cfg.seed)
    dense = torch.randn(n - k + 1, n, generator=gen)
    band = conv_as_matrix(torch.ones(k), n) > 0
    local = torch.where(band, torch.randn(n - k + 1, n, generator=gen), 0.0)
    conv = conv_as_matrix(torch.tensor([1.0, -2.0, 0.7]), n)
    panels = {f"dense: {dense.numel()} weights": dense,
              f"sparse (local): {int(band.sum())} weights": local,
              f"sparse + shared (conv): {k} weights": conv}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    for ax, (title, M) in zip(axes, panels.items()):
        ax.imshow(M.numpy(), cmap="RdBu_r", vmin=-2.5, vmax=2.5)
        ax.set_title(title, fontsize=10)
        ax.set(xlabel="input position", ylabel="output position")
        ax.grid(False)
    save_figure(fig, out / "weight_matrices.svg")


def plot_equivariance(conv, X, dy, dx, out: Path) -> None:
    with torch.no_grad():
        a = conv(shift(X, dy, dx))[0, 0]
        b = shift(conv(X), dy, dx)[0, 0]
    center = b.median()  # the bias shifts every response: show them around it
    panels = {"input X": X[0].permute(1, 2, 0),
              "shift(X)": shift(X, dy, dx)[0].permute(1, 2, 0),
              "conv(shift(X))": a - center, "shift(conv(X))": b - center,
              "difference": a - b}
    fig, axes = plt.subplots(1, 5, figsize=(14, 3.2))
    lim = float((b - center).abs().quantile(0.99))
    for ax, (title, M) in zip(axes, panels.items()):
        kw = {} if M.ndim == 3 else {"cmap": "RdBu_r", "vmin": -lim, "vmax": lim}
        ax.imshow((M.clamp(0, 1) if M.ndim == 3 else M).numpy(), **kw)
        ax.set_title(title)
        ax.axis("off")
    save_figure(fig, out / "equivariance.png")


def plot_pooling(shifts, changes: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, values in changes.items():
        ax.plot(shifts, values, "o-", label=name)
    ax.set(xlabel="shift of the input (pixels)",
           ylabel="relative change of the features",
           title="Pooling makes features less sensitive to small shifts")
    ax.legend(fontsize=8)
    save_figure(fig, out / "pooling_invariance.svg")


def main(cfg: Config = Config(), out: Path = Path("out/cnn-why_convolution")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    n, c, k = cfg.image_size, cfg.out_channels, cfg.kernel_size
    n_in = n * n * 3
    # a conv layer that pads by wrapping around: exactly equivariant to circular shifts
    conv = nn.Conv2d(3, c, k, padding=k // 2, padding_mode="circular")
    X = load_image(n)
    dy, dx = 17 % n, 31 % n
    plot_weight_matrices(cfg, out)
    plot_equivariance(conv, X, dy, dx, out)
    circular_err = equivariance_error(conv, X, dy, dx)

    scene = load_image(n, extra=cfg.max_shift)  # wider than X: room to pan
    conv = nn.Conv2d(3, c, k, padding=k // 2)  # from here on, the usual zero padding
    feats = lambda X: F.relu(conv(X))  # noqa: E731
    pooled = {"conv + ReLU (no pooling)": feats,
              "+ 4x4 max pooling": lambda X: F.max_pool2d(feats(X), 4),
              "+ 16x16 max pooling": lambda X: F.max_pool2d(feats(X), 16),
              "+ global max pooling": lambda X: feats(X).amax(dim=(2, 3))}
    shifts = list(range(cfg.max_shift + 1))
    changes = {name: [relative_change(f, scene, n, s) for s in shifts]
               for name, f in pooled.items()}
    plot_pooling(shifts, changes, out)
    with torch.no_grad():  # zero padding: exact away from the border only
        border = (conv(shift(X, 0, 1)) - shift(conv(X), 0, 1))[..., :, 2:-2]
    return {
        "neuron_weights_200x200x3": dense_params(200 * 200 * 3, 1) - 1,  # no bias
        "dense_layer_params": dense_params(n_in, n * n * c),
        "conv_layer_params": sum(p.numel() for p in conv.parameters()),  # 3*16*9 + 16
        "conv_layer_params_formula": conv_params(3, c, k),
        "dense_over_conv": dense_params(n_in, n * n * c) / conv_params(3, c, k),
        "equivariance_err_circular": circular_err,
        "equivariance_err_zero_pad_interior": border.abs().max().item(),
        "change_no_pool_shift1": changes["conv + ReLU (no pooling)"][1],
        "change_global_pool_shift1": changes["+ global max pooling"][1],
    }
