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


def update_running(running_mean, running_var, X, momentum=0.1):
    """What training mode also does: move the running statistics towards the batch's.

    PyTorch stores the unbiased variance here (normalising used the biased one)."""
    n = X.numel() / X.shape[1]  # values per channel: N * H * W
    mean = X.mean(dim=(0, 2, 3))
    var = X.var(dim=(0, 2, 3), unbiased=False) * n / (n - 1)
    return ((1 - momentum) * running_mean + momentum * mean,
            (1 - momentum) * running_var + momentum * var)


def batch_norm2d_eval(X, gamma, beta, running_mean, running_var, eps=1e-5):
    """Eval-mode batch norm: the stored statistics, not the batch's."""
    X_hat = (X - running_mean.view(1, -1, 1, 1)) / torch.sqrt(
        running_var.view(1, -1, 1, 1) + eps)
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
    """A small CNN for 1 x 28 x 28 images that uses every block on this page.

    A conv followed by batch norm needs no bias: batch norm subtracts it again."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
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
    save_figure(fig, out / "pooling.png", zh=ZH)


BRANCHES = {"b1": "1x1", "b3": "3x3 branch", "b5": "5x5 branch", "bp": "pool branch"}


def plot_inception(blocks: dict, X: torch.Tensor, out: Path) -> None:
    """Multiply-adds and parameters of each branch, stacked, for both blocks."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    names = list(blocks)
    for ax, key in zip(axes, ("multiply-adds", "parameters")):
        left = np.zeros(len(names))
        for i, (attr, label) in enumerate(BRANCHES.items()):
            branch = [getattr(b, attr) for b in blocks.values()]
            values = np.array([conv_macs(m, X) if key == "multiply-adds"
                               else num_params(m) for m in branch]) / 1e6
            ax.barh(names, values, left=left, color=f"C{i}", hatch=["", "//", "..",
                    "xx"][i], edgecolor="white", label=label)
            left += values
        for y, total in enumerate(left):
            ax.text(total, y, f" {total:.2f} M", va="center")
        ax.set(xlabel=f"{key} (millions)", xlim=(0, left.max() * 1.25))
        ax.set_title(f"{key} per branch, input 192x28x28")
    axes[0].legend(fontsize=8, loc="upper right")
    save_figure(fig, out / "inception_cost.svg", zh=ZH)


def plot_shapes(rows, macs, out: Path) -> None:
    names = [f"{i}. {r[0]}" for i, r in enumerate(rows)]
    sizes = [int(np.prod(r[1][1:])) for r in rows]
    y = np.arange(len(rows))[::-1]
    fig, ax = plt.subplots(figsize=(8.4, 6.6))
    ax.barh(y + 0.27, sizes, 0.27, color="C0", label="numbers per example (C x H x W)")
    ax.barh(y, [r[2] for r in rows], 0.27, color="C3", hatch="//", edgecolor="white",
            label="parameters")
    ax.barh(y - 0.27, macs, 0.27, color="C2", hatch="..", edgecolor="white",
            label="multiply-adds per example")
    for yi, r in zip(y, rows):
        ax.text(1.5e6, yi, "x".join(map(str, r[1][1:])), va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xscale("symlog", linthresh=10)
    ax.set(xlabel="count (log scale)", xlim=(0, 2e7),
           title="Activations shrink at each pooling; compute sits in the convolutions")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    save_figure(fig, out / "shapes.svg", zh=ZH)


def layer_macs(net: nn.Sequential, X: torch.Tensor) -> list[int]:
    """Multiply-adds per example of each layer (0 for layers without weights)."""
    macs = [0]  # the input row
    for layer in net:
        if isinstance(layer, nn.Linear):
            macs.append(layer.in_features * layer.out_features)
        else:
            macs.append(conv_macs(layer, X))  # 0 for a layer with no convolution
        X = layer(X)
    return macs


ZH = {
    "edge map (input): {}": "边缘强度图（输入）：{}",
    "{}x{} max pooling: {}": "{}x{} 最大池化：{}",
    "{}x{} average pooling: {}": "{}x{} 平均池化：{}",
    "naive": "不降维", "with 1x1 reductions": "1×1 降维",
    "1x1": "1×1 支路", "3x3 branch": "3×3 支路", "5x5 branch": "5×5 支路",
    "pool branch": "池化支路",
    "multiply-adds (millions)": "乘加次数（百万）", "parameters (millions)": "参数（百万）",
    "multiply-adds per branch, input 192x28x28": "各支路的乘加次数，输入 192x28x28",
    "parameters per branch, input 192x28x28": "各支路的参数，输入 192x28x28",
    " {} M": " {} M",
    "numbers per example (C x H x W)": "每个样本的激活数（C x H x W）",
    "parameters": "参数", "multiply-adds per example": "每个样本的乘加次数",
    "count (log scale)": "个数（对数刻度）",
    "Activations shrink at each pooling; compute sits in the convolutions":
        "激活在每次池化后变小；计算量集中在卷积层",
    "{}. input": "{}. 输入",
}
ZH.update({f"{{}}. {name}": f"{{}}. {name}" for name in (  # PyTorch's class names
    "Conv2d", "BatchNorm2d", "MaxPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout",
    "Linear")})


def check_against_torch(cfg: Config) -> dict:
    """Largest |scratch - torch| for pooling, 1x1 conv and batch norm, random shapes."""
    gen = torch.Generator().manual_seed(cfg.seed)
    errs = {"pool": 0.0, "conv1x1": 0.0, "batch_norm": 0.0, "batch_norm_eval": 0.0}
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
            mean, var = update_running(bn.running_mean, bn.running_var, X)
            d = (batch_norm2d(X, bn.weight, bn.bias) - bn(X)).abs().max().item()
            errs["batch_norm"] = max(errs["batch_norm"], d)
            X2 = torch.randn(2, c, 5, 5, generator=gen)
            ours = batch_norm2d_eval(X2, bn.weight, bn.bias, mean, var)
            d = (ours - bn.eval()(X2)).abs().max().item()
        errs["batch_norm_eval"] = max(errs["batch_norm_eval"], d)
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
    plot_inception(blocks, X, out)

    net = small_net().eval()
    X = torch.zeros(2, 1, 28, 28)
    rows = trace_shapes(net, X)
    plot_shapes(rows, layer_macs(net, X), out)
    errs = check_against_torch(cfg)
    naive, reduced = counts["naive"], counts["with 1x1 reductions"]
    return {"pool_err_vs_torch": errs["pool"], "conv1x1_err_vs_torch": errs["conv1x1"],
            "batch_norm_err_vs_torch": errs["batch_norm"],
            "batch_norm_eval_err_vs_torch": errs["batch_norm_eval"],
            "naive_params": naive["params"], "naive_macs": naive["macs"],
            "naive_channels": naive["channels"],
            "inception_params": reduced["params"], "inception_macs": reduced["macs"],
            "inception_channels": reduced["channels"],
            "macs_ratio": naive["macs"] / reduced["macs"],
            "small_net_params": num_params(net),
            "small_net_params_by_layer": sum(r[2] for r in rows),
            "small_net_macs": sum(layer_macs(net, X))}


CLAIMS = {
    "scratch_pooling_matches_torch": lambda m: m["pool_err_vs_torch"] < 1e-6,
    "scratch_1x1_conv_matches_torch": lambda m: m["conv1x1_err_vs_torch"] < 1e-5,
    "scratch_batch_norm_matches_torch_in_both_modes":
        lambda m: max(m["batch_norm_err_vs_torch"], m["batch_norm_eval_err_vs_torch"])
        < 1e-4,
    "reductions_cut_compute_more_than_twofold": lambda m: m["macs_ratio"] > 2,
    "reductions_also_cut_parameters":
        lambda m: m["inception_params"] < m["naive_params"] / 2,
    "layer_by_layer_counts_add_up":
        lambda m: m["small_net_params"] == m["small_net_params_by_layer"],
}
