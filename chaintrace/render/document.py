"""A trace as a JSON document of the versioned schema `chaintrace.trace/1` (see docs/trace-schema.md).

Diagrams, docs and checks consume this document: add fields freely, but
renaming or removing one, or changing its meaning, needs a new schema
version.
"""

from __future__ import annotations

import json
from collections import Counter

from chaintrace.query.lookup import GraphLookup
from chaintrace.query.results import Trace

SCHEMA = "chaintrace.trace/1"


def _counts(total: int, enumerated: int, exact: bool, by_kind: Counter) -> dict:
    return {
        "paths_total": total,
        "exact": exact,
        "enumerated": enumerated,
        "omitted": max(0, total - enumerated),
        "by_edge_kind": dict(sorted(by_kind.items())),
    }


def trace_document(cg: GraphLookup, trace: Trace, *, query: dict | None = None, tree: str = "", version: str = "") -> dict:
    """Return the JSON-able document of a trace.

    `query` adds the user's spelling of the query (`{"from": "qmp:migrate",
    "to": "assign:threshold_size"}`) to the parameters the trace records;
    `tree` and `version` name the source tree.
    """
    kinds = trace.query.get("edge_kinds")
    node_ids: dict[str, None] = {trace.entry: None}
    hops: dict[tuple[str, str], None] = {}
    targets, paths = [], []
    all_by_kind: Counter = Counter()
    first_path: dict[str, tuple[int, Counter]] = {}  # target function -> (index of its first path, kinds)
    for index, result in enumerate(trace.targets):
        site = result.site
        if site.function not in first_path:  # sites in one function share their paths: list them once
            by_kind: Counter = Counter()
            first_path[site.function] = (len(paths), by_kind)
            for path in result.paths:
                path_kinds = [[kind for kind, _ in cg.edges_between(a, b, kinds)] for a, b in zip(path, path[1:])]
                by_kind.update({kind for hop in path_kinds for kind in hop})
                paths.append({"targets": [], "nodes": path, "kinds": path_kinds})
                node_ids.update(dict.fromkeys(path))
                hops.update(dict.fromkeys(zip(path, path[1:])))
            all_by_kind += by_kind
        start, by_kind = first_path[site.function]
        for path in paths[start:start + len(result.paths)]:
            path["targets"].append(index)
        node_ids[site.function] = None
        targets.append({
            "kind": site.kind, "function": site.function, "file": site.file, "line": site.line, "col": site.col,
            "statement": site.statement, "context": site.context or {"loops": [], "conditions": [], "guards": []},
            "paths": list(range(start, start + len(result.paths))),
            "counts": {**_counts(result.count.total, len(result.paths), result.count.exact, by_kind),
                       "method": result.count.method, "chop_nodes": result.chop_nodes},
        })
    nodes = []
    for node in node_ids:
        attrs = cg.node(node)
        nodes.append({"id": node, "name": attrs["name"], "file": attrs["file"], "line": attrs["line"],
                      "end_line": attrs["end_line"], "static": attrs["static"], "external": attrs["external"]})
    edges = []
    for src, dst in hops:
        for kind, data in cg.edges_between(src, dst, kinds):
            edge = {"src": src, "dst": dst, "kind": kind, "sites": data["sites"], "proof": data.get("proof"),
                    "confidence": data.get("confidence", "high")}
            edge.update({k: v for k, v in data.items() if k not in edge})
            edges.append(edge)
    unique = {}
    for result in trace.targets:  # sites in one function share their paths: count them once
        unique[result.site.function] = result
    return {
        "schema": SCHEMA,
        "query": {**(query or {}), **trace.query},
        "tree": tree,
        "version": version,
        "targets": targets,
        "nodes": nodes,
        "edges": edges,
        "paths": paths,
        "counts": {**_counts(sum(r.count.total for r in unique.values()), sum(len(r.paths) for r in unique.values()),
                             all(r.count.exact for r in unique.values()), all_by_kind),
                   "edges_by_kind": dict(sorted(Counter(edge["kind"] for edge in edges).items()))},
        "diagnostics": trace.diagnostics,
    }


def render_json(cg: GraphLookup, trace: Trace, **kwargs: str | dict | None) -> str:
    """Return the trace document (see `trace_document`) as indented JSON text."""
    return json.dumps(trace_document(cg, trace, **kwargs), indent=2, ensure_ascii=False) + "\n"
