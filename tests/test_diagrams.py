"""The architecture diagrams of snippets/diagrams.py: drawn in both languages, checked
(translations, glyphs, layout, arrow ends), byte-identical on rebuild, cached by
content, and shown on their pages in both languages."""

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest
from mkdocs.structure.files import Files

from snippets import diagram
from snippets.common import _needs_chinese
from snippets.diagram import Diagram, Edge, Group, Node, T
from snippets.diagrams import DIAGRAMS
from snippets.registry import ROOT

NAMES = sorted(DIAGRAMS)
DOCS = ROOT / "docs"
# Drawn but not yet on a page, with the reason; a test keeps this list true.
UNPLACED: dict[str, str] = {}


class Plugins(dict):
    _current_plugin = None  # what mkdocs' File.generated reads


def render(d: Diagram, out):
    with matplotlib.rc_context():
        return diagram.render(d, out)


def hook():
    spec = importlib.util.spec_from_file_location(
        "diagrams_hook", ROOT / "hooks/diagrams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", NAMES)
def test_draws_both_languages_the_same_bytes_twice(name, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    render(DIAGRAMS[name], first)
    render(DIAGRAMS[name], second)
    files = sorted(p.name for p in first.iterdir())
    assert files == [f"{name}.svg", f"{name}.zh.svg"]
    for f in files:
        assert (first / f).read_bytes() == (second / f).read_bytes(), f
    assert (first / files[0]).read_bytes() != (first / files[1]).read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_every_word_has_its_chinese(name):
    d = DIAGRAMS[name]
    for text in diagram.texts(d):
        if isinstance(text, T):
            assert re.search(r"[\u4e00-\u9fff]", text.zh), text
            assert "$" not in text.zh, f"math text cannot hold Chinese: {text}"
        else:  # left as it is in both languages: math, symbols, kept names
            assert not _needs_chinese(text), f"{name}: {text!r} needs T(en, zh)"


@pytest.mark.parametrize("name", NAMES)
def test_arrows_start_and_end_on_the_edges_of_what_they_join(name):
    d = DIAGRAMS[name]
    diagram.validate(d)  # every node an arrow or a group names exists
    nodes = {n.id: n for n in d.nodes}
    for e in d.edges:
        points = diagram.path(d, e)
        for end, point in ((e.src, points[0]), (e.dst, points[-1])):
            node = nodes[re.match(r"[\w-]+", end).group(0)]
            x0, y0, x1, y1 = diagram.box(node)
            x, y = point
            if node.kind in ("op", "dot"):
                distance = ((x - node.xy[0]) ** 2 + (y - node.xy[1]) ** 2) ** 0.5
                assert abs(distance - (x1 - x0) / 2) < 1e-9, (name, e)
            else:
                on_side = min(abs(x - x0), abs(x - x1), abs(y - y0), abs(y - y1))
                inside = x0 - 1e-9 <= x <= x1 + 1e-9 and y0 - 1e-9 <= y <= y1 + 1e-9
                assert inside and on_side < 1e-9, (name, e, point)


def small(*nodes, edges=(), groups=()) -> Diagram:
    return Diagram("test", (4.0, 2.0), tuple(nodes), tuple(edges), tuple(groups))


A = Node("a", (0.8, 1.0), (T("input", "输入"),), size=(1.0, 0.5))
B = Node("b", (3.2, 1.0), (T("output", "输出"),), size=(1.0, 0.5))


def test_a_good_small_diagram_draws(tmp_path):
    render(small(A, B, edges=[Edge("a", "b", (T("flow", "流向"),))]), tmp_path)
    assert (tmp_path / "test.zh.svg").is_file()


@pytest.mark.parametrize(
    "bad, message",
    [
        (small(A, B, edges=[Edge("a", "c")]), "names no node"),
        (small(A, Node("a", (3.0, 1.0))), "duplicate"),
        (small(A, B, groups=[Group(("a", "z"), "g")]), "unknown"),
        (small(A, Node("far", (5.0, 1.0))), "outside"),
        (small(A, B, Node("c", (2.0, 1.0), ("c",), size=(0.3, 0.3)),
               edges=[Edge("a", "b")]), "crosses c"),
        (small(A, B, edges=[Edge("a", "b", (T("flow", "流"),)),
                            Edge("b", "a", (T("flow", "流向"),))]), "two translations"),
        (small(Node("a", (1.0, 1.0), (T("a much longer label", "一个长得多的标签"),),
                    size=(0.6, 0.4))), "does not fit its box"),
        (small(A, Node("n", (1.2, 1.0), ("$x$",), "text")), "lies on node a"),
        (small(A, B, edges=[Edge("a", "b", ("untranslated words",))]), "no Chinese"),
        # a CJK ideograph outside the project's font (and outside Noto Sans CJK SC)
        (small(A, Node("b", (3.0, 1.0), (T("rare", "\U0002A6D6"),))), "glyphs missing"),
    ],
)
@pytest.mark.filterwarnings("ignore:Glyph")
def test_the_checks_refuse_broken_diagrams(bad, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        render(bad, tmp_path)


def test_the_cache_draws_only_what_changed(tmp_path):
    module, logs = hook(), []
    some = {name: DIAGRAMS[name] for name in ("inception", "residual-block")}
    first = module.ensure_all(some, tmp_path, log=logs.append)
    stamps = {p: p.stat().st_mtime_ns for e in first.values() for p in e.iterdir()}
    again = module.ensure_all(some, tmp_path, log=logs.append)
    assert again == first and logs[-1] == "diagrams: all 2 cached"
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    redrawn = Diagram("inception", (4.0, 2.0), (A, B), (Edge("a", "b"),))
    changed = dict(some, inception=redrawn)
    module.ensure_all(changed, tmp_path, log=logs.append)
    assert logs[-1] == "diagrams: drew inception"
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == [
        "inception", "residual"]  # the old inception entry is gone


def test_each_language_is_served_its_own_drawing_under_the_same_name(tmp_path):
    module = hook()
    module.entries.update(module.ensure_all(
        {"inception": DIAGRAMS["inception"]}, tmp_path / "cache", log=lambda _: None))
    for lang, prefix, drawing in (("zh", "", "inception.zh.svg"),
                                  ("en", "en/", "inception.svg")):
        i18n = SimpleNamespace(current_language=lang, default_language="zh")
        config = SimpleNamespace(site_dir=str(tmp_path), use_directory_urls=True,
                                 plugins=Plugins(i18n=i18n))
        (served,) = module.on_files(Files([]), config)
        assert served.src_uri == f"{prefix}figures/diagrams/inception.svg"
        assert Path(served.abs_src_path).name == drawing


def links(lang: str) -> dict[str, list[str]]:
    """Diagram name -> the alt texts of its images on the pages of ``lang``."""
    found: dict[str, list[str]] = {}
    for page in (DOCS / lang).rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        for alt, name in re.findall(
                r"!\[([^\]]*)\]\([./]*figures/diagrams/([\w-]+)\.svg\)", text):
            found.setdefault(name, []).append(alt)
    return found


@pytest.mark.parametrize("name", sorted(set(NAMES) - set(UNPLACED)))
def test_each_diagram_is_shown_on_a_page_in_both_languages_with_alt_text(name):
    for lang in ("zh", "en"):
        alts = links(lang).get(name)
        assert alts, f"no docs/{lang} page shows figures/diagrams/{name}.svg"
        assert all(len(alt) > 20 for alt in alts), f"{name}: alt text too short: {alts}"


def test_the_unplaced_list_is_current():
    placed = set(links("zh")) | set(links("en"))
    assert not set(UNPLACED) & placed, "placed now: remove it from UNPLACED"
    assert placed <= set(NAMES), f"pages link unknown diagrams {placed - set(NAMES)}"
