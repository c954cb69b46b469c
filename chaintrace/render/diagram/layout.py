"""Diagrams of a trace document: the drawing model shared by Graphviz and Mermaid, and `write`.

A diagram is built from the trace document alone (`chaintrace.trace/1`, see
docs/trace-schema.md): never from C sources or the call graph.  `build`
turns the document into a `Diagram` -- boxes, arrows and notes with their
labels and tooltips already worded, after `DiagramOptions` folded what does
not fit -- and `chaintrace.render.diagram.dot` / `chaintrace.render.diagram.mermaid` only
lay that model out in their syntax, so both formats show the same thing.
"""

from __future__ import annotations

import fnmatch
import posixpath
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from chaintrace.errors import UsageError
from chaintrace.render.diagram.options import FORMATS, DiagramOptions

SCHEMA = "chaintrace.trace/1"
EDGE_KINDS = ("direct", "thread", "callback", "ops", "fnptr")
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


def check_document(document: object) -> dict:
    """Return `document` when it is a trace document this module can draw; raise UsageError saying why not."""
    if not isinstance(document, dict):
        raise UsageError("not a chaintrace trace document (expected a JSON object)")
    schema = document.get("schema")
    if schema != SCHEMA:
        raise UsageError(f"not a {SCHEMA} document (schema: {schema!r}); write one with `chaintrace trace ... -o trace.json`")
    for key in ("query", "targets", "nodes", "edges", "paths"):
        if key not in document:
            raise UsageError(f"trace document has no {key!r}")
    return document


def _cluster_key(file: str, mode: str) -> str:
    if not file or mode == "none":
        return ""
    return file if mode == "file" else (posixpath.dirname(file) or ".")


def _where_in_cluster(file: str, line: int, mode: str) -> str:
    """Return `file:line` shortened by what the cluster's title already says."""
    if not file:
        return "(not in the tree)"
    shown = posixpath.basename(file) if mode in ("file", "dir") else file
    return f"{shown}:{line}"


def _link(template: str, file: str, line: int) -> str:
    if not template or not file:
        return ""
    return template.replace("{file}", file).replace("{line}", str(line))


def _matches(file: str, patterns: tuple[str, ...]) -> bool:
    return any(file == pattern or fnmatch.fnmatchcase(file, pattern) for pattern in patterns)


def _path_order(document: dict) -> list[list[str]]:
    """Return the paths round-robin over targets (each target's shortest first), so max_nodes is fair to all targets."""
    per_target = [target["paths"] for target in document["targets"]]
    order: dict[int, None] = {}
    for rank in range(max((len(indices) for indices in per_target), default=0)):
        for indices in per_target:
            if rank < len(indices):
                order.setdefault(indices[rank])
    return [document["paths"][index]["nodes"] for index in order]


FOLD_SCOPES = ("file", "dir", "top dir", "anywhere")


def _scope(file: str, level: int) -> str:
    """Return the `+N more` box a folded function of `file` goes to at fold `level` (see FOLD_SCOPES)."""
    if not file:
        return "more:"  # defined outside the tree
    top = file.split("/", 1)[0] if "/" in file else "."
    return (f"more:{file}", f"more:{posixpath.dirname(file) or '.'}/", f"more:{top}/", "more:*")[level]


def _fold(document: dict, nodes: dict[str, dict], keep: set[str], options: DiagramOptions) -> dict[str, str]:
    """Return node id -> box id: itself, its `collapse_file` box (`file:F`) or a `+N more` box (`more:...`, see `_scope`).

    When more than `max_nodes` functions would be drawn, whole paths are
    kept, shortest first and round-robin over targets, while they fit (a
    half-drawn path would show arrows that lead nowhere).  The other
    functions are folded into one `+N more` box per file when the file has
    functions drawn (the box sits in the file's cluster); those of the
    other files go to at most `max_nodes // 6` boxes, per file, dir, top
    dir, or one for all, the finest that fits: forty grey boxes in clusters
    of their own are no easier to read than the functions they hide.
    """
    group: dict[str, str] = {}
    for node_id, node in nodes.items():
        if node_id not in keep and node["file"] and _matches(node["file"], options.collapse_file):
            group[node_id] = f"file:{node['file']}"
    free = [node_id for node_id in nodes if node_id not in group]
    if len(free) <= options.max_nodes:
        group.update((node_id, node_id) for node_id in free)
        return group
    more_budget = max(1, options.max_nodes // 6)
    shown = set(keep)
    for path in _path_order(document):
        new = {node for node in path if node not in shown and node not in group}
        if len(shown) + len(new) <= options.max_nodes:
            shown |= new
    drawn_files = {nodes[node_id]["file"] for node_id in shown}
    rest = [node_id for node_id in free if node_id not in shown and nodes[node_id]["file"] not in drawn_files]
    level = next(level for level in range(len(FOLD_SCOPES))
                 if level == len(FOLD_SCOPES) - 1 or len({_scope(nodes[n]["file"], level) for n in rest}) <= more_budget)
    for node_id in free:
        file = nodes[node_id]["file"]
        group[node_id] = node_id if node_id in shown else _scope(file, 0 if file in drawn_files else level)
    return group


def _site_where(site: dict, src_file: str) -> str:
    """Return `L123` for a site in the caller's file, `file:123` otherwise (a macro from a header)."""
    return f"L{site['line']}" if site.get("file") == src_file else f"{site.get('file', '?')}:{site['line']}"


def _site_context(site: dict) -> list[str]:
    lines = [f"  in {loop['condition']} (line {loop['line']})" for loop in site.get("loops", [])]
    lines += [f"  #if {condition}" for condition in site.get("conditions", [])]
    return lines


def _how(edge: dict) -> str:
    """Return what makes a non-direct edge, shortly: the registrar, the struct field or the called pointer."""
    kind, site, proof = edge["kind"], edge["sites"][0], edge.get("proof") or {}
    if kind in ("thread", "callback"):
        return site.get("registrar") or proof.get("registrar") or proof.get("field") or "?"
    if kind == "ops":
        return f".{proof['field']}" if proof.get("field") else site.get("callee", "?")
    if kind == "fnptr":
        return site.get("callee") or proof.get("lhs") or "?"
    return ""


def _edge_label(edge: dict, src_file: str) -> str:
    sites = edge["sites"]
    wheres = [_site_where(site, src_file) for site in sites[:2]]
    more = f" +{len(sites) - 2}" if len(sites) > 2 else ""
    parts = [_how(edge)] if edge["kind"] != "direct" else []
    parts.append(",".join(wheres) + more)
    if edge.get("confidence") == "low":
        parts.append("?")
    if any(site.get("loops") for site in sites):
        parts.insert(0, "↻")
    if any(site.get("conditions") for site in sites):
        parts.append("#if")
    return " ".join(part for part in parts if part)


def _edge_tooltip(edge: dict, names: dict[str, str]) -> str:
    kind = edge["kind"]
    head = f"{names.get(edge['src'], edge['src'])} → {names.get(edge['dst'], edge['dst'])}: {kind}"
    if edge.get("detail"):
        head += f" ({edge['detail']})"
    lines = [head]
    for site in edge["sites"]:
        what = _how({**edge, "sites": [site]}) if kind != "direct" else ""
        lines.append(f"{site.get('file', '?')}:{site['line']}" + (f" via {what}" if what else "")
                     + (f" (in macro {site['macro']})" if site.get("macro") else ""))
        lines += _site_context(site)
    proof = edge.get("proof")
    if proof and kind in ("ops", "fnptr"):
        stored = f"{proof.get('struct_type') or '?'}.{proof['field']}" if proof.get("field") else proof.get("lhs", "?")
        lines.append(f"{stored} set at {proof.get('file', '?')}:{proof.get('line', '?')} ({proof.get('how', '')})")
    if edge.get("confidence") == "low":
        lines.append("low confidence: receiver type unknown, resolved by field name")
    if edge.get("ambiguous"):
        lines.append(f"{len(edge['ambiguous'])} definitions: {edge.get('preferred', '')}")
    return "\n".join(lines)


def _merge_arrows(edges: list[dict], src: str, dst: str, kind: str, names: dict[str, str], src_file: str, link: str) -> Arrow:
    """Return one arrow for the edges of one kind between two boxes (several when a box is a folded group)."""
    if len(edges) == 1:
        edge = edges[0]
        site = edge["sites"][0]
        return Arrow(src, dst, kind, _edge_label(edge, src_file), _edge_tooltip(edge, names),
                     edge.get("confidence") == "low", _link(link, site.get("file", ""), site["line"]))
    marks = ("↻ " if any(s.get("loops") for e in edges for s in e["sites"]) else "") + f"{len(edges)} calls"
    if any(s.get("conditions") for e in edges for s in e["sites"]):
        marks += " #if"
    shown = [_edge_tooltip(edge, names) for edge in edges[:8]]
    if len(edges) > 8:
        shown.append(f"... and {len(edges) - 8} more")
    low = all(edge.get("confidence") == "low" for edge in edges)
    return Arrow(src, dst, kind, marks, "\n".join(shown), low)


def _title(document: dict) -> str:
    query = document.get("query", {})
    what = f"{query.get('from', query.get('entry', '?'))} → {query.get('to', '?')}"
    version = document.get("version") or posixpath.basename(str(document.get("tree", "")).rstrip("/"))
    counts = document.get("counts", {})
    total, listed = counts.get("paths_total"), counts.get("enumerated", len(document["paths"]))
    if total is None:
        paths = f"{listed} path{'s' if listed != 1 else ''}"
    else:
        bound = "" if counts.get("exact", True) else "≥ "
        paths = f"{bound}{total} path{'s' if total != 1 else ''}" + (f", {listed} drawn" if listed != total else "")
    return "  ·  ".join(part for part in (what, version, paths) if part)


def build(document: dict, options: DiagramOptions | None = None) -> Diagram:
    """Return the `Diagram` of a trace document: boxes, arrows and clusters, sorted, with `options` applied."""
    options = options or DiagramOptions()
    check_document(document)
    nodes = {node["id"]: node for node in document["nodes"]}
    names = {node_id: node["name"] for node_id, node in nodes.items()}
    entry = document["query"].get("entry", "")
    target_functions = {target["function"] for target in document["targets"]}
    group = _fold(document, nodes, {entry} | target_functions, options)

    boxes: list[Box] = []
    members: dict[str, list[dict]] = defaultdict(list)
    for node_id, node in nodes.items():
        if group[node_id] != node_id:
            members[group[node_id]].append(node)
            continue
        role = " ".join(r for r, on in (("entry", node_id == entry), ("target", node_id in target_functions)) if on)
        tooltip = f"{node['name']}\n{node['file']}:{node['line']}" if node["file"] else f"{node['name']}\n(defined outside the tree)"
        if node.get("static"):
            tooltip += "\nstatic"
        boxes.append(Box(node_id, role or "function", (node["name"], _where_in_cluster(node["file"], node["line"], options.cluster)),
                         tooltip, _cluster_key(node["file"], options.cluster), _link(options.link_template, node["file"], node["line"])))
    folded = 0
    for box_id, functions in members.items():
        functions.sort(key=lambda n: (n["line"], n["name"]))
        file = functions[0]["file"]
        if box_id.startswith("file:"):
            head = (posixpath.basename(file) if options.cluster != "none" else file, f"{len(functions)} function{'s' * (len(functions) != 1)}")
            cluster = _cluster_key(file, options.cluster)
        else:
            folded += len(functions)
            where, cluster = _more_place(box_id, file, options.cluster)
            head = (f"+{len(functions)} more", where)
        listed = [f"{n['name']}  {n['file']}:{n['line']}" for n in functions[:25]]
        if len(functions) > 25:
            listed.append(f"... and {len(functions) - 25} more")
        boxes.append(Box(box_id, "group", tuple(line for line in head if line), "\n".join(listed),
                         cluster, _link(options.link_template, file, functions[0]["line"])))

    for index, target in enumerate(document["targets"]):
        if target["kind"] == "function":  # the target is the function itself: its box says it all
            continue
        context = target.get("context") or {}
        where = f"{target['file']}:{target['line']}" if target["file"] else "(not in the tree)"
        lines = [*_wrap(target.get("statement") or target["function"], 44, 3), where]
        if context.get("loops"):
            lines.append("↻ " + _clip(context["loops"][-1]["condition"], 44))
        if context.get("conditions"):
            lines.append("#if " + _clip(" && ".join(context["conditions"]), 44))
        tooltip = [target.get("statement", ""), where]
        tooltip += [f"in {loop['condition']} (line {loop['line']})" for loop in context.get("loops", [])]
        tooltip += [f"#if {condition}" for condition in context.get("conditions", [])]
        tooltip += [f"after early return if {guard['condition']} (line {guard['line']})" for guard in context.get("guards", [])]
        boxes.append(Box(f"target:{index}", "note", tuple(lines), "\n".join(tooltip),
                         _cluster_key(target["file"], options.cluster), _link(options.link_template, target["file"], target["line"])))

    by_pair: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for edge in document["edges"]:
        src, dst = group.get(edge["src"], edge["src"]), group.get(edge["dst"], edge["dst"])
        if src != dst:  # calls inside one folded box are not drawn
            by_pair[(src, dst, edge["kind"])].append(edge)
    src_files = {node_id: node["file"] for node_id, node in nodes.items()}
    arrows = [_merge_arrows(sorted(edges, key=_edge_key), src, dst, kind, names, src_files.get(edges[0]["src"], ""), options.link_template)
              for (src, dst, kind), edges in by_pair.items()]
    arrows += [Arrow(target["function"], f"target:{index}", "note", "", "") for index, target in enumerate(document["targets"])
               if target["kind"] != "function"]

    order = {box.id: _box_key(box, nodes) for box in boxes}
    boxes.sort(key=lambda box: order[box.id])
    arrows.sort(key=lambda arrow: (order.get(arrow.src, ()), order.get(arrow.dst, ()), _kind_rank(arrow.kind)))
    clusters = {key: key + ("/" if options.cluster == "dir" and key != "." else "") for key in sorted({box.cluster for box in boxes} - {""})}
    kinds = tuple(kind for kind in EDGE_KINDS if any(arrow.kind == kind for arrow in arrows))
    return Diagram(_title(document), tuple(boxes), tuple(arrows), clusters, kinds, options, folded)


def _more_place(box_id: str, file: str, mode: str) -> tuple[str, str]:
    """Return where the functions of a `+N more` box are (as far as its cluster does not say it), and its cluster."""
    scope = box_id.removeprefix("more:")
    if not scope:
        return "outside the tree", ""
    if scope == "*":
        return "elsewhere", ""
    if scope.endswith("/"):  # a dir or top dir: its own cluster when clustering by dir
        return ("", scope.rstrip("/")) if mode == "dir" else (f"in {scope}", "")
    # one file: in a file cluster the cluster names the file; in a dir cluster several files share it
    return {"file": "", "dir": posixpath.basename(file), "none": file}[mode], _cluster_key(file, mode)


def _wrap(text: str, width: int, most: int) -> list[str]:
    """Return `text` in lines of about `width` characters, at most `most` lines (the last one clipped with `…`)."""
    lines = textwrap.wrap(" ".join(text.split()), width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > most:
        lines = lines[: most - 1] + [_clip(" ".join(lines[most - 1:]), width)]
    return lines


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _kind_rank(kind: str) -> int:
    return EDGE_KINDS.index(kind) if kind in EDGE_KINDS else len(EDGE_KINDS)


def _edge_key(edge: dict) -> tuple:
    site = edge["sites"][0] if edge["sites"] else {}
    return (edge["src"], edge["dst"], site.get("file", ""), site.get("line", 0), site.get("col", 0))


def _box_key(box: Box, nodes: dict[str, dict]) -> tuple:
    """Sort boxes by cluster, then where they are defined; group and note boxes after the functions of their file."""
    node = nodes.get(box.id)
    if node:
        return (box.cluster, node["file"], 0, node["line"], box.id)
    return (box.cluster, box.id.split(":", 1)[1] if box.id.startswith(("file:", "more:")) else "", 1, 0, box.id)


def write(document: dict, path: Path, options: DiagramOptions | None = None) -> None:
    """Write the diagram of `document` to `path`, in the format its extension names.

    `.dot`/`.gv` (Graphviz source), `.svg`, `.png`, `.pdf` (laid out by Graphviz),
    `.mmd` (Mermaid).  Raises UsageError for another extension and
    ChaintraceError when no Graphviz can lay the diagram out (the `.dot` is
    then written next to `path`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"cannot write {path.name}: unknown format {suffix or '(none)'} "
                         f"(known: .json, .txt, {', '.join(FORMATS)})")
    options = options or DiagramOptions()
    if suffix == ".mmd":
        from chaintrace.render.diagram.mermaid import render_mermaid

        path.write_text(render_mermaid(document, options), encoding="utf-8")
        return
    from chaintrace.render.diagram import dot

    source = dot.render_dot(document, options)
    if suffix in (".dot", ".gv"):
        path.write_text(source, encoding="utf-8")
    else:
        dot.draw(source, path, suffix[1:])
