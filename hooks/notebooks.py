"""Build hook: every demo is also a notebook page, in each language, and a script; both
download and run on their own.

``snippets/export.py`` turns a demo into one self-contained program (the helpers it
imports inlined, a first cell that installs the pinned requirements, a runner that
honours ``DLNOTES_PRESET=tiny``). This hook lays that program out as a notebook whose
markdown is in the page's language, with section headings taken from the page (the
heading under which the page includes a named section, or shows a figure), and embeds
the figures, claims, metrics and reproducibility stamp of the run hooks/demos.py just
made or found cached, as outputs: nothing runs twice. The same program is written as
``notebooks/<slug>/<slug>.py``; the content page and the notebook page link both
(``overrides/main.html``). The project's CJK font is served beside the notebooks, for
readers who want the Chinese figures without installing one.

mkdocs-jupyter and mkdocs-static-i18n disagree (static-i18n issue #198): the i18n
plugin rebuilds the file list last and drops mkdocs-jupyter's notebook files. So the
pages are added here, after i18n (priority -200), already wrapped as notebook files.
Each language also gets its own mkdocs-jupyter cache, or each build would evict the
other's entries and every notebook would be converted again.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
from pathlib import Path

import nbformat
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url
from mkdocs_jupyter.plugin import NotebookFile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from snippets import export, registry  # noqa: E402

log = logging.getLogger("mkdocs.hooks.notebooks")

FONT_FILES = [export.FONT, export.FONT.parent / "OFL.txt"]
TEXT = {
    "zh": {
        "intro": (
            "这个 notebook 由构建从 `{module}` 生成，可以单独运行：它用到的 "
            "`snippets` 代码（{inlined}）都已内联在下面的单元格里，不需要仓库。\n\n"
            "- **怎么运行**：在任意空文件夹里用 Jupyter 打开，依次运行全部单元格。"
            "第一个单元格用 `%pip` 安装固定版本的依赖（torch 用 CPU 版）；"
            "这些版本都在时它什么也不装，自己管理环境的话可以跳过它。\n"
            "- **预设**：默认运行页面用的真实（real）预设{cost}。"
            "启动 Jupyter 前设置环境变量 `DLNOTES_PRESET=tiny`"
            "（或先运行 `%env DLNOTES_PRESET=tiny`），就改为只需几秒的 tiny 预设，"
            "用来快速检查。\n"
            "- **中文图**：需要中文字体。把 [{font}](../{font})（SIL OFL 授权，"
            "[许可证](../OFL.txt)）放在 notebook 旁边，或安装任一中文字体"
            "（如 `fonts-noto-cjk`）；都没有时只画英文图，并打印一行说明。\n"
            "- 下面保存的输出（论断、指标、图）来自构建时的那次运行，见文末的复现信息。"
            "同样的代码也有脚本版：[`{slug}.py`]({slug}.py)，运行 "
            "`python {slug}.py --tiny`。\n"
            "- 讲解见正文页面：[{title}](../../{page_url})。"
        ),
        "cost": "，构建时它用了约 {cpu_s:.0f} 秒 CPU 时间",
        "cost_tiny": "（本站这次以 tiny 预设构建，下面保存的输出也来自 tiny 预设）",
        "setup": "导入与共用的辅助函数（snippets/common.py）",
        "module": "来自 {rel} 的代码（本演示用到的部分）",
        "config": "配置（Config）",
        "main": "把各部分串起来：main",
        "claims": "页面引用的论断（CLAIMS）",
        "zh": "图中文字的中文版（ZH）",
        "code": "其余代码（页面上没有列出）",
        "run": "运行",
        "run_body": (
            "下一个单元格像构建一样运行演示：预设由环境变量 `DLNOTES_PRESET` 决定"
            "（默认 `real`；`tiny` 只需几秒）。它打印这次运行的信息、页面引用的每条论断"
            "在这次运行里是否成立（tiny 预设下不成立是正常的），最后是全部指标；"
            "再下一个单元格显示画出的图。"
        ),
        "stamp": "复现信息",
        "stamp_body": (
            "上面保存的输出来自构建在 {date} 的一次运行：{preset} 预设，"
            "CPU 时间 {cpu_s:.1f} s（{threads} 个线程），Python {python}，"
            "torch {torch}，numpy {numpy}。在仓库根目录复现：`{command}`；"
            "不用仓库：`python {slug}.py`。"
        ),
        "buttons": {
            "notebook": "以 notebook 查看（可下载，能单独运行）",
            "ipynb": "下载 notebook（.ipynb）",
            "script": "下载脚本（.py，python {slug}.py --tiny）",
        },
    },
    "en": {
        "intro": (
            "The build generated this notebook from `{module}`, and it runs on its "
            "own: the `snippets` code it uses ({inlined}) is inlined in the cells "
            "below; no repository is needed.\n\n"
            "- **Running it**: open it in Jupyter in any empty folder and run all "
            "cells. The first cell installs the pinned requirements with `%pip` (torch "
            "as its CPU-only build); it installs nothing when those versions are "
            "there, and you can skip it if you keep your own environment.\n"
            "- **Preset**: it runs the page's real preset{cost}. Set "
            "`DLNOTES_PRESET=tiny` before "
            "starting Jupyter (or run `%env DLNOTES_PRESET=tiny` first) for the "
            "seconds-long tiny preset, a quick check.\n"
            "- **Figures**: this notebook shows the English ones. Their Chinese twins "
            "are drawn only when a CJK font is found; otherwise one printed line says "
            "so.\n"
            "- The outputs saved below (claims, metrics, figures) come from the "
            "build's run; its stamp is at the end. The same code as a script: "
            "[`{slug}.py`]({slug}.py), run `python {slug}.py --tiny`.\n"
            "- The explanation is on the page [{title}](../../{page_url})."
        ),
        "cost": ", which took about {cpu_s:.0f} s of CPU time in the build",
        "cost_tiny": " (this site was built at the tiny preset, and the outputs saved "
        "below come from it)",
        "setup": "Imports and the shared helpers (snippets/common.py)",
        "module": "Code from {rel} (the parts this demo uses)",
        "config": "Configuration (Config)",
        "main": "Putting it together: main",
        "claims": "The claims the page cites (CLAIMS)",
        "zh": "Chinese text for the figures (ZH)",
        "code": "Supporting code (not listed on the page)",
        "run": "Run it",
        "run_body": (
            "The next cell runs the demo as the build does, at the preset the "
            "environment variable `DLNOTES_PRESET` names (`real` unless set; `tiny` "
            "takes seconds). It prints this run's stamp, whether each claim the page "
            "cites holds on this run (at the tiny preset some need not), and then "
            "every metric; the cell after it shows the figures."
        ),
        "stamp": "Reproducibility",
        "stamp_body": (
            "The outputs saved above come from a run the build made on {date}: "
            "{preset} preset, {cpu_s:.1f} s of CPU time on {threads} thread(s), "
            "Python {python}, torch {torch}, numpy {numpy}. To reproduce it from the "
            "repository root: `{command}`; without the repository: "
            "`python {slug}.py`."
        ),
        "buttons": {
            "notebook": "View as a notebook (downloadable, runs on its own)",
            "ipynb": "Download the notebook (.ipynb)",
            "script": "Download the script (.py: python {slug}.py --tiny)",
        },
    },
}
ICONS = {
    "notebook": "notebook-outline", "ipynb": "download", "script": "language-python"
}


def _language(config) -> str:
    return config.plugins["i18n"].current_language


def on_pre_build(config):
    plugin = config.plugins["mkdocs-jupyter"]
    plugin.config["cache_dir"] = str(
        ROOT / ".cache" / "mkdocs-jupyter" / _language(config)
    )


def _page_of(source: str, module: str) -> str:
    match = re.search(r"^Page:\s*(\S+\.md)\s*$", source, re.M)
    if not match:
        raise PluginError(
            f"{module}: its docstring must name its page ('Page: part/x.md')"
        )
    return match.group(1)


def _page_text(lang: str, page: str) -> str:
    path = ROOT / "docs" / lang / page
    if not path.is_file():
        raise PluginError(f"demo page docs/{lang}/{page} does not exist")
    return path.read_text(encoding="utf-8")


def _heading(line: str) -> str:
    """A page heading as plain text: the notebook page's table of contents drops
    inline markup (code spans would leave holes)."""
    text = re.sub(r"\s*\{[^}]*\}\s*$", "", line.lstrip("#").strip())  # {#anchor}
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [text](link)
    return re.sub(r"[`*]", "", text).rstrip("#").strip()


def page_index(text: str) -> tuple[str, dict, dict]:
    """The page's title, and the heading (## or ###) under which it includes each
    named section (``("snippets/x/y.py", "name")``) and shows each figure file."""
    title, current, sections, figures = "", "", {}, {}
    fence = False
    for line in text.splitlines():
        if re.match(r"^\s*(```|~~~)", line):
            fence = not fence
        if not fence and re.match(r"^#\s", line) and not title:
            title = _heading(line)
        elif not fence and re.match(r"^#{2,3}\s", line):
            current = _heading(line)
        for rel, name in re.findall(r'--8<--\s*"([^":]+):([\w-]+)"', line):
            sections.setdefault((rel, name), current)
        for figure in re.findall(r"\]\([^)]*/figures/[^/)]+/([^/)\s]+)\)", line):
            figures.setdefault(figure, current)
    return title, sections, figures


def _block_heading(block, lang: str, sections: dict, figures: dict) -> str | None:
    """The heading a demo cell goes under; None: under the previous one."""
    for name in block.sections:
        if (block.rel, name) in sections:
            return sections[(block.rel, name)]
    for figure in block.figures:
        if figure in figures:
            return figures[figure]
    node = block.statement
    if node is None:
        return None
    names = {getattr(node, "name", None)} | {
        getattr(t, "id", None) for t in getattr(node, "targets", [])
    }
    for name, key in (("Config", "config"), ("main", "main"), ("CLAIMS", "claims"),
                      ("ZH", "zh")):
        if name in names:
            return TEXT[lang][key]
    return TEXT[lang]["code"]


def _figure_outputs(entry: Path, lang: str) -> list:
    """The run's figures in ``lang`` (``x.zh.svg`` for Chinese where drawn), as
    ``show_figures`` displays them."""
    outputs = []
    for path in sorted(entry.iterdir()):
        chinese = path.stem.endswith(".zh")
        twin = path.with_name(f"{path.stem}.zh{path.suffix}")
        if (chinese and lang != "zh") or (
            not chinese and lang == "zh" and twin.exists()
        ):
            continue
        if path.suffix == ".png":
            data = {"image/png": base64.b64encode(path.read_bytes()).decode()}
        elif path.suffix == ".svg":
            data = {"image/svg+xml": path.read_text(encoding="utf-8")}
        else:
            continue
        outputs.append(nbformat.v4.new_output("display_data", data=data))
    return outputs


def _run_output(entry: Path, module: Path) -> list:
    """What ``run_demo`` printed in the build's run: stamp, claims, metrics."""
    run = json.loads((entry / "run.json").read_text(encoding="utf-8"))
    metrics = json.loads((entry / "metrics.json").read_text(encoding="utf-8"))
    claims_path = entry / "claims.json"
    claims = json.loads(claims_path.read_text("utf-8")) if claims_path.is_file() else {}
    order = list(registry.claim_rules(module)) or sorted(claims)
    lines = [export.stamp_line(run)]
    lines += [export.claim_line(n, claims[n]["holds"]) for n in order if n in claims]
    lines.append(json.dumps(metrics, indent=1, sort_keys=True))
    text = "\n".join(lines) + "\n"
    return [nbformat.v4.new_output("stream", name="stdout", text=text)]


def build_notebook(name: str, entry: Path, lang: str):
    """The notebook of demo ``name`` in ``lang`` (JSON text), its script, and the
    program both were made from."""
    program = export.build(name)
    text = _page_text(lang, program.page)
    title, sections, figures = page_index(text)
    title = title or program.page
    run = json.loads((entry / "run.json").read_text(encoding="utf-8"))
    words = TEXT[lang]
    inlined = [b.rel for b in program.blocks if b.kind in ("common", "module")]
    intro = words["intro"].format(
        module=program.rel,
        inlined=", ".join(f"`{rel}`" for rel in dict.fromkeys(inlined)),
        cost=words["cost" if run["preset"] == "real" else "cost_tiny"].format(
            cpu_s=run["cpu_s"]
        ),
        font=export.FONT.name,
        slug=program.slug,
        title=title,
        page_url=program.page.removesuffix(".md") + "/",
    )
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [md(f"# {title} · notebook\n\n{intro}"), code(program.install_code())]
    headings = []
    for block in program.blocks:
        if block.kind in ("imports", "common"):
            headings.append(words["setup"])
        elif block.kind == "module":
            headings.append(words["module"].format(rel=block.rel))
        elif block.kind == "demo":
            found = _block_heading(block, lang, sections, figures)
            headings.append(found or headings[-1])
        else:  # the runner
            headings.append(words["run"])
    # an unlisted helper between two cells of one page section stays in that section
    for i in range(1, len(headings) - 1):
        if headings[i] == words["code"]:
            after = next((h for h in headings[i:] if h != words["code"]), None)
            if after == headings[i - 1]:
                headings[i] = after
    heading = None
    for block, new in zip(program.blocks, headings):
        if new != heading:
            cells.append(md(f"## {new}"))
            if block.kind == "runner":
                cells.append(md(words["run_body"]))
            heading = new
        source = block.code
        if block.kind == "runner":
            source += "\n\n\n" + export.SHOW_FIGURES.strip("\n")
        cells.append(code(source))
    run_cell = code(program.run_code(), execution_count=1)
    run_cell.outputs = _run_output(entry, ROOT / program.rel)
    figures_cell = code(program.figures_code(lang), execution_count=2)
    figures_cell.outputs = _figure_outputs(entry, lang)
    stamp = words["stamp_body"].format(
        date=run["date"], preset=run["preset"], cpu_s=run["cpu_s"],
        threads=run["threads"], command=run["command"], slug=program.slug,
        **run["versions"],
    )
    cells += [run_cell, figures_cell, md(f"## {words['stamp']}\n\n{stamp}")]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = cells
    # nbformat's ids are random: they would change the notebook, and defeat every cache
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
    return nbformat.writes(nb), program.script(), program


def _inputs(name: str, entry: Path, lang: str, record: Path) -> list[Path] | None:
    """What the notebook was made from, as recorded when it was written (reading the
    record costs no parsing: warm builds stay fast); None if there is no record."""
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [
        *(ROOT / rel for rel in recorded["sources"]),  # the modules it inlines
        *(p for p in entry.iterdir()),
        ROOT / "docs" / lang / recorded["page"],
        ROOT / "requirements.txt",
        Path(__file__),
    ]


def write_notebook(
    name: str, entry: Path, lang: str, target: Path, script: Path
) -> None:
    """Write the notebook and the script unless both are newer than their inputs."""
    record = target.with_suffix(".inputs.json")
    if target.is_file() and script.is_file():
        done = min(target.stat().st_mtime, script.stat().st_mtime)
        inputs = _inputs(name, entry, lang, record)
        if inputs and all(p.is_file() and done >= p.stat().st_mtime for p in inputs):
            return
    if not (entry / "run.json").is_file():
        raise PluginError(f"{entry} has no run.json: run demo {name} again")
    try:
        notebook, code, program = build_notebook(name, entry, lang)
    except export.ExportError as err:
        raise PluginError(f"notebook of {name}: {err}") from None
    sources = [p.relative_to(ROOT).as_posix() for p in program.sources]
    for path, text in (
        (target, notebook),
        (script, code),
        (record, json.dumps({"sources": sources, "page": program.page}, indent=1)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        else:
            path.touch()  # up to date: newer than its inputs from now on


@event_priority(-200)  # after mkdocs-static-i18n (-100) has rebuilt the file list
def on_files(files, config):
    current = _language(config)
    languages = [lang.locale for lang in config.plugins["i18n"].config.languages]
    default = config.plugins["i18n"].default_language
    preset = registry.preset()
    src_dir = ROOT / ".cache" / "notebooks" / preset
    here = "" if current == default else f"{current}/"
    entries = registry.cached_entries(preset)
    _pages.clear()
    published = {}
    for name, entry in entries.items():  # the page each demo names: its buttons
        source = (registry.PACKAGE / f"{name}.py").read_text(encoding="utf-8")
        page = _page_of(source, name)
        absent = [
            f"docs/{lang}/{page}"
            for lang in languages
            if not (ROOT / "docs" / lang / page).is_file()
        ]
        if absent:  # a demo landed before its page: stops a strict build only
            log.warning(
                f"demo {name}: no notebook or script while its page is missing "
                f"({', '.join(absent)})"
            )
            continue
        _pages.setdefault(page, []).append(name)
        published[name] = entry
    # hooks/demos.py has just made sure the newest cached run of each demo is current
    for name, entry in published.items():
        slug = name.replace("/", "-")
        script = src_dir / "scripts" / f"{slug}.py"
        alternates = {}
        for lang in languages:
            prefix = "" if lang == default else f"{lang}/"
            uri = f"{prefix}notebooks/{slug}.ipynb"
            if lang == current:
                write_notebook(name, entry, lang, src_dir / uri, script)
            file = File(uri, str(src_dir), config.site_dir, config.use_directory_urls)
            alternates[lang] = NotebookFile(file, **config)
        page = alternates[current]
        page.file.locale = page.file.locale_alternate_of = current
        page.file.alternates = alternates
        files.append(page)
        files.append(
            File.generated(
                config, f"{here}notebooks/{slug}/{slug}.py", abs_src_path=str(script)
            )
        )
    if current == default:  # the Chinese figures' font, linked from the zh notebooks
        for path in FONT_FILES:
            files.append(
                File.generated(config, f"notebooks/{path.name}", abs_src_path=str(path))
            )
    return files


def on_post_page(output, page, config):
    """nbconvert's template loads MathJax and mermaid from CDNs; the site serves
    KaTeX."""
    if getattr(page, "nb_url", None):
        output = re.sub(r'<script src="">\s*</script>', "", output)
        output = re.sub(
            r'<script type="text/x-mathjax-config">.*?</script>', "", output, flags=re.S
        )
        output = re.sub(
            r'<script type="module">.*?</script>',
            lambda m: "" if "mermaid" in m.group(0) else m.group(0),
            output,
            flags=re.S,
        )
    return output


_pages: dict[str, list[str]] = {}  # page ("cnn/convolution.md") -> its demos


@event_priority(100)  # before the search plugin indexes the page
def on_page_context(context, page, config, nav):
    """Notebook pages mirror the code of a content page: keep them out of the search
    index (their HTML is megabytes of styles and images; indexing them doubled the
    build time).
    Demo pages and notebook pages get their download buttons (overrides/main.html)."""
    lang = _language(config)
    prefix = "" if lang == config.plugins["i18n"].default_language else f"{lang}/"
    buttons = TEXT[lang]["buttons"]
    if getattr(page, "nb_url", None):
        page.meta["search"] = {"exclude": True}
        slugs = [Path(page.file.src_uri).stem]
        kinds = ["ipynb", "script"]
    else:
        src = page.file.src_uri
        src = src.split("/", 1)[1] if src.split("/")[0] in TEXT else src
        slugs = [name.replace("/", "-") for name in _pages.get(src, [])]
        kinds = ["notebook", "ipynb", "script"]
    targets = {
        "notebook": "notebooks/{slug}/",
        "ipynb": "notebooks/{slug}/{slug}.ipynb",
        "script": "notebooks/{slug}/{slug}.py",
    }
    page.meta["downloads"] = [
        {
            "href": get_relative_url(
                prefix + targets[kind].format(slug=slug), page.url
            ),
            "title": buttons[kind].format(slug=slug),
            "icon": ICONS[kind],
            "download": kind != "notebook",
        }
        for slug in slugs
        for kind in kinds
    ]
    return context
