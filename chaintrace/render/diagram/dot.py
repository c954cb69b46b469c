"""A trace as Graphviz: DOT source built with the `graphviz` package, laid out by pygraphviz.

    source = render_dot(document, DiagramOptions(cluster="file"))
    draw(source, Path("trace.svg"), "svg")

pygraphviz's wheel bundles Graphviz, so no system `dot` is needed; without
it, the `graphviz` package runs a system `dot`; with neither, `draw` writes
the `.dot` next to the requested file and raises ChaintraceError naming the fix.
"""

from __future__ import annotations

from pathlib import Path

import graphviz
from graphviz.quoting import attr_list, quote

from chaintrace.errors import ChaintraceError
from chaintrace.render.diagram.drawing import Arrow, Box, Diagram
from chaintrace.render.diagram.layout import build
from chaintrace.render.diagram.options import DiagramOptions

FONT = "Helvetica"
XLABEL_ABOVE = 30  # boxes; past this, edge labels stop taking part in the layout (see build_graph)
MAX_PNG_SIDE = 3200  # pixels: a PNG's longer side, as long as text stays at 72 dpi or more

# Per edge kind: DOT edge attributes, and the word the legend uses.
EDGE_STYLE: dict[str, dict[str, str]] = {
    "direct": {"color": "black", "style": "solid"},
    "thread": {"color": "#1f4fbf", "style": "bold", "penwidth": "2.2"},
    "callback": {"color": "#1e8a3c", "style": "dashed", "penwidth": "1.6"},
    "ops": {"color": "#d9730d", "style": "dotted", "penwidth": "2.2"},
    "fnptr": {"color": "#808080", "style": "dashed"},
}
LOW_CONFIDENCE_OPS = {"color": "#8e44ad", "style": "dotted", "penwidth": "2.2"}
LEGEND = {
    "direct": "direct call",
    "thread": "thread start",
    "callback": "callback registered",
    "ops": "ops table (struct field)",
    "fnptr": "function pointer",
}

# Per box role: DOT node attributes.
BOX_STYLE: dict[str, dict[str, str]] = {
    "function": {"shape": "box", "style": "rounded,filled", "fillcolor": "white"},
    "entry": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#c8f0c8", "color": "#1e8a3c", "penwidth": "2"},
    "target": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#ffd0d0", "color": "#c0392b", "penwidth": "2",
               "peripheries": "2"},
    "entry target": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#ffe8a8", "color": "#c0392b",
                     "penwidth": "2", "peripheries": "2"},
    "group": {"shape": "box3d", "style": "filled", "fillcolor": "#eeeeee", "color": "#888888", "fontcolor": "#444444"},
    "note": {"shape": "note", "style": "filled", "fillcolor": "#fff6c2", "color": "#b08d00", "fontname": "Courier"},
}


_CONTROLS = {code: " " for code in (*range(32), 0x7F, 0x85, 0x2028, 0x2029)}


def _text(lines: tuple[str, ...] | list[str], end: str = "\\n") -> str:
    """Return label or tooltip text for DOT: each line escaped (backslashes, `<...>`), joined by `end`.

    `end` is DOT's line break: `\\n` centres the lines, `\\l` aligns them left. A line break inside a line
    (a file name may hold one) becomes `end` too, and other control characters a space: the DOT text keeps
    one statement per line.
    """
    lines = [part.translate(_CONTROLS) for line in lines for part in (line.splitlines() or [""])]
    return graphviz.nohtml(end.join(graphviz.escape(line) for line in lines) + (end if end != "\\n" else ""))


def _add_box(graph: graphviz.Digraph, box: Box) -> None:
    attrs = dict(BOX_STYLE[box.role])
    attrs["tooltip"] = _text(box.tooltip.split("\n"))
    if box.href:
        attrs["URL"] = box.href
        attrs["target"] = "_blank"
    attrs["label"] = _text(box.lines)
    graph.node(box.id, **attrs)


def _arrow_attrs(arrow: Arrow, label_key: str) -> dict[str, str]:
    """Return the DOT attributes of an arrow; its label goes in `label_key` (`label` or `xlabel`)."""
    if arrow.kind == "note":
        return {"style": "dashed", "color": "#b08d00", "arrowhead": "none", "weight": "4"}
    attrs = dict(LOW_CONFIDENCE_OPS if arrow.low_confidence and arrow.kind == "ops" else EDGE_STYLE.get(arrow.kind, {}))
    attrs["fontcolor"] = attrs.get("color", "black")
    if arrow.label:
        attrs[label_key] = _text([arrow.label])
    if arrow.tooltip:
        attrs["tooltip"] = attrs["labeltooltip"] = _text(arrow.tooltip.split("\n"))
    if arrow.href:
        attrs["URL"] = arrow.href
        attrs["target"] = "_blank"
    return attrs


def _add_edge(graph: graphviz.Digraph, tail: str, head: str, attrs: dict[str, str]) -> None:
    """Add `tail -> head` to `graph`.

    `Digraph.edge` reads `a:b` as node `a`, port `b`, and node ids hold `::`
    (`migration/migration.c::migration_thread`), so the statement is written
    with `quote`, which keeps a quoted id whole.
    """
    graph.body.append(f"\t{quote(tail)} -> {quote(head)}{attr_list(attributes=sorted(attrs.items()))}\n")


def _add_legend(graph: graphviz.Digraph, kinds: tuple[str, ...], rankdir: str) -> None:
    """Add a legend box: a sample arrow per edge kind drawn, and what `↻` and `#if` mean."""
    with graph.subgraph(name="cluster_legend") as legend:
        # the marks are told in the legend's label, under the samples: a node for
        # them would share the samples' ranks and push them apart
        marks = ["↻  call inside a loop", "#if  call under #if", "?  guessed from field name",
                 "+N more  functions folded", "L123  call-site line"]
        legend.attr(label=_text(marks, end="\\l"), style="rounded,filled", fillcolor="#fafafa", color="#bbbbbb",
                    fontsize="11", labeljust="l", labelloc="b")
        legend.attr("node", shape="point", width="0.05", color="#bbbbbb")
        for kind in kinds:
            legend.node(f"legend:{kind}:a")
            legend.node(f"legend:{kind}:b")
            attrs = dict(EDGE_STYLE[kind])
            attrs.update(label=LEGEND[kind], fontcolor=attrs["color"], fontsize="11")
            _add_edge(legend, f"legend:{kind}:a", f"legend:{kind}:b", attrs)
        if rankdir == "LR":
            # all tails on one rank, all heads on the next, each rank ordered by invisible
            # flat edges, chained backwards as LR turns a rank's order bottom-to-top:
            # the samples come out as parallel rows in EDGE_KINDS order
            rows = list(reversed(kinds))
            for end in ("a", "b"):
                legend.body.append("\t{rank=same; " + " ".join(quote(f"legend:{kind}:{end}") for kind in rows) + "}\n")
                if len(rows) > 1:
                    legend.body.append("\t" + " -> ".join(quote(f"legend:{kind}:{end}") for kind in rows) + " [style=invis]\n")
        else:
            # TB: each sample flat on a rank of its own, the ranks chained top to bottom
            for kind in kinds:
                legend.body.append(f"\t{{rank=same; {quote(f'legend:{kind}:a')} {quote(f'legend:{kind}:b')}}}\n")
            if len(kinds) > 1:
                legend.body.append("\t" + " -> ".join(quote(f"legend:{kind}:a") for kind in kinds) + " [style=invis]\n")


def build_graph(diagram: Diagram) -> graphviz.Digraph:
    """Return the `graphviz.Digraph` of a diagram: clusters, boxes, arrows, legend and title."""
    options = diagram.options
    graph = graphviz.Digraph("chaintrace")
    graph.attr(rankdir=options.rankdir, label=_text([diagram.title]), labelloc="t", labeljust="l", fontname=FONT,
               fontsize="16", newrank="true", nodesep="0.18", ranksep="0.35", compound="true", tooltip=_text([diagram.title]))
    graph.attr("node", fontname=FONT, fontsize="11", margin="0.08,0.03", height="0.3")
    graph.attr("edge", fontname=FONT, fontsize="9", arrowsize="0.7")
    by_cluster: dict[str, list[Box]] = {}
    for box in diagram.boxes:
        by_cluster.setdefault(box.cluster, []).append(box)
    for index, (key, title) in enumerate(diagram.clusters.items()):
        with graph.subgraph(name=f"cluster_{index}") as sub:
            sub.attr(label=_text([title]), style="rounded,filled", fillcolor="#f3f6fb", color="#9aaccc",
                     fontname=FONT, fontsize="12", fontcolor="#34495e", tooltip=_text([title]), labeljust="l")
            for box in by_cluster.get(key, []):
                _add_box(sub, box)
    for box in by_cluster.get("", []):
        _add_box(graph, box)
    # Graphviz gives an edge label a rank of its own, which doubles the length of a
    # QEMU-sized chain; an `xlabel` is placed after layout, beside its edge
    label_key = "label" if len(diagram.boxes) <= XLABEL_ABOVE else "xlabel"
    if label_key == "xlabel":
        graph.attr(forcelabels="true")
    for arrow in diagram.arrows:
        _add_edge(graph, arrow.src, arrow.dst, _arrow_attrs(arrow, label_key))
    if diagram.kinds:
        _add_legend(graph, diagram.kinds, options.rankdir)
    return graph


def render_dot(document: dict, options: DiagramOptions | None = None) -> str:
    """Return the DOT source of a trace document's diagram; the same document gives the same bytes."""
    return build_graph(build(document, options)).source


def _draw_with_pygraphviz(source: str, path: Path, fmt: str) -> None:
    import pygraphviz  # the wheel bundles Graphviz: no system `dot` needed

    args = f"-Gdpi={_png_dpi(source)}" if fmt == "png" else ""
    pygraphviz.AGraph(string=source).draw(str(path), format=fmt, prog="dot", args=args)


def _png_dpi(source: str) -> int:
    """Return the PNG resolution: 144 dpi (crisp on screens) unless the longer side would pass MAX_PNG_SIDE.

    Never below 72 dpi, where 11 pt text is still readable.
    """
    import pygraphviz

    layout = pygraphviz.AGraph(string=source)  # (AGraph.copy drops attributes the layout needs)
    layout.layout(prog="dot")
    _, _, width, height = (float(v) for v in layout.graph_attr["bb"].split(","))
    return int(max(72, min(144, MAX_PNG_SIDE * 72 / max(width, height, 1))))


def _draw_with_system_dot(source: str, path: Path, fmt: str) -> None:
    path.write_bytes(graphviz.pipe("dot", fmt, source.encode("utf-8")))


def draw(source: str, path: Path, fmt: str) -> None:
    """Lay out DOT `source` and write it to `path` as `fmt` (`svg`, `png`, `pdf`).

    Tries pygraphviz, then a system `dot`; when neither is there, writes
    `source` next to `path` (`.dot`) and raises ChaintraceError naming the fix.
    """
    for drawer in (_draw_with_pygraphviz, _draw_with_system_dot):
        try:
            drawer(source, path, fmt)
            return
        except (ImportError, graphviz.ExecutableNotFound):
            continue
    fallback = path.with_suffix(".dot")
    fallback.write_text(source, encoding="utf-8")
    raise ChaintraceError(
        f"cannot draw {path.name}: no Graphviz found (pip install pygraphviz, or apt-get install graphviz); "
        f"wrote the Graphviz source to {fallback}"
    )
