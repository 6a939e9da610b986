"""Smoke layer: every demo runs at its tiny preset, returns finite metrics, draws a figure."""

import json
import math
import subprocess
import sys

import pytest

from snippets.registry import ROOT, discover, run_in_process

DEMOS = sorted(discover())


@pytest.mark.parametrize("name", DEMOS)
def test_tiny_run_writes_the_same_figures_twice_and_finite_metrics(name, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    metrics = run_in_process(name, tiny=True, out=first)
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    figures = sorted(p.name for p in first.iterdir() if p.suffix in {".png", ".svg"})
    assert figures and all((first / f).stat().st_size > 1000 for f in figures)
    run_in_process(
        name, tiny=True, out=second
    )  # a rebuild must not change a single byte
    for figure in figures:
        assert (first / figure).read_bytes() == (second / figure).read_bytes(), figure


@pytest.mark.parametrize("name", DEMOS)
def test_demo_links_its_page_in_both_languages(name):
    source = discover()[name].path.read_text(encoding="utf-8")
    page = next(
        line.split(":", 1)[1].strip()
        for line in source.splitlines()
        if line.startswith("Page:")
    )
    for lang in ("zh", "en"):
        text = (ROOT / "docs" / lang / page).read_text(encoding="utf-8")
        assert f"snippets/{name}.py" in text, f"docs/{lang}/{page} must name its module"


def test_cli_lists_and_runs_a_demo(tmp_path):
    listing = subprocess.run(
        [sys.executable, "-m", "snippets"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    assert all(name in listing for name in DEMOS)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snippets",
            "run",
            "convolution",
            "--tiny",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    )
    metrics = json.loads(run.stdout.strip().splitlines()[-1])
    assert metrics["wall_s"] > 0 and (tmp_path / "metrics.json").is_file()


def _fake_demo(tmp_path, monkeypatch, body):
    from snippets import registry

    path = tmp_path / "broken" / "boom.py"
    path.parent.mkdir()
    path.write_text(
        "class Config:\n    @classmethod\n    def tiny(cls):\n        return cls()\n"
        f"\ndef main(cfg, out):\n    {body}\n"
    )
    demo = registry.Demo("broken/boom", path)
    monkeypatch.setenv("DLNOTES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "discover", lambda: {demo.name: demo})
    return registry


def test_a_failing_demo_stops_with_its_name_and_error(tmp_path, monkeypatch):
    registry = _fake_demo(tmp_path, monkeypatch, "raise ValueError('kaboom')")
    with pytest.raises(registry.DemoError, match=r"(?s)broken/boom.*kaboom"):
        registry.ensure_all("tiny", timeout=60, log=lambda _: None)


def test_a_demo_without_figures_is_an_error(tmp_path, monkeypatch):
    registry = _fake_demo(tmp_path, monkeypatch, "return {'x': 1.0}")
    with pytest.raises(registry.DemoError, match=r"(?s)broken/boom.*no figure"):
        registry.ensure_all("tiny", timeout=60, log=lambda _: None)


def test_a_slow_demo_times_out(tmp_path, monkeypatch):
    registry = _fake_demo(tmp_path, monkeypatch, "import time; time.sleep(30)")
    with pytest.raises(registry.DemoError, match="broken/boom timed out"):
        registry.ensure_all("tiny", timeout=3, log=lambda _: None)
