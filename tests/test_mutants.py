"""make mutants (scripts/mutants.py) on a fixture whose mutants' fates are known.

tests/mutation/selftest/fixture.py says, line by line, which mutants its tests
(fixture_checks.py) must kill, which must survive, and which cannot be measured.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import mutants  # noqa: E402

SELFTEST = ROOT / "tests" / "mutation" / "selftest" / "selftest.toml"


def by_op(ms):
    return {(m.function, m.op): m for m in ms}


def test_generated_mutants_parse_to_the_intended_change():
    fixture = mutants.load_config(SELFTEST)[0]
    ms = mutants.generate(fixture)
    ops = by_op(ms)
    assert ops[("add", "+ → -")].after.startswith("return a - b")
    assert ops[("clip", "> → >=")].after.startswith("if x >= hi:")
    assert ops[("count_up", "+= → -=")].after.startswith("i -= 1")
    assert ops[("count_up", "statement removed")].after.startswith("pass")
    assert ops[("larger", "max → min")].after.startswith("return min(a, b)")
    assert ("larger", "arguments swapped") not in ops  # max is symmetric
    assert ops[("common", "arguments swapped")].after.startswith("return math.gcd(b, a")
    # a decorated method is mutated (mutmut 3 skips decorated functions)
    assert ("Scaler.apply", "* → /") in ops
    # each mutant is the module with exactly one change, and still compiles
    original = fixture.path.read_text().splitlines()
    for m in ms:
        changed = [i for i, (a, b) in enumerate(zip(original, m.source.splitlines()))
                   if a != b]
        assert changed == [m.line - 1], m
        compile(m.source, "fixture.py", "exec")
    # `i = 0` binds i for the first time: removing it would only raise NameError
    first_binding = [ln.strip().startswith("i = 0") for ln in original].index(True) + 1
    assert [m.op for m in ms if m.line == first_binding] == ["0 → 1"]


def test_unknown_function_is_a_configuration_error(tmp_path):
    fixture = mutants.load_config(SELFTEST)[0]
    fixture.functions = ["add", "no_such_function"]
    with pytest.raises(mutants.ConfigError, match="no_such_function"):
        mutants.generate(fixture)


def test_harness_kills_survives_and_reports_errors_as_expected(tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "mutants.py"),
         "--config", str(SELFTEST), "--min-timeout", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    # errors (an untested function, tests failing unmutated) make the command fail
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    fate = {(m["module"], m["function"], m["op"]): (m["status"], m["detail"])
            for m in result["mutants"]}
    survived = {k for k, (s, _) in fate.items() if s == "survived"}
    assert survived == {("selftest.fixture", "clip", "> → >="),
                        ("selftest.fixture", "count_up", "0 → 1"),
                        ("selftest.fixture", "common", "arguments swapped")}
    killed = {k for k, (s, _) in fate.items() if s == "killed"}
    assert {("add", "+ → -"), ("add", "returns None"), ("clip", "condition negated"),
            ("count_up", "< → <="), ("larger", "max → min"),
            ("Scaler.__init__", "statement removed"),
            ("Scaler.apply", "* → /")} <= {k[1:] for k in killed}
    for op in ("+ → -", "returns None"):  # add() runs when the fixture is imported
        assert fate[("selftest.fixture", "add", op)] == (
            "killed", "tests could not import the mutant")
    for op in ("+= → -=", "statement removed"):  # endless loops
        status, detail = fate[("selftest.fixture", "count_up", op)]
        assert status == "killed" and detail.startswith("timeout"), detail
    # never measured, so neither killed nor survived
    errored = {k for k, (s, _) in fate.items() if s == "error"}
    assert errored == {k for k in fate
                       if k[1] == "untested" or k[0] == "selftest.broken"}
    assert len(errored) == 5
    assert any("calls untested" in e for e in result["errors"])
    assert any("selftest.broken: its tests fail on the unmutated module" in e
               for e in result["errors"])
    # 17 killed of the 23 fixture mutants (3 survived, 3 not measured), rounded down
    assert "selftest.fixture: mutation score:  73%" in proc.stdout
    assert "overall mutation score: 68%" in proc.stdout
