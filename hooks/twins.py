"""Build hook: every page exists in both languages, or the build stops and names it.

mkdocs-static-i18n (with ``fallback_to_default: false``) would otherwise just leave the
missing twin out, and the language switcher would fall back to the home page.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.exceptions import PluginError


def on_pre_build(config):
    docs = Path(config.docs_dir)
    languages = [lang.locale for lang in config.plugins["i18n"].config.languages]
    pages = {
        lang: {p.relative_to(docs / lang) for p in (docs / lang).rglob("*.md")}
        for lang in languages
    }
    everything = set().union(*pages.values())
    missing = [
        f"docs/{lang}/{page}"
        for lang in languages
        for page in sorted(everything - pages[lang])
    ]
    if missing:
        raise PluginError("pages without their twin (add them): " + ", ".join(missing))
