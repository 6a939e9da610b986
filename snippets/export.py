"""A demo as one self-contained program: the cells of a notebook, or a single script.

A reader who downloads a demo has no repository, so ``from snippets... import`` cannot
work. The program holds, in order: the imports it needs; the helpers of
``snippets/common.py`` the demo uses (with the one standalone change: where the font for
Chinese figures comes from); the parts of other ``snippets`` modules it imports (the
attention chapter's shared date data, say); the demo itself; and a runner that does
what the build does (preset, stamp, claims, metrics). The code is the modules' own text,
comments included; only the ``snippets`` imports and the ``--8<--`` markers are gone.

A module whose names would change meaning next to the demo's (both define ``Config``,
or the demo writes ``import ... as pg``) is inlined inside a function that returns its
namespace, so that neither module's code sees the other's names.

Used by ``hooks/notebooks.py`` (the notebooks and the downloadable ``.py``) and by
``tests/site/test_notebooks.py``. ``python -m snippets.export cnn/convolution`` prints
the script. This module is not a demo (the registry looks at ``snippets/<part>/``).
"""

from __future__ import annotations

import ast
import builtins
import importlib.metadata
import inspect
import re
import symtable
import sys
import textwrap
import tokenize
from dataclasses import dataclass, field
from functools import lru_cache
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(__file__).resolve().parent
COMMON = PACKAGE / "common.py"
FONT = PACKAGE / "fonts" / "NotoSansCJKsc-Regular-subset.otf"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # the CPU-only torch wheels
FIGURE = re.compile(r"^[\w.-]+\.(?:svg|png)$")
# Names the generated runner binds: a demo that defines one of them cannot be exported.
RUNNER_NAMES = {
    "PINNED", "unmet_requirements", "install_commands", "command", "this_run",
    "stamp_line", "claim_line", "run_demo", "show_figures", "PRESET", "OUT", "metrics",
}
RUNNER_IMPORTS = {
    "SimpleNamespace": ("from", "types", "SimpleNamespace"),
    "Path": ("from", "pathlib", "Path"),
    "os": ("import", "os"),
}


class ExportError(RuntimeError):
    """A demo the exporter cannot turn into a standalone program (says which, why)."""


# ---------------------------------------------------------------------------------
# The standalone runtime. These functions are copied, as written here, into every
# notebook and script; the build calls the same ones to format the embedded outputs.


def unmet_requirements(pinned: dict[str, str]) -> list[str]:
    """``name==version`` for each pinned package missing or at another version."""
    import importlib.metadata

    unmet = []
    for dist, version in pinned.items():
        try:
            found = importlib.metadata.version(dist).split("+")[0]  # 2.13.0+cpu
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found != version:
            unmet.append(f"{dist}=={version}")
    return unmet


def install_commands(unmet: list[str]) -> list[str]:
    """What follows ``pip install`` to install ``unmet``: torch from its CPU-only
    index, then the rest from PyPI."""
    torch = [r for r in unmet if r.startswith("torch==")]
    others = [r for r in unmet if not r.startswith("torch==")]
    commands = []
    if torch:
        commands.append(
            f"{' '.join(torch)} --index-url https://download.pytorch.org/whl/cpu"
        )
    if others:
        commands.append(" ".join(others))
    return commands


def find_cjk_font(name: str = "NotoSansCJKsc-Regular-subset.otf"):
    """A font that draws Chinese, as (file, family): DL Notes' own font if it lies next
    to this file or in the working folder, else an installed font matplotlib knows,
    else (None, None)."""
    from pathlib import Path

    from matplotlib import font_manager

    folders = [Path.cwd()]
    if "__file__" in globals():  # a script: look next to it first
        folders.insert(0, Path(__file__).resolve().parent)
    for folder in folders:
        if (folder / name).is_file():
            font_manager.fontManager.addfont(str(folder / name))
            family = font_manager.FontProperties(fname=folder / name).get_name()
            return folder / name, family
    hints = ("CJK", "Hei", "Han Sans", "YaHei", "WenQuanYi", "PingFang", "Song", "Ming")
    candidates = sorted(  # Noto Sans CJK first, then other sans-serif fonts
        {
            (not f.name.startswith("Noto Sans CJK"), "Sans" not in f.name, f.name,
             f.fname)
            for f in font_manager.fontManager.ttflist
            if any(hint in f.name for hint in hints)
        }
    )
    for *_, family, fname in candidates:
        try:
            charmap = font_manager.get_font(fname).get_charmap()
        except (OSError, RuntimeError):
            continue
        if all(ord(c) in charmap for c in "中文图"):
            return Path(fname), family
    return None, None


def this_run(preset: str, cpu_s: float) -> dict:
    """This run's stamp, with the keys of the build's ``run.json``."""
    import importlib.metadata
    import os
    import sys
    from datetime import datetime, timezone

    versions = {"python": sys.version.split()[0]}
    for dist in ("torch", "numpy"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "absent"
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else int(
        os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)
    )
    return {
        "versions": versions,
        "date": datetime.now(timezone.utc).date().isoformat(),
        "preset": preset,
        "cpu_s": round(cpu_s, 2),
        "threads": threads,
    }


def stamp_line(run: dict) -> str:
    """One line: preset, date, CPU time, threads, versions."""
    v = run["versions"]
    return (
        f"run: {run['preset']} preset, {run['date']}, {run['cpu_s']:.1f} s of CPU time "
        f"on {run['threads']} thread(s), Python {v['python']}, torch {v['torch']}, "
        f"numpy {v['numpy']}"
    )


def claim_line(name: str, holds: bool) -> str:
    """A claim the page makes, as this run found it."""
    return f"✓ {name}" if holds else f"✗ {name} (not reproduced by this run)"


RUN_DEMO = '''
def run_demo(preset: str = "real", out: Path = Path("out/__SLUG__")) -> dict:
    """Run main() at a preset as the site's build does; print this run's stamp, the
    claims the page makes as this run found them, and the metrics (last, as JSON)."""
    import json
    import time

    cfg = Config.tiny() if preset == "tiny" else Config()
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    metrics = dict(main(cfg, out))
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    metrics.update(wall_s=round(wall, 2), cpu_s=round(cpu, 2))
    print(stamp_line(this_run(preset, cpu)))
__CLAIMS__    print(json.dumps(metrics, indent=1, sort_keys=True))
    return metrics
'''
CLAIMS_LOOP = """\
    plain = json.loads(json.dumps(metrics))  # Python floats: comparisons give bools
    for name, rule in CLAIMS.items():
        print(claim_line(name, rule(plain)))
"""
SHOW_FIGURES = '''
def show_figures(out: Path, chinese: bool) -> None:
    """Show the figures main() wrote: the Chinese twin (x.zh.svg) where one was drawn
    and this notebook is Chinese, else the English one."""
    from IPython.display import SVG, Image, display

    for path in sorted(out.iterdir()):
        is_zh = path.stem.endswith(".zh")
        twin = path.with_name(f"{path.stem}.zh{path.suffix}")
        if (is_zh and not chinese) or (not is_zh and chinese and twin.exists()):
            continue
        if path.suffix == ".svg":
            display(SVG(filename=path))
        elif path.suffix == ".png":
            display(Image(filename=path))
'''
FONT_SHIM = '''
# Standalone: in the repository the font comes from snippets/fonts/. Here: that font
# next to this file, else an installed CJK font; else the Chinese twins of the figures
# (x.zh.svg) are not drawn, and one line says so.
CJK_FONT, CJK_FAMILY = find_cjk_font()
if CJK_FONT is None:
    CJK_FONT = Path("NotoSansCJKsc-Regular-subset.otf")  # absent: use_style skips it
    print(
        "No CJK font (put NotoSansCJKsc-Regular-subset.otf next to this file, or "
        "install one, e.g. fonts-noto-cjk): drawing the English figures only."
    )
'''
STYLE_SHIM = '''
# Standalone: use the family of the font found above, and draw a figure's Chinese
# twin only when there is a font for it.
common_use_style, common_save_figure = use_style, save_figure


def use_style() -> None:
    common_use_style()
    installed = {f.name for f in font_manager.fontManager.ttflist}
    families = [f for f in plt.rcParams["font.family"] if f in installed]
    plt.rcParams["font.family"] = families + (
        [CJK_FAMILY] if CJK_FAMILY and CJK_FAMILY not in families else []
    )


def save_figure(fig, path, zh=None, **kwargs):
    return common_save_figure(fig, path, zh=zh if CJK_FAMILY else None, **kwargs)
'''


# ---------------------------------------------------------------------------------
# Reading modules


@dataclass
class Statement:
    text: str  # its source with the comments above it, without --8<-- marker lines
    node: ast.stmt
    bound: set[str]  # global names it binds
    used: set[str]  # global names it reads
    sections: list[str] = field(default_factory=list)  # named sections it overlaps
    figures: list[str] = field(default_factory=list)  # figure files it names
    synthetic: bool = False  # the exporter's own code (the standalone font lookup)
    packages: set[str] = field(default_factory=set)  # what it imports, at any depth


@dataclass
class Import:
    """One name an import statement binds, and what it binds it to."""

    alias: str
    origin: tuple  # ("import", "a.b") / ("from", "a", "b") / ("module", rel)
    snippets: tuple | None = None  # (rel, name) or (rel, None) for a whole module
    text: str = ""  # the import, written for this one name
    stdlib: bool = True


@dataclass
class Module:
    path: Path
    rel: str  # "snippets/cnn/convolution.py"
    docstring: str
    future: bool  # `from __future__ import annotations`
    statements: list[Statement]
    imports: dict[str, Import]  # alias -> what it is


@lru_cache(maxsize=64)
def _load(path: Path, mtime: float) -> Module:
    source = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(source)
    lines = source.splitlines()
    body = tree.body
    docstring = ast.get_docstring(tree) or ""
    if docstring:
        body = body[1:]
    future = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in body
    )
    sections = _sections(lines)
    imports: dict[str, Import] = {}
    statements = []
    previous_end = tree.body[0].end_lineno if docstring else 0
    for node in body:
        decorators = getattr(node, "decorator_list", [])
        start = min([node.lineno] + [d.lineno for d in decorators])
        text_lines = [
            ln for ln in lines[previous_end : node.end_lineno] if "--8<--" not in ln
        ]
        previous_end = node.end_lineno
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
                for item in _imports(node, rel):
                    imports[item.alias] = item
            continue
        if _is_main_guard(node):
            continue
        text = "\n".join(text_lines).strip("\n")
        bound, used = _names(text, future)
        statements.append(
            Statement(
                text=text,
                node=node,
                bound=bound,
                used=used,
                sections=[
                    name
                    for name, (a, b) in sections.items()
                    if a <= node.end_lineno and b >= start
                ],
                figures=sorted(
                    {
                        n.value
                        for n in ast.walk(node)
                        if isinstance(n, ast.Constant)
                        and isinstance(n.value, str)
                        and FIGURE.match(n.value)
                    }
                ),
                packages=_packages(node),
            )
        )
    return Module(path, rel, docstring, future, statements, imports)


def load(path: Path) -> Module:
    return _load(path, path.stat().st_mtime)


def _sections(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Named sections (``# --8<-- [start:x]`` ... ``[end:x]``) by name: line range."""
    found, open_ = {}, {}
    for number, line in enumerate(lines, 1):
        match = re.search(r"--8<--\s*\[(start|end):([\w-]+)\]", line)
        if match and match.group(1) == "start":
            open_[match.group(2)] = number
        elif match and match.group(2) in open_:
            found[match.group(2)] = (open_.pop(match.group(2)), number)
    return found


def _packages(node) -> set[str]:
    """The top-level packages a statement imports, at any depth."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            found |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
            found.add(n.module.split(".")[0])
    return found


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _imports(node, rel: str) -> list[Import]:
    """What an import statement binds, one Import per name."""
    found = []
    if isinstance(node, ast.Import):
        for a in node.names:
            top = a.name.split(".")[0]
            if top == "snippets":
                if not a.asname:
                    raise ExportError(
                        f"{rel}: write 'import {a.name} as x' or 'from ... import'"
                    )
                target = _snippets_module(a.name, rel)
                found.append(Import(a.asname, ("module",), target))
            elif a.asname:
                found.append(
                    Import(a.asname, ("import", a.name), None,
                           f"import {a.name} as {a.asname}", _is_stdlib(top))
                )
            else:
                found.append(
                    Import(top, ("import", top), None, f"import {a.name}",
                           _is_stdlib(top))
                )
        return found
    module = node.module or ""
    if node.level:  # relative: resolve against this module's package
        package = Path(rel).parent.parts[: len(Path(rel).parent.parts) - node.level + 1]
        module = ".".join([*package, module] if module else package)
    for a in node.names:
        if a.name == "*":
            raise ExportError(f"{rel}: 'import *' cannot be inlined")
        alias = a.asname or a.name
        if module.split(".")[0] == "snippets":
            target = _snippets_module(f"{module}.{a.name}", rel, must=False)
            if target:  # from snippets.rl import policy_gradient as pg
                found.append(Import(alias, ("module",), target))
            else:
                where = _snippets_module(module, rel)
                found.append(Import(alias, ("name",), (where[0], a.name)))
        else:
            text = f"from {module} import {a.name}" + (
                f" as {a.asname}" if a.asname else ""
            )
            found.append(
                Import(alias, ("from", module, a.name), None, text,
                       _is_stdlib(module.split(".")[0]))
            )
    return found


def _snippets_module(dotted: str, rel: str, must: bool = True) -> tuple | None:
    """``snippets.a.b`` -> ("snippets/a/b.py", None) when that file exists."""
    path = ROOT.joinpath(*dotted.split(".")).with_suffix(".py")
    if path.is_file():
        return (path.relative_to(ROOT).as_posix(), None)
    if must:
        raise ExportError(f"{rel}: imports {dotted}, which is no module of snippets/")
    return None


def _is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names or top == "__future__"


def _names(text: str, future: bool) -> tuple[set[str], set[str]]:
    """The global names a top-level statement binds and reads (symtable's view).
    Under ``from __future__ import annotations`` annotations are never evaluated, so
    they read nothing (symtable knows, given the same import)."""
    prefix = "from __future__ import annotations\n" if future else ""
    table = symtable.symtable(prefix + text, "<statement>", "exec")
    symbols = [
        s for s in table.get_symbols()
        if not (future and s.get_name() == "annotations")
    ]
    bound = {s.get_name() for s in symbols if s.is_assigned() or s.is_imported()}
    used = {s.get_name() for s in symbols if s.is_referenced()}
    todo = list(table.get_children())
    while todo:
        scope = todo.pop()
        for s in scope.get_symbols():
            if s.is_global() and s.is_referenced():
                used.add(s.get_name())
            if s.is_declared_global() and s.is_assigned():
                bound.add(s.get_name())
        todo += scope.get_children()
    return bound, used


# ---------------------------------------------------------------------------------
# The program


@dataclass
class Unit:
    """One module's part of the program: the statements it contributes."""

    module: Module
    wanted: set[str] = field(default_factory=set)
    whole: bool = False  # the demo: every statement
    included: list[Statement] = field(default_factory=list)
    imports: dict[str, Import] = field(default_factory=dict)  # the ones it uses
    wrapped: bool = False
    namespace: str = ""  # the global holding a wrapped module's namespace

    @property
    def rel(self) -> str:
        return self.module.rel

    @property
    def bound(self) -> set[str]:
        return set().union(*(s.bound for s in self.included))

    @property
    def used(self) -> set[str]:
        return set().union(*(s.used for s in self.included))


@dataclass
class Block:
    """A piece of the program: one notebook cell, or one stretch of the script."""

    kind: str  # imports | common | module | demo | runner
    rel: str  # the module it comes from ("" for generated code)
    code: str
    sections: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    statement: ast.stmt | None = None


@dataclass
class Standalone:
    demo: str  # "cnn/convolution"
    rel: str  # "snippets/cnn/convolution.py"
    page: str  # "cnn/convolution.md"
    docstring: str
    pinned: dict[str, str]
    blocks: list[Block]
    sources: list[Path]  # every file the program was made from
    has_claims: bool

    @property
    def slug(self) -> str:
        return self.demo.replace("/", "-")

    def install_code(self) -> str:
        """The notebook's first code cell: installs what is unmet, else says so."""
        return "\n\n\n".join(
            [
                "# Installs the pinned packages this notebook needs (torch: its\n"
                "# CPU-only build) when they are missing or at other versions. Skip\n"
                "# this cell if you keep your own environment.\n"
                + _pinned_code(self.pinned),
                _source(unmet_requirements).strip("\n"),
                _source(install_commands).strip("\n"),
                "for command in install_commands(unmet_requirements(PINNED)):\n"
                "    %pip install --quiet {command}\n"
                "if not unmet_requirements(PINNED):\n"
                '    print("pinned requirements present:", ", ".join(PINNED))',
            ]
        )

    def run_code(self) -> str:
        return "\n".join(
            [
                "import os",
                "",
                'PRESET = os.environ.get("DLNOTES_PRESET", "real")  # tiny: seconds',
                f'OUT = Path("out/{self.slug}")',
                "metrics = run_demo(PRESET, OUT)",
            ]
        )

    def figures_code(self, lang: str) -> str:
        return f"show_figures(OUT, chinese={lang == 'zh'})"

    def script(self) -> str:
        """The whole program as one file: ``python <slug>.py [--tiny]``."""
        doc = (
            f"{self.docstring}\n\n"
            f"A self-contained copy of {self.rel} from DL Notes (page {self.page}):\n"
            "the snippets code it imports is inlined below. Install, then run:\n\n"
            + "".join(f"    pip install {c}\n" for c in install_commands(
                [f"{d}=={v}" for d, v in self.pinned.items()]))
            + f"    python {self.slug}.py          # the page's preset\n"
            f"    python {self.slug}.py --tiny   # seconds: a quick check "
            "(or DLNOTES_PRESET=tiny)\n\n"
            f"Figures go to out/{self.slug}/; the last lines printed are the metrics "
            "as JSON.\nChinese twins of the figures need a CJK font: "
            "NotoSansCJKsc-Regular-subset.otf\n(the site serves it beside the "
            "notebooks) next to this file, or one installed.\n"
        )
        doc = doc.replace("\\", "\\\\")
        parts = [
            f'"""{doc}"""',
            "from __future__ import annotations",
            _pinned_code(self.pinned),
            _source(unmet_requirements),
            _source(install_commands),
            "\n".join(
                [
                    'if __name__ == "__main__" and unmet_requirements(PINNED):',
                    '    print("Not the versions the site ran; to install them:")',
                    "    for command in install_commands(unmet_requirements(PINNED)):",
                    '        print("    pip install", command)',
                ]
            ),
        ]
        previous = None
        for block in self.blocks:
            if block.kind == "imports":
                parts.append(block.code.replace(
                    "from __future__ import annotations\n\n", ""))
                continue
            if block.kind != previous or block.kind == "module":
                parts.append(_banner(block))
            previous = block.kind
            parts.append(block.code)
        parts.append(
            "\n".join(
                [
                    'if __name__ == "__main__":',
                    "    import argparse",
                    "    import os",
                    "",
                    "    first_line = __doc__.splitlines()[0]",
                    "    parser = argparse.ArgumentParser(description=first_line)",
                    "    parser.add_argument(",
                    '        "--tiny", action="store_true",',
                    '        help="the seconds-long preset (or DLNOTES_PRESET=tiny)",',
                    "    )",
                    "    parser.add_argument(",
                    f'        "--out", type=Path, default=Path("out/{self.slug}"),',
                    '        help="where the figures go",',
                    "    )",
                    "    args = parser.parse_args()",
                    '    preset = os.environ.get("DLNOTES_PRESET", "real")',
                    '    tiny = args.tiny or preset == "tiny"',
                    '    print(f"figures go to {args.out}/")',
                    '    run_demo("tiny" if tiny else "real", args.out)',
                ]
            )
        )
        return "\n\n\n".join(p.strip("\n") for p in parts) + "\n"


def _banner(block: Block) -> str:
    title = {
        "common": "helpers from snippets/common.py (the ones this demo uses)",
        "module": f"from {block.rel} (the parts this demo uses)",
        "demo": block.rel,
        "runner": "running it as the site's build does",
    }[block.kind]
    return f"# {'-' * 3} {title} {'-' * max(3, 80 - len(title))}"


def _pinned_code(pinned: dict[str, str]) -> str:
    body = "".join(f'    "{d}": "{v}",\n' for d, v in pinned.items())
    return f"PINNED = {{  # DL Notes' requirements.txt\n{body}}}"


def _source(function) -> str:
    return textwrap.dedent(inspect.getsource(function))


def _indent(code: str) -> str:
    """Indent by four spaces, except the inside of multi-line strings."""
    inside = set()
    for tok in tokenize.generate_tokens(StringIO(code).readline):
        if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    return "\n".join(
        line if number in inside or not line.strip() else "    " + line
        for number, line in enumerate(code.splitlines(), 1)
    )


def _common_with_shims() -> Module:
    return _shimmed(COMMON.stat().st_mtime)


@lru_cache(maxsize=2)
def _shimmed(mtime: float) -> Module:
    """snippets/common.py as the program holds it: the CJK font from find_cjk_font(),
    and the wrappers of use_style and save_figure that use it."""
    common = load(COMMON)
    statements, replaced = [], False
    for s in common.statements:
        if "CJK_FONT" in s.bound:
            replaced = True
            for code in (_source(find_cjk_font), FONT_SHIM):
                statements += _synthetic(code, common.future)
        else:
            statements.append(s)
    if not replaced:
        raise ExportError(
            "snippets/common.py no longer binds CJK_FONT: teach snippets/export.py "
            "where the standalone program's font comes from"
        )
    # the wrappers keep the helpers' names: what reads them reads the wrappers
    statements += _synthetic(STYLE_SHIM, common.future)
    imports = dict(common.imports)
    for extra in ("font_manager", "plt", "Path"):
        if extra not in imports:
            raise ExportError(f"snippets/common.py no longer imports {extra}")
    return Module(common.path, common.rel, common.docstring, common.future,
                  statements, imports)


def _synthetic(code: str, future: bool) -> list[Statement]:
    tree = ast.parse(code)
    lines = code.strip("\n").splitlines()
    out, previous_end = [], 0
    tree = ast.parse("\n".join(lines))
    for node in tree.body:
        text = "\n".join(lines[previous_end : node.end_lineno]).strip("\n")
        bound, used = _names(text, future)
        previous_end = node.end_lineno
        out.append(
            Statement(text, node, bound, used, synthetic=True, packages=_packages(node))
        )
    return out


def build(name: str) -> Standalone:
    """The standalone program of demo ``name`` (``cnn/convolution``)."""
    path = PACKAGE / f"{name}.py"
    if not path.is_file():
        raise ExportError(f"no demo module {path}")
    demo = load(path)
    page = re.search(r"^Page:\s*(\S+\.md)\s*$", demo.docstring, re.M)
    if not page:
        raise ExportError(
            f"{demo.rel}: its docstring must name its page ('Page: x.md')"
        )
    common_rel = COMMON.relative_to(ROOT).as_posix()
    units: dict[str, Unit] = {demo.rel: Unit(demo, whole=True)}
    edges: dict[str, list[str]] = {}
    # Grow each module's part until every name a part reads is in the program.
    changed = True
    while changed:
        changed = False
        for unit in list(units.values()):
            module = unit.module
            before = (len(unit.included), len(unit.imports))
            needed = set(unit.wanted)
            while True:
                included = [
                    s for s in module.statements
                    if unit.whole or s.bound & needed or not s.bound
                ]
                used = set().union(*(s.used for s in included)) if included else set()
                defined = {n for s in module.statements for n in s.bound}
                grown = needed | (used & defined)
                if grown == needed:
                    break
                needed = grown
            unit.included = included
            reads = used | unit.wanted | (set(module.imports) if unit.whole else set())
            unit.imports = {a: i for a, i in module.imports.items() if a in reads}
            for alias, item in unit.imports.items():
                if not item.snippets:
                    continue
                target, attr = item.snippets
                if target not in units:
                    source = _common_with_shims() if target == common_rel else load(
                        ROOT / target)
                    units[target] = Unit(source)
                    changed = True
                if target not in edges.setdefault(unit.rel, []):
                    edges[unit.rel].append(target)
                wants = {attr} if attr else _attributes(unit, alias, units[target])
                if not wants <= units[target].wanted:
                    units[target].wanted |= wants
                    changed = True
            changed |= before != (len(unit.included), len(unit.imports))
    for unit in units.values():
        for s in unit.included:
            if "__file__" in s.used and not s.synthetic:
                raise ExportError(
                    f"{unit.rel}: line {s.node.lineno} reads __file__, which a "
                    "notebook does not have"
                )
    order = _order(demo.rel, edges)
    _decide_wrapping(units, order, demo.rel)
    blocks = _blocks(units, order, demo.rel)
    pinned = _pins(units)
    sources = sorted({u.module.path for u in units.values()} | {Path(__file__)})
    return Standalone(
        demo=name, rel=demo.rel, page=page.group(1), docstring=demo.docstring,
        pinned=pinned, blocks=blocks, sources=sources,
        has_claims=any("CLAIMS" in s.bound for s in units[demo.rel].included),
    )


def _attributes(unit: Unit, alias: str, target: Unit) -> set[str]:
    """The names ``unit`` reads as ``alias.x``; every name if it uses ``alias`` bare."""
    names, bare = set(), False
    for s in unit.included:
        parents = {id(c): p for p in ast.walk(s.node) for c in ast.iter_child_nodes(p)}
        for n in ast.walk(s.node):
            if isinstance(n, ast.Name) and n.id == alias:
                parent = parents.get(id(n))
                if isinstance(parent, ast.Attribute) and parent.value is n:
                    names.add(parent.attr)
                else:
                    bare = True
    if bare:
        return {b for s in target.module.statements for b in s.bound}
    return names


def _order(start: str, edges: dict[str, list[str]]) -> list[str]:
    """Modules with what they import first (depth-first, post-order)."""
    order, visiting = [], set()

    def visit(rel):
        if rel in order:
            return
        if rel in visiting:
            raise ExportError(f"snippets modules import each other in a circle: {rel}")
        visiting.add(rel)
        for target in edges.get(rel, []):
            visit(target)
        order.append(rel)

    visit(start)
    return order


def _origins(unit: Unit, units: dict[str, Unit]) -> dict[str, tuple]:
    """What each global name the unit binds or reads must be."""
    found = {}
    for name in unit.bound:
        found[name] = ("def", unit.rel, name)
    for alias, item in unit.imports.items():
        if item.snippets and item.snippets[1] is None:
            found[alias] = ("module", item.snippets[0])
        elif item.snippets:
            found[alias] = ("def", *item.snippets)
        else:
            found[alias] = item.origin
    for name in unit.used - set(found):
        found[name] = ("builtin", name) if hasattr(builtins, name) else (
            "missing", unit.rel, name)
    return found


def _decide_wrapping(units: dict[str, Unit], order: list[str], demo: str) -> None:
    """Inline each module flat unless its names would clash with what is already in
    the program; the demo is always flat; an ``import ... as x`` is always wrapped."""
    for unit in units.values():
        for item in unit.imports.values():
            if item.snippets and item.snippets[1] is None:
                units[item.snippets[0]].wrapped = True
    runner = {n: ("runner", n) for n in RUNNER_NAMES} | RUNNER_IMPORTS
    clash = RUNNER_NAMES & units[demo].bound
    if clash:
        raise ExportError(f"{demo}: defines {sorted(clash)}, names the runner needs")
    while True:
        merged = dict(runner)
        restart = False
        for rel in [demo] + [r for r in reversed(order) if r != demo]:
            unit = units[rel]
            if unit.wrapped:
                continue
            origins = _origins(unit, units)
            if any(n in merged and merged[n] != o for n, o in origins.items()):
                if rel == demo:  # a clash between the demo and the runner
                    raise ExportError(f"{demo}: its names clash with the runner's")
                unit.wrapped = restart = True
                break
            merged.update(origins)
        if restart:
            continue
        for rel in order:
            unit = units[rel]
            if not unit.wrapped:
                continue
            inside = unit.bound | set(unit.imports)
            for name in unit.used - inside:
                if name in merged and merged[name] != ("builtin", name):
                    raise ExportError(
                        f"{rel}: reads the builtin {name!r}, which the demo redefines"
                    )
        break
    for rel in order:
        unit = units[rel]
        if unit.wrapped:
            aliases = {
                a for u in units.values() if not u.wrapped
                for a, i in u.imports.items() if i.snippets == (rel, None)
            }
            stem = Path(rel).stem
            unit.namespace = sorted(aliases)[0] if aliases else stem
            taken = set().union(*(u.bound | set(u.imports) for u in units.values()
                                  if not u.wrapped))
            if f"load_{stem}" in taken or (not aliases and stem in taken):
                raise ExportError(f"{rel}: its namespace's name {stem!r} is taken")


def _blocks(units: dict[str, Unit], order: list[str], demo: str) -> list[Block]:
    common_rel = COMMON.relative_to(ROOT).as_posix()
    flat_imports: dict[str, Import] = {}
    for rel in order:
        if not units[rel].wrapped:
            for alias, item in units[rel].imports.items():
                if not item.snippets:
                    flat_imports[alias] = item
    if any(u.wrapped for u in units.values()):
        flat_imports["SimpleNamespace"] = Import(
            "SimpleNamespace", ("from", "types", "SimpleNamespace"), None,
            "from types import SimpleNamespace")
    if "Path" not in flat_imports:  # the runner writes Path("out/...")
        flat_imports["Path"] = Import(
            "Path", ("from", "pathlib", "Path"), None, "from pathlib import Path")
    blocks = [Block("imports", "", _import_code(flat_imports.values(), future=True))]
    for rel in order:
        unit = units[rel]
        kind = "demo" if rel == demo else "common" if rel == common_rel else "module"
        if unit.wrapped:
            blocks.append(Block(kind, rel, _wrapper(unit, units)))
            continue
        binds = _bindings(unit, units)
        if binds:
            blocks.append(Block(kind, rel, "\n".join(binds)))
        if kind == "demo":
            for s in unit.included:
                blocks.append(Block(kind, rel, s.text, s.sections, s.figures, s.node))
        else:
            code = "\n\n\n".join(s.text for s in unit.included)
            blocks.append(Block(kind, rel, code, sorted(
                {x for s in unit.included for x in s.sections})))
    slug = demo.removeprefix("snippets/").removesuffix(".py").replace("/", "-")
    runner = "\n\n\n".join(
        [_source(f).strip("\n") for f in (this_run, stamp_line, claim_line)]
        + [RUN_DEMO.replace("__SLUG__", slug).replace(
            "__CLAIMS__", CLAIMS_LOOP if "CLAIMS" in units[demo].bound else "")]
    )
    blocks.append(Block("runner", "", runner.strip("\n")))
    return blocks


def _wrapper(unit: Unit, units: dict[str, Unit]) -> str:
    stem = Path(unit.rel).stem
    lines = [_import_code([i for i in unit.imports.values() if not i.snippets])]
    lines += _bindings(unit, units)
    body = "\n\n".join(["\n".join(ln for ln in lines if ln)]
                       + [s.text for s in unit.included])
    clashing = sorted(
        unit.bound & set().union(*(u.bound for u in units.values() if u is not unit))
    )
    why = (
        f"the demo defines {', '.join(clashing)} too" if clashing
        else "the demo reads them as attributes of one name"
    )
    doc = (
        f'    """{unit.rel}: the parts this demo uses, in a namespace of\n'
        f'    their own ({why})."""'
    )
    return (
        f"def load_{stem}():\n{doc}\n{_indent(body)}\n\n"
        f"    return SimpleNamespace(**locals())\n\n\n"
        f"{unit.namespace} = load_{stem}()"
    )


def _bindings(unit: Unit, units: dict[str, Unit]) -> list[str]:
    """``alias = value`` for each name the unit imports from snippets that is not
    already a global of that name: from a wrapped module's namespace, or renamed."""
    lines = []
    for alias, item in sorted(unit.imports.items()):
        if not item.snippets:
            continue
        target, attr = item.snippets
        if units[target].wrapped:
            value = units[target].namespace + (f".{attr}" if attr else "")
        else:
            value = attr
        if value != alias:
            lines.append(f"{alias} = {value}")
    return lines


def _import_code(items, future: bool = False) -> str:
    """Import statements: stdlib, then the rest; sorted; ``from`` names merged."""
    plain: dict[bool, set[str]] = {True: set(), False: set()}
    froms: dict[bool, dict[str, set[str]]] = {True: {}, False: {}}
    for item in items:
        if item.origin[0] == "from":
            name = item.text.split(" import ", 1)[1]
            froms[item.stdlib].setdefault(item.origin[1], set()).add(name)
        else:
            plain[item.stdlib].add(item.text)
    out = ["from __future__ import annotations"] if future else []
    for stdlib in (True, False):
        lines = list(plain[stdlib])
        for module, names in froms[stdlib].items():
            line = f"from {module} import {', '.join(sorted(names))}"
            if len(line) > 88:
                line = f"from {module} import (\n" + "".join(
                    f"    {n},\n" for n in sorted(names)) + ")"
            lines.append(line)
        if lines:
            out.append("\n".join(sorted(lines, key=_import_key)))
    return "\n\n".join(out)


def _import_key(line: str) -> tuple:
    module = line.split()[1]
    return (module.split(".")[0], line.startswith("from"), module, line)


def _pins(units: dict[str, Unit]) -> dict[str, str]:
    """The distributions the program imports (at any depth), at their pinned version
    from requirements.txt (or, for one it does not pin, the version the build used)."""
    tops = {"matplotlib"}  # find_cjk_font
    for unit in units.values():
        tops |= {i.origin[1].split(".")[0] for i in unit.imports.values()
                 if not i.snippets}
        for s in unit.included:
            tops |= s.packages
    dists = set()
    mapping = _distributions()
    for top in tops - set(sys.stdlib_module_names) - {"__future__", "snippets"}:
        if top not in mapping:
            raise ExportError(f"no installed distribution provides {top!r}")
        dists |= set(sorted(mapping[top])[:1])
    pinned = _requirements()
    found = {}
    for dist in sorted(dists, key=lambda d: (d.lower() != "torch", d.lower())):
        key = _normal(dist)
        found[pinned[key][0] if key in pinned else dist] = (
            pinned[key][1] if key in pinned else importlib.metadata.version(dist)
        )
    return found


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _normal(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@lru_cache(maxsize=1)
def _requirements() -> dict[str, tuple[str, str]]:
    """requirements.txt's exact pins: normalised name -> (name, version)."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
        if match:
            pins[_normal(match.group(1))] = (match.group(1), match.group(2))
    return pins


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m snippets.export", description="print a demo's standalone script"
    )
    parser.add_argument("name", help="demo name, e.g. cnn/convolution")
    args = parser.parse_args(argv)
    sys.stdout.write(build(args.name).script())
    return 0


if __name__ == "__main__":
    sys.exit(main())
