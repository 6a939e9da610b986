"""Shared helpers for every demo: seeding, device, plot style, figure saving, progress.

Used by every demo module under ``snippets/<part>/`` (and so by every page that shows
a figure). Each helper does one job; anything the standard library or PyTorch already
does is called directly instead.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen: demos run in the build, in tests and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported) PyTorch so a demo is repeatable."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def device():
    """The device a demo trains on. Always the CPU: every demo must run on a laptop."""
    import torch

    return torch.device("cpu")


def use_style() -> None:
    """One look for every figure on the site (fonts, grid, sizes, colour cycle)."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 110,
            "font.size": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
            "svg.hashsalt": "dl-notes",  # stable SVG ids: rebuilds give equal bytes
        }
    )


def save_figure(fig, path: Path) -> Path:
    """Save ``fig`` as PNG or SVG without timestamps: the same run, the same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = (
        {"Software": None} if path.suffix == ".png" else {"Date": None, "Creator": None}
    )
    fig.savefig(path, bbox_inches="tight", metadata=metadata)
    plt.close(fig)
    return path


def progress(iterable, **kwargs):
    """A progress bar on stderr for ``python -m snippets run``; silent in the build."""
    from tqdm.auto import tqdm

    quiet = os.environ.get("DLNOTES_QUIET") == "1" or not sys.stderr.isatty()
    return tqdm(iterable, disable=quiet, leave=False, file=sys.stderr, **kwargs)
