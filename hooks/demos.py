"""Build hook: run the demos whose inputs changed, then serve their figures and metrics.

- ``on_pre_build``: every demo whose cache key (module + imported snippets + pinned
  versions + preset) has no cached run is run, in parallel; a failure stops the build.
- ``on_files``: each demo's outputs appear as ``figures/<part>-<topic>/<file>`` (Chinese)
  and ``en/figures/...`` (English), so a page links them like any image,
  ``![...](../figures/cnn-convolution/flip.svg)``, and gets its own language's drawing.
- ``on_page_markdown``: ``{{ metric("cnn/convolution", "wall_s", ".1f") }}`` becomes the
  measured number; ``{{ claim("cnn/convolution", "name") }}`` becomes a small "checked"
  mark whose hover/focus text gives the rule and the numbers it compared, in the page's
  language. An unknown demo, metric or claim stops every build. A false claim stops a
  strict ``mkdocs build`` at the real preset, naming page and claim; elsewhere (``serve``,
  the tiny preset) it is marked on the page as not reproduced and reported in the log.
  The page a demo names in its docstring (``Page: part/x.md``) ends with the run's
  reproducibility stamp (versions, date, preset, CPU time, threads, command).

Environment: ``DLNOTES_PRESET=tiny|real`` (default real), ``DLNOTES_DEMOS=off`` to use
the newest cached runs without hashing or running anything.
"""

from __future__ import annotations

import ast
import html
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
# Outside mkdocs' loggers: a false claim in `serve` is reported, not counted as a warning
# that --strict would turn into a refusal to serve.
report = logging.getLogger("dlnotes.claims")
METRIC = re.compile(r'\{\{\s*metric\("([^"]+)",\s*"([^"]+)"(?:,\s*"([^"]*)")?\)\s*\}\}')
CLAIM = re.compile(r'\{\{\s*claim\("([^"]+)",\s*"([^"]+)"\)\s*\}\}')
TEXT = {
    "zh": {
        "holds": "构建已核对（{preset} 预设）：{rule}；本次运行 {numbers}",
        "fails": "本次构建未能复现（{preset} 预设）：{rule}；本次运行 {numbers}",
        "mark_fails": "✗ 本次运行未复现",
        "stamp": "复现信息",
        "stamp_body": (
            "本页的图和数字来自构建在 {date} 的一次运行：{preset} 预设，"
            "CPU 时间 {cpu_s:.1f} s（{threads} 个线程），Python {python}，"
            "torch {torch}，numpy {numpy}。在仓库根目录复现："
        ),
    },
    "en": {
        "holds": "Checked by the build ({preset} preset): {rule}; this run: {numbers}",
        "fails": "Not reproduced by this build ({preset} preset): {rule}; "
        "this run: {numbers}",
        "mark_fails": "✗ not reproduced by this run",
        "stamp": "Reproducibility",
        "stamp_body": (
            "The figures and numbers on this page come from a run the build made on "
            "{date}: {preset} preset, {cpu_s:.1f} s of CPU time on {threads} "
            "thread(s), Python {python}, torch {torch}, numpy {numpy}. "
            "To reproduce it, from the repository root:"
        ),
    },
}

RESULTS = "<!-- results -->"  # results.md: every published number the demos rerun
HEADER = {
    "zh": "| 结果 | 来源 | 论文的数字 | 我们测得 | 核对 |\n|:--|:--|--:|--:|:-:|\n",
    "en": "| Result | Source | Paper | Ours | Checked |\n|:--|:--|--:|--:|:-:|\n",
}

entries: dict[str, Path] = {}  # demo name -> its cached outputs, for this build
command = {"name": "build"}  # mkdocs' command: only `build` refuses a false claim


def on_startup(command: str, dirty: bool):
    globals()["command"]["name"] = command


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
    _pages.clear()  # `serve` rebuilds in the same process: demos may have changed


def on_files(files, config):
    i18n = config.plugins["i18n"]
    lang = i18n.current_language
    prefix = "" if lang == i18n.default_language else f"{lang}/"
    for name, entry in entries.items():
        for path in sorted(entry.iterdir()):
            served = figure_for(path, lang == "zh")
            if served:
                uri = f"{prefix}figures/{name.replace('/', '-')}/{served}"
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def figure_for(path: Path, zh: bool) -> str | None:
    """The name ``path`` is served under in this language's build, or None.

    A demo draws each figure twice, ``x.svg`` (English) and ``x.zh.svg``; a page links
    ``x.svg`` in both languages and the Chinese build serves ``x.zh.svg`` there.
    """
    if path.stem.endswith(".zh"):
        return path.stem.removesuffix(".zh") + path.suffix if zh else None
    if zh and path.with_name(f"{path.stem}.zh{path.suffix}").exists():
        return None
    return path.name


def on_page_markdown(markdown, page, config, files):
    lang = "en" if page.file.src_uri.startswith("en/") else "zh"

    def known(name: str, kind: str) -> bool:
        if name in entries:
            return True
        if _skipped(name):
            log.warning(f"{page.file.src_uri}: demo {name} skipped by DLNOTES_ONLY")
            return False
        raise PluginError(f"{page.file.src_uri}: {kind}() names unknown demo {name!r}")

    def substitute_metric(match):
        name, key, fmt = match.group(1), match.group(2), match.group(3) or ""
        if not known(name, "metric"):
            return "?"
        metrics = _read(name, "metrics.json")
        if key not in metrics:
            raise PluginError(
                f"{page.file.src_uri}: demo {name} has no metric {key!r}; "
                f"it has {sorted(metrics)}"
            )
        return format(metrics[key], fmt)

    def substitute_claim(match):
        name, key = match.group(1), match.group(2)
        if not known(name, "claim"):
            return "?"
        verdicts = _read(name, "claims.json")
        if key not in verdicts:
            raise PluginError(
                f"{page.file.src_uri}: demo {name} has no claim {key!r}; "
                f"it has {sorted(verdicts)}"
            )
        verdict, preset = verdicts[key], registry.preset()
        if not verdict["holds"]:
            where = f"{page.file.src_uri}: claim {name}:{key} does not hold"
            detail = f"{verdict['rule']} with {verdict['compared']}"
            if command["name"] == "build" and config.strict and preset == "real":
                raise PluginError(f"{where} ({detail})")
            report.warning(f"{where} at the {preset} preset ({detail})")
        return claim_mark(name, key, verdict, lang, preset)

    if RESULTS in markdown:
        markdown = markdown.replace(RESULTS, results_table(lang))
    markdown = CLAIM.sub(substitute_claim, METRIC.sub(substitute_metric, markdown))
    demo = _demo_of(page.file.src_uri)
    if demo and demo in entries:
        markdown = markdown.rstrip("\n") + "\n\n" + stamp(demo, lang)
    return markdown


def results_table(lang: str) -> str:
    """One row per published number a demo declares in ``REPRODUCES``: what, source,
    the paper's value, ours (a metric) and the claim relating them (a mark)."""
    rows = []
    for name, demo in registry.discover().items():
        for item in reproduces(demo.path):
            fmt = item.get("format", "")
            what = item["what"][0 if lang == "en" else 1]
            page = pages_of_demo().get(name, "")
            if page:
                what = f"[{what}]({page})"
            paper = item["paper"]  # a number, or the metric the demo reports it as
            paper = (
                f'{{{{ metric("{name}", "{paper}", "{fmt}") }}}}'
                if isinstance(paper, str)
                else format(paper, fmt)
            )
            rows.append(
                f"| {what} | {item['source']} | {paper} | "
                f'{{{{ metric("{name}", "{item["metric"]}", "{fmt}") }}}} | '
                f'{{{{ claim("{name}", "{item["claim"]}") }}}} |'
            )
    return HEADER[lang] + "\n".join(rows)


def reproduces(path: Path) -> list[dict]:
    """A module's ``REPRODUCES`` list, read without importing it. Each item:
    ``{"what": (en, zh), "source", "paper", "metric", "format", "claim"}``, where
    ``paper`` is the published number or the name of the metric that holds it."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "REPRODUCES" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return []


def pages_of_demo() -> dict[str, str]:
    return {demo: page for page, demo in pages().items()}


def claim_mark(name: str, key: str, verdict: dict, lang: str, preset: str) -> str:
    """The inline mark: ✓ with the rule and numbers on hover and focus."""
    numbers = ", ".join(f"{k} = {_number(v)}" for k, v in verdict["compared"].items())
    rule = re.sub(r"""m\[(['"])(\w+)\1\]""", r"\2", verdict["rule"])  # m["a"] -> a
    text = TEXT[lang]["holds" if verdict["holds"] else "fails"].format(
        preset=preset, rule=rule, numbers=numbers
    )
    tip = html.escape(text, quote=True).replace("|", "&#124;")
    mark = "✓" if verdict["holds"] else TEXT[lang]["mark_fails"]
    return (
        f'<span class="claim" data-claim="{name}:{key}" '
        f'data-holds="{str(verdict["holds"]).lower()}" tabindex="0" role="img" '
        f'aria-label="{tip}" data-tip="{tip}">{mark}</span>'
    )


def stamp(name: str, lang: str) -> str:
    """The run's reproducibility stamp as an admonition at the end of its page."""
    run = _read(name, "run.json")
    body = TEXT[lang]["stamp_body"].format(
        date=run["date"],
        preset=run["preset"],
        cpu_s=run["cpu_s"],
        threads=run["threads"],
        **run["versions"],
    )
    return (
        f'!!! info "{TEXT[lang]["stamp"]}"\n'
        f'    <span class="stamp" data-demo="{name}">{body}</span>\n\n'
        f"    `{run['command']}`\n"
    )


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _read(name: str, filename: str) -> dict:
    return json.loads((entries[name] / filename).read_text(encoding="utf-8"))


def _demo_of(src_uri: str) -> str | None:
    """The demo whose docstring names this page, if any."""
    page = src_uri.split("/", 1)[1] if src_uri.split("/")[0] in TEXT else src_uri
    return pages().get(page)


_pages: dict[str, str] = {}


def pages() -> dict[str, str]:
    """Page path (``cnn/mnist1d.md``) -> the demo that names it in its docstring."""
    if not _pages:
        for name, demo in registry.discover().items():
            found = re.search(
                r"^Page:\s*(\S+\.md)\s*$", demo.path.read_text(encoding="utf-8"), re.M
            )
            if found:
                _pages[found.group(1)] = name
    return _pages


def _skipped(name: str) -> bool:
    only = registry.only_parts()
    return bool(only) and name.split("/")[0] not in only
