"""Convolution from scratch: kernel flip, classic kernels on a photo, padding, stride.

Page: cnn/convolution.md
Run:  python -m snippets run cnn/convolution
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_sample_image

from snippets.common import save_figure, seed_everything, use_style


@dataclass
class Config:
    image: str = "china.jpg"  # a photo scikit-learn ships (no download)
    image_height: int = 214  # rows after downsampling the 427x640 photo
    num_checks: int = 20  # random shapes on which scratch conv2d is compared with torch
    seed: int = 0

    @classmethod
    def tiny(cls) -> "Config":
        return cls(image_height=64, num_checks=3)


# --8<-- [start:kernels]
KERNELS = {
    "blur": torch.full((3, 3), 1 / 9),
    "sharpen": torch.tensor([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "sobel_x": torch.tensor(
        [[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    ),  # responds to vertical edges
    "sobel_y": torch.tensor([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]]),  # horizontal edges
}
# --8<-- [end:kernels]


def load_gray(cfg: Config) -> torch.Tensor:
    """The sample photo as a (H, W) float tensor in [0, 1]."""
    rgb = (
        torch.from_numpy(load_sample_image(cfg.image).copy()).float() / 255
    )  # (H, W, 3)
    gray = rgb @ torch.tensor([0.299, 0.587, 0.114])  # luma
    step = max(1, round(gray.shape[0] / cfg.image_height))
    return gray[::step, ::step].contiguous()


# --8<-- [start:corr2d]
def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Cross-correlation of one channel: slide K over X, multiply, sum. No flip."""
    h, w = K.shape
    Y = torch.zeros(X.shape[0] - h + 1, X.shape[1] - w + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def conv2d_math(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Convolution as mathematicians define it: flip K in both axes, then correlate."""
    return corr2d(X, torch.flip(K, dims=(0, 1)))


# --8<-- [end:corr2d]


# --8<-- [start:output_size]
def output_size(n: int, k: int, padding: int = 0, stride: int = 1) -> int:
    """Length of the output along one axis: floor((n + 2p - k) / s) + 1."""
    return (n + 2 * padding - k) // stride + 1


def padding_for(mode: str, k: int) -> int:
    """The three named paddings (stride 1): output n - k + 1, n, or n + k - 1."""
    return {"valid": 0, "same": (k - 1) // 2, "full": k - 1}[mode]  # "same": odd k


# --8<-- [end:output_size]


# --8<-- [start:conv2d]
def conv2d(X, W, b=None, stride=1, padding=0):
    """What a CNN layer computes. X: (N, C_in, H, W), W: (C_out, C_in, k_h, k_w)."""
    N, C_in, H, W_in = X.shape
    C_out, _, k_h, k_w = W.shape
    X = F.pad(X, (padding, padding, padding, padding))  # zeros on all four sides
    H_out = output_size(H, k_h, padding, stride)
    W_out = output_size(W_in, k_w, padding, stride)
    Y = X.new_zeros(N, C_out, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            r, c = i * stride, j * stride
            patch = X[:, :, r : r + k_h, c : c + k_w]  # (N, C_in, k_h, k_w)
            # every filter sees every input channel: sum over C_in, k_h, k_w
            Y[:, :, i, j] = torch.einsum("nchw,ochw->no", patch, W)
    if b is not None:
        Y = Y + b.view(1, C_out, 1, 1)
    return Y  # (N, C_out, H_out, W_out)


# --8<-- [end:conv2d]


def check_against_torch(cfg: Config) -> float:
    """Largest |scratch - F.conv2d| over random shapes, strides and paddings."""
    gen = torch.Generator().manual_seed(cfg.seed)
    worst = 0.0
    for t in range(cfg.num_checks):
        n, c_in, c_out, k = (int(v) for v in torch.randint(1, 4, (4,), generator=gen))
        size = int(torch.randint(k + 2, 12, (1,), generator=gen))
        stride, pad = 1 + t % 2, t % 3
        X = torch.randn(n, c_in, size, size, generator=gen)
        W = torch.randn(c_out, c_in, k, k, generator=gen)
        b = torch.randn(c_out, generator=gen)
        ours = conv2d(X, W, b, stride, pad)
        ref = F.conv2d(X, W, b, stride=stride, padding=pad)
        worst = max(worst, (ours - ref).abs().max().item())
    return worst


def plot_flip(out: Path) -> float:
    """An impulse shows the flip: convolution copies K, correlation copies it turned."""
    K = torch.tensor([[3.0, 4, 5], [1, 0, 2], [-1, 9, 7]])  # the class notes' kernel
    impulse = torch.zeros(5, 5)
    impulse[2, 2] = 1.0
    padded = F.pad(impulse, (1, 1, 1, 1))  # "same" output: 5 x 5, like the input
    panels = {
        "kernel K": K,
        "impulse X (a single 1)": impulse,
        "convolution X * K": conv2d_math(padded, K),
        "cross-correlation X ⋆ K": corr2d(padded, K),
    }
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for ax, (title, M) in zip(axes, panels.items()):
        lim = float(M.abs().max())  # each panel on its own scale
        ax.imshow(M.numpy(), cmap="coolwarm", vmin=-lim, vmax=lim)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
        for (i, j), v in np.ndenumerate(M.numpy()):
            ax.text(j, i, f"{v:g}", ha="center", va="center",
                    fontsize=9, color="black" if v or M.shape[0] == 3 else "#999999")
        if M.shape[0] == 5:  # where the impulse sits
            ax.add_patch(plt.Rectangle((1.5, 1.5), 1, 1, fill=False, lw=2, ec="k"))
    save_figure(fig, out / "flip.svg", zh=ZH)
    return (corr2d(padded, K)[1:4, 1:4] - torch.flip(K, dims=(0, 1))).abs().max().item()


def plot_kernels(gray: torch.Tensor, out: Path) -> None:
    X = F.pad(
        gray[None, None], (1, 1, 1, 1), mode="replicate"
    )  # no fake edge at the border
    maps = {"input": gray}
    for name, K in KERNELS.items():
        maps[name] = F.conv2d(X, K[None, None])[0, 0]
    maps["edge magnitude"] = torch.sqrt(maps["sobel_x"] ** 2 + maps["sobel_y"] ** 2)
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.4))
    for ax, (title, M) in zip(axes.flat, maps.items()):
        signed = title.startswith("sobel")
        lim = float(M.abs().quantile(0.995))
        ax.imshow(
            M.numpy(),
            cmap="RdBu_r" if signed else "gray",
            vmin=-lim if signed else 0,
            vmax=lim if signed else min(1.0, lim),
        )
        ax.set_title(title)
        ax.axis("off")
    save_figure(fig, out / "kernels.png", zh=ZH)


def plot_padding_stride(
    out: Path, n: int = 5, k: int = 3, p: int = 1, s: int = 2
) -> int:
    """Where a k x k kernel lands on an n x n input padded by p, moving s at a time."""
    m = output_size(n, k, p, s)
    size = n + 2 * p
    visits = np.zeros((size, size), dtype=int)  # how many kernel positions cover a cell
    for i in range(m):
        for j in range(m):
            visits[i * s : i * s + k, j * s : j * s + k] += 1
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.6, 4.4))
    for ax in (ax1, ax2):
        for r in range(size):
            for c in range(size):
                pad = r < p or c < p or r >= n + p or c >= n + p
                ax.add_patch(plt.Rectangle((c, size - 1 - r), 1, 1, ec="white",
                                           fc="#eeeeee" if pad else "#cfe2f3"))
        ax.set_xlim(-0.1, size + 0.1), ax.set_ylim(-0.1, size + 0.1)
        ax.set_aspect("equal"), ax.axis("off")
    firsts = {(0, 0): ("C0", "-"), (0, 1): ("C1", "--"), (1, 0): ("C2", ":")}
    for (i, j), (color, style) in firsts.items():  # three positions, full size
        inset = 0.06 * (1 + i + 2 * j)
        ax1.add_patch(plt.Rectangle((j * s + inset, size - k - i * s + inset),
                                    k - 2 * inset, k - 2 * inset, fill=False,
                                    lw=2.2, ls=style, ec=color))
    ax1.set_title(f"first positions, stride {s}")
    for (r, c), v in np.ndenumerate(visits):
        ax2.text(c + 0.5, size - 0.5 - r, str(v), ha="center", va="center")
    ax2.set_title("how many positions see each cell")
    fig.suptitle(f"n={n}, k={k}, p={p}, s={s}  →  output {m}×{m}")
    save_figure(fig, out / "padding_stride.svg", zh=ZH)
    return m


ZH = {
    "kernel K": "卷积核 K", "impulse X (a single 1)": "脉冲 X（只有一个 1）",
    "convolution X * K": "卷积 X * K", "cross-correlation X ⋆ K": "互相关 X ⋆ K",
    "input": "输入", "blur": "模糊", "sharpen": "锐化", "sobel_x": "Sobel x",
    "sobel_y": "Sobel y", "edge magnitude": "边缘强度",
    "first positions, stride {}": "前几个位置，步幅 {}",
    "how many positions see each cell": "每个格子被几个位置覆盖",
    "n={}, k={}, p={}, s={}  →  output {}": "n={}, k={}, p={}, s={}  →  输出 {}",
}


def main(cfg: Config = Config(), out: Path = Path("out/cnn-convolution")) -> dict:
    seed_everything(cfg.seed)
    use_style()
    gray = load_gray(cfg)
    plot_kernels(gray, out)
    flip_err = plot_flip(out)
    side = plot_padding_stride(out)
    X = torch.randn(1, 1, 12, 12, generator=torch.Generator().manual_seed(cfg.seed))
    K = torch.randn(1, 1, 3, 3, generator=torch.Generator().manual_seed(cfg.seed + 1))
    torch_out = F.conv2d(X, K)[0, 0]  # what the library computes
    return {
        "max_abs_err_vs_torch": check_against_torch(cfg),
        "num_checks": cfg.num_checks,
        "flip_identity_err": flip_err,
        "conv2d_vs_corr_err": (torch_out - corr2d(X[0, 0], K[0, 0])).abs().max().item(),
        "conv2d_vs_math_conv_err":
            (torch_out - conv2d_math(X[0, 0], K[0, 0])).abs().max().item(),
        "image_h": gray.shape[0],
        "image_w": gray.shape[1],
        "padding_stride_out": side,
    }


CLAIMS = {
    "scratch_conv2d_matches_torch": lambda m: m["max_abs_err_vs_torch"] < 1e-5,
    "correlating_an_impulse_copies_the_turned_kernel":
        lambda m: m["flip_identity_err"] == 0,
    "torch_conv2d_is_cross_correlation_not_convolution":
        lambda m: m["conv2d_vs_corr_err"] < 1e-5 and m["conv2d_vs_math_conv_err"] > 0.1,
    "padding_stride_example_gives_3x3": lambda m: m["padding_stride_out"] == 3,
}
