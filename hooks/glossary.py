"""Build hook: one glossary, four uses.

``includes/glossary/<part>.md`` holds abbreviation lines ``*[convolution]: 卷积`` and
``*[卷积]: convolution``; pymdownx.snippets appends them to every page (hover text).
``includes/glossary/terms.yml`` says, per English term, where it is taught (page and
section) and every other name a student may type for it: Chinese variants in common use,
English variants and abbreviations, misspellings. This hook

- turns ``<!-- glossary -->`` into the glossary index: each term links to the section
  that teaches it and lists its other names;
- writes every Chinese name (variants too) into jieba's user dictionary, so search keeps
  a term such as 卷积核 or 集束搜索 whole;
- gives ``hooks/pages.py`` every name of every term (:func:`search_names`), which it
  turns into a pointer from each name to the teaching section in the search index.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "includes" / "glossary"
ENTRY = re.compile(r"^\*\[([^\]]+)\]:\s*(.+)$", re.M)
CJK = re.compile(r"[\u4e00-\u9fff]")
PIECES = re.compile(r"[，,/、（）()：:]+")


def pairs() -> list[tuple[str, str]]:
    """(English, 中文) for every entry written English-first, sorted by English
    term."""
    found = {}
    for path in sorted(GLOSSARY.glob("*.md")):
        for term, meaning in ENTRY.findall(path.read_text(encoding="utf-8")):
            if not CJK.search(term):
                found[term] = meaning.strip()
    return sorted(found.items(), key=lambda p: p[0].lower())


def terms() -> dict[str, dict]:
    """terms.yml: English term -> {zh, page, anchor?, zh_variants?, en_variants?,
    misspellings?}."""
    return yaml.safe_load((GLOSSARY / "terms.yml").read_text(encoding="utf-8"))


def zh_names(zh: str) -> list[str]:
    """The Chinese names in a hover text: '推土机距离' from
    'Wasserstein 距离（推土机距离）'; a long explanation after a colon is not
    a name."""
    return [
        piece.strip()
        for piece in PIECES.split(zh)
        if CJK.search(piece) and len(piece.strip()) <= 12
    ]


def names(en: str, entry: dict) -> dict[str, list[str]]:
    """Every name of one term, by language (misspellings are typed on both sides)."""
    return {
        "en": [en, *entry.get("en_variants", [])],
        "zh": [*zh_names(entry["zh"]), *entry.get("zh_variants", [])],
        "typo": list(entry.get("misspellings", [])),
    }


def search_names() -> list[tuple[str, dict, list[str]]]:
    """(English term, its terms.yml entry, all its names) for every term."""
    found = []
    for en, entry in sorted(terms().items()):
        every = names(en, entry)
        found.append((en, entry, every["en"] + every["zh"] + every["typo"]))
    return found


def chinese_terms() -> list[str]:
    """Each Chinese name of the glossary, variants included, without inner spaces."""
    words = {
        piece
        for _, zh in pairs()
        for piece in re.split(r"[，,/、（）()\s]+", zh)
        if CJK.search(piece)
    }
    for entry in terms().values():
        for name in entry.get("zh_variants", []):
            if CJK.search(name) and " " not in name:
                words.add(name)
    return sorted(words)


def on_startup(command, dirty):
    words = chinese_terms()
    target = ROOT / ".cache" / "jieba_user.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(f"{w} 1000 n\n" for w in words), encoding="utf-8")


def link(entry: dict, lang: str) -> str:
    """Relative link from the glossary page to the section that teaches a term."""
    anchor = entry.get("anchor", {}).get(lang)
    return f"{entry['page']}.md" + (f"#{anchor}" if anchor else "")


def page_title(lang: str, page: str) -> str | None:
    """The first heading of docs/<lang>/<page>.md, or None if there is no such page."""
    path = ROOT / "docs" / lang / f"{page}.md"
    if not path.is_file():
        return None
    found = re.search(r"^# (.+)$", path.read_text(encoding="utf-8"), re.M)
    return found.group(1).strip() if found else page


def on_page_markdown(markdown, page, config, files):
    if "<!-- glossary -->" not in markdown:
        return markdown
    english = page.file.src_uri.startswith("en/")
    lang = "en" if english else "zh"
    head = (
        "| English | 中文 | Taught in | Also called |\n|---|---|---|---|\n"
        if english
        else "| 中文 | English | 讲解位置 | 其他叫法 |\n|---|---|---|---|\n"
    )
    entries = terms()
    rows = []
    for en, zh in pairs():
        entry = entries.get(en)
        where = also = ""
        if entry:
            every = names(en, entry)
            target = link(entry, lang)
            title = page_title(lang, entry["page"])
            where = f"[{title}]({target})" if title else ""
            others = every["zh"][1:] + every["en"][1:] if not english else (
                every["en"][1:] + every["zh"][1:]
            )
            also = "、".join(others) if not english else ", ".join(others)
        cells = [en, zh, where, also] if english else [zh, en, where, also]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return markdown.replace("<!-- glossary -->", head + "\n".join(rows))
