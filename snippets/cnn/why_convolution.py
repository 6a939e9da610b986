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


def load_image(size: int, extra: int = 0, name: str = "flower.jpg") -> torch.Tensor:
    """A (1, 3, size, size + extra) crop of a sample photo, values in [0, 1]."""
    rgb = torch.from_numpy(load_sample_image(name).copy()).float() / 255
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


# --8<-- [start:receptive_field]
def receptive_field(layers) -> int:
    """Side of the input patch one output sees. Each layer is (k, stride): a k x k
    window moving `stride` pixels at a time, a convolution or a pooling alike.

    r_l = r_{l-1} + (k_l - 1) * (product of the strides before layer l), r_0 = 1."""
    r, jump = 1, 1
    for k, stride in layers:
        r += (k - 1) * jump  # k - 1 more steps of the current layer's input grid
        jump *= stride  # one step here is `jump` input pixels
    return r


def footprint(layers, size: int = 33) -> torch.Tensor:
    """d(centre output) / d(input) of a stack with all-one weights: (size, size).

    All-one weights, so no path cancels (a 2 x 2, stride-2 one is sum pooling)."""
    net = nn.Sequential(*[nn.Conv2d(1, 1, k, stride, bias=False)
                          for k, stride in layers])
    for p in net.parameters():
        nn.init.ones_(p)
    X = torch.zeros(1, 1, size, size, requires_grad=True)
    Y = net(X)
    Y[0, 0, Y.shape[2] // 2, Y.shape[3] // 2].backward()
    return X.grad[0, 0]


def measured_receptive_field(layers, size: int = 33) -> int:
    """The same, measured: how many input columns reach the centre output."""
    cols = (footprint(layers, size) != 0).any(dim=0).nonzero().flatten()
    return int(cols.max() - cols.min() + 1)
# --8<-- [end:receptive_field]


# --8<-- [start:equivariance]
def shift(X: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translate an image batch by (dy, dx) pixels, wrapping around the border."""
    return torch.roll(X, shifts=(dy, dx), dims=(2, 3))


def equivariance_error(conv: nn.Conv2d, X: torch.Tensor, dy: int, dx: int) -> float:
    """max |conv(shift(X)) - shift(conv(X))|; zero when conv pads circularly."""
    with torch.no_grad():
        return (conv(shift(X, dy, dx)) - shift(conv(X), dy, dx)).abs().max().item()


def strided_equivariance_error(conv: nn.Conv2d, X: torch.Tensor, dx: int) -> float:
    """Relative gap between conv(shift(X)) and the nearest shifted copy of conv(X).

    With stride 2 the output can only move by whole output pixels: dx // 2 or
    (dx + 1) // 2. An even dx fits exactly; an odd dx falls between the two."""
    with torch.no_grad():
        moved = conv(shift(X, 0, dx))
        Y = conv(X)
        return min(((moved - shift(Y, 0, j)).norm() / Y.norm()).item()
                   for j in {dx // 2, (dx + 1) // 2})
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
    save_figure(fig, out / "weight_matrices.svg", zh=ZH)


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
    save_figure(fig, out / "equivariance.png", zh=ZH)


def plot_pooling(shifts, changes: dict, baselines: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    for i, (name, values) in enumerate(changes.items()):
        ax.plot(shifts, values, "os^v"[i] + "-", color=f"C{i}", label=name)
        ax.axhline(baselines[name], color=f"C{i}", ls="--", lw=1)
    ax.plot([], [], "k--", lw=1, label="dashed: two unrelated photos")
    ax.set(xlabel="shift of the input (pixels)",
           ylabel="relative change of the features",
           title="Pooling makes features less sensitive to small shifts")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    save_figure(fig, out / "pooling_invariance.svg", zh=ZH)


RF_STACKS = {  # (k, stride) per layer
    "one 3×3 conv": [(3, 1)],
    "two 3×3 convs": [(3, 1), (3, 1)],
    "three 3×3 convs": [(3, 1), (3, 1), (3, 1)],
    "3×3 conv, 2×2 pool, 3×3 conv": [(3, 1), (2, 2), (3, 1)],
}


def plot_receptive_fields(out: Path, size: int = 13) -> None:
    fig, axes = plt.subplots(1, len(RF_STACKS), figsize=(12, 3.4))
    for ax, (name, layers) in zip(axes, RF_STACKS.items()):
        ax.imshow(footprint(layers, size).numpy(), cmap="Blues", vmin=0)
        ax.set_xticks(np.arange(-0.5, size), minor=True)
        ax.set_yticks(np.arange(-0.5, size), minor=True)
        ax.grid(which="minor", color="#dddddd", lw=0.5)
        ax.grid(which="major", visible=False)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_title(name, fontsize=10)
        r = receptive_field(layers)
        ax.set_xlabel(f"receptive field {r}×{r}")
    fig.suptitle("Input pixels one output depends on (darker: reached by more paths)")
    save_figure(fig, out / "receptive_field.svg", zh=ZH)


ZH = {
    "input position": "输入位置", "output position": "输出位置",
    "dense: {} weights": "全连接：{} 个权重",
    "sparse (local): {} weights": "稀疏（局部连接）：{} 个权重",
    "sparse + shared (conv): {} weights": "稀疏 + 共享（卷积）：{} 个权重",
    "input X": "输入 X", "shift(X)": "平移(X)", "conv(shift(X))": "卷积(平移(X))",
    "shift(conv(X))": "平移(卷积(X))", "difference": "两者之差",
    "shift of the input (pixels)": "输入的平移量（像素）",
    "relative change of the features": "特征的相对变化",
    "Pooling makes features less sensitive to small shifts":
        "池化让特征对小平移不那么敏感",
    "conv + ReLU (no pooling)": "卷积 + ReLU（不池化）",
    "+ 4x4 max pooling": "+ 4×4 最大池化", "+ 16x16 max pooling": "+ 16×16 最大池化",
    "+ global max pooling": "+ 全局最大池化",
    "dashed: two unrelated photos": "虚线：两张无关照片之间",
    "one 3×3 conv": "一层 3×3 卷积", "two 3×3 convs": "两层 3×3 卷积",
    "three 3×3 convs": "三层 3×3 卷积",
    "3×3 conv, 2×2 pool, 3×3 conv": "3×3 卷积、2×2 池化、3×3 卷积",
    "receptive field {}": "感受野 {}",
    "Input pixels one output depends on (darker: reached by more paths)":
        "一个输出依赖的输入像素（颜色越深，经过的路径越多）",
}


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
    other = load_image(n, name="china.jpg")  # an unrelated photo of the same size
    conv = nn.Conv2d(3, c, k, padding=k // 2)  # from here on, the usual zero padding
    feats = lambda X: F.relu(conv(X))  # noqa: E731
    pooled = {"conv + ReLU (no pooling)": feats,
              "+ 4x4 max pooling": lambda X: F.max_pool2d(feats(X), 4),
              "+ 16x16 max pooling": lambda X: F.max_pool2d(feats(X), 16),
              "+ global max pooling": lambda X: feats(X).amax(dim=(2, 3))}
    shifts = list(range(cfg.max_shift + 1))
    changes = {name: [relative_change(f, scene, n, s) for s in shifts]
               for name, f in pooled.items()}
    baselines = {name: relative_change(f, torch.cat([scene[..., :n], other], 3), n, n)
                 for name, f in pooled.items()}
    plot_pooling(shifts, changes, baselines, out)
    plot_receptive_fields(out)
    with torch.no_grad():  # zero padding: exact away from the border only
        border = (conv(shift(X, 0, 1)) - shift(conv(X), 0, 1))[..., :, 2:-2]
    strided = nn.Conv2d(3, c, k, stride=2, padding=k // 2, padding_mode="circular")
    metrics = {
        "neuron_weights_200x200x3": dense_params(200 * 200 * 3, 1) - 1,  # no bias
        "dense_layer_params": dense_params(n_in, n * n * c),
        "conv_layer_params": sum(p.numel() for p in conv.parameters()),  # 3*16*9 + 16
        "conv_layer_params_formula": conv_params(3, c, k),
        "dense_over_conv": dense_params(n_in, n * n * c) / conv_params(3, c, k),
        "equivariance_err_circular": circular_err,
        "equivariance_err_zero_pad_interior": border.abs().max().item(),
        "stride2_err_shift2": strided_equivariance_error(strided, X, 2),
        "stride2_err_shift1": strided_equivariance_error(strided, X, 1),
        "change_no_pool_shift1": changes["conv + ReLU (no pooling)"][1],
        "change_global_pool_shift1": changes["+ global max pooling"][1],
        "change_no_pool_unrelated": baselines["conv + ReLU (no pooling)"],
        "change_global_pool_unrelated": baselines["+ global max pooling"],
    }
    for i, layers in enumerate(RF_STACKS.values()):
        metrics[f"rf_formula_{i}"] = receptive_field(layers)
        metrics[f"rf_measured_{i}"] = measured_receptive_field(layers)
    return metrics


CLAIMS = {
    "circular_padding_is_exactly_equivariant":
        lambda m: m["equivariance_err_circular"] < 1e-5,
    "zero_padding_is_exact_away_from_the_border":
        lambda m: m["equivariance_err_zero_pad_interior"] < 1e-5,
    "stride_2_is_equivariant_to_even_shifts_only":
        lambda m: m["stride2_err_shift2"] < 1e-5 and m["stride2_err_shift1"] > 0.05,
    "a_conv_layer_has_over_a_million_times_fewer_parameters":
        lambda m: m["dense_over_conv"] > 1e6,
    "global_pooling_changes_far_less_than_no_pooling":
        lambda m: m["change_global_pool_shift1"] < m["change_no_pool_shift1"] / 5,
    "a_one_pixel_pan_changes_global_features_far_less_than_another_photo":
        lambda m: m["change_global_pool_shift1"]
        < m["change_global_pool_unrelated"] / 3,
    "receptive_field_formula_matches_the_gradient":
        lambda m: all(m[f"rf_formula_{i}"] == m[f"rf_measured_{i}"] for i in range(4)),
}
