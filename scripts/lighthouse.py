"""Lighthouse (mobile defaults) on one page of each kind, in both languages.

    python scripts/lighthouse.py [SITE_DIR] [--runs 3]   # `make bench` calls main()

Serves the built site on localhost the way a static host does (gzip for text), runs
Lighthouse 12 from npm in Debian's Chromium and prints, per page, the median of the runs:
performance, accessibility, LCP, TBT and the bytes transferred while the page loads
(search is not used: its index is fetched only when the search box gets focus).
Lighthouse is installed into .cache/node on first use (npm registry, ~30 s).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / ".cache" / "node"
LIGHTHOUSE = NODE / "node_modules" / ".bin" / "lighthouse"
VERSION = "12.2.3"  # the last release that runs on Node 20
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# One page of each kind the issue names: math-heavy, figure-heavy, notebook, home.
PAGES = {
    "home": "",
    "math": "foundations/backprop/",
    "figures": "cnn/convolution/",
    "notebook": "notebooks/cnn-convolution/",
}
COMPRESSED = {".html", ".css", ".js", ".json", ".svg", ".xml", ".ipynb", ".txt"}


class GzipHandler(http.server.SimpleHTTPRequestHandler):
    """A static host: text gzipped when the browser accepts it, like any CDN."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            if not self.path.split("?")[0].endswith("/"):
                return super().send_head()  # the base class redirects to the slash URL
            path = path / "index.html"
        accepts = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts and path.suffix in COMPRESSED and path.is_file()):
            return super().send_head()
        body = gzip.compress(path.read_bytes(), mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return _Bytes(body)

    def log_message(self, *args):
        pass


class _Bytes:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, *_):
        data, self.data = self.data, b""
        return data

    def close(self):
        pass


def serve(site: Path):
    handler = functools.partial(GzipHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def install() -> None:
    if not LIGHTHOUSE.exists():
        NODE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "i", "-E", "--silent", f"lighthouse@{VERSION}"],
            cwd=NODE,
            check=True,
        )


def run_once(url: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                str(LIGHTHOUSE),
                url,
                "--quiet",
                "--output=json",
                f"--output-path={report}",
                "--only-categories=performance,accessibility",
                "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
            ],
            env={"CHROME_PATH": CHROMIUM, "PATH": "/usr/bin:/bin"},
            check=True,
            timeout=300,
        )
        data = json.loads(report.read_text())
    audits = data["audits"]
    return {
        "performance": round(100 * data["categories"]["performance"]["score"]),
        "accessibility": round(100 * data["categories"]["accessibility"]["score"]),
        "lcp_s": audits["largest-contentful-paint"]["numericValue"] / 1000,
        "tbt_ms": audits["total-blocking-time"]["numericValue"],
        "kb": audits["total-byte-weight"]["numericValue"] / 1024,
    }


def audit(site: Path, runs: int = 3) -> dict:
    """Median of ``runs`` Lighthouse runs for each page kind, zh and en."""
    install()
    server = serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    results = {}
    try:
        for kind, path in PAGES.items():
            for lang, prefix in (("zh", ""), ("en", "en/")):
                samples = [run_once(f"{base}/{prefix}{path}") for _ in range(runs)]
                results[f"{lang} {kind}"] = {
                    key: statistics.median(s[key] for s in samples)
                    for key in samples[0]
                } | {"path": prefix + path}
    finally:
        server.shutdown()
    return results


def report(results: dict) -> None:
    print(
        f"\n  {'page':14s} {'perf':>5s} {'a11y':>5s} {'LCP s':>6s} {'TBT ms':>7s} "
        f"{'KB':>6s}  (Lighthouse {VERSION}, mobile, median)"
    )
    for name, r in results.items():
        print(
            f"  {name:14s} {r['performance']:5.0f} {r['accessibility']:5.0f} "
            f"{r['lcp_s']:6.2f} {r['tbt_ms']:7.0f} {r['kb']:6.0f}  /{r['path']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("site", nargs="?", type=Path, default=ROOT / "site")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = audit(args.site, args.runs)
    report(results)
    out = ROOT / "build" / "lighthouse.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
