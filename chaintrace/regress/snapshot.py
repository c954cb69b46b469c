"""Running a trace query for regression work, and snapshots: the canonical, stable JSON of a traced chain.

`run_query` traces an `api.TraceQuery` (its `sites` applied) and turns an
unknown entry, target or via function into the result's error.

A snapshot (schema `chaintrace.regress.snapshot/1`) keeps what a chain *is*: the
functions on its paths (ids, names, files; line spans and callee names kept
as data for `diff`'s rename detection), the edges between consecutive path
nodes with their kinds, the paths, the target sites and their statements,
and the path count.  Everything is sorted, so the same tree and query give
byte-identical files.  `check --snapshot` compares two of them with
`diff.diff_snapshots` (line numbers only when asked for).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from chaintrace import api
from chaintrace.api import TraceQuery
from chaintrace.errors import ChaintraceError, NotFound, UsageError
from chaintrace.render.document import trace_document

SCHEMA = "chaintrace.regress.snapshot/1"


@dataclass
class Traced:
    """The outcome of running a TraceQuery on a tree: the trace document, or the one-line `error` that stopped it."""

    query: TraceQuery
    document: dict | None
    error: str = ""
    callees: dict[str, list[str]] = field(default_factory=dict)  # node id -> names it calls (whole graph)
    tree: str = ""  # the tree's folder name
    version: str = ""


def run_query(tg, query: TraceQuery) -> Traced:
    """Return the trace of `query` on an `api.TreeGraph` (its store open).

    An unknown entry, target or via function is the result's `error`, not a raise.
    """
    try:
        result, graph = api.trace_query(tg, query)
    except NotFound as error:
        return Traced(query, None, str(error), tree=tg.root.name, version=tg.version)
    document = trace_document(graph, result, query={"from": query.source, "to": query.target},
                              tree=str(tg.root), version=tg.version)
    if query.sites:
        document = only_sites(document, query.sites)
    return Traced(query, document, "", callee_names(tg, [node["id"] for node in document["nodes"]]),
                  tg.root.name, tg.version)


def only_sites(document: dict, pattern: str) -> dict:
    """Return a trace document restricted to the target sites whose statement matches `pattern` (re.search).

    Paths, nodes and edges that only served the other sites are dropped, the counts recomputed.
    """
    kept = [t for t in document["targets"] if re.search(pattern, t["statement"])]
    old_paths = sorted({index for t in kept for index in t["paths"]})
    new_index = {old: new for new, old in enumerate(old_paths)}
    paths = [{**document["paths"][old], "targets": []} for old in old_paths]
    targets = []
    for number, target in enumerate(kept):
        targets.append({**target, "paths": [new_index[i] for i in target["paths"]]})
        for index in targets[-1]["paths"]:
            paths[index]["targets"].append(number)
    hops = {(a, b) for p in paths for a, b in zip(p["nodes"], p["nodes"][1:])}
    ids = {document["query"].get("entry")} | {n for p in paths for n in p["nodes"]} | {t["function"] for t in kept}
    edges = [e for e in document["edges"] if (e["src"], e["dst"]) in hops]
    per_function = {t["function"]: t["counts"] for t in kept}
    by_kind = Counter(kind for p in paths for kind in {k for hop in p["kinds"] for k in hop})
    total = sum(c["paths_total"] for c in per_function.values())
    counts = {"paths_total": total, "exact": all(c["exact"] for c in per_function.values()),
              "enumerated": len(paths), "omitted": max(0, total - len(paths)), "by_edge_kind": dict(sorted(by_kind.items())),
              "edges_by_kind": dict(sorted(Counter(e["kind"] for e in edges).items()))}
    return {**document, "query": {**document["query"], "sites": pattern}, "targets": targets,
            "nodes": [n for n in document["nodes"] if n["id"] in ids], "edges": edges, "paths": paths, "counts": counts}


def callee_names(tg, nodes: list[str]) -> dict[str, list[str]]:
    """Return {node id: sorted names of every function it calls or registers, over the whole graph}."""
    tables = tg.tables
    out: dict[str, set[str]] = {}
    for node in nodes:
        out[node] = {dst for _, dst, _, _ in tables.out_edges(node)}
    names = {row[0]: row[1] for row in tables.node_rows({dst for dsts in out.values() for dst in dsts})}
    return {node: sorted({names.get(dst, dst.rpartition("::")[2]) for dst in dsts}) for node, dsts in out.items()}


def snapshot_document(traced: Traced) -> dict:
    """Return the canonical snapshot of a trace (see the module docstring); an errored trace has no paths."""
    document = traced.document or {}
    functions = []
    for node in document.get("nodes", []):
        functions.append({"id": node["id"], "name": node["name"], "file": node["file"], "line": node["line"],
                          "end_line": node["end_line"],
                          "lines": max(0, node["end_line"] - node["line"] + 1) if node["line"] else 0,
                          "callees": traced.callees.get(node["id"], [])})
    edges = [{"src": e["src"], "dst": e["dst"], "kind": e["kind"],
              "sites": sorted({(s["file"], s["line"]) for s in e.get("sites", [])})} for e in document.get("edges", [])]
    for edge in edges:
        edge["sites"] = [{"file": f, "line": n} for f, n in edge["sites"]]
    paths = [{"nodes": p["nodes"], "kinds": [sorted(k) for k in p["kinds"]]} for p in document.get("paths", [])]
    targets = [{"function": t["function"], "file": t["file"], "line": t["line"], "statement": t["statement"],
                "reached": bool(t["paths"])} for t in document.get("targets", [])]
    counts = document.get("counts", {})
    return {
        "schema": SCHEMA,
        "query": traced.query.as_dict(),
        "tree": traced.tree,  # the folder's name: no machine's paths in the file
        "version": traced.version,
        "error": traced.error,
        "entry": document.get("query", {}).get("entry", ""),
        "functions": sorted(functions, key=lambda f: f["id"]),
        "edges": sorted(edges, key=lambda e: (e["src"], e["dst"], e["kind"])),
        "paths": sorted(paths, key=lambda p: (len(p["nodes"]), p["nodes"], p["kinds"])),
        "targets": sorted(targets, key=lambda t: (t["function"], t["file"], t["line"], t["statement"])),
        "counts": {"paths_total": counts.get("paths_total", 0), "exact": counts.get("exact", True),
                   "enumerated": counts.get("enumerated", 0)},
    }


def dumps(snapshot: dict) -> str:
    """Return the snapshot as its canonical text: sorted keys, two-space indent, final newline."""
    return json.dumps(snapshot, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_snapshot(path: Path, snapshot: dict) -> None:
    """Write a snapshot file (canonical text); raises ChaintraceError when it cannot be written."""
    try:
        Path(path).write_text(dumps(snapshot), encoding="utf-8")
    except OSError as error:
        raise ChaintraceError(f"cannot write {path}: {error.strerror}") from None


def read_snapshot(path: Path) -> dict:
    """Return the snapshot stored in `path`; raises UsageError when it is missing or not a snapshot."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read snapshot {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a chaintrace snapshot (schema {SCHEMA})")
    return data


def is_snapshot_file(path: Path) -> bool:
    """Return True when `path` is a file (a snapshot to read) rather than a source tree."""
    return Path(path).is_file()
