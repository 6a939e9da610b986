"""One strict build of the whole site per test session, served on localhost for the browser."""

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build(site_dir: Path, cwd: Path = ROOT, **env) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` into ``site_dir``; the tiny presets unless told otherwise."""
    environment = {
        **os.environ, "NO_MKDOCS_2_WARNING": "1", "DLNOTES_PRESET": "tiny", **env
    }
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site_dir)],
        cwd=cwd,
        env=environment,
        text=True,
        capture_output=True,
        timeout=1800,
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    result = build(site_dir)
    assert result.returncode == 0, f"strict build failed:\n{result.stderr[-4000:]}"
    return site_dir


@pytest.fixture(scope="session")
def server(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
