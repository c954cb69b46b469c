"""A trace: every path from an entry to each target site, after the filters, counted and listed.

The graph (`GraphLookup`) is either a whole `graph.model.CallGraph`
(networkx) or the stored graph tables of a tree
(`store.graph_tables.GraphStore`); walks run on its integer form
(`graph.adjacency.Adjacency`), so a trace over all of QEMU loads no more
than that and never imports networkx.

Paths (`trace`)
    Every simple path from the entry to a target's function, over the *chop*
    (the nodes reachable from the entry that also reach the target, `chop`),
    after the filters: `edge_kinds`, `avoid` (functions no path may touch),
    `via` (functions every path passes, in the given order), `max_depth`
    (hops), `min_confidence`.  Paths are enumerated shortest first, paths
    of one length in the order of their node ids (`paths.iter_paths`, a
    generator), `max_paths` of them; `paths.count_paths` counts them all
    (exactly, or a lower bound past its budget: see `paths`).

The modules of a query, in the order a trace uses them: `lookup` (names to
node ids), `targets` (target specs to sites), `chop`, `paths`, `results`
(what renderers read); `neighbours` answers callers and callees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chaintrace.graph.adjacency import Adjacency
from chaintrace.graph.kinds import TRACE_KINDS
from chaintrace.query.chop import ComponentChop, layered_chop, layered_components
from chaintrace.query.decided import closed_doors, decidable_hops
from chaintrace.query.lookup import GraphLookup, find_function
from chaintrace.query.objects import ObjectCheck
from chaintrace.query.paths import count_paths, every_path, iter_paths
from chaintrace.query.results import PathCount, TargetSite, TargetTrace, Trace

DEFAULT_MAX_PATHS = 50
# Paths the object check may drop per target before enumeration stops: it keeps a trace fast when most of
# what the graph offers cannot run (the count then says it is an estimate).
MAX_DROPPED = 300
# Paths a trace whose hops must be decided (the default) walks to count them exactly; past it, a lower bound.
COUNT_LIMIT = 10_000


def trace(graph: GraphLookup, entry: str, targets: list[TargetSite], *, max_paths: int = DEFAULT_MAX_PATHS,
          max_depth: int | None = None, via: Iterable[str] = (), avoid: Iterable[str] = (),
          edge_kinds: Iterable[str] | None = None, min_confidence: str = "low", undecided: bool = False) -> Trace:
    """Return the paths from `entry` to every target site (see the module docstring for the filters).

    `undecided` follows every call whose receiver picks the callee at run time; by default a path takes
    one only where the path itself decides it (`query.decided`).
    """
    entry = find_function(graph, entry)
    via = [find_function(graph, v) for v in via]
    avoid = [find_function(graph, a) for a in avoid]
    kinds = tuple(edge_kinds or TRACE_KINDS)
    query = {"entry": entry, "max_paths": max_paths, "max_depth": max_depth, "via": via, "avoid": avoid,
             "edge_kinds": list(kinds), "min_confidence": min_confidence, "undecided": undecided}
    adj = graph.adjacency()
    banned = frozenset(i for i in map(adj.index, avoid) if i is not None)
    allowed = adj.allowed(kinds, min_confidence, undecided=undecided)
    start = adj.index(entry)
    extra, reached = (None, None) if undecided or start is None else decidable_hops(graph, adj, start, allowed, banned)
    walk = _Walk(graph, adj, allowed, banned, max_paths, max_depth, extra)
    if reached is not None:  # the fixpoint's last walk is the chops' forward walk: not walked twice
        walk.forward[start] = reached
    results: list[TargetTrace] = []
    done: dict[str, tuple[list[list[str]], PathCount, int]] = {}
    for site in targets:
        if site.function not in done:
            done[site.function] = walk.paths([entry, *via, site.function])
        paths, count, chop_size = done[site.function]
        results.append(TargetTrace(site, paths, count, chop_size))
    diagnostics = graph.diagnostics_of({adj.ids[node] for node in walk.chop_nodes})
    doors: tuple[list[dict], int] = ([], 0)
    if extra is not None and start in walk.forward:  # the undecided calls left out that would reach a target
        ends = [node for node in {adj.index(result.site.function) for result in results} if node is not None]
        doors = closed_doors(graph, adj, walk.forward[start], ends, extra)
    return Trace(entry, query, results, diagnostics, *doors)


@dataclass
class _Walk:
    """The walks of one trace: its filters, and the chops and walks its targets share."""

    graph: GraphLookup
    adj: Adjacency
    allowed: bytes
    banned: frozenset[int]
    max_paths: int
    max_depth: int | None
    extra: dict[int, list[int]] | None = None  # the undecided hops a path may take (`query.decided`); None: all

    def __post_init__(self) -> None:
        self.objects = ObjectCheck(self.graph, self.adj, strict=self.extra is not None)
        self.forward: dict = {}  # source index -> the nodes reached from it (filtered walks)
        self.shared: dict = {}  # (source, target component) -> ComponentChop (unfiltered walks)
        self.chop_nodes: set[int] = set()

    def paths(self, ends: list[str]) -> tuple[list[list[str]], PathCount, int]:
        """Return the paths through `ends` (entry, vias, target), their count and the chop's size."""
        adj, size = self.adj, len(self.adj)
        stops = [adj.index(node) for node in ends]
        via = len(ends) - 2
        if None in stops:  # an end without edges: only the empty trace, or the entry itself
            paths = [[ends[0]]] if ends[0] == ends[-1] and not via else []
            return paths, PathCount(len(paths), True, "dag"), len(paths)
        # unfiltered and without avoid, each leg's components are the whole graph's
        whole = not self.banned and all(self.allowed)
        layered, disjoint, distance = layered_chop(adj, stops, self.allowed, self.banned, self.forward,
                                                   self.shared if whole else None, self.extra)
        start, end = stops[0], via * size + stops[-1]
        if start == end and start not in layered:
            layered = {**layered, start: []}
        depth = None if self.max_depth is None else self.max_depth + via  # each via adds a hop between legs
        component_of = layered_components(adj, len(stops) - 1) if whole else None
        # targets of one component share a chop when walking every edge, nothing avoided, no via
        shape = layered.count_shape() if isinstance(layered, ComponentChop) else None
        count = count_paths(layered, start, end, depth, component_of=component_of, shape=shape)
        if via and not disjoint:  # combinations of legs that share a node are counted too
            overlap = "upper bound" if count.exact else "an estimate"
            count = PathCount(count.total, False, f"{count.method}, via legs overlap: {overlap}")
        if self.objects.strict:
            paths, count = self._decided_paths(layered, start, end, depth, distance, count)
            self.chop_nodes.update(layered if len(stops) == 2 else (node % size for node in layered))
            return paths, at_least_listed(count, len(paths)), len(layered)
        paths = []
        dropped, seen = self.objects.dropped, 0
        for path in iter_paths(layered, start, end, depth, distance=distance) if self.max_paths > 0 else ():
            nodes = [node % size for node in path]
            nodes = [n for i, n in enumerate(nodes) if i == 0 or n != nodes[i - 1]]
            if len(set(nodes)) == len(nodes):
                seen += 1
                ids = [adj.ids[node] for node in nodes]
                if self.objects.feasible(ids):
                    paths.append(ids)
            if len(paths) >= self.max_paths or self.objects.dropped - dropped >= MAX_DROPPED:
                break
        self.chop_nodes.update(layered if len(stops) == 2 else (node % size for node in layered))
        return paths, self._after_objects(at_least_listed(count, len(paths)), self.objects.dropped - dropped,
                                          seen, len(paths)), len(layered)

    def _decided_paths(self, layered, start: int, end: int, depth: int | None, distance,
                       count: PathCount) -> tuple[list[list[str]], PathCount]:
        """Return the paths every hop of which is decided on the path (the object check prunes each prefix as
        it grows), shortest first, `max_paths` of them, and their count: exact when the walk saw them all
        (up to COUNT_LIMIT), else how many it saw, a lower bound. `count` is the graph's."""
        adj, size, ids = self.adj, len(self.adj), self.adj.ids

        free: dict[tuple[int, int], bool] = {}  # (caller, callee) -> whether no prefix can rule the hop out

        def hop_ok(path: list[int], node: int) -> bool:
            caller, callee = path[-1] % size, node % size
            hop = (caller, callee)
            if hop not in free:  # most hops are calls: asked once, not once per path through them
                free[hop] = caller == callee or not self.objects.needs_prefix(ids[caller], ids[callee])
            return free[hop] or self.objects.hop_feasible([ids[n % size] for n in path], ids[callee])

        status: dict = {}
        found: list[list[str]] = []
        # all of them in one search when there are few (to count them exactly is to list them all), else the
        # shortest first, one length at a time
        every = every_path(layered, start, end, depth, COUNT_LIMIT, distance=distance, hop_ok=hop_ok)
        if every is not None:
            status["complete"] = True
        for path in every if every is not None else iter_paths(layered, start, end, depth, distance=distance,
                                                               hop_ok=hop_ok, status=status):
            nodes = [node % size for node in path]
            nodes = [n for i, n in enumerate(nodes) if i == 0 or n != nodes[i - 1]]
            if len(set(nodes)) == len(nodes):
                found.append([ids[node] for node in nodes])
            if len(found) >= COUNT_LIMIT:
                break
        if status.get("complete") and len(found) < COUNT_LIMIT:
            exact = count.method if count.exact and count.total == len(found) else "enumerated"
            return found[:self.max_paths], PathCount(len(found), True, exact)
        return found[:self.max_paths], PathCount(len(found), False, "enumerated lower bound")

    @staticmethod
    def _after_objects(count: PathCount, dropped: int, seen: int, kept: int) -> PathCount:
        """Return the count once the object check dropped `dropped` of the `seen` paths enumerated."""
        if not dropped:
            return count
        what = f"after dropping {dropped} that dispatch on an object made on the path to a function it does not hold"
        if count.exact and seen == count.total:  # every path of the graph was seen: the kept ones are all there are
            return PathCount(kept, True, f"{count.method}, {what}")
        # the graph's count, which includes paths that cannot run: at most that many when it was exact
        bound = "upper bound" if count.exact else "an estimate"
        return PathCount(max(count.total, kept), False, f"{count.method} of the graph's paths, {what}: {bound}")


def at_least_listed(count: PathCount, listed: int) -> PathCount:
    """Return `count`, raised to `listed` when it is a lower bound below the paths enumerated.

    A lower bound read from the component DAG (one path per exit of a
    component) can fall below what enumeration found; the count a user reads
    must never contradict the list beside it.
    """
    if count.exact or listed <= count.total or "lower bound" not in count.method:
        return count
    return PathCount(listed, False, f"{count.method}, raised to the paths enumerated")
