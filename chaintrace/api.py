"""The library behind the CLI: index a tree, load its facts. The CLI is a thin layer over this."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chaintrace.errors import ChaintraceError, NotFound
from chaintrace.extract.facts import FileFacts
from chaintrace.store.indexer import IndexSummary, index_tree, indexed_keys
from chaintrace.source.scan import check_tree, read_options
from chaintrace.store.cache import Store, default_cache_dir

if TYPE_CHECKING:  # the graph modules import networkx: only commands that need a graph pay for it
    from chaintrace.graph.model import CallGraph
    from chaintrace.store.graph_tables import GraphStore
    from chaintrace.query.results import ShownGraph, Trace


def open_store(cache: Path | None = None, warn: Callable[[str], None] | None = None) -> Store:
    """Return the fact store in `cache` (default `$XDG_CACHE_HOME/chaintrace`)."""
    return Store(cache or default_cache_dir(), warn=warn)


def index(
    tree: Path,
    store: Store,
    jobs: int = 0,
    excludes: list[str] | None = None,
    includes: list[str] | None = None,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
) -> IndexSummary:
    """Index (or refresh) `tree` and return the run's summary."""
    root = check_tree(tree)
    return index_tree(root, store, read_options(root, excludes, includes), jobs=jobs, progress=progress, warn=warn)


def load_facts(store: Store, tree: Path) -> list[FileFacts]:
    """Return the facts of every indexed file of `tree`, sorted by path."""
    keys = indexed_keys(store, check_tree(tree))
    facts = []
    for key, found in store.iter_facts(keys[path] for path in sorted(keys)):
        if found is None:
            raise ChaintraceError(f"the cache lost facts of {tree}: run `chaintrace index {tree}` again")
        facts.append(found)
    return facts


def parse_error_stats(facts: list[FileFacts], worst: int = 20) -> dict:
    """Return ERROR/MISSING region counts: totals, files with any, and the `worst` files."""
    per_file = [(f.path, sum(e.kind == "ERROR" for e in f.errors), sum(e.kind == "MISSING" for e in f.errors)) for f in facts]
    with_errors = [row for row in per_file if row[1] or row[2]]
    with_errors.sort(key=lambda row: (-(row[1] + row[2]), row[0]))
    return {
        "files": len(facts),
        "files_with_errors": len(with_errors),
        "error_regions": sum(row[1] for row in per_file),
        "missing_regions": sum(row[2] for row in per_file),
        "functions": sum(len(f.functions) for f in facts),
        "worst": [{"path": p, "errors": e, "missing": m} for p, e, m in with_errors[:worst]],
    }


# --- the call graph and traces -------------------------------------------------------


@dataclass
class TreeGraph:
    """An indexed tree's resolved call graph, kept in the store's graph tables (see `graphstore`)."""

    root: Path
    state: str
    version: str
    tables: GraphStore
    _whole: "CallGraph | None" = None

    @property
    def graph(self) -> "CallGraph":
        """Return the whole call graph (loads every edge: slow on QEMU; traces load only their chop)."""
        if self._whole is None:
            self._whole = self.tables.whole()
        return self._whole


def tree_version(root: Path) -> str:
    """Return the tree's `VERSION` file's first line, or ""."""
    try:
        return (root / "VERSION").read_text(encoding="utf-8").strip().splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return ""


def tree_graph(store: Store, tree: Path, jobs: int = 0, progress: bool = False,
               warn: Callable[[str], None] | None = None) -> TreeGraph:
    """Return the tree's call graph: indexed first (a no-op when fresh), resolved once per fact-store state."""
    from chaintrace.store.graph_tables import GraphStore

    root = check_tree(tree)
    summary = index(root, store, jobs=jobs, progress=progress, warn=warn)
    tables = GraphStore(store.db, summary.state)
    if not tables.exists():
        from chaintrace.graph.build import build_graph

        if progress:
            print("resolving the call graph ...", file=sys.stderr)
        facts = load_facts(store, root)
        tables.save(build_graph(facts), (write for file_facts in facts for write in file_facts.writes))
    return TreeGraph(root, summary.state, tree_version(root), tables)


def _read_line(root: Path) -> Callable[[str, int], str]:
    def read(file: str, line: int) -> str:
        try:
            lines = (root / file).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return lines[line - 1] if 0 < line <= len(lines) else ""

    return read


def trace_with_graph(tg: TreeGraph, source: str, target: str, *, max_paths: int = 50, max_depth: int | None = None,
                     via: list[str] | None = None, avoid: list[str] | None = None,
                     edge_kinds: list[str] | None = None) -> tuple["Trace", "ShownGraph"]:
    """Return the trace and the nodes and edges it shows (what renderers read)."""
    from chaintrace.query import entries
    from chaintrace.query.lookup import UnknownFunction, find_function
    from chaintrace.query.results import shown_graph
    from chaintrace.query.targets import find_targets
    from chaintrace.query.trace import trace as trace_paths

    tables = tg.tables
    entry = find_function(tables, entries.entry_function(source, tg.root))
    via_ids = [find_function(tables, name) for name in via or ()]
    avoid_ids = [find_function(tables, name) for name in avoid or ()]
    kind, _, value = target.partition(":")
    writes = tables.writes(re.split(r"->|\.", value)[-1].strip()) if kind == "assign" and value else []
    try:
        sites = find_targets(tables, target, writes=writes, read_line=_read_line(tg.root))
    except UnknownFunction as error:
        raise NotFound(str(error).replace("of the graph", f"of {tg.root}")) from None
    if not sites:
        raise NotFound(f"no site in {tg.root} matches the target {target!r}")
    result = trace_paths(tables, entry, sites, max_paths=max_paths, max_depth=max_depth, via=via_ids,
                         avoid=avoid_ids, edge_kinds=edge_kinds)
    return result, shown_graph(tables, result)


def trace(tg: TreeGraph, source: str, target: str, **options) -> "Trace":
    """Return every path from entry `source` (FUNC, qmp:CMD, hmp:CMD) to `target` (FUNC, assign:X, call:F, FILE:LINE).

    Options: max_paths, max_depth, via, avoid, edge_kinds (see `trace_with_graph`).
    """
    return trace_with_graph(tg, source, target, **options)[0]


def trace_document(tg: TreeGraph, source: str, target: str, **options) -> dict:
    """Return the JSON-able trace document (schema `docs/trace-schema.md`) of a query."""
    from chaintrace.render.document import trace_document as document

    result, cg = trace_with_graph(tg, source, target, **options)
    return document(cg, result, query={"from": source, "to": target}, tree=str(tg.root), version=tg.version)


def neighbours(tg: TreeGraph, function: str, callers: bool, depth: int = 1,
               edge_kinds: list[str] | None = None) -> list[dict]:
    """Return the callers (or callees) of `function` within `depth` hops: [{id, distance, file, line}], nearest first."""
    from chaintrace.query import neighbours as query

    tables = tg.tables
    walk = query.callers if callers else query.callees
    found = sorted(walk(tables, function, depth=depth, edge_kinds=edge_kinds), key=lambda item: (item[1], item[0]))
    rows = {row[0]: row for row in tables.node_rows(node for node, _ in found)}
    return [{"id": node, "distance": distance, "file": rows[node][2] if node in rows else "",
             "line": rows[node][3] if node in rows else 0} for node, distance in found]
