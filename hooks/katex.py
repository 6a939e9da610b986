"""Build hook: math is typeset at build time with the site's own KaTeX, so pages carry
finished markup and load no math JavaScript.

pymdownx.arithmatex (generic mode) leaves ``<span class="arithmatex">\\(...\\)</span>`` and
``<div class="arithmatex">\\[...\\]</div>``; ``on_page_content`` replaces each with
``katex.renderToString`` run in an embedded V8 (mini-racer, from PyPI: no Node needed)
on the vendored ``docs/assets/katex/katex.min.js``, the same file a browser would run.
A formula KaTeX rejects stops the build with the page and the formula. Only pages with
math link KaTeX's stylesheet (its fonts load only when a glyph needs them).
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.utils import get_relative_url

KATEX = Path(__file__).resolve().parent.parent / "docs" / "assets" / "katex"
MATH = re.compile(
    r'<(span|div) class="arithmatex">\\([(\[])(.*?)\\[)\]]</\1>', re.S
)
STYLESHEET = "assets/katex/katex.min.css"


@lru_cache(maxsize=1)
def _engine():
    from py_mini_racer import MiniRacer

    engine = MiniRacer()
    engine.eval((KATEX / "katex.min.js").read_text(encoding="utf-8"))
    return engine


@lru_cache(maxsize=None)
def render(tex: str, display: bool) -> str:
    """KaTeX's HTML for ``tex``, exactly what ``katex.renderToString`` gives a browser."""
    return _engine().call(
        "katex.renderToString", tex, {"displayMode": display, "throwOnError": True}
    )


def on_page_content(content, page, config, files):
    def typeset(match):
        tex = html.unescape(match.group(3))
        try:
            return render(tex, display=match.group(2) == "[")
        except Exception as err:  # KaTeX's ParseError arrives as a JS exception
            raise PluginError(
                f"{page.file.src_uri}: KaTeX cannot typeset {tex!r}: {err}"
            ) from None

    # a wide display formula scrolls sideways: the keyboard must be able to reach it
    return MATH.sub(typeset, content).replace(
        '<span class="katex-display">',
        '<span class="katex-display" tabindex="0">',
    )


def on_post_page(output, page, config):
    if 'class="katex' not in output:
        return output
    href = get_relative_url(STYLESHEET, page.url)
    return output.replace(
        "</head>", f'<link rel="stylesheet" href="{href}">\n</head>', 1
    )
