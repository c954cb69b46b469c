"""The drawing model of a trace diagram, shared by Graphviz and Mermaid: boxes, arrows, clusters.

`layout.build` makes a `Diagram` from a trace document with every label and
tooltip already worded; `dot` and `mermaid` only write it in their syntax, so
both formats show the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaintrace.render.diagram.options import DiagramOptions


@dataclass(frozen=True)
class Box:
    """One box of the diagram: a function, a folded group of functions, or a target note.

    `role` is `"function"`, `"entry"`, `"target"`, `"entry target"`, `"group"`
    (a `collapse_file` file or a `+N more` box) or `"note"` (a target statement).
    `lines` is the label, one item per line, not escaped.
    """

    id: str
    role: str
    lines: tuple[str, ...]
    tooltip: str
    cluster: str  # "" when the box stands outside every cluster
    href: str = ""


@dataclass(frozen=True)
class Arrow:
    """One arrow: `kind` is an edge kind, or `"note"` for a target function -> its statement.

    `label` is short (call-site lines, registrar, field, marks `↻` and `#if`);
    `tooltip` says everything (every site, its loops and `#if` conditions, the proof).
    """

    src: str
    dst: str
    kind: str
    label: str
    tooltip: str
    low_confidence: bool = False
    href: str = ""


@dataclass(frozen=True)
class Diagram:
    """Boxes (sorted by cluster, file, line, id), arrows (sorted by src, dst, kind) and clusters.

    `clusters` maps a cluster key (a file or dir) to its title; `kinds` are the
    edge kinds drawn, in `EDGE_KINDS` order; `title` says what was traced.
    """

    title: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    clusters: dict[str, str]
    kinds: tuple[str, ...]
    options: DiagramOptions = field(default_factory=DiagramOptions)
    folded: int = 0  # functions folded into `+N more` boxes by max_nodes
