"""A trace document -> the `Diagram` Graphviz and Mermaid draw (`build`).

A diagram is built from the trace document alone (`chaintrace.trace/1`, see
docs/trace-schema.md): never from C sources or the call graph.  `build`
turns the document into a `Diagram` (`drawing`) -- boxes, arrows and notes
with their labels and tooltips already worded (`labels`), after
`DiagramOptions` folded what does not fit (`fold`) -- and
`chaintrace.render.diagram.dot` / `chaintrace.render.diagram.mermaid` only
lay that model out in their syntax, so both formats show the same thing;
`output.write` picks one by a file's extension.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict

from chaintrace.graph.kinds import EDGE_KINDS, kind_order
from chaintrace.render.diagram.drawing import Arrow, Box, Diagram
from chaintrace.render.diagram.fold import cluster_key, fold_nodes, more_place
from chaintrace.render.diagram.labels import clip, link, merge_arrows, title, where_in_cluster, wrap
from chaintrace.render.diagram.options import DiagramOptions
from chaintrace.render.document import check_document


def build(document: dict, options: DiagramOptions | None = None) -> Diagram:
    """Return the `Diagram` of a trace document: boxes, arrows and clusters, sorted, with `options` applied."""
    options = options or DiagramOptions()
    check_document(document)
    nodes = {node["id"]: node for node in document["nodes"]}
    names = {node_id: node["name"] for node_id, node in nodes.items()}
    entry = document["query"].get("entry", "")
    target_functions = {target["function"] for target in document["targets"]}
    group = fold_nodes(document, nodes, {entry} | target_functions, options)
    members: dict[str, list[dict]] = defaultdict(list)
    for node_id, node in nodes.items():
        if group[node_id] != node_id:
            members[group[node_id]].append(node)
    boxes = [_function_box(node_id, node, entry, target_functions, options)
             for node_id, node in nodes.items() if group[node_id] == node_id]
    boxes += [_group_box(box_id, functions, options) for box_id, functions in members.items()]
    folded = sum(len(functions) for box_id, functions in members.items() if not box_id.startswith("file:"))
    boxes += [_note_box(index, target, options) for index, target in enumerate(document["targets"])
              if target["kind"] != "function"]  # a function target's own box says it all
    arrows = _arrows(document, nodes, names, group, options)
    order = {box.id: _box_key(box, nodes) for box in boxes}
    boxes.sort(key=lambda box: order[box.id])
    arrows.sort(key=lambda arrow: (order.get(arrow.src, ()), order.get(arrow.dst, ()), kind_order(arrow.kind)))
    clusters = {key: key + ("/" if options.cluster == "dir" and key != "." else "") for key in sorted({box.cluster for box in boxes} - {""})}
    kinds = tuple(kind for kind in EDGE_KINDS if any(arrow.kind == kind for arrow in arrows))
    return Diagram(title(document), tuple(boxes), tuple(arrows), clusters, kinds, options, folded)


def _function_box(node_id: str, node: dict, entry: str, target_functions: set[str], options: DiagramOptions) -> Box:
    """Return the box of one function drawn on its own."""
    role = " ".join(r for r, on in (("entry", node_id == entry), ("target", node_id in target_functions)) if on)
    tooltip = f"{node['name']}\n{node['file']}:{node['line']}" if node["file"] else f"{node['name']}\n(defined outside the tree)"
    if node.get("static"):
        tooltip += "\nstatic"
    return Box(node_id, role or "function", (node["name"], where_in_cluster(node["file"], node["line"], options.cluster)),
               tooltip, cluster_key(node["file"], options.cluster), link(options.link_template, node["file"], node["line"]))


def _group_box(box_id: str, functions: list[dict], options: DiagramOptions) -> Box:
    """Return the box of functions folded together: a `collapse_file` file's, or a `+N more` box."""
    functions.sort(key=lambda n: (n["line"], n["name"]))
    file = functions[0]["file"]
    if box_id.startswith("file:"):
        head = (posixpath.basename(file) if options.cluster != "none" else file, f"{len(functions)} function{'s' * (len(functions) != 1)}")
        cluster = cluster_key(file, options.cluster)
    else:
        where, cluster = more_place(box_id, file, options.cluster)
        head = (f"+{len(functions)} more", where)
    listed = [f"{n['name']}  {n['file']}:{n['line']}" for n in functions[:25]]
    if len(functions) > 25:
        listed.append(f"... and {len(functions) - 25} more")
    return Box(box_id, "group", tuple(line for line in head if line), "\n".join(listed),
               cluster, link(options.link_template, file, functions[0]["line"]))


def _note_box(index: int, target: dict, options: DiagramOptions) -> Box:
    """Return the note box of a target statement, with its loops, `#if` conditions and guards."""
    context = target.get("context") or {}
    where = f"{target['file']}:{target['line']}" if target["file"] else "(not in the tree)"
    lines = [*wrap(target.get("statement") or target["function"], 44, 3), where]
    if context.get("loops"):
        lines.append("↻ " + clip(context["loops"][-1]["condition"], 44))
    if context.get("conditions"):
        lines.append("#if " + clip(" && ".join(context["conditions"]), 44))
    tooltip = [target.get("statement", ""), where]
    tooltip += [f"in {loop['condition']} (line {loop['line']})" for loop in context.get("loops", [])]
    tooltip += [f"#if {condition}" for condition in context.get("conditions", [])]
    tooltip += [f"after early return if {guard['condition']} (line {guard['line']})" for guard in context.get("guards", [])]
    return Box(f"target:{index}", "note", tuple(lines), "\n".join(tooltip),
               cluster_key(target["file"], options.cluster), link(options.link_template, target["file"], target["line"]))


def _arrows(document: dict, nodes: dict[str, dict], names: dict[str, str], group: dict[str, str],
            options: DiagramOptions) -> list[Arrow]:
    """Return one arrow per kind between two boxes, and one from each target function to its note."""
    by_pair: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for edge in document["edges"]:
        src, dst = group.get(edge["src"], edge["src"]), group.get(edge["dst"], edge["dst"])
        if src != dst:  # calls inside one folded box are not drawn
            by_pair[(src, dst, edge["kind"])].append(edge)
    src_files = {node_id: node["file"] for node_id, node in nodes.items()}
    arrows = [merge_arrows(sorted(edges, key=_edge_key), src, dst, kind, names, src_files.get(edges[0]["src"], ""), options.link_template)
              for (src, dst, kind), edges in by_pair.items()]
    arrows += [Arrow(target["function"], f"target:{index}", "note", "", "") for index, target in enumerate(document["targets"])
               if target["kind"] != "function"]
    return arrows


def _edge_key(edge: dict) -> tuple:
    site = edge["sites"][0] if edge["sites"] else {}
    return (edge["src"], edge["dst"], site.get("file", ""), site.get("line", 0), site.get("col", 0))


def _box_key(box: Box, nodes: dict[str, dict]) -> tuple:
    """Sort boxes by cluster, then where they are defined; group and note boxes after the functions of their file."""
    node = nodes.get(box.id)
    if node:
        return (box.cluster, node["file"], 0, node["line"], box.id)
    return (box.cluster, box.id.split(":", 1)[1] if box.id.startswith(("file:", "more:")) else "", 1, 0, box.id)
