"""Which box each function of a diagram goes to: its own, its file's (`collapse_file`), or a `+N more` box.

Clusters group boxes by file or dir (`cluster_key`); folding keeps a
diagram within `max_nodes` functions (`fold_nodes`).
"""

from __future__ import annotations

import fnmatch
import posixpath

from chaintrace.render.diagram.options import DiagramOptions

FOLD_SCOPES = ("file", "dir", "top dir", "anywhere")


def cluster_key(file: str, mode: str) -> str:
    if not file or mode == "none":
        return ""
    return file if mode == "file" else (posixpath.dirname(file) or ".")


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


def _scope(file: str, level: int) -> str:
    """Return the `+N more` box a folded function of `file` goes to at fold `level` (see FOLD_SCOPES)."""
    if not file:
        return "more:"  # defined outside the tree
    top = file.split("/", 1)[0] if "/" in file else "."
    return (f"more:{file}", f"more:{posixpath.dirname(file) or '.'}/", f"more:{top}/", "more:*")[level]


def fold_nodes(document: dict, nodes: dict[str, dict], keep: set[str], options: DiagramOptions) -> dict[str, str]:
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


def more_place(box_id: str, file: str, mode: str) -> tuple[str, str]:
    """Return where the functions of a `+N more` box are (as far as its cluster does not say it), and its cluster."""
    scope = box_id.removeprefix("more:")
    if not scope:
        return "outside the tree", ""
    if scope == "*":
        return "elsewhere", ""
    if scope.endswith("/"):  # a dir or top dir: its own cluster when clustering by dir
        return ("", scope.rstrip("/")) if mode == "dir" else (f"in {scope}", "")
    # one file: in a file cluster the cluster names the file; in a dir cluster several files share it
    return {"file": "", "dir": posixpath.basename(file), "none": file}[mode], cluster_key(file, mode)
