"""make mutants: mutation testing of the from-scratch teaching functions.

Which functions, and which tests exercise them, is listed per chapter in
``tests/mutation/<part>.toml``. Each listed function is changed one small step at a
time (an operator, a comparison, a constant, a removed statement, ...; see
``mutations``), and the tests that ran the function are run against each such
*mutant*. A mutant is **killed** when those tests fail (or hang past the timeout),
**survived** when they pass. Whatever stops the measurement itself (no test runs the
function, the tests already fail on the unmutated code, pytest cannot start, the
configuration names a function that does not exist) is an **error**: never counted as
killed or survived, always printed, and the command exits with status 1.

How it runs: this process imports torch, pytest and the modules' dependencies once,
then forks one child per pytest run, ``--jobs`` at a time. A child loads the mutated
source in place of the module through an import hook (nothing under ``snippets/`` is
written), runs pytest on the module's test files keeping only the tests that called the
function on the unmutated code (recorded by a baseline run), fastest first, stops at
the first failure, and is killed once it has used TIMEOUT_FACTOR times the CPU time
of the same tests' clean run (at least MIN_TIMEOUT_S).

    python scripts/mutants.py                      # every chapter
    python scripts/mutants.py --part cnn --module convolution --function conv2d
    python scripts/mutants.py --part cnn --list    # the mutants, without running them
    python scripts/mutants.py --show cnn.convolution#12   # run one, print its log
"""

from __future__ import annotations

import argparse
import ast
import atexit
import copy
import dataclasses
import gc
import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import tomllib
import traceback
from pathlib import Path

import pytest

# One thread per child: the machine is shared, and an OpenMP pool created before a
# fork would deadlock the children. Set before torch is imported.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("DLNOTES_PRESET", "tiny")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "tests" / "mutation"
WORK = ROOT / ".mutants"
# A mutant's run may use MIN_TIMEOUT_S of CPU, or TIMEOUT_FACTOR times the CPU of its
# tests' clean run: CPU time does not depend on how busy the shared machine is. A run
# that waits instead (a deadlock) is stopped after WALL_FACTOR x the clean wall time.
MIN_TIMEOUT_S = 10.0
TIMEOUT_FACTOR = 5.0
WALL_FACTOR, MIN_WALL_S = 20.0, 120.0
CLEAN_TIMEOUT_S = 1800.0  # the unmutated runs (wall)
TICK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- config
class ConfigError(Exception):
    pass


@dataclasses.dataclass
class Module:
    part: str
    key: str
    path: Path  # absolute
    functions: list[str]
    tests: list[Path]

    @property
    def name(self) -> str:
        return f"{self.part}.{self.key}"

    @property
    def modname(self) -> str:
        return ".".join(self.path.relative_to(ROOT).with_suffix("").parts)


def load_config(path: Path) -> list[Module]:
    """``[<module>] functions = [...]  tests = [...]  (path = "..." optional)``."""
    part = path.stem
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path.relative_to(ROOT)}: {e}") from None
    modules = []
    for key, entry in data.items():
        where = f"{path.relative_to(ROOT)} [{key}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table")
        unknown = set(entry) - {"path", "functions", "tests"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        src = ROOT / entry.get("path", f"snippets/{part}/{key}.py")
        functions, tests = entry.get("functions", []), entry.get("tests", [])
        if not src.is_file():
            raise ConfigError(f"{where}: no module {src.relative_to(ROOT)}")
        if not functions or not tests:
            raise ConfigError(f"{where}: needs non-empty `functions` and `tests`")
        missing = [t for t in tests if not (ROOT / t).is_file()]
        if missing:
            raise ConfigError(f"{where}: no test file {missing}")
        modules.append(Module(part, key, src, list(functions),
                              [ROOT / t for t in tests]))
    return modules


# ---------------------------------------------------------------------------- mutants
@dataclasses.dataclass
class Mutant:
    id: str  # "<part>.<module>#<n>"
    module: str
    function: str
    op: str
    line: int
    before: str
    after: str
    source: str = dataclasses.field(repr=False)


BINOP = {ast.Add: (ast.Sub, "+", "-"), ast.Sub: (ast.Add, "-", "+"),
         ast.Mult: (ast.Div, "*", "/"), ast.Div: (ast.Mult, "/", "*"),
         ast.FloorDiv: (ast.Div, "//", "/"), ast.Mod: (ast.FloorDiv, "%", "//"),
         ast.Pow: (ast.Mult, "**", "*"), ast.MatMult: (ast.Mult, "@", "*"),
         ast.LShift: (ast.RShift, "<<", ">>"), ast.RShift: (ast.LShift, ">>", "<<"),
         ast.BitAnd: (ast.BitOr, "&", "|"), ast.BitOr: (ast.BitAnd, "|", "&"),
         ast.BitXor: (ast.BitOr, "^", "|")}
CMPOP = {ast.Lt: (ast.LtE, "<", "<="), ast.LtE: (ast.Lt, "<=", "<"),
         ast.Gt: (ast.GtE, ">", ">="), ast.GtE: (ast.Gt, ">=", ">"),
         ast.Eq: (ast.NotEq, "==", "!="), ast.NotEq: (ast.Eq, "!=", "=="),
         ast.Is: (ast.IsNot, "is", "is not"), ast.IsNot: (ast.Is, "is not", "is"),
         ast.In: (ast.NotIn, "in", "not in"), ast.NotIn: (ast.In, "not in", "in")}
UNARY = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not", ast.Invert: "~"}
# Called names swapped for their opposite (torch.max -> torch.min, x.sum() -> x.mean()).
SWAP = {"max": "min", "min": "max", "amax": "amin", "amin": "amax",
        "argmax": "argmin", "argmin": "argmax", "maximum": "minimum",
        "minimum": "maximum", "sum": "mean", "mean": "sum", "zeros": "ones",
        "ones": "zeros", "zeros_like": "ones_like", "ones_like": "zeros_like",
        "mul_": "add_", "add_": "mul_"}
# x.detach() -> x: gradient flow; x.clone() -> x: aliasing
DROPPED_CALLS = {"detach", "clone", "copy"}
# f(a, b) == f(b, a): swapping their first two arguments could never be detected
SYMMETRIC = {"min", "max", "minimum", "maximum", "fmin", "fmax", "hypot", "dist",
             "transpose", "swapaxes", "swapdims", "mse_loss", "l1_loss",
             "smooth_l1_loss", "huber_loss", "equal", "isclose"}
QUIET_CALLS = {"print", "warn", "set_postfix", "set_description"}
SKIPPED = (ast.JoinedStr, ast.Assert, ast.Raise, ast.Global, ast.Nonlocal, ast.Import,
           ast.ImportFrom)
SKIPPED_FIELDS = {"annotation", "returns", "decorator_list", "type_comment",
                  "type_params"}


def _walk(node: ast.AST, path: tuple):
    """Nodes under ``node`` in source order, with their path from the module root."""
    if isinstance(node, SKIPPED) or _is_quiet_call(node):
        return
    yield node, path
    for field, value in ast.iter_fields(node):
        if field in SKIPPED_FIELDS:
            continue
        if isinstance(node, ast.arguments) and field not in ("defaults", "kw_defaults"):
            continue  # default values are mutated, parameter names and annotations not
        if isinstance(value, list):
            for i, child in enumerate(value):
                if isinstance(child, ast.AST):
                    yield from _walk(child, path + ((field, i),))
        elif isinstance(value, ast.AST):
            yield from _walk(value, path + ((field, None),))


def _is_quiet_call(node) -> bool:
    if isinstance(node, ast.Expr):
        node = node.value
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
    return name in QUIET_CALLS


def _names(target) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _const(value):
    return ast.Constant(value=value, kind=None)


def mutations(node: ast.AST, bound: set[str]):
    """(relative path, replacement node, label) for each mutation of ``node`` itself."""
    here = ()
    if isinstance(node, ast.BinOp) and type(node.op) in BINOP:
        new_op, a, b = BINOP[type(node.op)]
        yield here, ast.BinOp(node.left, new_op(), node.right), f"{a} → {b}"
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP:
        new_op, a, b = BINOP[type(node.op)]
        yield here, ast.AugAssign(node.target, new_op(), node.value), f"{a}= → {b}="
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMPOP:
                new_op, a, b = CMPOP[type(op)]
                ops = list(node.ops)
                ops[i] = new_op()
                yield here, ast.Compare(node.left, ops, node.comparators), f"{a} → {b}"
    elif isinstance(node, ast.BoolOp):
        a, b = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        new_op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield here, ast.BoolOp(new_op, node.values), f"{a} → {b}"
    elif isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        yield here, node.operand, f"{UNARY[type(node.op)]} removed"
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            yield here, _const(not v), f"{v} → {not v}"
        elif isinstance(v, int):
            yield here, _const(v + 1), f"{v} → {v + 1}"
        elif isinstance(v, float):
            yield here, _const(v + 1.0), f"{v!r} → {v + 1.0!r}"
    elif isinstance(node, ast.Call):
        f = node.func
        name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
        if name in SWAP:
            g = copy.copy(f)
            if isinstance(g, ast.Name):
                g.id = SWAP[name]
            else:
                g.attr = SWAP[name]
            yield (("func", None),), g, f"{name} → {SWAP[name]}"
        if (isinstance(f, ast.Attribute) and f.attr in DROPPED_CALLS and not node.args
                and not node.keywords):
            yield here, f.value, f".{f.attr}() removed"
        pos = node.args
        if (len(pos) >= 2 and name not in SYMMETRIC
                and not any(isinstance(a, ast.Starred) for a in pos[:2])
                and ast.dump(pos[0]) != ast.dump(pos[1])):
            args = [pos[1], pos[0], *pos[2:]]
            yield here, ast.Call(node.func, args, node.keywords), "arguments swapped"
    if isinstance(node, (ast.If, ast.While, ast.IfExp)):
        test = node.test
        if not (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)):
            yield (("test", None),), ast.UnaryOp(ast.Not(), test), "condition negated"
    if isinstance(node, ast.Return) and node.value is not None and not (
        isinstance(node.value, ast.Constant) and node.value.value is None
    ):
        yield (("value", None),), _const(None), "returns None"
    removable = (
        (isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant))
        or isinstance(node, ast.AugAssign)
        or (isinstance(node, ast.Assign) and all(
            not isinstance(t, (ast.Name, ast.Tuple, ast.List)) or _names(t) <= bound
            for t in node.targets))
    )
    if removable:
        yield here, ast.Pass(), "statement removed"


def _node_at(tree, path):
    node = tree
    for field, i in path:
        node = getattr(node, field) if i is None else getattr(node, field)[i]
    return node


def _replace(tree, path, new):
    parent = _node_at(tree, path[:-1])
    field, i = path[-1]
    if i is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[i] = new


def _targets(tree: ast.Module, functions: list[str]):
    """(qualified name, def node, path) of each listed function; classes: methods."""
    found = []
    top = {n.name: (i, n) for i, n in enumerate(tree.body)
           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for name in functions:
        head, _, method = name.partition(".")
        if head not in top:
            raise ConfigError(f"no function or class `{head}`")
        i, node = top[head]
        path = (("body", i),)
        if isinstance(node, ast.ClassDef):
            methods = [(j, m) for j, m in enumerate(node.body)
                       if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                       and (not method or m.name == method)]
            if not methods:
                raise ConfigError(f"no method `{name}`")
            found += [(f"{head}.{m.name}", m, path + (("body", j),))
                      for j, m in methods]
        elif method:
            raise ConfigError(f"`{head}` is not a class")
        else:
            found.append((head, node, path))
    return found


def generate(module: Module) -> list[Mutant]:
    """Every mutant of the module's listed functions, each checked to parse as meant."""
    text = module.path.read_text("utf-8")
    raw = text.encode("utf-8")
    lines = raw.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    tree = ast.parse(text)
    try:
        targets = _targets(tree, module.functions)
    except ConfigError as e:
        raise ConfigError(f"{module.name}: {e}") from None
    seen, out = {text}, []
    for qualname, fn, fn_path in targets:
        a = fn.args
        bound = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
        bound |= {x.arg for x in (a.vararg, a.kwarg) if x}
        for node, path in _walk(fn, fn_path):
            if node is fn:
                continue
            for rel, new, label in mutations(node, bound):
                target = _node_at(tree, path + rel)
                mutated = _splice(fn, fn_path, raw, starts, path + rel, target, new)
                if mutated is None or mutated in seen:
                    continue
                seen.add(mutated)
                first, last = target.lineno, target.end_lineno
                new_lines = mutated.splitlines()
                delta = len(new_lines) - len(text.splitlines())
                before = " ".join(s.strip() for s in text.splitlines()[first - 1:last])
                after = " ".join(s.strip() for s in new_lines[first - 1:last + delta])
                out.append(Mutant(f"{module.name}#{len(out) + 1}", module.name,
                                  qualname, label, first, before, after, mutated))
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    bound |= _names(t)
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.AnnAssign)):
                bound |= _names(node.target)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                bound |= _names(node.optional_vars)
    return out


def _splice(fn, fn_path, raw: bytes, starts, path, target, new) -> str | None:
    """The module's text with ``target`` (inside function ``fn``) replaced by ``new``,
    or None if that cannot be written so that it parses to exactly the intended tree."""
    expected = copy.deepcopy(fn)
    _replace(expected, path[len(fn_path):], new)
    want = ast.dump(expected)
    # col_offset counts UTF-8 bytes
    a = starts[target.lineno - 1] + target.col_offset
    b = starts[target.end_lineno - 1] + target.end_col_offset
    code = ast.unparse(new)
    for candidate in (code, f"({code})"):
        text = (raw[:a] + candidate.encode("utf-8") + raw[b:]).decode("utf-8")
        try:  # only the function's text changed; the rest of the module is the same
            if ast.dump(_node_at(ast.parse(text), fn_path)) == want:
                return text
        except (SyntaxError, IndexError, AttributeError):
            pass
    return None


# ---------------------------------------------------------------------------- running
class MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Loads ``source`` as module ``modname`` (with the real file name, so line numbers
    and ``__file__`` still point at the module)."""

    def __init__(self, modname: str, path: Path, source: str):
        self.modname, self.path, self.source = modname, path, source

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.modname:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(self.source, str(self.path), "exec", dont_inherit=True),
             module.__dict__)


class Select:
    """pytest plugin: keep only ``ids``, in that order."""

    def __init__(self, ids: list[str]):
        self.ids = ids

    def pytest_collection_modifyitems(self, session, config, items):
        order = {nid: i for i, nid in enumerate(self.ids)}
        keep = sorted((it for it in items if it.nodeid in order),
                      key=lambda it: order[it.nodeid])
        dropped = [it for it in items if it.nodeid not in order]
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
        if session.testsfailed:  # a test file did not import: pytest stops, status 2
            return
        if len(keep) != len(self.ids):
            found = {it.nodeid for it in keep}
            lost = [i for i in self.ids if i not in found]
            raise RuntimeError(f"tests not collected any more: {lost[:5]}")


class Record:
    """pytest plugin: which test calls which listed function; each test's duration."""

    def __init__(self, path: Path, functions: set[str], out: Path):
        self.file, self.functions, self.out = str(path), functions, out
        self.hits: dict[str, set[str]] = {f: set() for f in functions}
        self.durations: dict[str, float] = {}
        self.failed: list[str] = []
        self.current = None
        self._mine: dict = {}

    def _trace(self, frame, event, arg):
        code = frame.f_code
        mine = self._mine.get(code)
        if mine is None:
            mine = self._mine[code] = (
                os.path.realpath(code.co_filename) == self.file
                and code.co_qualname.split(".<locals>")[0]
            )
        if mine in self.hits and self.current is not None:
            self.hits[mine].add(self.current)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.current = item.nodeid
        t = time.perf_counter()
        sys.settrace(self._trace)
        threading.settrace(self._trace)
        try:
            yield
        finally:
            sys.settrace(None)
            threading.settrace(None)
            self.durations[item.nodeid] = time.perf_counter() - t
            self.current = None

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid)

    def pytest_sessionfinish(self, session):
        self.out.write_text(json.dumps({
            "hits": {f: sorted(ids) for f, ids in self.hits.items()},
            "durations": self.durations, "failed": self.failed,
        }))


@dataclasses.dataclass
class Task:
    kind: str  # baseline | clean | mutant
    module: Module
    log: Path
    function: str | None = None
    select: list[str] | None = None
    source: str | None = None
    record: Path | None = None
    timeout: float = CLEAN_TIMEOUT_S  # wall seconds
    cpu_timeout: float | None = None  # CPU seconds
    mutant: Mutant | None = None
    # filled in by run_tasks
    rc: int | None = None
    signal: int | None = None
    timed_out: bool = False
    wall: float = 0.0
    cpu: float = 0.0


def _child(task: Task) -> None:
    """Runs in the forked child; never returns."""
    code = 99
    try:
        fd = os.open(task.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.chdir(ROOT)
        if task.source is not None:
            sys.meta_path.insert(0, MutantFinder(task.module.modname, task.module.path,
                                                 task.source))
        plugins: list = []
        if task.record is not None:
            plugins.append(Record(task.module.path.resolve(), set(task.module.functions)
                                  | set(_all_functions(task.module)), task.record))
        if task.select is not None:
            plugins.append(Select(task.select))
        args = [str(t.relative_to(ROOT)) for t in task.module.tests]
        args += ["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                 "--assert=plain", "-W", "ignore::DeprecationWarning"]
        if task.kind != "baseline":
            args.append("-x")
        code = int(pytest.main(args, plugins=plugins))
    except BaseException:
        traceback.print_exc()
        code = 99
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


_FUNCS_CACHE: dict[str, list[str]] = {}


def _all_functions(module: Module) -> list[str]:
    """The listed names expanded (a class stands for its methods)."""
    if module.name not in _FUNCS_CACHE:
        tree = ast.parse(module.path.read_text("utf-8"))
        _FUNCS_CACHE[module.name] = [q for q, _, _ in _targets(tree, module.functions)]
    return _FUNCS_CACHE[module.name]


def run_tasks(tasks: list[Task], jobs: int, progress=None) -> None:
    queue, running, checked = list(tasks), {}, 0.0
    try:
        while queue or running:
            while queue and len(running) < jobs:
                task = queue.pop(0)
                pid = os.fork()
                if pid == 0:
                    _child(task)
                running[pid] = (task, time.monotonic())
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if pid == 0:
                now = time.monotonic()
                if now - checked > 0.2:  # 5 looks a second at /proc
                    checked = now
                    for p, (task, start) in running.items():
                        if not task.timed_out and (
                            now - start > task.timeout
                            or (task.cpu_timeout and _cpu_of(p) > task.cpu_timeout)
                        ):
                            task.timed_out = True
                            os.kill(p, signal.SIGKILL)
                time.sleep(0.02)
                continue
            task, start = running.pop(pid)
            task.wall = time.monotonic() - start
            task.cpu = usage.ru_utime + usage.ru_stime
            if os.WIFEXITED(status):
                task.rc = os.WEXITSTATUS(status)
            else:
                task.signal = os.WTERMSIG(status)
            if progress:
                progress(task)
    except BaseException:
        for p in running:
            os.kill(p, signal.SIGKILL)
        raise


def _cpu_of(pid: int) -> float:
    """CPU seconds a running child has used so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def preimport(modules: list[Module]) -> None:
    """Import pytest, torch and whatever the modules and their tests import, once, so
    that each forked child starts warm; then forget the project's own modules so every
    child imports them afresh (the mutated one through the hook)."""
    sys.path.insert(0, str(ROOT))
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    for m in modules:
        for i, path in enumerate([m.path, *m.tests]):
            try:
                if i == 0:
                    importlib.import_module(m.modname)
                else:
                    spec = importlib.util.spec_from_file_location(f"_mutants_pre_{i}",
                                                                  path)
                    spec.loader.exec_module(importlib.util.module_from_spec(spec))
            except BaseException:  # the baseline run reports what is broken
                pass
    root = str(ROOT) + os.sep
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None) or ""
        in_repo = os.path.realpath(f).startswith(root) and "/.venv/" not in f
        if (in_repo or name.startswith("_mutants_pre_")) and name != __name__:
            del sys.modules[name]
    for name in [n for n in sys.modules if n.split(".")[0] in ("snippets", "tests")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    for ep in importlib.metadata.entry_points(group="pytest11"):  # pytest's plugins
        try:
            ep.load()
        except Exception:
            pass
    # Children then skip the inherited objects when pytest collects garbage: faster,
    # and no copy-on-write of the whole heap.
    gc.collect()
    gc.freeze()


# ---------------------------------------------------------------------------- driving
@dataclasses.dataclass
class Result:
    mutant: Mutant
    status: str  # killed | survived | error
    detail: str = ""  # how it was killed (failed, import error, timeout, crash)


def classify(task: Task) -> Result:
    m = task.mutant
    if task.timed_out:
        return Result(m, "killed",
                      f"timeout ({task.cpu:.0f} cpu_s, {task.wall:.0f} s wall)")
    if task.signal is not None:
        return Result(m, "killed", f"crashed (signal {task.signal})")
    if task.rc == 0:
        return Result(m, "survived")
    if task.rc == 1:
        return Result(m, "killed", "tests failed")
    if task.rc == 2:  # collection errors: the mutated module does not even import
        return Result(m, "killed", "tests could not import the mutant")
    return Result(m, "error", f"pytest exit status {task.rc}, log {task.log}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", action="append", default=[],
                    help="chapter(s), comma-separated or repeated (default: all)")
    ap.add_argument("--module", action="append", default=[],
                    help="module key(s) within the chapter(s), e.g. convolution")
    ap.add_argument("--function", action="append", default=[],
                    help="only mutants of these function(s), e.g. conv2d or Adam.step")
    ap.add_argument("--config", action="append", default=[], type=Path,
                    help="TOML file(s) to read instead of tests/mutation/<part>.toml")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--min-timeout", type=float, default=MIN_TIMEOUT_S,
                    help="CPU seconds a mutant may always use (default %(default)s); "
                         f"more if its clean run used over 1/{TIMEOUT_FACTOR:g} "
                         "of that")
    ap.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    ap.add_argument("--show", help="run one mutant (id from the report), print its log")
    ap.add_argument("--json", type=Path, help="also write every result to this file")
    ap.add_argument("--fail-under", type=float, default=None,
                    help="exit 1 if the overall score is below this percentage")
    args = ap.parse_args(argv)

    parts = [p for s in args.part for p in s.split(",") if p]
    wanted_modules = {m for s in args.module for m in s.split(",") if m}
    wanted_functions = {f for s in args.function for f in s.split(",") if f}
    if args.show:
        parts = parts or [args.show.split(".")[0]]
        wanted_modules = {args.show.split("#")[0].split(".", 1)[1]}
    configs = args.config or [CONFIG_DIR / f"{p}.toml" for p in parts] or sorted(
        CONFIG_DIR.glob("*.toml"))
    try:
        modules = []
        for c in configs:
            if not c.is_file():
                raise ConfigError(f"no configuration {c}")
            modules += load_config(c.resolve())
        if wanted_modules:
            modules = [m for m in modules
                       if m.key in wanted_modules or m.name in wanted_modules]
            if not modules:
                raise ConfigError(f"no module {sorted(wanted_modules)} in {configs}")
    except ConfigError as e:
        print(f"mutants: configuration error: {e}", file=sys.stderr)
        return 2
    errors: list[str] = []
    mutants = {}
    for m in modules:
        try:
            mutants[m.name] = generate(m)
        except (ConfigError, SyntaxError) as e:  # e.g. a listed function was renamed
            errors.append(f"configuration: {e}")
            mutants[m.name] = []
    if wanted_functions:
        mutants = {k: [x for x in v if x.function in wanted_functions
                       or x.function.split(".")[0] in wanted_functions]
                   for k, v in mutants.items()}
    if args.show:
        mutants = {k: [x for x in v if x.id == args.show] for k, v in mutants.items()}
        if not any(mutants.values()):
            print(f"mutants: no mutant {args.show}", file=sys.stderr)
            return 2
    if args.list:
        for e in errors:
            print(f"error: {e}")
        for ms in mutants.values():
            for x in ms:
                print(f"{x.id:28} {x.function:22} line {x.line:<4} [{x.op}]\n"
                      f"    - {x.before}\n    + {x.after}")
        return 1 if errors else 0

    WORK.mkdir(exist_ok=True)
    (WORK / ".gitignore").write_text("*\n")
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    atexit.register(shutil.rmtree, tmp, True)  # forked children leave by os._exit
    t0, cpu0 = time.monotonic(), _cpu_self()
    n_total = sum(len(v) for v in mutants.values())
    names = ", ".join(sorted({m.part for m in modules}))
    print(f"mutants: {names}: {len(modules)} modules, {n_total} mutants, "
          f"{args.jobs} jobs", flush=True)
    preimport(modules)

    results: dict[str, list[Result]] = {m.name: [] for m in modules}
    cpu: dict[str, float] = {m.part: 0.0 for m in modules}
    by_name = {m.name: m for m in modules}

    # 1. baseline: the module's tests on the unmutated code, recording who calls what
    base = [Task("baseline", m, tmp / f"{m.name}.baseline.log",
                 record=tmp / f"{m.name}.baseline.json")
            for m in modules if mutants[m.name]]
    run_tasks(base, args.jobs)
    selections: dict[tuple[str, str], list[str]] = {}
    for t in base:
        cpu[t.module.part] += t.cpu
        data = json.loads(t.record.read_text()) if t.record.is_file() else None
        if t.rc != 0 or data is None:
            how = (f"timed out after {t.timeout:.0f} s" if t.timed_out
                   else f"killed by signal {t.signal}" if t.signal
                   else f"pytest status {t.rc}")
            errors.append(f"{t.module.name}: its tests fail on the unmutated module "
                          f"({how}); log {_keep(t.log)}")
            continue
        for f in sorted({x.function for x in mutants[t.module.name]}):
            ids = sorted(data["hits"].get(f, []), key=lambda i: data["durations"][i])
            if ids:
                selections[(t.module.name, f)] = ids
            else:
                n = sum(x.function == f for x in mutants[t.module.name])
                files = ", ".join(str(p.relative_to(ROOT)) for p in t.module.tests)
                errors.append(f"{t.module.name}: no test in {files} calls {f} "
                              f"({n} mutants not measured)")

    # 2. clean: each function's tests on their own, unmutated; sets the timeout
    clean = [Task("clean", by_name[mod], tmp / f"{mod}.{f}.clean.log", function=f,
                  select=ids) for (mod, f), ids in selections.items()]
    run_tasks(clean, args.jobs)
    timeouts: dict[tuple[str, str], tuple[float, float]] = {}
    for t in clean:
        cpu[t.module.part] += t.cpu
        if t.rc != 0:
            errors.append(f"{t.module.name}: the tests that call {t.function} fail "
                          f"when run on their own, unmutated (status {t.rc}); "
                          f"log {_keep(t.log)}")
        else:
            timeouts[(t.module.name, t.function)] = (
                max(MIN_WALL_S, WALL_FACTOR * t.wall),
                max(args.min_timeout, TIMEOUT_FACTOR * t.cpu))

    # 3. the mutants
    tasks = []
    for mod, ms in mutants.items():
        for x in ms:
            key = (mod, x.function)
            if key not in timeouts:
                results[mod].append(Result(x, "error", "not measured (see errors)"))
                continue
            tasks.append(Task("mutant", by_name[mod], tmp / f"{x.id}.log",
                              function=x.function, select=selections[key],
                              source=x.source, timeout=timeouts[key][0],
                              cpu_timeout=timeouts[key][1], mutant=x))
    done = [0]
    step = max(1, len(tasks) // 20)

    def progress(task):
        done[0] += 1
        if done[0] % step == 0 or done[0] == len(tasks):
            print(f"  {done[0]}/{len(tasks)} mutants run "
                  f"({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)

    run_tasks(tasks, args.jobs, progress)
    for t in tasks:
        cpu[t.module.part] += t.cpu
        r = classify(t)
        if r.status == "error":
            r.detail = f"pytest exit status {t.rc}{_why(t.log)}; log {_keep(t.log)}"
        results[t.module.name].append(r)
    for ms in results.values():
        ms.sort(key=lambda r: int(r.mutant.id.rsplit("#", 1)[1]))

    if args.show:
        r = next(r for ms in results.values() for r in ms)
        x = r.mutant
        print(f"{x.id} {x.function} line {x.line} [{x.op}]\n  - {x.before}\n"
              f"  + {x.after}\n=> {r.status} {r.detail}")
        log = tmp / f"{x.id}.log"
        if log.is_file():
            print(log.read_text(errors="replace")[-6000:])
        for e in errors:
            print(f"error: {e}")
        return 1 if errors else 0

    score = report(modules, results, cpu, errors, time.monotonic() - t0,
                   _cpu_self() - cpu0)
    label = "-".join(sorted({m.part for m in modules}))
    if wanted_modules or wanted_functions:
        label += "-" + "-".join(sorted(wanted_modules | wanted_functions))
    for path in (WORK / f"{label}.json", args.json):  # the first: this run, kept
        if path is not None:
            path.write_text(json.dumps({
                "score": score, "errors": errors, "cpu_s": cpu,
                "mutants": [dict(dataclasses.asdict(r.mutant), status=r.status,
                                 detail=r.detail, source=None)
                            for ms in results.values() for r in ms],
            }, indent=1, ensure_ascii=False))
    if errors:
        return 1
    if args.fail_under is not None and score is not None and score < args.fail_under:
        return 1
    return 0


def _cpu_self() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _why(log: Path) -> str:
    """The last line of a log that names an error, if any."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    hits = [ln for ln in lines if re.search(r"\w(Error|Exception)\b", ln)]
    return f" ({hits[-1].replace('INTERNALERROR> ', '').strip()[:160]})" if hits else ""


def _keep(log: Path) -> str:
    """Move a log worth reading out of the run's temporary folder."""
    dest = WORK / "logs" / log.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if log.is_file():
        log.replace(dest)
    return str(dest.relative_to(ROOT))


def _score(rs: list[Result]) -> tuple[int, int, str]:
    killed = sum(r.status == "killed" for r in rs)
    survived = sum(r.status == "survived" for r in rs)
    errored = sum(r.status == "error" for r in rs)
    timeouts = sum(r.detail.startswith("timeout") for r in rs)
    extra = f"{killed} killed of {len(rs)}; {survived} survived"
    if timeouts:
        extra += f", {timeouts} of the kills by timeout"
    if errored:
        extra += f", {errored} not measured (errors)"
    return killed, len(rs), extra


def _pct(killed: int, total: int) -> str:
    # rounded down, so "85%" is never an overstatement; errors count as not killed
    return f"{100 * killed // total}%" if total else "n/a"


def report(modules, results, cpu, errors, wall, parent_cpu) -> float | None:
    width = max(len(m.name) for m in modules) + 1
    print()
    for part in dict.fromkeys(m.part for m in modules):
        mods = [m for m in modules if m.part == part]
        for m in mods:
            k, n, extra = _score(results[m.name])
            print(f"{m.name + ':':{width}} mutation score: {_pct(k, n):>4} ({extra})")
        rs = [r for m in mods for r in results[m.name]]
        k, n, extra = _score(rs)
        print(f"{part + ':':{width}} mutation score: {_pct(k, n):>4} ({extra}; "
              f"cpu_s {cpu[part]:.0f})\n")
    rs = [r for ms in results.values() for r in ms]
    k, n, extra = _score(rs)
    print(f"overall mutation score: {_pct(k, n)} ({extra})")
    print(f"time: wall {wall:.0f} s, cpu_s {sum(cpu.values()) + parent_cpu:.0f} "
          f"(children {sum(cpu.values()):.0f}, this process {parent_cpu:.0f})")
    survivors = [r for r in rs if r.status == "survived"]
    if survivors:
        print(f"\nSurviving mutants ({len(survivors)}): "
              "the tests pass with this change")
        for r in survivors:
            x = r.mutant
            print(f"  {x.id}  {x.function}  line {x.line}  [{x.op}]\n"
                  f"      - {x.before}\n      + {x.after}")
    errors += [f"{r.mutant.id} ({r.mutant.function}): {r.detail}"
               for r in rs if r.status == "error" and r.detail.startswith("pytest")]
    if errors:
        print(f"\nErrors ({len(errors)}): what they concern was not measured")
        for e in errors:
            print(f"  {e}")
    return 100 * k / n if n else None


if __name__ == "__main__":
    sys.exit(main())
