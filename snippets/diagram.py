"""Draw an architecture diagram from a small declarative description, in both languages.

A ``Diagram`` is nodes (boxes, operation circles, junction dots, free text) placed in
inches, arrows (through optional waypoints, from a node's centre or from a point on one
of its sides, ``"cell.n+0.2"``) and groups (a dashed frame round some nodes). A text is
``T(english, chinese)`` or a string both languages share (math, symbols, kept names).
``render`` draws it in the style of the plots (``use_style``, the palette) and writes
``<name>.svg`` and ``<name>.zh.svg`` with ``save_figure``, once it has checked both
layouts: no text on another text or on a box not its own, every label inside its box,
no arrow through a box or a text it does not join. Descriptions: snippets/diagrams.py;
drawn at build time by hooks/diagrams.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

INK, FONT = "#404040", 10
ROLES = {  # a box's role -> its frame colour (the fill is a pale tint of it)
    "data": "#7f7f7f", "fixed": "#7f7f7f", "net": "#1f77b4", "param": "#1f77b4",
    "gate": "#ff7f0e", "loss": "#d62728", "memory": "#2ca02c", "state": "#9467bd",
    "op": INK,
}
TONES = {"flow": INK, "grad": "#d62728", "copy": "#1f77b4"}  # arrow colours
SIZES = {"box": (1.2, 0.5), "op": (0.34, 0.34), "dot": (0.08, 0.08),
         "text": (0.5, 0.3)}
END = re.compile(r"^([\w-]+)(?:\.([nsew])([+-][\d.]+)?)?$")  # "id" or "id.n+0.2"


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
    side: str = "auto"  # auto | above | below | left | right | on


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
    ids, (width, height) = [n.id for n in d.nodes], d.size
    if len(set(ids)) != len(ids):
        raise ValueError(f"{d.name}: duplicate node ids")
    if any(not (0 <= n.xy[0] <= width and 0 <= n.xy[1] <= height) for n in d.nodes):
        raise ValueError(f"{d.name}: a node lies outside the figure")
    for end in [end for e in d.edges for end in (e.src, e.dst)]:
        if not END.match(end) or END.match(end).group(1) not in ids:
            raise ValueError(f"{d.name}: arrow end {end!r} names no node")
    for g in d.groups:
        if set(g.members) - set(ids):
            raise ValueError(f"{d.name}: group of unknown {set(g.members) - set(ids)}")
        x0, y0, x1, y1 = frame(d, g)
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(f"{d.name}: the frame of {g.members} leaves the figure")
    translations(d)


def box(node: Node) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a node's frame."""
    (w, h), (x, y) = node.size or SIZES[node.kind], node.xy
    return x - w / 2, y - h / 2, x + w / 2, y + h / 2


def frame(d: Diagram, g: Group) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a group's frame: round its members' frames, padded."""
    boxes = [box(n) for n in d.nodes if n.id in g.members]
    low = [min(b[i] for b in boxes) - g.pad for i in (0, 1)]
    return (*low, *[max(b[i] for b in boxes) + g.pad for i in (2, 3)])


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
        if node.kind in ("op", "dot"):
            scale = (x1 - x0) / 2 / (dx * dx + dy * dy) ** 0.5
        else:
            scale = min((x1 - cx) / abs(dx) if dx else 1e9,
                        (y1 - cy) / abs(dy) if dy else 1e9)
        return cx + scale * dx, cy + scale * dy

    via = [tuple(p) for p in e.via]
    target = END.match(e.dst)
    aim = point(e.dst, None) if target.group(2) else nodes[target.group(1)].xy
    start = point(e.src, via[0] if via else aim)
    return [start, *via, point(e.dst, via[-1] if via else start)]


def draw(d: Diagram):
    """The English figure of ``d`` and its texts by owner (node id, edgeN, groupN)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyBboxPatch

    from snippets.common import use_style

    validate(d)
    use_style()
    fig = plt.figure(figsize=d.size)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, d.size[0]), ax.set_ylim(0, d.size[1]), ax.axis("off")
    owned: dict[str, list] = {}

    def write(owner, xy, lines, dx, ha, va, size, boxed=False):
        """One text per line (Chinese never shares a text with math), stacked round
        ``xy`` (va center), upwards from it (bottom) or downwards (top)."""
        lines = [lines] if isinstance(lines, (T, str)) else list(lines)
        for i, line in enumerate(lines):
            n, step = len(lines), 1.3 * size
            dy = {"center": ((n - 1) / 2 - i) * step, "bottom": 3 + (n - 1 - i) * step,
                  "top": -3 - i * step}[va]
            owned.setdefault(owner, []).append(ax.annotate(
                line.en if isinstance(line, T) else line, xy, (dx, dy),
                textcoords="offset points", ha=ha, va=va, fontsize=size, zorder=4,
                annotation_clip=False, color="#202020",
                bbox={"fc": "white", "ec": "none", "pad": 0.6} if boxed else None))

    for i, g in enumerate(d.groups):
        x0, y0, x1, y1 = frame(d, g)
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, fc="#f7f7f7", lw=1,
                                    boxstyle="round,pad=0,rounding_size=0.12",
                                    ec="#b0b0b0", ls="--", zorder=0))
        if g.text:
            top = g.label_at == "top"
            write(f"group{i}", (x0 + 0.05, y1 if top else y0), g.text, 0, "left",
                  "bottom" if top else "top", FONT - 0.5)
    for i, e in enumerate(d.edges):
        points, colour = path(d, e), TONES[e.tone]
        ax.plot(*zip(*points), color=colour, lw=1.3, zorder=1, solid_capstyle="butt",
                ls={"-": "-", "--": (0, (4, 2.5)), ":": (0, (1, 2))}[e.style])
        heads = [points[-2:]] * bool(e.head) + [points[1::-1]] * (e.head == "both")
        for a, b in heads:  # a solid head, even on a dashed line
            back = 0.1 / _length(a, b)
            tail = (b[0] - back * (b[0] - a[0]), b[1] - back * (b[1] - a[1]))
            ax.annotate("", b, tail, zorder=1, arrowprops={
                "arrowstyle": "-|>,head_length=0.5,head_width=0.22", "color": colour,
                "lw": 1.3, "shrinkA": 0, "shrinkB": 0, "mutation_scale": 12})
        if e.text:
            xy, (sx, sy) = _along(points, e.at)
            side = e.side if e.side != "auto" else (
                "above" if abs(sx) >= abs(sy) else "right")
            dx, ha, va = {"above": (0, "center", "bottom"),
                          "below": (0, "center", "top"), "on": (0, "center", "center"),
                          "left": (-5, "right", "center"),
                          "right": (5, "left", "center")}[side]
            write(f"edge{i}", xy, e.text, dx, ha, va, FONT - 1, boxed=True)
    for n in d.nodes:
        (x0, y0, x1, y1), colour = box(n), ROLES[n.role]
        if n.kind == "box":
            ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, fc=_tint(colour),
                                        boxstyle="round,pad=0,rounding_size=0.06",
                                        ec=colour, lw=1.3, zorder=2,
                                        ls="--" if n.role == "fixed" else "-"))
        elif n.kind in ("op", "dot"):
            ax.add_patch(Circle(n.xy, (x1 - x0) / 2, ec=INK, lw=1.3, zorder=2,
                                fc=INK if n.kind == "dot" else "white"))
        write(n.id, n.xy, n.text, 0, "center", "center", FONT)
    return fig, owned


def _along(points, at: float):
    """The point at fraction ``at`` of a polyline's length, and the direction there."""
    segments = list(pairwise(points))
    left = at * sum(_length(a, b) for a, b in segments)
    for a, b in segments:
        if left <= _length(a, b) or (a, b) == segments[-1]:
            f = min(left / _length(a, b), 1) if _length(a, b) else 0
            return (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])), (
                b[0] - a[0], b[1] - a[1])
        left -= _length(a, b)


def _length(a, b) -> float:
    return ((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5


def problems(d: Diagram, fig, owned: dict) -> list[str]:
    """What makes a drawing hard to read: texts on texts, a label outside its box or
    on another box, an arrow through a box or a text that is not one of its ends'."""
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    renderer, to_pixels = fig.canvas.get_renderer(), fig.axes[0].transData
    texts = [(owner, t, t.get_window_extent(renderer).padded(-1))
             for owner, ts in owned.items() for t in ts]
    frames = {n.id: to_pixels.transform_bbox(Bbox.from_extents(*box(n))).padded(-1)
              for n in d.nodes if n.kind in ("box", "op")}
    found = set()
    for i, (owner, t, extent) in enumerate(texts):
        found |= {f"{t.get_text()!r} overlaps {u.get_text()!r}"
                  for _, u, other in texts[i + 1:] if extent.overlaps(other)}
        for name, f in frames.items():
            corners = ((extent.x0, extent.y0), (extent.x1, extent.y1))
            if name == owner and not all(f.padded(2).contains(*c) for c in corners):
                found.add(f"{t.get_text()!r} does not fit its box")
            elif name != owner and extent.overlaps(f):
                found.add(f"{t.get_text()!r} lies on node {name}")
    for i, e in enumerate(d.edges):
        mine = {END.match(e.src).group(1), END.match(e.dst).group(1)}
        points = path(d, e)
        for a, b in pairwise(points):
            for k in range(1, 40):
                x, y = a[0] + (b[0] - a[0]) * k / 40, a[1] + (b[1] - a[1]) * k / 40
                found |= {f"arrow {e.src}->{e.dst} crosses {n.id}" for n in d.nodes
                          if n.kind != "dot" and n.id not in mine
                          and box(n)[0] < x < box(n)[2] and box(n)[1] < y < box(n)[3]}
                px, py = to_pixels.transform((x, y))
                own = mine | ({f"edge{i}"} if e.side == "on" else set())
                found |= {f"arrow {e.src}->{e.dst} crosses {t.get_text()!r}"
                          for owner, t, extent in texts
                          if owner not in own and extent.contains(px, py)}
    return sorted(found)


def render(d: Diagram, out: Path) -> Path:
    """Write ``out/<name>.svg`` and ``out/<name>.zh.svg``. A layout problem in either
    language, an untranslated word or a glyph the fonts lack is an error."""
    import matplotlib.pyplot as plt

    from snippets.common import save_figure, translate_figure

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


def _tint(colour: str, white: float = 0.85) -> str:
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * white):02x}" for c in rgb)
