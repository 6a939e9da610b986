"""Build hook: one glossary, three uses.

``includes/glossary/<part>.md`` holds abbreviation lines ``*[convolution]: 卷积`` and
``*[卷积]: convolution``; pymdownx.snippets appends them to every page (hover text).
This hook also turns ``<!-- glossary -->`` into a zh↔en table and writes every Chinese
term into jieba's user dictionary, so search keeps a term such as 卷积核 whole.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY = re.compile(r"^\*\[([^\]]+)\]:\s*(.+)$", re.M)
CJK = re.compile(r"[\u4e00-\u9fff]")


def pairs() -> list[tuple[str, str]]:
    """(English, 中文) for every entry written English-first, sorted by English term."""
    found = {}
    for path in sorted((ROOT / "includes" / "glossary").glob("*.md")):
        for term, meaning in ENTRY.findall(path.read_text(encoding="utf-8")):
            if not CJK.search(term):
                found[term] = meaning.strip()
    return sorted(found.items(), key=lambda p: p[0].lower())


def chinese_terms() -> list[str]:
    """Each Chinese piece of the glossary: '推土机距离' from 'Wasserstein 距离（推土机距离）'."""
    return sorted(
        {
            piece
            for _, zh in pairs()
            for piece in re.split(r"[，,/、（）()\s]+", zh)
            if CJK.search(piece)
        }
    )


def on_startup(command, dirty):
    words = chinese_terms()
    target = ROOT / ".cache" / "jieba_user.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(f"{w} 1000 n\n" for w in words), encoding="utf-8")


def on_page_markdown(markdown, page, config, files):
    if "<!-- glossary -->" not in markdown:
        return markdown
    english = page.file.src_uri.startswith("en/")
    head = (
        "| English | 中文 |\n|---|---|\n"
        if english
        else "| 中文 | English |\n|---|---|\n"
    )
    rows = [f"| {en} | {zh} |" if english else f"| {zh} | {en} |" for en, zh in pairs()]
    return markdown.replace("<!-- glossary -->", head + "\n".join(rows))
