"""Build hook: run the demos whose inputs changed, then serve their figures and metrics.

- ``on_pre_build``: every demo whose cache key (module + imported snippets + pinned
  versions + preset) has no cached run is run, in parallel; a failure stops the build.
- ``on_files``: each demo's outputs appear as ``<lang>/figures/<part>-<topic>/<file>``,
  so a page links them like any image: ``![...](../figures/cnn-convolution/flip.svg)``.
- ``on_page_markdown``: ``{{ metric("cnn/convolution", "wall_s", ".1f") }}`` becomes the
  measured number. An unknown demo or metric stops the build.

Environment: ``DLNOTES_PRESET=tiny|real`` (default real), ``DLNOTES_DEMOS=off`` to use
the newest cached runs without hashing or running anything.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from snippets import registry  # noqa: E402

EXECUTE = os.environ.get("DLNOTES_DEMOS", "on") != "off"
TIMEOUT = float(os.environ.get("DLNOTES_DEMO_TIMEOUT", "600"))
log = logging.getLogger("mkdocs.hooks.demos")
METRIC = re.compile(r'\{\{\s*metric\("([^"]+)",\s*"([^"]+)"(?:,\s*"([^"]*)")?\)\s*\}\}')

entries: dict[str, Path] = {}  # demo name -> its cached outputs, for this build


def on_pre_build(config):
    try:
        preset = registry.preset()
        found = (
            registry.ensure_all(preset, TIMEOUT, log=log.info)
            if EXECUTE
            else registry.cached_entries(preset)
        )
    except registry.DemoError as err:
        raise PluginError(str(err)) from None
    entries.clear()
    entries.update(found)


def on_files(files, config):
    for name, entry in entries.items():
        for path in sorted(entry.iterdir()):
            uri = f"figures/{name.replace('/', '-')}/{path.name}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    def substitute(match):
        name, key, fmt = match.group(1), match.group(2), match.group(3) or ""
        if name not in entries and _skipped(name):
            log.warning(f"{page.file.src_uri}: demo {name} skipped by DLNOTES_ONLY")
            return "?"
        if name not in entries:
            raise PluginError(
                f"{page.file.src_uri}: metric() names unknown demo {name!r}"
            )
        metrics = json.loads((entries[name] / "metrics.json").read_text())
        if key not in metrics:
            raise PluginError(
                f"{page.file.src_uri}: demo {name} has no metric {key!r}; "
                f"it has {sorted(metrics)}"
            )
        return format(metrics[key], fmt)

    return METRIC.sub(substitute, markdown)


def _skipped(name: str) -> bool:
    only = registry.only_parts()
    return bool(only) and name.split("/")[0] not in only
