"""No hand-typed results: a number from a run reaches a page only through metric().

A percentage, a multiplier (N×, N 倍), a duration (N s, N 秒) or a count of steps or
episodes typed into prose is flagged. The exceptions are published or external numbers
(a paper's table, an environment's time limit), listed per page in ``published/<part>.yml``
with the source that the page names beside them. Code, math, templates and HTML
attributes are not prose. Claims are checked in test_claims.py.
"""

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

DOCS = ROOT / "docs"
ALLOWED = {
    page: numbers
    for path in sorted((Path(__file__).parent / "published").glob("*.yml"))
    for page, numbers in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items()
}
NUMBER = r"(?<![\w.$\\{/-])(\d[\d,]*(?:\.\d+)?)\s*"
UNITS = {  # what a unit is normalised to, so a zh page and its en twin share entries
    "%": r"%|％",
    "×": r"×(?!\s*\d)|倍|x(?![\w])",
    "s": r"秒|seconds?\b|s(?![\w])",
    "steps": r"(?:k\s*)?(?:steps?\b|步)",
    "episodes": r"episodes?\b|个?回合",
}
RESULT = re.compile(
    NUMBER + "(" + "|".join(f"(?P<u{i}>{p})" for i, p in enumerate(UNITS.values())) + ")"
)


def prose(text: str) -> str:
    """The page without code, math, templates, HTML tags and link targets."""
    text = re.sub(r"^( *)(```|~~~).*?^\1\2", "", text, flags=re.M | re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\\\(.*?\\\)|\$[^$\n]+\$", " ", text)
    text = re.sub(r"`[^`\n]+`", " ", text)
    text = re.sub(r"\{\{.*?\}\}", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def typed_results(text: str) -> list[str]:
    """Each flagged number, normalised: '94%', '3×', '500 steps', '30 s'."""
    found = []
    for match in RESULT.finditer(prose(text)):
        unit = next(
            u for i, u in enumerate(UNITS) if match.group(f"u{i}") is not None
        )
        number = match.group(1).replace(",", "")
        if "k" in match.group(2):
            number = str(int(float(number) * 1000))
        found.append(f"{number}{'' if unit in '%×' else ' '}{unit}")
    return found


PAGES = sorted(p.relative_to(DOCS / "zh").as_posix() for p in (DOCS / "zh").rglob("*.md"))


@pytest.mark.parametrize("page", PAGES)
def test_no_result_is_typed_into_prose(page):
    allowed = ALLOWED.get(page, {})
    for lang in ("zh", "en"):
        text = (DOCS / lang / page).read_text(encoding="utf-8")
        typed = sorted(set(typed_results(text)) - set(allowed))
        assert not typed, (
            f"docs/{lang}/{page}: results typed into prose {typed}; quote them with "
            "metric() or, if published, list them in tests/site/published/<part>.yml"
        )
        for number, entry in allowed.items():
            assert entry["cite"] in text, (
                f"docs/{lang}/{page}: {number} is allowed as {entry['cite']}'s "
                "number, but the page does not name that source"
            )


def test_every_allowed_number_is_still_on_its_page():
    for page, allowed in ALLOWED.items():
        for lang in ("zh", "en"):
            typed = set(typed_results((DOCS / lang / page).read_text(encoding="utf-8")))
            stale = set(allowed) - typed
            assert not stale, f"docs/{lang}/{page}: stale entries in tests/site/published/ {stale}"


def test_the_scanner_flags_what_it_should():
    text = (
        "The CNN reached 98.8% in 30 s, 3× faster, after 5,000 steps and 2k steps; "
        "模型快了 4 倍，用了 100 步、20 个回合和 12 秒。A 3×3 kernel, `x = 50%`, "
        "$p = 0.5\\%$, {{ metric(\"a\", \"b\", \".1%\") }} and ![x](../f/1x.svg)."
    )
    assert typed_results(text) == [
        "98.8%", "30 s", "3×", "5000 steps", "2000 steps",
        "4×", "100 steps", "20 episodes", "12 s",
    ]
