"""Site checks on the sources and on one strict build: twins, nav, search, no other hosts."""

import importlib.util
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, build

DOCS = ROOT / "docs"
FENCE = re.compile(r"^( *)```([^\n]*)\n(.*?)^\1```", re.M | re.S)


def pages(lang: str) -> set[Path]:
    return {p.relative_to(DOCS / lang) for p in (DOCS / lang).rglob("*.md")}


def nav_pages() -> set[Path]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *a: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)

    def walk(items):
        for item in items:
            if isinstance(item, str):
                yield Path(item)
            else:
                for value in item.values():
                    yield from (
                        [Path(value)] if isinstance(value, str) else walk(value)
                    )

    return set(walk(config["nav"]))


def facts(text: str) -> dict:
    """What twins must share, whatever the language."""
    return {
        "sections": len(re.findall(r"^## ", text, re.M)),
        "includes": re.findall(r'--8<-- "([^"]+)"', text),
        "figures": re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text),
        "metrics": Counter(re.findall(r'metric\("([^"]+)", "([^"]+)"', text)),
        "claims": Counter(re.findall(r'claim\("([^"]+)", "([^"]+)"', text)),
        "questions": len(re.findall(r"^\?\?\? question", text, re.M)),
        "code_blocks": len(re.findall(r"^ *```python$", text, re.M)),
    }


def test_every_page_has_its_twin():
    assert pages("zh") == pages("en")


def test_twins_share_sections_includes_figures_metrics_and_questions():
    for page in sorted(pages("zh")):
        zh = facts((DOCS / "zh" / page).read_text(encoding="utf-8"))
        en = facts((DOCS / "en" / page).read_text(encoding="utf-8"))
        assert zh == en, f"{page}: zh and en twins differ"


PARTS = ["foundations", "cnn", "rnn", "attention", "gan", "rl"]


@pytest.mark.parametrize("part", PARTS)
def test_each_chapter_cites_at_least_five_claims_per_language(part):
    for lang in ("zh", "en"):
        cited = {
            m
            for p in (DOCS / lang / part).glob("*.md")
            for m in re.findall(r'claim\("([^"]+", "[^"]+)"\)', p.read_text("utf-8"))
        }
        assert len(cited) >= 5, f"docs/{lang}/{part}: {len(cited)} claims cited"


def test_nav_lists_every_page():
    assert nav_pages() == pages("zh")


def test_snippet_includes_are_titled_and_runnable_blocks_are_not_includes():
    """A titled fence is skipped by pytest-codeblocks; an include must never be collected."""
    for path in sorted(DOCS.rglob("*.md")):
        for _, info, body in FENCE.findall(path.read_text(encoding="utf-8")):
            if "--8<--" in body:
                assert info.startswith("python title="), f"{path}: untitled include"
            if info == "python":
                assert "--8<--" not in body, (
                    f"{path}: pytest-codeblocks would run an include"
                )


def test_shell_blocks_are_not_run_by_the_page_tests():
    """pytest-codeblocks runs sh/bash fences; ours start servers and long demos."""
    for path in sorted(DOCS.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^ *```(sh|bash|console)$", text, re.M):
            before = text[: match.start()].rstrip().splitlines()[-1].strip()
            assert before == "<!--pytest.mark.skip-->", (
                f"{path}: unmarked {match.group(1)} block"
            )


def test_content_pages_have_review_questions():
    for page in sorted(pages("zh")):
        text = (DOCS / "zh" / page).read_text(encoding="utf-8")
        if "--8<--" in text:  # a content page, not an index or the glossary
            assert text.count("??? question") >= 5, (
                f"{page}: fewer than 5 review questions"
            )


def test_strict_build_writes_both_languages_figures_and_notebooks(site):
    assert (site / "cnn/convolution/index.html").is_file()
    assert (site / "en/cnn/convolution/index.html").is_file()
    assert (site / "figures/cnn-convolution/kernels.png").stat().st_size > 10_000
    notebook = json.loads(
        (site / "notebooks/cnn-convolution/cnn-convolution.ipynb").read_text()
    )
    outputs = [
        o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]
    ]
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_metrics_are_substituted(site):
    html = (site / "en/cnn/convolution/index.html").read_text(encoding="utf-8")
    assert "metric(" not in html
    metrics = json.loads((site / "figures/cnn-convolution/metrics.json").read_text())
    assert f"{metrics['max_abs_err_vs_torch']:.1e}" in html


def search_docs(site: Path) -> list[dict]:
    """The docs of both languages' indexes (hooks/pages.py writes one per language)."""
    docs = []
    for path in ("search/search_index.json", "en/search/search_index.json"):
        index = json.loads((site / path).read_text(encoding="utf-8"))
        separator = re.compile(index["config"]["separator"])
        for doc in index["docs"]:
            doc["tokens"] = {
                t.lower() for t in separator.split(doc["title"] + " " + doc["text"])
            }
        docs += index["docs"]
    return docs


# (query, page it must reach): the issues' search checks, both languages
SEARCHES = [
    ("卷积", "cnn/convolution/"), ("卷积核", "cnn/convolution/"), ("填充", "cnn/convolution/"),
    ("步幅", "cnn/convolution/"), ("convolution", "en/cnn/convolution/"),
    ("kernel", "en/cnn/convolution/"), ("padding", "en/cnn/convolution/"),
    ("反向传播", "foundations/backprop/"), ("梯度下降", "foundations/optimizers/"),
    ("过拟合", "foundations/bias-variance/"), ("dropout", "foundations/training/"),
    ("adam", "en/foundations/optimizers/"), ("lstm", "en/rnn/lstm/"),
    ("注意力", "attention/attention/"), ("生成对抗网络", "gan/game/"),
    ("强化学习", "rl/problem/"),
]


def test_search_index_segments_chinese_and_keeps_english(site):
    docs = search_docs(site)
    for word, page in SEARCHES:
        hits = {d["location"].split("#")[0] for d in docs if word in d["tokens"]}
        assert page in hits, f"search token {word!r} does not reach {page}"


def test_no_page_loads_anything_from_another_host(site):
    external = re.compile(
        r"<script[^>]+src=\"(?:https?:)?//|<link[^>]+href=\"(?:https?:)?//[^\"]+\"[^>]*"
        r"stylesheet|@import\s+url\(\s*['\"]?(?:https?:)?//|url\(\s*['\"]?https?://"
        r"|import\(\s*['\"]https?://|<img[^>]+src=\"(?:https?:)?//"
    )
    offenders = []
    for path in list(site.rglob("*.html")) + list(site.rglob("*.css")):
        for match in external.finditer(
            path.read_text(encoding="utf-8", errors="replace")
        ):
            offenders.append(f"{path.relative_to(site)}: {match.group(0)[:80]}")
    assert not offenders, "\n".join(offenders[:20])


def test_glossary_terms_feed_jieba(site):
    spec = importlib.util.spec_from_file_location(
        "glossary_hook", ROOT / "hooks/glossary.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = (
        (ROOT / ".cache" / "jieba_user.txt").read_text(encoding="utf-8").splitlines()
    )
    words = {line.split(" ")[0] for line in lines}
    assert all(len(line.split(" ")) == 3 for line in lines), (
        "jieba wants 'word freq tag'"
    )
    assert len(module.pairs()) > 100
    for en, zh in module.pairs():
        pieces = set(
            re.findall(r"[^，,/、（）()\s]*[\u4e00-\u9fff][^，,/、（）()\s]*", zh)
        )
        assert not pieces or pieces & words, f"{en}: none of {pieces} reaches jieba"


def test_a_page_without_its_twin_stops_the_build(tmp_path):
    copy = tmp_path / "repo"  # a copy, so the real docs/ never holds the orphan
    for name in ("docs", "hooks", "includes", "overrides", "snippets"):
        shutil.copytree(ROOT / name, copy / name)
    shutil.copy(ROOT / "mkdocs.yml", copy)
    (copy / "docs/zh/cnn/orphan-test-page.md").write_text(
        "# 孤儿页\n", encoding="utf-8"
    )
    result = build(tmp_path / "site", cwd=copy, DLNOTES_DEMOS="off")
    assert result.returncode != 0
    assert "docs/en/cnn/orphan-test-page.md" in result.stderr
