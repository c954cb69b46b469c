"""The library behind the CLI: index a tree, load its facts. The CLI is a thin layer over this."""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chaintrace.errors import ChaintraceError, NotFound
from chaintrace.facts import FieldWrite, FileFacts
from chaintrace.index import IndexSummary, index_tree, indexed_keys
from chaintrace.scan import check_tree, read_options
from chaintrace.store import Store, default_cache_dir

if TYPE_CHECKING:
    from chaintrace.graph import CallGraph
    from chaintrace.query import Trace


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

_GRAPH_BLOB = "callgraph/1"


@dataclass
class TreeGraph:
    """An indexed tree's resolved call graph and the field writes that `assign:` targets match."""

    root: Path
    state: str
    graph: "CallGraph"
    writes: list[FieldWrite]
    version: str


def tree_version(root: Path) -> str:
    """Return the tree's `VERSION` file's first line, or ""."""
    try:
        return (root / "VERSION").read_text(encoding="utf-8").strip().splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return ""


def tree_graph(store: Store, tree: Path, jobs: int = 0, progress: bool = False,
               warn: Callable[[str], None] | None = None) -> TreeGraph:
    """Return the tree's call graph: indexed first (a no-op when fresh), resolved once per fact-store state."""
    from chaintrace.graph import build_graph

    root = check_tree(tree)
    summary = index(root, store, jobs=jobs, progress=progress, warn=warn)
    blob = store.derived(summary.state, _GRAPH_BLOB)
    if blob is not None:
        try:
            graph, writes = pickle.loads(zlib.decompress(blob))
            return TreeGraph(root, summary.state, graph, writes, tree_version(root))
        except Exception:  # a damaged entry is rebuilt below
            pass
    facts = load_facts(store, root)
    graph = build_graph(facts)
    writes = [write for file_facts in facts for write in file_facts.writes]
    store.put_derived(summary.state, _GRAPH_BLOB, zlib.compress(pickle.dumps((graph, writes), pickle.HIGHEST_PROTOCOL), 1))
    return TreeGraph(root, summary.state, graph, writes, tree_version(root))


def _read_line(root: Path) -> Callable[[str, int], str]:
    def read(file: str, line: int) -> str:
        try:
            lines = (root / file).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return lines[line - 1] if 0 < line <= len(lines) else ""

    return read


def trace(tg: TreeGraph, source: str, target: str, *, max_paths: int = 50, max_depth: int | None = None,
          via: list[str] | None = None, avoid: list[str] | None = None, edge_kinds: list[str] | None = None) -> "Trace":
    """Return every path from entry `source` (FUNC, qmp:CMD, hmp:CMD) to `target` (FUNC, assign:X, call:F, FILE:LINE)."""
    from chaintrace import entries, query

    entry = entries.entry_node(tg.graph, source, tg.root)
    sites = query.find_targets(tg.graph, target, writes=tg.writes, read_line=_read_line(tg.root))
    if not sites:
        raise NotFound(f"no site in {tg.root} matches the target {target!r}")
    return query.trace(tg.graph, entry, sites, max_paths=max_paths, max_depth=max_depth, via=via or (),
                       avoid=avoid or (), edge_kinds=edge_kinds)
