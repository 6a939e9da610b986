"""Build hook: draw the architecture diagrams whose description changed, serve them.

- ``on_pre_build``: each diagram of ``snippets/diagrams.py`` has a key, the hash of its
  description, of the renderer and of what draws it (``snippets/diagram.py``,
  ``snippets/common.py``, the CJK font, matplotlib's version). A key without an entry in
  ``.cache/diagrams/`` is drawn (``x.svg`` and ``x.zh.svg``); an unchanged diagram is
  never redrawn. A diagram that fails its checks (an untranslated label, a missing
  glyph, overlapping text, an arrow through a box) stops the build with its name.
- ``on_files``: each is served as ``figures/diagrams/<name>.svg``, the Chinese drawing
  in the Chinese build and the English one under ``en/``, so a page links
  ``![...](../figures/diagrams/lstm-cell.svg)`` in both languages.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".cache" / "diagrams"
INPUTS = ["snippets/diagram.py", "snippets/common.py",
          "snippets/fonts/NotoSansCJKsc-Regular-subset.otf"]
entries: dict[str, Path] = {}  # diagram name -> its cached drawings, for this build
log = logging.getLogger("mkdocs.hooks.diagrams")


def key(description) -> str:
    """Hash of a description and of everything that draws it."""
    import matplotlib

    h = hashlib.sha256(repr(description).encode())
    for name in INPUTS:
        h.update((ROOT / name).read_bytes())
    h.update(matplotlib.__version__.encode())
    return h.hexdigest()[:16]


def ensure_all(descriptions: dict, cache: Path = CACHE, log=print) -> dict[str, Path]:
    """Draw every diagram whose key has no entry in ``cache``; return every entry."""
    import matplotlib

    from snippets import diagram

    found, drawn = {}, []
    for name, description in descriptions.items():
        target = cache / f"{name}-{key(description)}"
        if not (target / f"{name}.zh.svg").is_file():
            cache.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
            try:
                with matplotlib.rc_context():  # use_style() stays inside
                    diagram.render(description, tmp)
            except ValueError as err:
                shutil.rmtree(tmp, ignore_errors=True)
                raise PluginError(str(err)) from None
            for old in cache.glob(f"{name}-*"):  # one entry per diagram: the current
                if old != target and old.name.rsplit("-", 1)[0] == name:
                    shutil.rmtree(old, ignore_errors=True)
            try:
                tmp.rename(target)
            except OSError:  # a concurrent build stored the same key first
                shutil.rmtree(tmp, ignore_errors=True)
            drawn.append(name)
        found[name] = target
    log(f"diagrams: drew {', '.join(drawn)}" if drawn else
        f"diagrams: all {len(found)} cached")
    return found


def on_pre_build(config):
    from snippets import diagram, diagrams

    importlib.reload(diagram)  # `serve` rebuilds in one process: pick up edits
    importlib.reload(diagrams)
    entries.clear()
    entries.update(ensure_all(diagrams.DIAGRAMS, log=log.info))


def on_files(files, config):
    i18n = config.plugins["i18n"]
    lang = i18n.current_language
    prefix = "" if lang == i18n.default_language else f"{lang}/"
    for name, entry in entries.items():
        drawing = entry / (f"{name}.zh.svg" if lang == "zh" else f"{name}.svg")
        uri = f"{prefix}figures/diagrams/{name}.svg"
        files.append(File.generated(config, uri, abs_src_path=str(drawing)))
    return files
