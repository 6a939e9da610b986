"""Pages cite claims; a false one stops a strict real-preset build, naming page and claim.

Each case builds a two-page site (zh + en) in a temporary copy of the hooks and the
registry, with one fake demo whose claims are one true and one false.
"""

import json
import re
import shutil

import pytest

from conftest import ROOT, build

DEMO = '''"""A fake demo for the claims test.

Page: index.md
"""
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from snippets.common import save_figure, use_style


@dataclass
class Config:
    size: int = 3

    @classmethod
    def tiny(cls):
        return cls(size=2)


def main(cfg: Config, out: Path) -> dict:
    use_style()
    fig, ax = plt.subplots()
    ax.plot(range(cfg.size))
    ax.set_title("a line")
    save_figure(fig, out / "line.svg", zh={"a line": "一条线"})
    return {"fast": 2.0, "slow": 1.0}


CLAIMS = {
    "fast_beats_slow": lambda m: m["fast"] > m["slow"],
    "slow_beats_fast": lambda m: m["slow"] > m["fast"],
}
'''
CONFIG = """site_name: claims test
docs_dir: docs
hooks: [hooks/demos.py]
plugins:
  - i18n:
      docs_structure: folder
      fallback_to_default: false
      reconfigure_search: false
      languages:
        - {locale: zh, name: 中文, default: true, build: true}
        - {locale: en, name: English, build: true}
markdown_extensions: [admonition, md_in_html]
"""


def site_citing(tmp_path, claim: str):
    """A copy of the build's hooks and registry with one demo and two pages citing it."""
    repo = tmp_path / "repo"
    (repo / "snippets" / "fake").mkdir(parents=True)
    for name in ("__init__.py", "__main__.py", "common.py", "registry.py", "fonts"):
        source = ROOT / "snippets" / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, repo / "snippets" / name)
    (repo / "snippets" / "fake" / "__init__.py").write_text("")
    (repo / "snippets" / "fake" / "claimed.py").write_text(DEMO)
    shutil.copytree(ROOT / "hooks", repo / "hooks")
    (repo / "mkdocs.yml").write_text(CONFIG)
    for lang, line in (("zh", "快的更快"), ("en", "The fast one wins")):
        (repo / "docs" / lang).mkdir(parents=True)
        (repo / "docs" / lang / "index.md").write_text(
            f'# {lang}\n\n{line}. {{{{ claim("fake/claimed", "{claim}") }}}}\n\n'
            "![a line](figures/fake-claimed/line.svg)\n",
            encoding="utf-8",
        )
    return repo


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("claims-cache")


def test_a_true_claim_renders_a_checked_mark_with_its_numbers(tmp_path, cache):
    repo = site_citing(tmp_path, "fast_beats_slow")
    result = build(tmp_path / "site", cwd=repo, DLNOTES_PRESET="real",
                   DLNOTES_CACHE=str(cache))
    assert result.returncode == 0, result.stderr[-3000:]
    zh = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    en = (tmp_path / "site" / "en" / "index.html").read_text(encoding="utf-8")
    mark = re.search(r'<span class="claim"[^>]*>', en).group(0)
    assert 'data-claim="fake/claimed:fast_beats_slow"' in mark
    assert 'data-holds="true"' in mark and 'tabindex="0"' in mark
    assert "Checked by the build (real preset)" in mark and "fast = 2" in mark
    assert "构建已核对" in zh and "fast = 2" in zh  # the hover text in the page's language
    # the page the demo names ends with the run's stamp
    assert "python -m snippets run fake/claimed" in en and "torch" in en
    # each language serves its own drawing under the same figure URL
    zh_svg = (tmp_path / "site" / "figures/fake-claimed/line.svg").read_bytes()
    en_svg = (tmp_path / "site" / "en/figures/fake-claimed/line.svg").read_bytes()
    assert zh_svg != en_svg


def test_a_false_claim_stops_the_strict_real_build_naming_page_and_claim(
    tmp_path, cache
):
    repo = site_citing(tmp_path, "slow_beats_fast")
    result = build(tmp_path / "site", cwd=repo, DLNOTES_PRESET="real",
                   DLNOTES_CACHE=str(cache))
    assert result.returncode != 0
    assert "index.md: claim fake/claimed:slow_beats_fast does not hold" in result.stderr


def test_a_false_claim_is_marked_not_enforced_at_the_tiny_preset(tmp_path, cache):
    repo = site_citing(tmp_path, "slow_beats_fast")
    result = build(tmp_path / "site", cwd=repo, DLNOTES_PRESET="tiny",
                   DLNOTES_CACHE=str(cache))
    assert result.returncode == 0, result.stderr[-3000:]
    en = (tmp_path / "site" / "en" / "index.html").read_text(encoding="utf-8")
    assert 'data-holds="false"' in en and "not reproduced" in en
    assert "does not hold" in result.stderr  # and the log says so


def test_an_unknown_claim_stops_even_a_tiny_build(tmp_path, cache):
    repo = site_citing(tmp_path, "no_such_claim")
    result = build(tmp_path / "site", cwd=repo, DLNOTES_PRESET="tiny",
                   DLNOTES_CACHE=str(cache))
    assert result.returncode != 0
    assert "has no claim 'no_such_claim'" in result.stderr


def test_run_json_and_claims_json_are_served_beside_the_figures(tmp_path, cache):
    repo = site_citing(tmp_path, "fast_beats_slow")
    assert build(tmp_path / "site", cwd=repo, DLNOTES_CACHE=str(cache)).returncode == 0
    served = tmp_path / "site" / "en" / "figures" / "fake-claimed"
    assert json.loads((served / "claims.json").read_text())["fast_beats_slow"]["holds"]
