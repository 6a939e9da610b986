"""CNN building blocks: pooling, flatten, 1x1 conv, Inception, batch norm, dropout.

Page: cnn/building-blocks.md
Run:  python -m snippets run cnn/building_blocks
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
    image_height: int = 256  # rows of the sample photo used for the pooling figure
    pool_size: int = 8  # window (and stride) of the pooling figure
    num_checks: int = 10  # random shapes on which scratch code is compared with torch
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(image_height=64, pool_size=4, num_checks=2)


# --8<-- [start:pool2d]
def pool2d(X: torch.Tensor, k: int, mode: str = "max") -> torch.Tensor:
    """k x k pooling with stride k. X: (N, C, H, W) -> (N, C, H // k, W // k)."""
    N, C, H, W = X.shape
    windows = X[:, :, :H // k * k, :W // k * k].reshape(N, C, H // k, k, W // k, k)
    return windows.amax(dim=(3, 5)) if mode == "max" else windows.mean(dim=(3, 5))
# --8<-- [end:pool2d]


# --8<-- [start:conv1x1]
def conv1x1(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution is a dense layer over channels, applied at every pixel.

    X: (N, C_in, H, W), W: (C_out, C_in) -> (N, C_out, H, W)."""
    return torch.einsum("nchw,oc->nohw", X, W)
# --8<-- [end:conv1x1]


# --8<-- [start:batch_norm]
def batch_norm2d(X, gamma, beta, eps=1e-5):
    """Training-mode batch norm: statistics per channel, over N, H and W."""
    mean = X.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
    var = X.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    X_hat = (X - mean) / torch.sqrt(var + eps)
    return gamma.view(1, -1, 1, 1) * X_hat + beta.view(1, -1, 1, 1)
# --8<-- [end:batch_norm]


# --8<-- [start:inception]
class Inception(nn.Module):
    """GoogLeNet's block: four branches in parallel, outputs stacked along channels."""

    def __init__(self, c_in, c1, c3_reduce, c3, c5_reduce, c5, c_pool):
        super().__init__()
        conv = lambda i, o, k: nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2),  # noqa
                                             nn.ReLU())
        self.b1 = conv(c_in, c1, 1)
        self.b3 = nn.Sequential(conv(c_in, c3_reduce, 1), conv(c3_reduce, c3, 3))
        self.b5 = nn.Sequential(conv(c_in, c5_reduce, 1), conv(c5_reduce, c5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                conv(c_in, c_pool, 1))

    def forward(self, X):
        return torch.cat([self.b1(X), self.b3(X), self.b5(X), self.bp(X)], dim=1)


class NaiveInception(nn.Module):
    """The same branches without 1x1 reductions: 3x3 and 5x5 see all c_in channels."""

    def __init__(self, c_in, c1, c3, c5):
        super().__init__()
        self.b1 = nn.Conv2d(c_in, c1, 1)
        self.b3 = nn.Conv2d(c_in, c3, 3, padding=1)
        self.b5 = nn.Conv2d(c_in, c5, 5, padding=2)
        self.bp = nn.MaxPool2d(3, stride=1, padding=1)  # passes all c_in channels on

    def forward(self, X):
        return torch.cat([self.b1(X), self.b3(X), self.b5(X), self.bp(X)], dim=1)
# --8<-- [end:inception]


# --8<-- [start:count]
def num_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def conv_macs(net: nn.Module, X: torch.Tensor) -> int:
    """Multiply-adds of every Conv2d for input X: C_out*H_out*W_out * C_in*k*k each."""
    total = 0

    def hook(m, inputs, output):
        nonlocal total
        per_output = m.in_channels * m.weight[0, 0].numel()  # C_in * k * k
        total += output.numel() // output.shape[0] * per_output

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(X)
    for h in handles:
        h.remove()
    return total
# --8<-- [end:count]


# --8<-- [start:small_net]
def small_net(num_classes: int = 10) -> nn.Sequential:
    """A small CNN for 1 x 28 x 28 images that uses every block on this page."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        Inception(32, 16, 16, 32, 4, 8, 8),  # 16 + 32 + 8 + 8 = 64 channels
        nn.Conv2d(64, 32, 1),  # 1x1: mix and shrink channels
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(32, num_classes))


def trace_shapes(net: nn.Sequential, X: torch.Tensor) -> list[tuple[str, tuple, int]]:
    """(layer name, output shape, parameters) for each layer of a Sequential."""
    rows = [("input", tuple(X.shape), 0)]
    for layer in net:
        X = layer(X)
        rows.append((type(layer).__name__, tuple(X.shape), num_params(layer)))
    return rows
# --8<-- [end:small_net]


def load_edges(cfg: Config) -> torch.Tensor:
    """Edge magnitude of a photo, (1, 1, H, W): like a first-layer feature map."""
    rgb = torch.from_numpy(load_sample_image("china.jpg").copy()).float() / 255
    gray = rgb @ torch.tensor([0.299, 0.587, 0.114])
    step = max(1, round(gray.shape[0] / cfg.image_height))
    X = gray[::step, ::step][None, None].contiguous()
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    gx = F.conv2d(X, sobel[None, None], padding=1)
    gy = F.conv2d(X, sobel.T[None, None], padding=1)
    return torch.sqrt(gx ** 2 + gy ** 2)[..., 1:-1, 1:-1]


def plot_pooling(E: torch.Tensor, k: int, out: Path) -> None:
    maps = {"edge map (input)": E, f"{k}x{k} max pooling": pool2d(E, k, "max"),
            f"{k}x{k} average pooling": pool2d(E, k, "avg")}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    vmax = float(E.quantile(0.99))
    for ax, (title, M) in zip(axes, maps.items()):
        ax.imshow(M[0, 0].numpy(), cmap="magma", vmin=0, vmax=vmax,
                  interpolation="nearest")
        ax.set_title(f"{title}: {M.shape[2]}x{M.shape[3]}")
        ax.axis("off")
    save_figure(fig, out / "pooling.png")


def plot_inception(counts: dict, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = list(counts)
    titles = ("parameters", "multiply-adds")
    for ax, key, title in zip(axes, ("params", "macs"), titles):
        values = [counts[n][key] for n in names]
        bars = ax.bar(names, values, color=["C1", "C0"])
        ax.bar_label(bars, labels=[f"{v / 1e6:.2f} M" for v in values])
        ax.set_title(f"{title}, input 192 x 28 x 28")
        ax.set_ylim(0, max(values) * 1.15)
    save_figure(fig, out / "inception_cost.svg")


def plot_shapes(rows, out: Path) -> None:
    names = [f"{i}. {r[0]}" for i, r in enumerate(rows)]
    sizes = [int(np.prod(r[1][1:])) for r in rows]
    y = np.arange(len(rows))[::-1]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.barh(y + 0.2, sizes, 0.4, color="C0", label="numbers per example (C x H x W)")
    ax.barh(y - 0.2, [r[2] for r in rows], 0.4, color="C3", label="parameters")
    ax.set_yticks(y, names)
    ax.set_xscale("symlog", linthresh=10)
    ax.set(xlabel="count (log scale)", title="Activations shrink, channels grow")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    save_figure(fig, out / "shapes.svg")


def check_against_torch(cfg: Config) -> dict:
    """Largest |scratch - torch| for pooling, 1x1 conv and batch norm, random shapes."""
    gen = torch.Generator().manual_seed(cfg.seed)
    errs = {"pool": 0.0, "conv1x1": 0.0, "batch_norm": 0.0}
    for _ in range(cfg.num_checks):
        n, c, k = (int(v) for v in torch.randint(1, 5, (3,), generator=gen))
        X = torch.randn(n + 1, c, 4 * k, 3 * k, generator=gen)
        for mode, ref in (("max", F.max_pool2d), ("avg", F.avg_pool2d)):
            d = (pool2d(X, k, mode) - ref(X, k)).abs().max().item()
            errs["pool"] = max(errs["pool"], d)
        W = torch.randn(c + 2, c, generator=gen)
        d = (conv1x1(X, W) - F.conv2d(X, W[:, :, None, None])).abs().max().item()
        errs["conv1x1"] = max(errs["conv1x1"], d)
        bn = nn.BatchNorm2d(c).train()
        with torch.no_grad():
            bn.weight.normal_(generator=gen), bn.bias.normal_(generator=gen)
            d = (batch_norm2d(X, bn.weight, bn.bias) - bn(X)).abs().max().item()
        errs["batch_norm"] = max(errs["batch_norm"], d)
    return errs


def main(cfg: Config = Config(), out: Path = Path("out/cnn-building_blocks")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    plot_pooling(load_edges(cfg), cfg.pool_size, out)

    X = torch.randn(1, 192, 28, 28)  # GoogLeNet's inception (3a) sees 192 x 28 x 28
    blocks = {"naive": NaiveInception(192, 64, 128, 32),
              "with 1x1 reductions": Inception(192, 64, 96, 128, 16, 32, 32)}
    counts = {name: {"params": num_params(b), "macs": conv_macs(b, X),
                     "channels": b(X).shape[1]} for name, b in blocks.items()}
    plot_inception(counts, out)

    net = small_net()
    rows = trace_shapes(net.eval(), torch.zeros(2, 1, 28, 28))
    plot_shapes(rows, out)
    errs = check_against_torch(cfg)
    naive, reduced = counts["naive"], counts["with 1x1 reductions"]
    return {"pool_err_vs_torch": errs["pool"], "conv1x1_err_vs_torch": errs["conv1x1"],
            "batch_norm_err_vs_torch": errs["batch_norm"],
            "naive_params": naive["params"], "naive_macs": naive["macs"],
            "naive_channels": naive["channels"],
            "inception_params": reduced["params"], "inception_macs": reduced["macs"],
            "inception_channels": reduced["channels"],
            "macs_ratio": naive["macs"] / reduced["macs"],
            "small_net_params": num_params(net),
            "small_net_params_by_layer": sum(r[2] for r in rows)}
