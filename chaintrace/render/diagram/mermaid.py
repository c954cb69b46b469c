"""A trace as a Mermaid flowchart (`.mmd`), for Markdown that renders Mermaid (GitLab, GitHub, docs).

The boxes, arrows and labels are those of the Graphviz diagram (both come
from `chaintrace.render.diagram.layout.build`); edge kinds are told apart by arrow
shape (`-->` direct, `==>` thread, `-.->` the indirect kinds) and by colour
with `linkStyle`.  Mermaid node ids are `n0`, `n1`, ... in the diagram's
sorted order, so the same document gives the same text.
"""

from __future__ import annotations

from chaintrace.render.diagram.drawing import Arrow, Box, Diagram
from chaintrace.render.diagram.layout import build
from chaintrace.render.diagram.options import DiagramOptions

ARROW = {"direct": "-->", "thread": "==>", "callback": "-.->", "ops": "-.->", "fnptr": "-.->", "note": "-.-"}
LINK_STYLE = {
    "direct": "stroke:#000000,stroke-width:1px",
    "thread": "stroke:#1f4fbf,stroke-width:3px",
    "callback": "stroke:#1e8a3c,stroke-width:2px,stroke-dasharray:6 4",
    "ops": "stroke:#d9730d,stroke-width:2px,stroke-dasharray:2 3",
    "fnptr": "stroke:#808080,stroke-width:1px,stroke-dasharray:6 4",
    "note": "stroke:#b08d00,stroke-width:1px,stroke-dasharray:3 3",
}
CLUSTER_STYLE = "fill:#f3f6fb,stroke:#9aaccc,color:#34495e"
LOW_CONFIDENCE_OPS = "stroke:#8e44ad,stroke-width:2px,stroke-dasharray:2 3"
CLASS_STYLE = {
    "function": "fill:#ffffff,stroke:#333333",
    "entry": "fill:#c8f0c8,stroke:#1e8a3c,stroke-width:3px",
    "target": "fill:#ffd0d0,stroke:#c0392b,stroke-width:3px",
    "entrytarget": "fill:#ffe8a8,stroke:#c0392b,stroke-width:3px",
    "group": "fill:#eeeeee,stroke:#888888,color:#444444",
    "note": "fill:#fff6c2,stroke:#b08d00,font-family:monospace",
}

# Characters with a meaning in Mermaid's syntax (or in the HTML it renders to),
# written as Mermaid entity codes (`#35;`), so a label is only ever text. Line
# breaks and other control characters too: Mermaid reads one statement per line,
# so a file name holding "\nclick n0 call ..." would otherwise add a statement.
_BREAKS = {chr(code) for code in range(32)} | set("\x7f\x85\u2028\u2029")
_SPECIAL = set('"#<>[](){}|&;`\\') | _BREAKS


def escape(text: str) -> str:
    """Return `text` safe inside a quoted Mermaid label: special and control characters as `#NN;` entity codes."""
    return "".join(f"#{ord(char)};" if char in _SPECIAL else char for char in text)


# What a string outside a label (the title, a tooltip) must not hold: entity codes are
# not read there, so look-alikes stand in. Mermaid finds `%%{init: ...}%%` directives
# anywhere in its text, and shows tooltips as HTML.
_LOOK_ALIKES = str.maketrans({'"': "'", "\\": "/", "{": "(", "}": ")", "<": "‹", ">": "›",
                              **{char: " " for char in _BREAKS}})


def one_line(text: str) -> str:
    """Return `text` on one line, with look-alikes for `"`, `\\`, `{}` and `<>` (for the title and tooltips)."""
    return text.translate(_LOOK_ALIKES)


def _label(lines: tuple[str, ...] | list[str]) -> str:
    return '"' + "<br/>".join(escape(line) for line in lines) + '"'


def _tooltip(text: str) -> str:
    """Return a one-line tooltip for a `click` statement: no quotes, no line breaks."""
    return one_line(" · ".join(line.strip() for line in text.splitlines() if line.strip()))


def _shape(box: Box, ids: dict[str, str]) -> str:
    label = _label(box.lines)
    if box.role == "note":
        return f"{ids[box.id]}>{label}]"  # the flag shape reads as a note
    if box.role == "group":
        return f"{ids[box.id]}[[{label}]]"
    return f"{ids[box.id]}[{label}]"


def _arrow(arrow: Arrow, ids: dict[str, str]) -> str:
    label = f"|{_label([arrow.label])}|" if arrow.label else ""
    return f"{ids[arrow.src]} {ARROW.get(arrow.kind, '-->')}{label} {ids[arrow.dst]}"


def mermaid_source(diagram: Diagram) -> str:
    """Return the Mermaid flowchart text of a diagram."""
    options = diagram.options
    ids = {box.id: f"n{index}" for index, box in enumerate(diagram.boxes)}
    title = one_line(diagram.title)
    out = ["---", f'title: "{title}"', "---", f"flowchart {options.rankdir}"]
    by_cluster: dict[str, list[Box]] = {}
    for box in diagram.boxes:
        by_cluster.setdefault(box.cluster, []).append(box)
    for index, (key, cluster_title) in enumerate(diagram.clusters.items()):
        out.append(f"    subgraph c{index}[{_label([cluster_title])}]")
        out.extend(f"        {_shape(box, ids)}" for box in by_cluster.get(key, []))
        out.append("    end")
    out.extend(f"    {_shape(box, ids)}" for box in by_cluster.get("", []))
    for arrow in diagram.arrows:
        out.append(f"    {_arrow(arrow, ids)}")
    for index, arrow in enumerate(diagram.arrows):
        style = LOW_CONFIDENCE_OPS if arrow.low_confidence and arrow.kind == "ops" else LINK_STYLE.get(arrow.kind, LINK_STYLE["direct"])
        out.append(f"    linkStyle {index} {style}")
    for index in range(len(diagram.clusters)):  # the Graphviz clusters' colours, not the theme's yellow
        out.append(f"    style c{index} {CLUSTER_STYLE}")
    for name, style in CLASS_STYLE.items():
        out.append(f"    classDef {name} {style}")
    by_role: dict[str, list[str]] = {}
    for box in diagram.boxes:
        by_role.setdefault(box.role.replace(" ", ""), []).append(ids[box.id])
    for role in sorted(by_role):
        out.append(f"    class {','.join(by_role[role])} {role}")
    if options.link_template:
        for box in diagram.boxes:
            if box.href:
                out.append(f'    click {ids[box.id]} href "{box.href}" "{_tooltip(box.tooltip)}" _blank')
    return "\n".join(out) + "\n"


def render_mermaid(document: dict, options: DiagramOptions | None = None) -> str:
    """Return the Mermaid flowchart of a trace document; the same document gives the same text."""
    return mermaid_source(build(document, options))
