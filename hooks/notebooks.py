"""Build hook: every demo is also a notebook page, in each language, with a download.

The notebook is written from the demo module (its code, cell by cell) and the figures
and metrics of the run hooks/demos.py just made or found cached, embedded as outputs: nothing runs twice.

mkdocs-jupyter and mkdocs-static-i18n disagree (static-i18n issue #198): the i18n
plugin rebuilds the file list last and drops mkdocs-jupyter's notebook files. So the
pages are added here, after i18n (priority -200), already wrapped as notebook files.
Each language also gets its own mkdocs-jupyter cache, or each build would evict the
other's entries and every notebook would be converted again.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import sys
from pathlib import Path

import nbformat
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs_jupyter.plugin import NotebookFile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from snippets import registry  # noqa: E402

TEXT = {
    "zh": (
        "这个 notebook 由构建从 `{module}` 生成，图和指标来自构建时的那次运行。"
        "在仓库根目录运行整个演示：`python -m snippets run {name}`。"
        "讲解见正文页面：[{title}](../../{page_url})。"
    ),
    "en": (
        "The build generated this notebook from `{module}`; the figures and metrics come "
        "from the run the build made. Run the whole demo from the repository root: "
        "`python -m snippets run {name}`. The explanation is on the page "
        "[{title}](../../{page_url})."
    ),
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


def _title(lang: str, page: str) -> str:
    path = ROOT / "docs" / lang / page
    if not path.is_file():
        raise PluginError(f"demo page docs/{lang}/{page} does not exist")
    match = re.search(r"^#\s+(.+)$", path.read_text(encoding="utf-8"), re.M)
    return match.group(1).strip() if match else page


def _code_cells(source: str) -> list[str]:
    """The module split into cells: one per top-level statement, imports kept together."""
    lines = [ln for ln in source.splitlines() if "--8<--" not in ln]
    source = "\n".join(lines)
    tree = ast.parse(source)
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    cells: list[str] = []
    previous_import = False
    for node in body:
        start = min(
            [node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]
        )
        text = "\n".join(lines[start - 1 : node.end_lineno]).strip()
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        if is_import and previous_import:
            cells[-1] += "\n" + text
        else:
            cells.append(text)
        previous_import = is_import
    return cells


def _outputs(entry: Path, lang: str) -> list:
    """The run's figures in ``lang`` (``x.zh.svg`` for Chinese where drawn), then metrics."""
    outputs = []
    for path in sorted(entry.iterdir()):
        chinese = path.stem.endswith(".zh")
        twin = path.with_name(f"{path.stem}.zh{path.suffix}")
        if (chinese and lang != "zh") or (not chinese and lang == "zh" and twin.exists()):
            continue
        if path.suffix == ".png":
            data = {"image/png": base64.b64encode(path.read_bytes()).decode()}
        elif path.suffix == ".svg":
            data = {"image/svg+xml": path.read_text(encoding="utf-8")}
        else:
            continue
        outputs.append(nbformat.v4.new_output("display_data", data=data))
    metrics = json.loads((entry / "metrics.json").read_text())
    outputs.append(
        nbformat.v4.new_output(
            "execute_result",
            execution_count=1,
            data={"text/plain": json.dumps(metrics, indent=1)},
        )
    )
    return outputs


def write_notebook(name: str, entry: Path, lang: str, target: Path) -> None:
    module_path = ROOT / "snippets" / f"{name}.py"
    source = module_path.read_text(encoding="utf-8")
    page = _page_of(source, name)
    inputs = [
        module_path,
        entry / "metrics.json",
        ROOT / "docs" / lang / page,
        Path(__file__),
    ]
    if target.is_file() and all(
        target.stat().st_mtime >= p.stat().st_mtime for p in inputs if p.is_file()
    ):
        return  # newer than everything it is made from
    title = _title(lang, page)
    intro = TEXT[lang].format(
        module=f"snippets/{name}.py",
        name=name,
        title=title,
        page_url=page.removesuffix(".md") + "/",
    )
    docstring = ast.get_docstring(ast.parse(source)) or ""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title} · notebook\n\n{intro}"))
    nb.cells.append(nbformat.v4.new_markdown_cell(f"```text\n{docstring}\n```"))
    nb.cells += [nbformat.v4.new_code_cell(code) for code in _code_cells(source)]
    run = nbformat.v4.new_code_cell(
        "metrics = main(Config())\nmetrics", execution_count=1
    )
    run.outputs = _outputs(entry, lang)
    nb.cells.append(run)
    # nbformat's ids are random: they would change the notebook, and so defeat every cache
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
    text = nbformat.writes(nb)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


@event_priority(-200)  # after mkdocs-static-i18n (-100) has rebuilt the file list
def on_files(files, config):
    current = _language(config)
    languages = [lang.locale for lang in config.plugins["i18n"].config.languages]
    default = config.plugins["i18n"].default_language
    preset = registry.preset()
    src_dir = ROOT / ".cache" / "notebooks" / preset
    # hooks/demos.py has just made sure the newest cached run of each demo is current
    for name, entry in registry.cached_entries(preset).items():
        slug = name.replace("/", "-")
        alternates = {}
        for lang in languages:
            prefix = "" if lang == default else f"{lang}/"
            uri = f"{prefix}notebooks/{slug}.ipynb"
            if lang == current:
                write_notebook(name, entry, lang, src_dir / uri)
            file = File(uri, str(src_dir), config.site_dir, config.use_directory_urls)
            alternates[lang] = NotebookFile(file, **config)
        page = alternates[current]
        page.file.locale = page.file.locale_alternate_of = current
        page.file.alternates = alternates
        files.append(page)
    return files


def on_post_page(output, page, config):
    """nbconvert's template loads MathJax and mermaid from CDNs; this site serves KaTeX."""
    if getattr(page, "nb_url", None):
        output = re.sub(r'<script src="">\s*</script>', "", output)
        output = re.sub(
            r'<script type="text/x-mathjax-config">.*?</script>', "", output, flags=re.S
        )
        output = re.sub(
            r'<script type="module">(?:(?!</script>).)*?mermaid.*?</script>',
            "",
            output,
            flags=re.S,
        )
    return output


@event_priority(100)  # before the search plugin indexes the page
def on_page_context(context, page, config, nav):
    """Notebook pages mirror the code of a content page: keep them out of the search index
    (their HTML is megabytes of styles and images; indexing them doubled the build time)."""
    if getattr(page, "nb_url", None):
        page.meta["search"] = {"exclude": True}
    return context
