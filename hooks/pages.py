"""Build hook: what every finished page needs to be light, quiet and accessible.

- Figures get ``width``/``height`` (read from the PNG header or the SVG's size), so the
  page does not jump while they load, and all but the first load lazily.
- The search index is fetched only when the reader opens search, and only their
  language's: ``on_post_build`` splits Material's one two-language index into
  ``search/search_index.json`` (中文) and ``en/search/search_index.json``, and a few
  lines of script hold Material's request until the search box gets focus.
- Notebook pages (mkdocs-jupyter) inline nbconvert's ~600 KB of CSS and every figure
  as base64: the CSS moves to one shared, cacheable file, and a figure that the demo's
  page also shows is linked (lazily, sized) instead, with the alt text that page gives
  it in the same language.
- Material's ``<link rel="alternate" hreflang>`` lines make its script fetch
  ``<page>/sitemap.xml`` for every alternate (a 404 on every page with page-level
  alternates, as mkdocs-static-i18n writes them); the language switcher does not need
  them, so they are left out. The search dialog gets an accessible name; code blocks
  and tables too wide for the screen can be scrolled from the keyboard.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import re
import struct
from pathlib import Path

from mkdocs.plugins import event_priority

SIZES: dict[str, Path] = {}  # site path of every file -> its source, for figure sizes
DOCS = Path(__file__).resolve().parent.parent / "docs"
INLINE_IMG = re.compile(
    r'<img alt="[^"]*"(?: class="")? src="data:image/([a-z+]+);base64,([^"]+)"'
)
STYLE = re.compile(r"<style[^>]*>.*?</style>\s*", re.S)
FIGURE_ALT = re.compile(r"!\[([^\]]*)\]\(\.\./figures/([^/]+)/([^)\s]+)\)")
IMG = re.compile(r'<img (?=[^>]*src="([^"]+\.(?:png|svg))")([^>]*?)\s*/?>')
ALTERNATE = re.compile(r'\s*<link rel="alternate" href="[^"]*" hreflang="[^"]*">')
SEARCH_LABEL = {"zh": "搜索", "en": "Search"}
# Hold Material's XMLHttpRequest for the search index until the search box is focused,
# and point it at this language's index.
DEFER_SEARCH = """<script>
(function () {
  var open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  var prefix = document.documentElement.lang === "en" ? "en/" : "", held = [];
  XMLHttpRequest.prototype.open = function (method, url) {
    var index = /search\\/search_index\\.json$/;
    if (index.test(String(url))) {
      this.dlnotesIndex = true;
      arguments[1] = String(url).replace(index, prefix + "search/search_index.json");
    }
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    var request = this, args = arguments;
    if (request.dlnotesIndex && held) {
      held.push(function () { send.apply(request, args); });
      return;
    }
    return send.apply(this, arguments);
  };
  function release() {
    if (!held) return;
    var waiting = held; held = null;
    waiting.forEach(function (go) { go(); });
  }
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches(".md-search__input")) release();
  }, true);
  document.addEventListener("change", function (event) {
    if (event.target.id === "__search") release();
  }, true);
  // Every name of a glossary term (variants, the other language's name, misspellings)
  // points at the section that teaches it: the index carries names -> term tokens
  // (config.dlnotes_names), and a query that is, contains or nearly is a name gets its
  // token added before it reaches Material's search worker.
  var post = Worker.prototype.postMessage, names = null, keys = [];
  var SPACE = /[\\s\u200b\u3000_\\-\u2010-\u2014]+/g;
  var norm = function (s) { return String(s).toLowerCase().replace(SPACE, ""); };
  function distance(a, b) {  // edits, a swap of two neighbours counting as one
    var d = [], i, j;
    for (i = 0; i <= a.length; i++) d.push([i]);
    for (j = 1; j <= b.length; j++) d[0][j] = j;
    for (i = 1; i <= a.length; i++) {
      for (j = 1; j <= b.length; j++) {
        d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1,
          d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
          d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
    return d[a.length][b.length];
  }
  function expand(query) {
    var q = norm(query), found = (names[q] || []).slice();
    if (!found.length) {  // names inside the query; a Latin one as whole words
      var words = String(query).toLowerCase().split(SPACE), at = 0, used = [];
      var bounds = { 0: true };
      words.forEach(function (w) { at += w.length; bounds[at] = true; });
      for (var k = 0; k < keys.length && found.length < 4; k++) {
        var key = keys[k], start = q.indexOf(key), end = start + key.length;
        var latin = /^[\\x00-\\x7f]+$/.test(key);
        if (start < 0 || key.length < (latin ? 4 : 2)) continue;
        if (latin && !(bounds[start] && bounds[end])) continue;
        if (used.some(function (r) { return start < r[1] && r[0] < end; })) continue;
        used.push([start, end]);
        found = found.concat(names[key]);
      }
    }
    if (!found.length && /^[\\x00-\\x7f]{5,}$/.test(q)) {  // a typo of a name
      var best = null, score = q.length >= 9 ? 3 : 2;
      keys.forEach(function (key) {
        if (Math.abs(key.length - q.length) >= score) return;
        var d = distance(q, key);
        if (d < score) { score = d; best = key; }
      });
      if (best) found = names[best];
    }
    return found.length ? query + " " + found.join(" ") : query;
  }
  Worker.prototype.postMessage = function (message) {
    if (message && message.type === 0 && message.data && message.data.config) {
      names = message.data.config.dlnotes_names || null;
      keys = names ? Object.keys(names).sort(function (a, b) {
        return b.length - a.length;
      }) : [];
    } else if (message && message.type === 2 && names
               && typeof message.data === "string") {
      arguments[0] = { type: 2, data: expand(message.data) };
    }
    return post.apply(this, arguments);
  };
  // ... and the term tokens are not shown to the reader or highlighted on the page
  var listen = Worker.prototype.addEventListener;
  Worker.prototype.addEventListener = function (type, handler, options) {
    if (type !== "message") return listen.apply(this, arguments);
    return listen.call(this, type, function (event) {
      var data = event.data;
      if (data && data.type === 3 && data.data && data.data.items)
        data.data.items.forEach(function (group) {
          group.forEach(function (item) {
            for (var term in item.terms)
              if (/^xqj\\d{3}$/.test(term)) delete item.terms[term];
          });
        });
      return handler.call(this, event);
    }, options);
  };
})();
</script>
"""

# Material wraps each table in a div that scrolls sideways when the table is wider than
# the screen; a region that scrolls must be reachable by keyboard (axe:
# scrollable-region-focusable). Runs after Material's bundle has wrapped the tables.
SCROLLING_TABLES = """<script>
(function () {
  var label = document.documentElement.lang === "en"
    ? "Table (scrolls sideways)" : "表格（可左右滚动）";
  function reachable() {
    document.querySelectorAll(".md-typeset__scrollwrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1 && !wrap.hasAttribute("tabindex")) {
        wrap.tabIndex = 0;
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", label);
      }
    });
  }
  document$.subscribe(function () { requestAnimationFrame(reachable); });
  addEventListener("resize", reachable);
})();
</script>
"""


@event_priority(-300)  # after every hook that adds files (demos, notebooks)
def on_files(files, config):
    SIZES.clear()
    for file in files:
        SIZES[file.dest_uri] = Path(file.abs_src_path or "")
    return files


def figure_size(path: Path) -> tuple[int, int] | None:
    """(width, height) in CSS pixels of a PNG or of an SVG written by matplotlib."""
    if not path.is_file():
        return None
    if path.suffix == ".png":
        width, height = struct.unpack(">II", path.read_bytes()[16:24])
        return width, height
    head = path.read_text(encoding="utf-8", errors="replace")[:2000]
    found = re.search(
        r'<svg[^>]*\swidth="([\d.]+)(pt|px)?"[^>]*\sheight="([\d.]+)(pt|px)?"', head
    )
    if not found:
        return None
    scale = 4 / 3 if found.group(2) == "pt" else 1
    return round(float(found.group(1)) * scale), round(float(found.group(3)) * scale)


def on_post_page(output, page, config):
    lang = "en" if page.file.src_uri.startswith("en/") else "zh"
    output = ALTERNATE.sub("", output)
    output = output.replace(
        '<div class="md-search" data-md-component="search" role="dialog">',
        '<div class="md-search" data-md-component="search" role="dialog" '
        f'aria-label="{SEARCH_LABEL[lang]}">',
        1,
    )
    output = output.replace("<script src=", DEFER_SEARCH + "<script src=", 1)
    if "<table>" in output:
        output = output.replace("</body>", SCROLLING_TABLES + "</body>", 1)
    first = [True]

    def sized(match):
        src, attributes = match.group(1), match.group(2)
        site_path = posixpath.normpath(posixpath.join(page.file.dest_uri, "..", src))
        size = figure_size(SIZES.get(site_path, Path()))
        extra = ""
        if size and "width=" not in attributes:
            extra += f' width="{size[0]}" height="{size[1]}"'
        if not first[0] and "loading=" not in attributes:
            extra += ' loading="lazy"'
        first[0] = False
        return f'<img {attributes}{extra} decoding="async" />'

    output = IMG.sub(sized, output)
    if getattr(page, "nb_url", None):
        output = lighter_notebook(output, page, config, lang)
    # a code block too wide for the screen scrolls: the keyboard must reach it too
    output = output.replace(
        "<pre><span></span><code>", '<pre><span></span><code tabindex="0">'
    )
    if (
        "jupyter-wrapper" in output
    ):  # nbconvert's code areas scroll: reachable by keyboard
        output = re.sub(r"<pre>", '<pre tabindex="0">', output)
        output = output.replace(
            '<div class="highlight-ipynb', '<div tabindex="0" class="highlight-ipynb'
        )
    return output


def lighter_notebook(output: str, page, config, lang: str) -> str:
    """nbconvert's inline CSS -> one shared file; base64 figures -> links with alt text."""
    styles = STYLE.findall(output)
    if styles:
        css = "".join(re.sub(r"</?style[^>]*>", "", block) for block in styles)
        name = f"assets/notebook-{hashlib.sha1(css.encode()).hexdigest()[:10]}.css"
        target = Path(config.site_dir) / name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(css, encoding="utf-8")
        href = posixpath.relpath(name, posixpath.dirname(page.file.dest_uri))
        output = STYLE.sub("", output)
        output = output.replace(
            "</head>", f'<link rel="stylesheet" href="{href}">\n</head>', 1
        )
    slug = page.file.dest_uri.split("/")[-2]
    figures = _figures_by_content(slug, lang)

    def linked(match):
        found = figures.get(hashlib.sha1(base64.b64decode(match.group(2))).hexdigest())
        if not found:
            return match.group(0)
        uri, alt = found
        src = posixpath.relpath(uri, posixpath.dirname(page.file.dest_uri))
        return f'<img alt="{alt}" src="{src}" loading="lazy"'

    return INLINE_IMG.sub(linked, output)


def _figures_by_content(slug: str, lang: str) -> dict[str, tuple[str, str]]:
    """sha1 of each figure of demo ``slug`` served in this language -> (its site path,
    the alt text its content page gives it in ``lang``)."""
    prefix = "" if lang == "zh" else "en/"
    alts = {}
    for md in (DOCS / lang).rglob("*.md"):
        for alt, figure_slug, name in FIGURE_ALT.findall(
            md.read_text(encoding="utf-8")
        ):
            if figure_slug == slug:
                alts[name] = alt.replace('"', "&quot;")
    found = {}
    for uri, source in SIZES.items():
        if uri.startswith(f"{prefix}figures/{slug}/") and source.suffix in (
            ".png",
            ".svg",
        ):
            name = uri.rsplit("/", 1)[1]
            digest = hashlib.sha1(source.read_bytes()).hexdigest()
            found[digest] = (uri, alts.get(name, name))
    return found


# Search: glossary, chapter index and home pages rank below the pages that teach.
GENERIC_BOOST = 0.3
NAMES_BOOST = 1e5  # a term's token in its teaching section outweighs any title match
GENERIC = re.compile(r"^(?:en/)?(?:[a-z]+/|glossary/|results/)?$")


def _glossary():
    """hooks/glossary.py as a module (hooks are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "dlnotes_glossary", Path(__file__).with_name("glossary.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def norm_name(name: str) -> str:
    """What the page script compares: lower case, no spaces, hyphens or dashes."""
    return re.sub(r"[\s\u200b\u3000_\-\u2010-\u2014]+", "", name.lower())


def tune_search(index: dict, lang: str) -> dict:
    """Each glossary term's teaching section gets its token (field ``names``) and every
    name of the term maps to it (``config.dlnotes_names``); generic pages rank lower."""
    prefix = "en/" if lang == "en" else ""
    docs = {doc["location"]: doc for doc in index["docs"]}
    mapping: dict[str, list[str]] = {}
    for number, (_, entry, every) in enumerate(_glossary().search_names()):
        token = f"xqj{number:03d}"
        page = f"{prefix}{entry['page']}/"
        anchor = entry.get("anchor", {}).get(lang)
        doc = docs.get(f"{page}#{anchor}") or docs.get(page)
        if doc is None:
            continue
        doc["names"] = (doc.get("names", "") + " " + token).strip()
        for name in every:
            tokens = mapping.setdefault(norm_name(name), [])
            if token not in tokens:
                tokens.append(token)
    for doc in index["docs"]:
        if GENERIC.match(doc["location"].split("#")[0]):
            doc["boost"] = GENERIC_BOOST
    config = dict(index["config"])
    config["fields"] = {**config.get("fields", {}), "names": {"boost": NAMES_BOOST}}
    config["dlnotes_names"] = mapping
    return {**index, "config": config}


@event_priority(
    -200
)  # after mkdocs-static-i18n (-100) has merged both languages' index
def on_post_build(config):
    """One search index per language: Chinese pages at the root, English under en/;
    each tuned by :func:`tune_search`."""
    site = Path(config.site_dir)
    both = site / "search" / "search_index.json"
    if not both.is_file():
        return
    index = json.loads(both.read_text(encoding="utf-8"))
    english = [d for d in index["docs"] if d["location"].startswith("en/")]
    chinese = [d for d in index["docs"] if not d["location"].startswith("en/")]
    for target, docs, lang in (
        (both, chinese, "zh"),
        (site / "en" / "search" / "search_index.json", english, "en"),
    ):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            json.dumps(
                tune_search({**index, "docs": docs}, lang),
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            encoding="utf-8",
        )
