"""Find the demos, key them by content, and run the ones whose key is not cached.

A demo is a module ``snippets/<part>/<topic>.py`` with a ``Config`` dataclass (with a
``tiny()`` preset), ``main(cfg, out) -> dict`` and ``CLAIMS``: a dict from a claim's name
to a predicate over the run's metrics. Its name is ``<part>/<topic>``. Every run writes,
beside its figures, ``metrics.json``, ``claims.json`` (each claim's verdict, its rule and
the numbers it read) and ``run.json`` (the reproducibility stamp).
Used by ``python -m snippets``, by the build hook ``hooks/demos.py``, by
``scripts/bench.py`` and by the tests.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(__file__).resolve().parent
FIGURE_SUFFIXES = {".png", ".svg"}
# Versions that change what a demo computes or draws: part of every cache key.
PINNED = ["torch", "numpy", "matplotlib", "scikit-learn", "mnist1d", "gymnasium"]


class DemoError(RuntimeError):
    """A demo raised, timed out, or wrote no figure."""


@dataclass(frozen=True)
class Demo:
    name: str  # "<part>/<topic>"
    path: Path

    @property
    def module(self) -> str:
        return "snippets." + self.name.replace("/", ".")

    @property
    def slug(self) -> str:
        return self.name.replace("/", "-")


def discover() -> dict[str, Demo]:
    """Every demo module, by name. A module counts if it defines Config and main.

    ``DLNOTES_ONLY=cnn,rnn`` keeps only those parts (to preview one chapter quickly).
    """
    only = only_parts()
    demos = {}
    for path in sorted(PACKAGE.glob("*/*.py")):
        if path.name.startswith("_") or (only and path.parent.name not in only):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))
        }
        if {"Config", "main"} <= names:
            name = f"{path.parent.name}/{path.stem}"
            demos[name] = Demo(name, path)
    return demos


def only_parts() -> list[str]:
    """The parts ``DLNOTES_ONLY`` keeps (empty: all of them)."""
    return [p for p in os.environ.get("DLNOTES_ONLY", "").split(",") if p]


def resolve(name: str) -> Demo:
    """A demo by name (``cnn/convolution``), by topic alone if unique, or by path."""
    path = Path(name)
    if path.suffix == ".py" and path.is_file():
        return Demo(f"{path.parent.name}/{path.stem}", path.resolve())
    demos = discover()
    if name in demos:
        return demos[name]
    matches = [d for d in demos.values() if d.name.split("/")[1] == name]
    if len(matches) == 1:
        return matches[0]
    raise KeyError(f"no demo named {name!r}; known: {', '.join(demos)}")


def _local_imports(path: Path) -> set[Path]:
    """Files of the ``snippets`` package that ``path`` imports, directly or not."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for node in ast.walk(ast.parse(current.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            for mod in mods:
                if not mod.startswith("snippets"):
                    continue
                rel = Path(*mod.split(".")[1:])
                for candidate in (
                    (PACKAGE / rel).with_suffix(".py"),
                    PACKAGE / rel / "__init__.py",
                ):
                    if candidate.is_file():
                        todo.append(candidate)
    return seen


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for dist in PINNED:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "absent"
    return found


def cache_key(demo: Demo, preset: str) -> str:
    """Hash of the module, the snippets modules it imports, this runner (it decides what
    a run stores), pinned versions and the preset."""
    h = hashlib.sha256()
    for path in sorted(_local_imports(demo.path) | {Path(__file__).resolve()}):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(json.dumps(versions(), sort_keys=True).encode())
    h.update(preset.encode())
    return h.hexdigest()[:16]


def preset() -> str:
    """The preset builds use: ``DLNOTES_PRESET=tiny`` for tests, else ``real``."""
    name = os.environ.get("DLNOTES_PRESET", "real")
    if name not in ("real", "tiny"):
        raise DemoError(f"DLNOTES_PRESET must be real or tiny, not {name!r}")
    return name


def cache_root() -> Path:
    return Path(os.environ.get("DLNOTES_CACHE", ROOT / ".cache" / "demos"))


def entry_dir(demo: Demo, preset: str, key: str) -> Path:
    return cache_root() / demo.slug / f"{preset}-{key}"


def latest_entry(demo: Demo, preset: str) -> Path | None:
    """The newest cached run of ``demo`` at ``preset``, whatever its key."""
    entries = sorted(
        (cache_root() / demo.slug).glob(f"{preset}-*/metrics.json"),
        key=lambda p: p.stat().st_mtime,
    )
    return entries[-1].parent if entries else None


class _Reads(Mapping):
    """The metrics, remembering which of them a claim read."""

    def __init__(self, metrics: dict):
        self._metrics, self.read = metrics, {}

    def __getitem__(self, key):
        value = self._metrics[key]
        self.read[key] = value
        return value

    def __iter__(self):
        return iter(self._metrics)

    def __len__(self):
        return len(self._metrics)


def claim_rules(path: Path) -> dict[str, str]:
    """Each claim's rule as written in the module (``m["a"] > m["b"]``), by name."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        if any(getattr(t, "id", None) == "CLAIMS" for t in targets) and isinstance(
            node.value, ast.Dict
        ):
            return {
                k.value: ast.unparse(v.body if isinstance(v, ast.Lambda) else v)
                for k, v in zip(node.value.keys, node.value.values)
                if isinstance(k, ast.Constant)
            }
    return {}


def evaluate_claims(demo: Demo, claims: dict, metrics: dict) -> dict[str, dict]:
    """Every claim's verdict: ``{"holds", "rule", "compared"}``. A claim that raises or
    returns anything but a bool is an error naming the demo and the claim."""
    if not isinstance(claims, dict):
        raise DemoError(f"{demo.name}: CLAIMS must be a dict of name -> predicate")
    rules = claim_rules(demo.path)
    plain = json.loads(json.dumps(metrics))  # Python floats: comparisons give bools
    verdicts = {}
    for name, predicate in claims.items():
        reads = _Reads(plain)
        try:
            holds = predicate(reads)
        except Exception as err:
            raise DemoError(
                f"{demo.name}: claim {name!r} raised {type(err).__name__}: {err}"
            ) from None
        if not isinstance(holds, bool):
            raise DemoError(
                f"{demo.name}: claim {name!r} returned {type(holds).__name__}, "
                "not bool"
            )
        verdicts[name] = {
            "holds": holds,
            "rule": rules.get(name, name),
            "compared": reads.read,
        }
    return verdicts


def stamp(demo: Demo, tiny: bool, cpu_s: float, wall_s: float) -> dict:
    """What a reader needs to reproduce the run: versions, date, preset, cost, command."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else int(
        os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)
    )
    return {
        "versions": versions(),
        "date": datetime.now(timezone.utc).date().isoformat(),
        "preset": "tiny" if tiny else "real",
        "cpu_s": round(cpu_s, 2),
        "wall_s": round(wall_s, 2),
        "threads": threads,
        "command": f"python -m snippets run {demo.name}" + (" --tiny" if tiny else ""),
    }


def run_in_process(name: str, tiny: bool, out: Path) -> dict:
    """Import the demo (name or path), run ``main`` at the preset, check and save."""
    demo = resolve(name)
    spec = importlib.util.spec_from_file_location(demo.module, demo.path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[demo.module] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    cfg = module.Config.tiny() if tiny else module.Config()
    out.mkdir(parents=True, exist_ok=True)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    metrics = dict(module.main(cfg, out))
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    bad = {
        k: v
        for k, v in metrics.items()
        if not isinstance(v, (int, float)) or not math.isfinite(v)
    }
    if bad:
        raise DemoError(f"{demo.name}: metrics must be finite numbers, got {bad}")
    if not any(p.suffix in FIGURE_SUFFIXES for p in out.iterdir()):
        raise DemoError(f"{demo.name}: main() wrote no figure (.png/.svg) into {out}")
    metrics.update(wall_s=round(wall, 2), cpu_s=round(cpu, 2))
    verdicts = evaluate_claims(demo, getattr(module, "CLAIMS", {}), metrics)
    for filename, data in (
        ("metrics.json", metrics),
        ("claims.json", verdicts),
        ("run.json", stamp(demo, tiny, cpu, wall)),
    ):
        (out / filename).write_text(
            json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False)
        )
    return metrics


def _run_subprocess(
    demo: Demo, preset: str, key: str, threads: int, timeout: float
) -> Path:
    target = entry_dir(demo, preset, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{preset}-", dir=target.parent))
    cmd = [sys.executable, "-m", "snippets", "run", str(demo.path), "--out", str(tmp)]
    if preset == "tiny":
        cmd.append("--tiny")
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        DLNOTES_QUIET="1",
        PYTHONPATH=str(ROOT),
    )
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DemoError(f"demo {demo.name} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise DemoError(f"demo {demo.name} failed (exit {proc.returncode}):\n{tail}")
    # one entry per preset: the current one
    for old in target.parent.glob(f"{preset}-*"):
        if old.is_dir() and old != target:
            shutil.rmtree(old, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:  # a concurrent build stored the same key first: keep that one
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_all(preset: str, timeout: float = 600, log=print) -> dict[str, Path]:
    """Run every demo whose key is not cached, in parallel; return every entry."""
    demos = discover()
    keys = {name: cache_key(demo, preset) for name, demo in demos.items()}
    entries = {name: entry_dir(demos[name], preset, key) for name, key in keys.items()}
    pending = [
        name for name, path in entries.items() if not (path / "metrics.json").is_file()
    ]
    if pending:
        jobs = max(1, min(len(pending), os.cpu_count() or 1))
        threads = max(1, (os.cpu_count() or 1) // jobs)
        log(
            f"demos: running {len(pending)} of {len(demos)} ({preset} preset, "
            f"{jobs} at a time): {', '.join(pending)}"
        )
        with ThreadPoolExecutor(jobs) as pool:
            futures = {
                name: pool.submit(
                    _run_subprocess, demos[name], preset, keys[name], threads, timeout
                )
                for name in pending
            }
            errors = []
            for name, future in futures.items():
                try:
                    future.result()
                    metrics = json.loads((entries[name] / "metrics.json").read_text())
                    log(f"demo {name}: {metrics['wall_s']} s")
                except DemoError as err:
                    errors.append(str(err))
        if errors:
            raise DemoError("\n\n".join(errors))
    else:
        log(f"demos: all {len(demos)} cached ({preset} preset)")
    return entries


def cached_entries(preset: str) -> dict[str, Path]:
    """Each demo's newest cached entry, without hashing or running anything."""
    found = {}
    for name, demo in discover().items():
        entry = latest_entry(demo, preset)
        if entry is None:
            raise DemoError(
                f"demo {name} has never run at the {preset} preset; "
                "build once with demo execution on"
            )
        found[name] = entry
    return found
