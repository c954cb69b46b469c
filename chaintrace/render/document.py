"""A trace as a JSON document of the versioned schema `chaintrace.trace/1` (see docs/trace-schema.md).

Diagrams, docs and checks consume this document: add fields freely, but
renaming or removing one, or changing its meaning, needs a new schema
version. `SCHEMA` is the one name of that version; `check_document` is what
a consumer asks of a document it did not write.
"""

from __future__ import annotations

from collections import Counter

from chaintrace.errors import UsageError
from chaintrace.query.lookup import GraphLookup
from chaintrace.query.results import TargetTrace, Trace, counts_by_target

SCHEMA = "chaintrace.trace/1"


def check_document(document: object) -> dict:
    """Return `document` when it is a trace document of this schema; raise UsageError saying why not."""
    if not isinstance(document, dict):
        raise UsageError("not a chaintrace trace document (expected a JSON object)")
    schema = document.get("schema")
    if schema != SCHEMA:
        raise UsageError(f"not a {SCHEMA} document (schema: {schema!r}); write one with `chaintrace trace ... -o trace.json`")
    for key in ("query", "targets", "nodes", "edges", "paths"):
        if key not in document:
            raise UsageError(f"trace document has no {key!r}")
    return document


def trace_document(cg: GraphLookup, trace: Trace, *, query: dict | None = None, tree: str = "", version: str = "") -> dict:
    """Return the JSON-able document of a trace.

    `query` adds the user's spelling of the query (`{"from": "qmp:migrate",
    "to": "assign:threshold_size"}`) to the parameters the trace records;
    `tree` and `version` name the source tree.
    """
    kinds = trace.query.get("edge_kinds")
    paths = _Paths(cg, kinds, trace.entry)
    targets = [_target(index, result, paths) for index, result in enumerate(trace.targets)]
    nodes = []
    for node in paths.node_ids:
        attrs = cg.node(node)
        nodes.append({"id": node, "name": attrs["name"], "file": attrs["file"], "line": attrs["line"],
                      "end_line": attrs["end_line"], "static": attrs["static"], "external": attrs["external"]})
    edges = []
    for src, dst in paths.hops:
        for kind, data in cg.edges_between(src, dst, kinds):
            edge = {"src": src, "dst": dst, "kind": kind, "sites": data["sites"], "proof": data.get("proof"),
                    "confidence": data.get("confidence", "high")}
            edge.update({k: v for k, v in data.items() if k not in edge})
            edges.append(edge)
    unique = {result.site.function: result for result in trace.targets}  # sites in one function share their paths
    return {
        "schema": SCHEMA,
        "query": {**(query or {}), **trace.query},
        "tree": tree,
        "version": version,
        "targets": targets,
        "nodes": nodes,
        "edges": edges,
        "paths": paths.listed,
        "counts": {**_counts(sum(r.count.total for r in unique.values()), sum(len(r.paths) for r in unique.values()),
                             all(r.count.exact for r in unique.values()), paths.all_by_kind),
                   "edges_by_kind": dict(sorted(Counter(edge["kind"] for edge in edges).items())),
                   **({"by_target": by_target} if (by_target := counts_by_target(trace)) else {})},
        "diagnostics": trace.diagnostics,
        "undecided": {"total": trace.undecided_total, "nearest": trace.undecided},
    }


class _Paths:
    """The document's paths, each listed once per target function, with the nodes and hops they pass."""

    def __init__(self, cg: GraphLookup, kinds: list[str] | None, entry: str) -> None:
        self.cg, self.kinds = cg, kinds
        self.node_ids: dict[str, None] = {entry: None}
        self.hops: dict[tuple[str, str], None] = {}
        self.listed: list[dict] = []
        self.all_by_kind: Counter = Counter()
        self.first: dict[str, tuple[int, Counter]] = {}  # target function -> (index of its first path, kinds)

    def of(self, result: TargetTrace) -> tuple[int, Counter]:
        """Return the index of a target's first path and the edge kinds its paths use, listing them on first sight."""
        function = result.site.function
        if function not in self.first:  # sites in one function share their paths: list them once
            by_kind: Counter = Counter()
            self.first[function] = (len(self.listed), by_kind)
            for path in result.paths:
                path_kinds = [[kind for kind, _ in self.cg.edges_between(a, b, self.kinds)] for a, b in zip(path, path[1:])]
                by_kind.update({kind for hop in path_kinds for kind in hop})
                self.listed.append({"targets": [], "nodes": path, "kinds": path_kinds})
                self.node_ids.update(dict.fromkeys(path))
                self.hops.update(dict.fromkeys(zip(path, path[1:])))
            self.all_by_kind += by_kind
        self.node_ids[function] = None
        return self.first[function]


def _target(index: int, result: TargetTrace, paths: _Paths) -> dict:
    """Return target `index` of the document, marking it on each of its paths."""
    start, by_kind = paths.of(result)
    for path in paths.listed[start:start + len(result.paths)]:
        path["targets"].append(index)
    site = result.site
    return {
        "kind": site.kind, "function": site.function, "file": site.file, "line": site.line, "col": site.col,
        "statement": site.statement, "context": site.context or {"loops": [], "conditions": [], "guards": []},
        **({"access": site.access, "field": site.field, "receiver_type": site.receiver_type, "match": site.match}
           if site.access else {}),
        **({"to": site.target} if site.target else {}),
        "paths": list(range(start, start + len(result.paths))),
        "counts": {**_counts(result.count.total, len(result.paths), result.count.exact, by_kind),
                   "method": result.count.method, "chop_nodes": result.chop_nodes},
    }


def _counts(total: int, enumerated: int, exact: bool, by_kind: Counter) -> dict:
    return {
        "paths_total": total,
        "exact": exact,
        "enumerated": enumerated,
        "omitted": max(0, total - enumerated),
        "by_edge_kind": dict(sorted(by_kind.items())),
    }
