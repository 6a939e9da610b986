"""Shared helpers for every demo: seeding, device, plot style, figure saving, progress.

Used by every demo module under ``snippets/<part>/`` (and so by every page that shows
a figure). Each helper does one job; anything the standard library or PyTorch already
does is called directly instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen: demos run in the build, in tests and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.text import Text  # noqa: E402

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
# The project's own CJK font (a subset of Noto Sans CJK SC, OFL): Chinese figures never
# depend on what the machine has installed. scripts/subset_font.py regenerates it.
CJK_FONT = Path(__file__).resolve().parent / "fonts/NotoSansCJKsc-Regular-subset.otf"
# Names a Chinese label keeps in Latin letters without a translation entry.
KEEP_LATIN = set(
    """
    ReLU GELU Leaky Maxout PReLU ELU sigmoid tanh softmax Adam AdamW RMSProp
    AdaGrad Nesterov PacGAN PacGAN2 Xavier He Glorot LeCun LeNet AlexNet VGG ResNet
    GoogLeNet Inception YOLO word2vec GloVe MNIST FrozenLake CartPole CliffWalking
    REINFORCE SARSA Wasserstein epsilon argmax log exp max min mean std var
    Bernoulli Gaussian logit logits id torch
    """.split()
)


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
    if CJK_FONT.is_file() and CJK_FONT.name not in {
        Path(f.fname).name for f in font_manager.fontManager.ttflist
    }:
        font_manager.fontManager.addfont(str(CJK_FONT))
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
            # Latin text in DejaVu Sans; a Chinese glyph falls back to the CJK font
            "font.family": ["DejaVu Sans", "Noto Sans CJK SC"],
        }
    )


def save_figure(fig, path: Path, zh: dict[str, str] | None = None) -> Path:
    """Save ``fig`` at ``path`` (English) and, translated with ``zh``, at its Chinese
    twin ``<stem>.zh<suffix>``; no timestamps, so the same run gives the same bytes.

    ``zh`` maps each English text of the figure (title, axis label, legend entry,
    annotation, category tick) to its Chinese version; ``{}`` in a key matches any
    text, so ``{"class {}": "类别 {}"}`` covers every class title. A text left in
    English words, or a glyph the fonts lack, is an error: a Chinese page never shows
    an English figure or empty boxes. Used by every demo (every page with a figure).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = (
        {"Software": None} if path.suffix == ".png" else {"Date": None, "Creator": None}
    )
    fig.savefig(path, bbox_inches="tight", metadata=metadata)
    if zh is not None:
        untranslated = translate_figure(fig, zh)
        if untranslated:
            plt.close(fig)
            raise ValueError(
                f"{path.name}: no Chinese for {sorted(untranslated)}; add them to zh"
            )
        with _glyph_problems() as problems:
            fig.savefig(zh_path(path), bbox_inches="tight", metadata=metadata)
        missing = {
            m for m in problems if re.search("missing from font|have a glyph", m)
        }
        if missing:
            plt.close(fig)
            raise ValueError(
                f"{zh_path(path).name}: glyphs missing ({sorted(missing)[:3]}...). "
                "Math text ($...$) cannot hold Chinese: write η, not $\\eta$, in a "
                "Chinese label that mixes both; else add the characters to "
                "scripts/subset_font.py"
            )
    plt.close(fig)
    return path


@contextlib.contextmanager
def _glyph_problems():
    """What matplotlib says while drawing: warnings, and its mathtext log records."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("matplotlib")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
    finally:
        logger.removeHandler(handler)
        messages += [str(w.message) for w in caught]


def zh_path(path: Path) -> Path:
    """``figures/x.svg`` -> ``figures/x.zh.svg``: the Chinese twin of a figure."""
    return path.with_name(f"{path.stem}.zh{path.suffix}")


def translate_figure(fig, zh: dict[str, str]) -> set[str]:
    """Replace every text of ``fig`` by its entry in ``zh``; return what needed one and
    had none."""
    # "class {}" -> ^class (.+?)$, so a formatted title finds its template
    patterns = [
        (re.compile("^" + "(.+?)".join(map(re.escape, k.split("{}"))) + "$", re.S), v)
        for k, v in zh.items()
        if "{}" in k
    ]

    def translate(text: str) -> tuple[str, bool]:
        if text in zh:
            return zh[text], True
        for pattern, value in patterns:
            found = pattern.match(text)
            if found:
                return value.format(*found.groups()), True
        return text, False

    fig.canvas.draw()  # tick labels get their text from their formatters
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t.get_text() for t in axis.get_ticklabels()]
            new = [translate(t)[0] for t in labels]
            if new != labels:  # category ticks: fix them, or a redraw restores English
                axis.set_ticks(axis.get_ticklocs(), new)
    done = set(zh.values())  # tick labels above are already in Chinese
    untranslated = set()
    for artist in fig.findobj(Text):
        text = artist.get_text()
        new, found = translate(text)
        if found:
            artist.set_text(new)
        elif text not in done and _needs_chinese(text):
            untranslated.add(text)
    return untranslated


def _needs_chinese(text: str) -> bool:
    """An English word outside math ($...$) and outside the names kept in Latin."""
    prose = re.sub(r"\$[^$]*\$", " ", text)
    words = re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]", prose)
    return any(
        w not in KEEP_LATIN and not re.fullmatch(r"[A-Z0-9-]+", w) for w in words
    )


def progress(iterable, **kwargs):
    """A progress bar on stderr for ``python -m snippets run``; silent in the build."""
    from tqdm import tqdm  # tqdm.auto warns in a notebook without ipywidgets

    quiet = os.environ.get("DLNOTES_QUIET") == "1" or not sys.stderr.isatty()
    return tqdm(iterable, disable=quiet, leave=False, file=sys.stderr, **kwargs)
