"""What readers download runs on its own: every notebook (both languages) and every
script the strict build publishes is executed at the tiny preset, each in a fresh
temporary folder outside the repository, with no PYTHONPATH, several at a time. A
failure names the file and the cell.

The venv must already hold the pinned versions the notebooks' first cell asks for
(otherwise that cell would pip install): the first check says so if it does not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT
from snippets import export, registry

DEMOS = sorted(registry.discover())
KINDS = ["zh.ipynb", "en.ipynb", "py"]
TIMEOUT = 600  # seconds for one download at the tiny preset (they take a few)
# Runs one notebook as `jupyter nbconvert --execute` would. When a cell fails (an
# error, a timeout, a dead kernel), the last line printed names it: its number, id,
# the heading above it and its first line.
EXECUTE = """
import re
import sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
client = NotebookClient(nb, timeout=int(sys.argv[2]), kernel_name="python3",
                        resources={"metadata": {"path": "."}})
running = []
execute_cell = client.async_execute_cell

async def tracked(cell, index, **kwargs):
    running.append(index)
    return await execute_cell(cell, index, **kwargs)

client.async_execute_cell = tracked
try:
    client.execute()
except Exception as err:
    plain = re.sub(r"\\x1b\\[[0-9;]*m", "", str(err)).strip()  # no terminal colours
    print(f"{type(err).__name__}: {plain}", file=sys.stderr)
    if not running:
        print("LOCATION: before the first cell (the kernel)", file=sys.stderr)
        sys.exit(1)
    index = running[-1]
    heading = next((c.source.lstrip("#").strip().splitlines()[0]
                    for c in reversed(nb.cells[:index])
                    if c.cell_type == "markdown" and c.source.startswith("#")), "-")
    first = (nb.cells[index].source.strip().splitlines() or [""])[0]
    print(f"LOCATION: cell {index} (id {nb.cells[index].get('id')}, under "
          f"'{heading}', first line {first!r})", file=sys.stderr)
    sys.exit(1)
finally:
    nbformat.write(nb, "executed.ipynb")
"""
# Hides every installed font that draws Chinese, then runs the script given.
NO_CJK = """
import runpy, sys
from matplotlib import font_manager as fm

def cjk(entry):
    try:
        return ord("中") in fm.get_font(entry.fname).get_charmap()
    except Exception:
        return False

fm.fontManager.ttflist = [f for f in fm.fontManager.ttflist if not cjk(f)]
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@dataclass
class Result:
    ok: bool
    message: str
    seconds: float
    output: str = ""


def download(site: Path, name: str, kind: str) -> Path:
    """Where the site serves demo ``name``'s notebook (per language) or script."""
    slug = name.replace("/", "-")
    if kind == "py":
        return site / "notebooks" / slug / f"{slug}.py"
    prefix = "" if kind == "zh.ipynb" else "en/"
    return site / f"{prefix}notebooks" / slug / f"{slug}.ipynb"


def reader_env() -> dict:
    """A reader's shell: no PYTHONPATH, the tiny preset, one thread per run (they run
    side by side)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(DLNOTES_PRESET="tiny", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _run(site: Path, name: str, kind: str, entry: Path) -> Result:
    source = download(site, name, kind)
    where = Path(tempfile.mkdtemp(prefix="dlnotes-reader-"))  # outside the repository
    start = time.perf_counter()
    try:
        if not source.is_file():
            return Result(False, f"the site has no {source.relative_to(site)}", 0)
        shutil.copy(source, where)
        if kind == "py":  # a reader who also downloaded the font beside it
            shutil.copy(export.FONT, where)
            cmd = [sys.executable, source.name, "--tiny"]
        else:
            cmd = [sys.executable, "-c", EXECUTE, source.name, str(TIMEOUT)]
        proc = subprocess.run(
            cmd, cwd=where, env=reader_env(), capture_output=True, text=True,
            timeout=TIMEOUT + 60,
        )
        label = source.relative_to(site)
        if proc.returncode != 0:
            return Result(False, failure(label, source, proc.stderr),
                          time.perf_counter() - start)
        problem = _check_outputs(where, name, kind, proc.stdout, entry)
        return Result(not problem, f"{label}: {problem}", time.perf_counter() - start,
                      proc.stdout)
    except subprocess.TimeoutExpired:
        label = source.relative_to(site)
        return Result(False, f"{label}: ran past {TIMEOUT + 60} s", TIMEOUT)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def failure(label: Path, source: Path, stderr: str) -> str:
    """The first line names the file, the cell (a notebook's number and heading, a
    script's line and function) and the error; the traceback's end follows."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if source.suffix == ".ipynb":
        located = [ln for ln in lines if ln.startswith("LOCATION: ")]
        where = located[-1].removeprefix("LOCATION: ") if located else "no cell named"
        errors = [ln for ln in lines if re.match(r"^\w*(Error|Exception)\b", ln)]
    else:
        frames = re.findall(
            rf'File "[^"]*{re.escape(source.name)}", line (\d+)(?:, in (\S+))?', stderr
        )
        where = "no line of the script in the traceback"
        if frames:
            number, function = int(frames[-1][0]), frames[-1][1] or "-"
            code = source.read_text(encoding="utf-8").splitlines()
            part = next((ln.strip("# -") for ln in reversed(code[:number])
                         if ln.startswith("# --- ")), "-")
            where = (f"line {number}, in {function} (part: {part}): "
                     f"{code[number - 1].strip()!r}")
        errors = [ln for ln in lines if not ln.startswith(" ")]
    error = errors[-1] if errors else "(no error line)"
    return f"{label}, {where}: {error}\n{stderr[-5000:]}"


def _check_outputs(
    where: Path, name: str, kind: str, stdout: str, entry: Path
) -> str:
    """What a reader must see after a run; an empty string when all is there."""
    slug = name.replace("/", "-")
    out = where / "out" / slug
    figures = sorted(p.name for p in out.glob("*") if p.suffix in {".svg", ".png"})
    if not figures:
        return f"no figure in out/{slug}/"
    if kind == "py":
        text = stdout[stdout.index("\n{") + 1:] if "\n{" in stdout else ""
        try:
            metrics = json.loads(text)
        except json.JSONDecodeError:
            return f"the last lines printed are not metrics as JSON:\n{stdout[-800:]}"
        if "tiny preset" not in stdout or not metrics:
            return f"no stamp or no metrics:\n{stdout[-800:]}"
        # the project's font lies beside the script: every Chinese twin is drawn
        expected = sorted(p.name for p in entry.iterdir() if ".zh." in p.name)
        missing = [f for f in expected if f not in figures]
        return f"Chinese figures not drawn: {missing}" if missing else ""
    nb = json.loads((where / "executed.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    printed = "".join(
        "".join(o["text"]) for o in outputs if o.get("output_type") == "stream"
    )
    shown = [o for o in outputs if o.get("output_type") == "display_data"]
    if "run: tiny preset" not in printed:
        return f"the run cell printed no stamp:\n{printed[-800:]}"
    if not shown:
        return "the figures cell showed no figure"
    return ""


@pytest.fixture(scope="session")
def executed(site, request) -> dict[tuple[str, str], Result]:
    """Runs the downloads the session selected, in parallel, longest first."""
    selected = sorted(
        {
            (item.callspec.params["name"], item.callspec.params["kind"])
            for item in request.session.items
            if getattr(item, "originalname", "") == "test_download_runs_on_its_own"
        }
    )
    unmet = sorted(
        {r for name in {n for n, _ in selected}
         for r in export.unmet_requirements(export.build(name).pinned)}
    )
    assert not unmet, (
        f"the venv lacks the pinned {unmet}: the notebooks would pip install them "
        "(run `make install`)"
    )
    probe = subprocess.run(
        [sys.executable, "-c", "import snippets"], cwd=tempfile.gettempdir(),
        env=reader_env(), capture_output=True,
    )
    assert probe.returncode != 0, "snippets is importable outside the repository"
    entries = registry.cached_entries("tiny")

    def cost(job):
        run = json.loads((entries[job[0]] / "run.json").read_text())
        return -run["cpu_s"]

    jobs = sorted(selected, key=cost)
    workers = max(2, os.cpu_count() or 2)
    start, cpu = time.perf_counter(), _children_cpu()
    with ThreadPoolExecutor(workers) as pool:
        runs = pool.map(lambda job: _run(site, *job, entries[job[0]]), jobs)
        results = dict(zip(jobs, runs))
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(
            f"\ndownloads: ran {len(jobs)} ({workers} at a time) in {wall:.0f} s, "
            f"{cpu:.0f} s of CPU; slowest: "
            + ", ".join(
                f"{download(site, *job).name} ({kind}) {results[job].seconds:.0f} s"
                for job in sorted(jobs, key=lambda j: -results[j].seconds)[:3]
                for kind in [job[1]]
            )
        )
    return results


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", DEMOS)
def test_download_runs_on_its_own(executed, name, kind):
    result = executed[(name, kind)]
    assert result.ok, result.message


BROKEN_SCRIPT = '''"""A download that fails in a helper."""


# --- snippets/cnn/convolution.py ---------------------------------------------------
def helper():
    raise ValueError("broken on purpose")


# --- running it as the site's build does ------------------------------------------
if __name__ == "__main__":
    helper()
'''


def test_a_failing_download_is_reported_with_its_file_and_cell(tmp_path):
    """What test_download_runs_on_its_own prints when a download breaks."""
    import nbformat

    name = DEMOS[0]
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A notebook\n\nIntro."),
        nbformat.v4.new_code_cell("a = 1"),
        nbformat.v4.new_markdown_cell("## Training"),
        nbformat.v4.new_code_cell("b = a + 1\nraise ValueError('broken on purpose')"),
        nbformat.v4.new_code_cell("c = 3"),
    ]
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
    for kind in ("en.ipynb", "py"):
        target = download(tmp_path, name, kind)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = nbformat.writes(nb) if kind != "py" else BROKEN_SCRIPT
        target.write_text(text, encoding="utf-8")
    slug = name.replace("/", "-")
    notebook = _run(tmp_path, name, "en.ipynb", tmp_path)
    assert not notebook.ok
    assert notebook.message.startswith(
        f"en/notebooks/{slug}/{slug}.ipynb, cell 3 (id cell-3, under 'Training', "
        "first line 'b = a + 1'): ValueError: broken on purpose\n"
    ), notebook.message[:600]
    script = _run(tmp_path, name, "py", tmp_path)
    assert not script.ok
    assert script.message.startswith(
        f"notebooks/{slug}/{slug}.py, line 6, in helper (part: "
        "snippets/cnn/convolution.py): 'raise ValueError(\"broken on purpose\")': "
        "ValueError: broken on purpose\n"
    ), script.message[:600]


def _notebook_hook():
    spec = importlib.util.spec_from_file_location(
        "notebooks_hook", ROOT / "hooks" / "notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebooks_and_scripts_are_byte_identical_on_rebuild(site):
    hook = _notebook_hook()
    entries = registry.cached_entries("tiny")
    for name in DEMOS:
        for kind, lang in (("zh.ipynb", "zh"), ("en.ipynb", "en")):
            notebook, script, _ = hook.build_notebook(name, entries[name], lang)
            assert download(site, name, kind).read_text(encoding="utf-8") == notebook, (
                f"{name} ({lang}): a rebuild writes another notebook"
            )
            assert download(site, name, "py").read_text(encoding="utf-8") == script
        slug = name.replace("/", "-")
        english = site / "en" / "notebooks" / slug / f"{slug}.py"
        assert english.read_bytes() == download(site, name, "py").read_bytes()


def test_notebooks_speak_the_page_language_and_keep_the_run(site):
    """Markdown in the page's language (title from the page), code comments in
    English, and the build's run embedded: stamp, claims, metrics, figures."""
    entries = registry.cached_entries("tiny")
    for name in DEMOS:
        for kind, lang in (("zh.ipynb", "zh"), ("en.ipynb", "en")):
            nb = json.loads(download(site, name, kind).read_text(encoding="utf-8"))
            markdown = "".join(
                "".join(c["source"])
                for c in nb["cells"]
                if c["cell_type"] == "markdown"
            )
            chinese = sum("\u4e00" <= ch <= "\u9fff" for ch in markdown)
            assert (chinese > 100) == (lang == "zh"), f"{name} ({lang}): language"
            assert "DLNOTES_PRESET=tiny" in "".join(nb["cells"][0]["source"])
            assert "".join(nb["cells"][1]["source"]).startswith("# Installs")
            code = "\n".join(
                "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
            )
            assert not re.search(r"^\s*(from|import) snippets\b", code, re.M), name
            outputs = [o for c in nb["cells"] if c["cell_type"] == "code"
                       for o in c["outputs"]]
            printed = "".join("".join(o["text"]) for o in outputs if "text" in o)
            run = json.loads((entries[name] / "run.json").read_text())
            assert export.stamp_line(run) in printed, f"{name}: no stamp"
            metrics = json.loads((entries[name] / "metrics.json").read_text())
            assert json.dumps(metrics, indent=1, sort_keys=True) in printed
            assert any(o.get("output_type") == "display_data" for o in outputs)
            assert run["date"] in "".join(nb["cells"][-1]["source"])


def test_without_a_cjk_font_a_script_draws_english_figures_and_says_so(site, tmp_path):
    entries = registry.cached_entries("tiny")
    drawn = [n for n in DEMOS if any(".zh." in p.name for p in entries[n].iterdir())]
    if not drawn:
        pytest.skip("no demo draws Chinese figures yet")
    name = min(drawn, key=lambda n: json.loads((entries[n] / "run.json").read_text())[
        "cpu_s"])
    script = shutil.copy(download(site, name, "py"), tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", NO_CJK, Path(script).name, "--tiny"], cwd=tmp_path,
        env=reader_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("No CJK font") == 1, proc.stdout[:800]
    figures = [
        p.name for p in (tmp_path / "out").rglob("*") if p.suffix in {".svg", ".png"}
    ]
    assert figures and not any(".zh." in f for f in figures), figures


def test_demo_pages_and_notebook_pages_link_the_downloads(site):
    for name in DEMOS:
        slug = name.replace("/", "-")
        source = registry.discover()[name].path.read_text(encoding="utf-8")
        page = re.search(r"^Page:\s*(\S+)\.md", source, re.M).group(1)
        for prefix in ("", "en/"):
            for html in (site / prefix / page / "index.html",
                         site / f"{prefix}notebooks" / slug / "index.html"):
                text = html.read_text(encoding="utf-8")
                hrefs = re.findall(r'<a href="([^"]+)"[^>]*md-content__button', text)
                targets = {(html.parent / h).resolve() for h in hrefs}
                for kind in ("ipynb", "py"):
                    wanted = (site / f"{prefix}notebooks" / slug / f"{slug}.{kind}")
                    assert wanted.resolve() in targets, f"{html}: no link to .{kind}"
                    assert wanted.is_file()


def test_first_cell_installs_only_what_is_unmet_and_torch_from_its_cpu_index(capsys):
    """The install cell as IPython runs it (its %pip lines turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    program = export.build("cnn/convolution")
    assert {"torch", "numpy"} <= set(program.pinned)
    cell = TransformerManager().transform_cell(program.install_code())
    calls = []

    class Shell:
        def run_line_magic(self, magic, line):  # IPython expands {names} first
            calls.append((magic, line.format_map(sys._getframe(1).f_globals)))

    exec(cell, {"get_ipython": Shell})  # every pin present in the venv: no install
    assert calls == [] and "pinned requirements present" in capsys.readouterr().out
    for dist in ("torch", "numpy"):
        cell = cell.replace(f'"{dist}": "{program.pinned[dist]}"', f'"{dist}": "0.1"')
    exec(cell, {"get_ipython": Shell})
    assert calls == [
        ("pip", "install --quiet torch==0.1 --index-url "
         "https://download.pytorch.org/whl/cpu"),
        ("pip", "install --quiet numpy==0.1"),
    ]
