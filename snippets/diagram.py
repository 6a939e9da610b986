"""Draw an architecture diagram from a small declarative description, in both languages.

A ``Diagram`` is nodes (boxes, operation circles, junction dots, free text) placed in
inches, arrows (from a node's centre or from a point on one of its sides,
``"cell.n+0.2"``, through optional waypoints) and groups (a dashed frame round some
nodes). A text is ``T(english, chinese)`` or a string both languages share (math,
symbols, kept names). ``render`` draws it in the style of the plots (``use_style``) and
writes ``<name>.svg`` and ``<name>.zh.svg`` with ``save_figure``, once both layouts pass
``problems``. The descriptions are in snippets/diagrams.py; hooks/diagrams.py draws
them when the site is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import dist
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_hex, to_rgb
from matplotlib.patches import Circle, FancyBboxPatch
from matplotlib.path import Path as Line
from matplotlib.transforms import Bbox

from snippets.common import PALETTE, save_figure, translate_figure, use_style

INK, FONT, GREY = "#404040", 10, "#7f7f7f"
BLUE, RED, GREEN, ORANGE, PURPLE = PALETTE[:5]  # the plots' colours
ROLES = {  # a box's role -> its frame colour (the fill is a pale tint of it)
    "data": GREY, "fixed": GREY, "net": BLUE, "param": BLUE, "gate": ORANGE,
    "loss": RED, "memory": GREEN, "state": PURPLE, "op": INK}
TONES = {"flow": INK, "grad": RED, "copy": BLUE}  # arrow colours
SIZES = {"box": (1.2, 0.5), "op": (0.34, 0.34), "dot": (0.08, 0.08), "text": (0.5, 0.3)}
END = re.compile(r"^([\w-]+)(?:\.([nsew])([+-][\d.]+)?)?$")  # "id" or "id.n+0.2"
# where an arrow's label sits: (x offset in points, horizontal, vertical alignment)
SIDES = {"above": (0, "center", "bottom"), "below": (0, "center", "top"),
         "on": (0, "center", "center"), "left": (-5, "right", "center"),
         "right": (5, "left", "center")}
LABEL_BOX = {"fc": "white", "ec": "none", "pad": 0.6}  # an arrow label hides its line


@dataclass(frozen=True)
class T:
    """A text in English and in Chinese."""
    en: str
    zh: str


@dataclass(frozen=True)
class Node:
    id: str
    xy: tuple[float, float]  # centre, in inches from the bottom left
    text: tuple = ()  # lines, each a T or a shared string
    kind: str = "box"  # box | op (circle) | dot (junction) | text (no frame)
    role: str = "net"  # colour of a box (ROLES); "fixed" boxes are dashed
    size: tuple[float, float] | None = None  # (width, height) in inches


@dataclass(frozen=True)
class Edge:
    src: str  # "id", or "id.<n|s|e|w>[+-offset]": a point on that side
    dst: str
    text: tuple = ()  # label lines
    via: tuple = ()  # waypoints (x, y)
    style: str = "-"  # "-" solid, "--" dashed, ":" dotted
    tone: str = "flow"  # flow | grad | copy (TONES)
    head: bool | str = True  # False: a plain line; "both": a head at each end
    at: float = 0.5  # where the label sits, as a fraction of the path's length
    side: str = "auto"  # auto (above a flat arrow, right of a steep one) or SIDES


@dataclass(frozen=True)
class Group:
    members: tuple[str, ...]
    text: T | str = ""  # label outside the frame, at its left ("" for none)
    pad: float = 0.15
    label_at: str = "top"  # top | bottom


@dataclass(frozen=True)
class Diagram:
    name: str
    size: tuple[float, float]  # width and height in inches
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    groups: tuple[Group, ...] = ()


def texts(d: Diagram):
    """Every text item of ``d``: node lines, arrow labels, group labels."""
    for lines in [n.text for n in d.nodes] + [e.text for e in d.edges]:
        yield from lines
    yield from (g.text for g in d.groups if g.text)


def translations(d: Diagram) -> dict[str, str]:
    """English -> Chinese for every ``T`` of ``d`` (one English text, one Chinese)."""
    zh: dict[str, str] = {}
    for t in texts(d):
        if isinstance(t, T) and zh.setdefault(t.en, t.zh) != t.zh:
            raise ValueError(f"{d.name}: {t.en!r} has two translations")
    return zh


def validate(d: Diagram) -> None:
    """Unique ids; the nodes arrows and groups name exist; all inside the figure."""
    ids, ends = [n.id for n in d.nodes], [END.match(x) for e in d.edges
                                           for x in (e.src, e.dst)]
    unknown = {m for g in d.groups for m in g.members} - set(ids)
    frames = [n.xy * 2 for n in d.nodes]  # a node by its centre, a group by its frame
    frames += [frame(d, g) for g in d.groups if not unknown]
    wrong = {"duplicate node ids": len(set(ids)) != len(ids),
             "an arrow end names no node": not all(m and m[1] in ids for m in ends),
             f"a group of unknown nodes {unknown}": unknown,
             "a node's centre or a group's frame lies outside the figure": any(
                 min(f) < 0 or f[2] > d.size[0] or f[3] > d.size[1] for f in frames)}
    if any(wrong.values()):
        raise ValueError(f"{d.name}: " + "; ".join(k for k, v in wrong.items() if v))
    translations(d)


def box(node: Node) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a node's frame."""
    (w, h), (x, y) = node.size or SIZES[node.kind], node.xy
    return x - w / 2, y - h / 2, x + w / 2, y + h / 2


def frame(d: Diagram, g: Group) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a group's frame: round its members' frames, padded."""
    boxes = np.array([box(n) for n in d.nodes if n.id in g.members])
    return (*(boxes[:, :2].min(0) - g.pad), *(boxes[:, 2:].max(0) + g.pad))


def path(d: Diagram, e: Edge) -> list[tuple[float, float]]:
    """An arrow's points, from the edge of its source to the edge of its target."""
    nodes = {n.id: n for n in d.nodes}

    def point(end: str, toward):
        name, side, offset = END.match(end).groups()
        node, (x0, y0, x1, y1) = nodes[name], box(nodes[name])
        (cx, cy), off = node.xy, float(offset or 0)
        if side:
            return {"n": (cx + off, y1), "s": (cx + off, y0), "e": (x1, cy + off),
                    "w": (x0, cy + off)}[side]
        dx, dy = toward[0] - cx, toward[1] - cy  # leave along the ray to `toward`
        if node.kind in ("op", "dot"):  # a circle
            scale = (x1 - x0) / 2 / (dx * dx + dy * dy) ** 0.5
        else:
            scale = min((x1 - cx) / abs(dx) if dx else 1e9,
                        (y1 - cy) / abs(dy) if dy else 1e9)
        return cx + scale * dx, cy + scale * dy

    via, target = [tuple(p) for p in e.via], END.match(e.dst)
    aim = point(e.dst, None) if target[2] else nodes[target[1]].xy
    start = point(e.src, via[0] if via else aim)
    return [start, *via, point(e.dst, via[-1] if via else start)]


def draw(d: Diagram):
    """The English figure of ``d`` and its texts by owner (node id, edgeN, groupN)."""
    validate(d)
    use_style()
    fig = plt.figure(figsize=d.size)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, d.size[0]), ax.set_ylim(0, d.size[1]), ax.axis("off")
    owned: dict[str, list] = {}

    def write(owner, xy, lines, dx, ha, va, size=FONT, boxed=False):
        """One text per line (Chinese never shares a text with math), stacked round
        ``xy`` (va center), upwards from it (bottom) or downwards (top)."""
        lines = [lines] if isinstance(lines, (T, str)) else lines
        for i, line in enumerate(lines):
            n, step = len(lines), 1.3 * size
            dy = {"center": ((n - 1) / 2 - i) * step, "bottom": 3 + (n - 1 - i) * step,
                  "top": -3 - i * step}[va]
            owned.setdefault(owner, []).append(ax.annotate(
                getattr(line, "en", line), xy, (dx, dy), textcoords="offset points",
                ha=ha, va=va, fontsize=size, zorder=4, annotation_clip=False,
                color="#202020", bbox=LABEL_BOX if boxed else None))

    def rounded(x0, y0, x1, y1, rounding, **style):
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, **style,
                                    boxstyle=f"round,pad=0,rounding_size={rounding}"))

    for i, g in enumerate(d.groups):
        x0, y0, x1, y1 = frame(d, g)
        rounded(x0, y0, x1, y1, 0.12, fc="#f7f7f7", ec="#b0b0b0", lw=1, ls="--",
                zorder=0)
        if g.text:
            top = g.label_at == "top"
            write(f"group{i}", (x0 + 0.05, y1 if top else y0), g.text, 0, "left",
                  "bottom" if top else "top", FONT - 0.5)
    for i, e in enumerate(d.edges):
        points, colour = path(d, e), TONES[e.tone]
        ax.plot(*zip(*points), color=colour, lw=1.3, zorder=1, solid_capstyle="butt",
                ls={"-": "-", "--": (0, (4, 2.5)), ":": (0, (1, 2))}[e.style])
        for a, b in [points[-2:]] * bool(e.head) + [points[1::-1]] * (e.head == "both"):
            back = 0.1 / dist(a, b)  # a solid head, even on a dashed line
            tail = (b[0] - back * (b[0] - a[0]), b[1] - back * (b[1] - a[1]))
            ax.annotate("", b, tail, zorder=1, arrowprops={
                "arrowstyle": "-|>,head_length=0.5,head_width=0.22", "color": colour,
                "lw": 1.3, "shrinkA": 0, "shrinkB": 0, "mutation_scale": 12})
        if e.text:
            xy, (sx, sy) = _along(points, e.at)
            steep = abs(sx) < abs(sy)
            side = {"auto": "right" if steep else "above"}.get(e.side, e.side)
            write(f"edge{i}", xy, e.text, *SIDES[side], FONT - 1, boxed=True)
    for n in d.nodes:
        colour = ROLES[n.role]
        if n.kind == "box":
            rounded(*box(n), 0.06, fc=to_hex(0.15 * np.array(to_rgb(colour)) + 0.85),
                    ec=colour, lw=1.3, zorder=2, ls="--" if n.role == "fixed" else "-")
        elif n.kind in ("op", "dot"):
            ax.add_patch(Circle(n.xy, (box(n)[2] - box(n)[0]) / 2, ec=INK, lw=1.3,
                                zorder=2, fc=INK if n.kind == "dot" else "white"))
        write(n.id, n.xy, n.text, 0, "center", "center")
    return fig, owned


def _along(points, at: float):
    """The point at fraction ``at`` of a polyline's length, and the direction there."""
    p = np.array(points, dtype=float)
    steps = np.diff(p, axis=0)
    ends = np.cumsum(np.hypot(*steps.T))
    i = min(int(np.searchsorted(ends, at * ends[-1])), len(steps) - 1)
    length = ends[i] - (ends[i - 1] if i else 0)
    f = min(1 - (ends[i] - at * ends[-1]) / length, 1) if length else 0
    return tuple(p[i] + f * steps[i]), tuple(steps[i])


def problems(d: Diagram, fig, owned: dict) -> list[str]:
    """What makes a drawing hard to read: texts on texts, a label outside its box or
    on another box, an arrow through a box or a text that is not one of its ends'."""
    fig.canvas.draw()
    renderer, to_pixels = fig.canvas.get_renderer(), fig.axes[0].transData
    texts = [(owner, t.get_text(), t.get_window_extent(renderer).padded(-1))
             for owner, ts in owned.items() for t in ts]
    frames = {n.id: to_pixels.transform_bbox(Bbox.from_extents(*box(n)))
              for n in d.nodes if n.kind in ("box", "op")}
    found = set()
    for i, (owner, text, extent) in enumerate(texts):
        found |= {f"{text!r} overlaps {u!r}" for _, u, other in texts[i + 1:]
                  if extent.overlaps(other)}
        for name, f in frames.items():
            if name == owner and not (f.padded(1).contains(extent.x0, extent.y0)
                                      and f.padded(1).contains(extent.x1, extent.y1)):
                found.add(f"{text!r} does not fit its box")
            elif name != owner and extent.overlaps(f.padded(-1)):
                found.add(f"{text!r} lies on node {name}")
    for i, e in enumerate(d.edges):
        mine = {END.match(e.src)[1], END.match(e.dst)[1]}
        line, arrow = Line(path(d, e)), f"arrow {e.src}->{e.dst} crosses"
        found |= {f"{arrow} {n.id}" for n in d.nodes
                  if n.kind != "dot" and n.id not in mine and line.intersects_bbox(
                      Bbox.from_extents(*box(n)).padded(-0.01), filled=False)}
        own = mine | ({f"edge{i}"} if e.side == "on" else set())
        line = to_pixels.transform_path(line)
        found |= {f"{arrow} {text!r}" for owner, text, extent in texts
                  if owner not in own and line.intersects_bbox(extent, filled=False)}
    return sorted(found)


def render(d: Diagram, out: Path) -> Path:
    """Write ``out/<name>.svg`` and ``out/<name>.zh.svg``. A layout problem in either
    language, an untranslated word or a glyph the fonts lack is an error."""
    zh = translations(d)
    fig, owned = draw(d)
    untranslated = translate_figure(fig, zh)
    found = [f"no Chinese for {sorted(untranslated)}"] * bool(untranslated)
    found += [f"(zh) {p}" for p in problems(d, fig, owned)]
    plt.close(fig)
    fig, owned = draw(d)
    found = [f"(en) {p}" for p in problems(d, fig, owned)] + found
    if found:
        plt.close(fig)
        raise ValueError(f"diagram {d.name}: " + "; ".join(found))
    return save_figure(fig, Path(out) / f"{d.name}.svg", zh=zh)
