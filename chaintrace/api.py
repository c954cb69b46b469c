"""The library behind the CLI: open a tree, index it, resolve its call graph, trace on it.

    with api.open_store(cache) as store:
        tg = api.tree_graph(store, tree)          # opened once, indexed (a no-op when fresh), resolved once
        result, shown = api.trace_query(tg, api.TraceQuery("qmp:migrate", "assign:threshold_size"))

The CLI is a thin layer over this: every command's trace options become
one `TraceQuery`, validated when it is made.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from chaintrace.errors import ChaintraceError, DamagedCache, NotFound, UsageError
from chaintrace.extract.facts import FileFacts
from chaintrace.graph.kinds import EDGE_KINDS
from chaintrace.graph.programs import DEFAULT_PROGRAM, program_filter
from chaintrace.source.scan import OpenTree, open_tree, read_tree_text
from chaintrace.store.cache import Store, default_cache_dir
from chaintrace.store.graphs import ready_graph
from chaintrace.store.indexer import IndexSummary, index_tree

if TYPE_CHECKING:  # the graph modules import networkx: only commands that need a graph pay for it
    from chaintrace.graph.model import CallGraph
    from chaintrace.store.graph_tables import GraphStore
    from chaintrace.query.results import ShownGraph, TargetSite, Trace
    from chaintrace.query.whynot import WhyNot

__all__ = ["IndexSummary", "OpenTree", "TraceQuery", "TreeGraph", "check_edge_kinds", "index", "load_facts",
           "neighbours", "open_store", "open_tree", "parse_error_stats", "target_sites", "trace_document",
           "trace_query", "trace_with_graph", "tree_graph", "why_not"]


def open_store(cache: Path | None = None, warn: Callable[[str], None] | None = None) -> Store:
    """Return the fact store in `cache` (default `$XDG_CACHE_HOME/chaintrace`)."""
    return Store(cache or default_cache_dir(), warn=warn)


def index(
    tree: Path | OpenTree,
    store: Store,
    jobs: int = 0,
    excludes: list[str] | None = None,
    includes: list[str] | None = None,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
) -> IndexSummary:
    """Index (or refresh) `tree` and return the run's summary (`excludes`, `includes`: only for a tree not open yet)."""
    return index_tree(open_tree(tree, excludes, includes), store, jobs=jobs, progress=progress, warn=warn)


def load_facts(store: Store, tree: Path | OpenTree, repair: bool = True,
               paths: Callable[[str], bool] | None = None, graph: bool = False) -> list[FileFacts]:
    """Return the facts of every indexed file of `tree` (or of those whose path passes `paths`), sorted by path;
    `graph=True`: as the call graph reads them, without what it never reads (`store.codec.decode_facts`).

    A damaged entry is dropped as it is read (`Store.iter_facts`); when any was, the tree is indexed again,
    which extracts just those files, and read once more (`repair=False` raises ChaintraceError instead).
    """
    opened = open_tree(tree)
    keys = store.indexed_keys(str(opened.root))
    facts, lost = [], 0
    # filtered before decoding: a program's graph leaves out a third of QEMU's files, decoded for nothing
    wanted = sorted(path for path in keys if paths is None or paths(path))
    for _, found in store.iter_facts((keys[path] for path in wanted), graph):
        if found is None:
            lost += 1
        else:
            facts.append(found)
    if lost and repair and not store.read_only:  # a missing entry leaves the recorded scan in place: forget it, or the index is a no-op
        store.forget_scan(str(opened.root))
        index_tree(opened, store, warn=store.warn)
        return load_facts(store, opened, repair=False, paths=paths, graph=graph)
    if lost:
        raise ChaintraceError(f"the cache lost facts of {opened.root}: run `chaintrace index {opened.root}` again")
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


# --- the query --------------------------------------------------------------------------


def check_edge_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """Return `kinds` as a tuple; raise UsageError naming the first kind that is not one of EDGE_KINDS."""
    kinds = tuple(kinds)
    unknown = [kind for kind in kinds if kind not in EDGE_KINDS]
    if unknown:
        raise UsageError(f"unknown edge kind {unknown[0]!r} (known: {', '.join(EDGE_KINDS)})")
    return kinds


@dataclass(frozen=True)
class TraceQuery:
    """One trace to run: entry, target and the trace options, checked when made (UsageError names the bad value).

    Every command and spec file spells its trace this way; `as_dict` is the
    JSON form snapshots and check results carry (keys as in a spec file).
    """

    source: str  # FUNC, qmp:COMMAND or hmp:COMMAND
    target: str  # FUNC, assign:/read:/use: FIELD, TYPE.FIELD or EXPR, call:FUNC or FILE:LINE; then @FUNC, ~TEXT
    max_paths: int = 50  # paths enumerated per target, shortest first
    max_depth: int | None = None  # longest path, in hops
    via: tuple[str, ...] = ()  # functions every path passes, in order
    avoid: tuple[str, ...] = ()  # functions no path touches
    edges: tuple[str, ...] = ()  # edge kinds to follow (empty: every kind)
    sites: str = ""  # a regex: only target sites whose statement matches count ("": all)
    undecided: bool = False  # follow calls whose receiver picks the callee even where the path does not decide it

    def __post_init__(self) -> None:
        for name in ("via", "avoid", "edges"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(item, str) for item in value):
                raise UsageError(f"{name} must be a list of names, not {value!r}")
            object.__setattr__(self, name, tuple(value))
        check_edge_kinds(self.edges)
        if type(self.undecided) is not bool:
            raise UsageError(f"undecided must be true or false, not {self.undecided!r}")
        for name, value in (("max_paths", self.max_paths), ("max_depth", self.max_depth)):
            if (value is not None or name == "max_paths") and not (type(value) is int and value >= 0):
                raise UsageError(f"{name} must be a whole number, 0 or more, not {value!r}")
        try:
            re.compile(self.sites)
        except re.error as error:
            raise UsageError(f"sites is not a regular expression: {error} in {self.sites!r}") from None

    def as_dict(self) -> dict:
        """Return the query as the JSON object snapshots and check results carry."""
        return {"from": self.source, "to": self.target, "max_paths": self.max_paths, "max_depth": self.max_depth,
                "via": list(self.via), "avoid": list(self.avoid), "edges": list(self.edges), "sites": self.sites,
                "undecided": self.undecided}

    @classmethod
    def from_dict(cls, data: dict) -> TraceQuery:
        """Return the query of an `as_dict` object (a snapshot's `query`; missing options take their defaults)."""
        try:
            return cls(str(data["from"]), str(data["to"]), data.get("max_paths", 50), data.get("max_depth"),
                       data.get("via", ()), data.get("avoid", ()), data.get("edges", ()), str(data.get("sites", "")),
                       data.get("undecided", False))
        except (KeyError, TypeError, AttributeError) as error:
            raise UsageError(f"bad trace query {data!r}: {error}") from None


# --- the call graph and traces -------------------------------------------------------


@dataclass
class TreeGraph:
    """An open tree's resolved call graph, kept in the store's graph tables (see `store.graph_tables`)."""

    tree: OpenTree
    state: str  # the index state the graph was resolved from
    tables: GraphStore
    _whole: CallGraph | None = None
    program: str = "system"  # whose files the graph joins (queries/qemu/programs.toml)
    sound: bool = False  # resolved with the over-approximation (name-only members, unknown registrars)
    summary: IndexSummary | None = None  # the index run that preceded it
    made: str = ""  # how the graph was made ready: "stored", "patched" (lines moved) or "resolved"
    store: Store | None = None  # where it is kept: a damaged graph is resolved again into it (`resolve_again`)

    @property
    def root(self) -> Path:
        """Return the tree's resolved root."""
        return self.tree.root

    @property
    def version(self) -> str:
        """Return the tree's version (first line of its VERSION file), or ""."""
        return self.tree.version

    @property
    def graph(self) -> CallGraph:
        """Return the whole call graph (loads every edge: slow on QEMU; traces load only their chop)."""
        if self._whole is None:
            self._whole = _answered_again_if_damaged(lambda tg: tg.tables.whole())(self)
        return self._whole

    def resolve_again(self) -> None:
        """Resolve the graph again, into the store it came from (after its stored state was dropped as damaged)."""
        if self.store is None:
            raise ChaintraceError("the stored call graph is damaged: run the command again")
        again = tree_graph(self.store, self.tree, program=self.program, sound=self.sound)
        self.tables, self.state, self.made, self._whole = again.tables, again.state, again.made, None


def _answered_again_if_damaged(function: Callable) -> Callable:
    """Return `function(tg, ...)` run once more on a graph resolved again when the stored one proves damaged."""
    @functools.wraps(function)
    def run(tg: TreeGraph, *args, **kwargs):
        try:
            return function(tg, *args, **kwargs)
        except DamagedCache:  # the damaged state is dropped already: resolving it again is one more run away
            tg.resolve_again()
            return function(tg, *args, **kwargs)
    return run


def tree_graph(store: Store, tree: Path | OpenTree, jobs: int = 0, progress: bool = False,
               warn: Callable[[str], None] | None = None, program: str = DEFAULT_PROGRAM,
               sound: bool = False) -> TreeGraph:
    """Return the call graph of one program of the tree, indexed first (a no-op when fresh), resolved once per
    fact-store state, program and mode.

    `program` names the files the graph joins (`queries/qemu/programs.toml`; default: the system
    emulators, without tests, firmware and tools); `sound` resolves with the over-approximation of
    name-only member matches and unknown registrars, and traces then follow `dispatch` edges too.
    Raises UsageError for an unknown program.
    """
    if program != DEFAULT_PROGRAM:  # the default is in the bundled table (tests/test_graph.py): not read to check
        program_filter(program)  # an unknown program is a usage error before any work
    opened = open_tree(tree)
    summary = index(opened, store, jobs=jobs, progress=progress, warn=warn)
    tables, made = ready_graph(store, str(opened.root), summary.state,
                               lambda paths: load_facts(store, opened, paths=paths, graph=True), program, sound, progress)
    return TreeGraph(opened, summary.state, tables, program=program, sound=sound, summary=summary, made=made,
                     store=store)


def _read_line(tree: OpenTree) -> Callable[[str, int], str]:
    def read(file: str, line: int) -> str:
        lines = (read_tree_text(tree.root, file, follow=tree.options.follow_symlinks) or "").splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""

    return read


@_answered_again_if_damaged
def target_sites(tg: TreeGraph, target: str) -> list[TargetSite]:
    """Return the sites a target spec matches in the tree, in file and line order.

    Raises NotFound for an unknown function, or when no site matches (or the spec's pickers keep none).
    """
    from chaintrace.query.lookup import UnknownFunction
    from chaintrace.query.targets import find_targets, parse_target

    tables = tg.tables
    spec = parse_target(target)
    writes = tables.writes(spec.field) if spec.kind in ("assign", "use") else []
    reads = tables.reads(spec.field) if spec.kind in ("read", "use") else []
    try:
        sites = find_targets(tables, spec, writes=writes, reads=reads, read_line=_read_line(tg.tree))
    except UnknownFunction as error:
        raise NotFound(str(error).replace("of the graph", f"of {tg.root}")) from None
    if not sites:
        raise NotFound(f"no site in {tg.root} matches the target {target!r}")
    return sites


@_answered_again_if_damaged
def trace_query(tg: TreeGraph, query: TraceQuery, also: Iterable[str] = ()) -> tuple[Trace, ShownGraph]:
    """Return the trace of `query` and the nodes and edges it shows (what renderers read).

    `also` are more targets, traced with the query's: then every site says
    which target spec matched it (`TargetSite.target`). `query.sites` is not
    applied here: it filters the trace document (`regress.snapshot.only_sites`).
    Raises NotFound for an unknown entry, target or via/avoid function.
    """
    from chaintrace.query import entries
    from chaintrace.query.lookup import find_function
    from chaintrace.query.results import shown_graph
    from chaintrace.query.trace import trace as trace_paths

    tables = tg.tables
    entry = find_function(tables, entries.entry_function(query.source, tg.root))
    via_ids = [find_function(tables, name) for name in query.via]
    avoid_ids = [find_function(tables, name) for name in query.avoid]
    specs = [query.target, *also]
    sites = [site if len(specs) == 1 else replace(site, target=spec)
             for spec in specs for site in target_sites(tg, spec)]
    # a sound graph's trace follows every kind; a precise one leaves out dispatch unless asked
    kinds = list(query.edges) or (list(EDGE_KINDS) if tg.sound else None)
    result = trace_paths(tables, entry, sites, max_paths=query.max_paths, max_depth=query.max_depth,
                         via=via_ids, avoid=avoid_ids, edge_kinds=kinds, undecided=query.undecided or tg.sound)
    return result, shown_graph(tables, result)


@_answered_again_if_damaged
def why_not(tg: TreeGraph, query: TraceQuery, limit: int = 5) -> WhyNot:
    """Return why no path runs from the query's entry to its target (`query.whynot.WhyNot`), under its filters."""
    from chaintrace.query import entries
    from chaintrace.query.lookup import find_function
    from chaintrace.query.whynot import why_not as explain

    tables = tg.tables
    entry = find_function(tables, entries.entry_function(query.source, tg.root))
    avoid_ids = [find_function(tables, name) for name in query.avoid]
    functions = {site.function for site in target_sites(tg, query.target)}
    return explain(tables, entry, functions, edge_kinds=query.edges or None, avoid=avoid_ids, limit=limit)


def trace_with_graph(tg: TreeGraph, source: str, target: str, *, max_paths: int = 50, max_depth: int | None = None,
                     via: list[str] | None = None, avoid: list[str] | None = None,
                     edge_kinds: list[str] | None = None) -> tuple[Trace, ShownGraph]:
    """Return the trace and the nodes and edges it shows: `trace_query` with the options as keywords."""
    return trace_query(tg, TraceQuery(source, target, max_paths, max_depth, tuple(via or ()), tuple(avoid or ()),
                                      tuple(edge_kinds or ())))


def trace_document(tg: TreeGraph, source: str, target: str, **options) -> dict:
    """Return the JSON-able trace document (schema `docs/trace-schema.md`) of a query (options as `trace_with_graph`)."""
    from chaintrace.render.document import trace_document as document

    result, cg = trace_with_graph(tg, source, target, **options)
    return document(cg, result, query={"from": source, "to": target}, tree=str(tg.root), version=tg.version)


@_answered_again_if_damaged
def neighbours(tg: TreeGraph, function: str, callers: bool, depth: int = 1,
               edge_kinds: Iterable[str] | None = None) -> list[dict]:
    """Return the callers (or callees) of `function` within `depth` hops: [{id, distance, file, line}], nearest first."""
    from chaintrace.query import neighbours as query

    kinds = list(check_edge_kinds(edge_kinds or ())) or None
    tables = tg.tables
    walk = query.callers if callers else query.callees
    found = sorted(walk(tables, function, depth=depth, edge_kinds=kinds), key=lambda item: (item[1], item[0]))
    rows = {row[0]: row for row in tables.node_rows(node for node, _ in found)}
    return [{"id": node, "distance": distance, "file": rows[node][2] if node in rows else "",
             "line": rows[node][3] if node in rows else 0} for node, distance in found]
