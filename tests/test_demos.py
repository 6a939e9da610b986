"""Smoke layer: every demo runs at its tiny preset, returns finite metrics, draws a figure."""

import json
import math
import subprocess
import sys

import pytest

from snippets.registry import ROOT, claim_rules, discover, run_in_process

DEMOS = sorted(discover())


@pytest.mark.parametrize("name", DEMOS)
def test_tiny_run_writes_the_same_figures_twice_and_finite_metrics(name, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    metrics = run_in_process(name, tiny=True, out=first)
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    figures = sorted(p.name for p in first.iterdir() if p.suffix in {".png", ".svg"})
    assert figures and all((first / f).stat().st_size > 1000 for f in figures)
    english = [f for f in figures if not f.endswith((".zh.png", ".zh.svg"))]
    for figure in english:  # every figure is drawn in both languages (save_figure's zh)
        stem, suffix = figure.rsplit(".", 1)
        assert f"{stem}.zh.{suffix}" in figures, f"{figure} has no Chinese twin"
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


def _fake_demo(tmp_path, monkeypatch, body, claims="{}"):
    from snippets import registry

    path = tmp_path / "broken" / "boom.py"
    path.parent.mkdir()
    path.write_text(
        "class Config:\n    @classmethod\n    def tiny(cls):\n        return cls()\n"
        f"\ndef main(cfg, out):\n    {body}\n\nCLAIMS = {claims}\n"
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


DRAWS = "(out / 'f.svg').write_text('<svg/>' * 200); return {'a': 2.0, 'b': 1.0}"


def test_claims_are_judged_with_their_rule_and_the_numbers_they_read(
    tmp_path, monkeypatch
):
    registry = _fake_demo(
        tmp_path,
        monkeypatch,
        DRAWS,
        claims="{'a_beats_b': lambda m: m['a'] > m['b'], "
        "'b_beats_a': lambda m: m['b'] > 1.5 * m['a']}",
    )
    entry = registry.ensure_all("tiny", timeout=60, log=lambda _: None)["broken/boom"]
    verdicts = json.loads((entry / "claims.json").read_text())
    assert verdicts["a_beats_b"] == {
        "holds": True, "rule": "m['a'] > m['b']", "compared": {"a": 2.0, "b": 1.0}
    }
    assert verdicts["b_beats_a"]["holds"] is False
    run = json.loads((entry / "run.json").read_text())
    assert run["preset"] == "tiny" and run["command"].endswith("broken/boom --tiny")
    assert {"torch", "numpy", "python"} <= set(run["versions"]) and run["date"]


@pytest.mark.parametrize(
    "claim, error",
    [
        ("lambda m: m['missing'] > 0", "raised KeyError"),
        ("lambda m: m['a'] - m['b']", "returned float, not bool"),
    ],
)
def test_a_claim_that_raises_or_is_not_a_bool_stops_the_run(
    tmp_path, monkeypatch, claim, error
):
    registry = _fake_demo(tmp_path, monkeypatch, DRAWS, claims=f"{{'shaky': {claim}}}")
    with pytest.raises(registry.DemoError, match=rf"(?s)broken/boom.*'shaky' {error}"):
        registry.ensure_all("tiny", timeout=60, log=lambda _: None)


@pytest.mark.parametrize("name", DEMOS)
def test_every_demo_declares_claims(name):
    rules = claim_rules(discover()[name].path)
    assert rules, f"{name}: CLAIMS must name at least one claim about its results"
