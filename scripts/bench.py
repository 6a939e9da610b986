"""Measure the build: cold, warm, demos off, one note touched (build and live reload).

    python scripts/bench.py            # what `make bench` runs; real presets
    python scripts/bench.py --preset tiny

Starts from an empty ``.cache`` (the cold build fills it again), prints a table, runs
Lighthouse on one page of each kind in both languages (scripts/lighthouse.py) and
writes ``build/bench.json``. ``--search SITE`` measures only search on a built site
(issue 14): hit@1/hit@3 over tests/site/search_queries.yml, the median time from typing
to first results on a warm page (goal ≤ 150 ms), and the bytes a page loads for search
before and after the search box is used. Goals (issue #2): cold ≤ 600 s on 2 cores,
warm ≤ 1.2 × a build with demo execution off, one touched note ≤ 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from snippets.registry import cached_entries  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import lighthouse  # noqa: E402

NOTE = ROOT / "docs" / "zh" / "cnn" / "convolution.md"


def timed_build(env: dict, site: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return time.perf_counter() - start


@contextlib.contextmanager
def touched(path: Path):
    """The note gets one more blank line, and is restored afterwards."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "\n", encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(text, encoding="utf-8")


def live_reload_seconds(env: dict, flags: list[str], port: int = 8765) -> float:
    """Seconds from saving a note to ``mkdocs serve`` reloading the browser."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "serve",
            "-a",
            f"127.0.0.1:{port}",
            "--livereload",
            *flags,
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:
            if "Serving on" in line:
                break
        time.sleep(1.0)
        with touched(NOTE):
            start = time.perf_counter()
            for line in proc.stderr:
                if re.search(
                    r"Reloading browsers|Build complete|Documentation built", line
                ):
                    return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    raise RuntimeError("mkdocs serve never rebuilt")


def search_bench(site: Path) -> dict:
    """Search quality and cost on a built site, in headless Chromium (issue 14)."""
    import functools
    import gzip
    import http.server
    import statistics
    import threading

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "tests" / "site"))
    import test_search  # noqa: E402

    handler = functools.partial(test_search.QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    out = {"bytes": {}}
    try:
        with sync_playwright() as p:
            browser = test_search.launch(p)
            for lang, prefix in (("zh", "/"), ("en", "/en/")):
                context = browser.new_context()
                page = context.new_page()
                sizes = []
                page.on(
                    "requestfinished",
                    lambda r, sizes=sizes: sizes.append(
                        (r.url, r.sizes()["responseBodySize"])
                    ),
                )
                page.goto(f"{base}{prefix}cnn/convolution/")
                page.wait_for_load_state("networkidle")
                before = len(sizes)
                page.click("input.md-search__input")
                page.wait_for_timeout(500)
                page.wait_for_load_state("networkidle")
                index = site / prefix.strip("/") / "search" / "search_index.json"
                out["bytes"][lang] = {
                    "page_load": sum(size for _, size in sizes[:before]),
                    "index_before_focus": sum(
                        size for url, size in sizes[:before] if "search_index" in url
                    ),
                    "after_focus": sum(size for _, size in sizes[before:]),
                    "index_gzip": len(gzip.compress(index.read_bytes())),
                }
                context.close()
            results = test_search.run_queries(
                browser, base, test_search.load_queries()
            )
            browser.close()
    finally:
        httpd.shutdown()
    out["summary"] = test_search.summary(results)
    out["median_ms"] = statistics.median(
        r["ms"] for r in results if r["ms"] is not None
    )
    return out


def print_search(found: dict) -> None:
    print("\n  search (issue 14)")
    for key, s in sorted(found["summary"].items()):
        print(
            f"  {key:16s} n={s['n']:4d}  hit@1={s['hit@1']:6.1%}  "
            f"hit@3={s['hit@3']:6.1%}  median {s['median_ms']:.0f} ms"
        )
    print(f"  typing to first results, median {found['median_ms']:.0f} ms (≤ 150)")
    for lang, b in found["bytes"].items():
        print(
            f"  {lang}: page load {b['page_load']} B "
            f"(index {b['index_before_focus']} B); on focus {b['after_focus']} B "
            f"(index gzipped {b['index_gzip']} B)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=["real", "tiny"], default="real")
    parser.add_argument("--search", type=Path, help="only measure search on SITE")
    args = parser.parse_args()
    if args.search:
        print_search(search_bench(args.search))
        return 0
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", DLNOTES_PRESET=args.preset)
    site = ROOT / "build" / "bench-site"
    for cached in ROOT.joinpath(".cache").glob("*"):  # cold: no demo or page caches
        if cached.name != "node":  # (Lighthouse's own install stays)
            shutil.rmtree(cached) if cached.is_dir() else cached.unlink()

    results = {"preset": args.preset, "cores": os.cpu_count()}
    results["cold_s"] = timed_build(env, site)
    results["warm_s"] = timed_build(env, site)
    results["demos_off_s"] = timed_build(dict(env, DLNOTES_DEMOS="off"), site)
    with touched(NOTE):
        results["touched_note_build_s"] = timed_build(env, site)
    results["touched_note_live_reload_s"] = live_reload_seconds(env, [])  # make serve
    results["touched_note_dirty_reload_s"] = live_reload_seconds(  # make edit
        env, ["--dirty", "--no-strict"]
    )
    results["demos"] = {
        name: json.loads((entry / "metrics.json").read_text())
        for name, entry in cached_entries(args.preset).items()
    }

    print(f"\nbench ({args.preset} presets, {results['cores']} cores)")
    for key, goal in [
        ("cold_s", "≤ 600"),
        ("warm_s", f"≤ {1.2 * results['demos_off_s']:.1f}"),
        ("demos_off_s", ""),
        ("touched_note_build_s", ""),
        ("touched_note_live_reload_s", "≤ 5"),
        ("touched_note_dirty_reload_s", "≤ 5 (make edit)"),
    ]:
        print(f"  {key:28s} {results[key]:8.1f} s   {goal}")
    print(f"\n  {'demo':28s} {'wall s':>8s} {'cpu s':>8s}  metrics")
    for name, metrics in results["demos"].items():
        rest = ", ".join(
            f"{k}={v:.4g}" for k, v in metrics.items() if k not in ("wall_s", "cpu_s")
        )
        print(f"  {name:28s} {metrics['wall_s']:8.1f} {metrics['cpu_s']:8.1f}  {rest}")
    results["search"] = search_bench(site)
    print_search(results["search"])
    results["lighthouse"] = lighthouse.audit(site)
    lighthouse.report(results["lighthouse"])
    out = ROOT / "build" / "bench.json"
    out.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
