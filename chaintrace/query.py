"""Queries on a call graph: targets, paths from an entry to them, callers and callees.

Targets (`find_targets`)
    `FUNC` (the function itself), `assign:FIELD` (every write to a field of
    that name), `assign:EXPR` (writes whose whitespace-free left-hand side is
    EXPR's: `assign:s->threshold_size`), `call:FUNC` (every call site of
    FUNC: direct, ops and fnptr edges into it), `FILE:LINE` (the innermost
    function holding that line).

Paths (`trace`)
    Every simple path from the entry to a target's function, over the *chop*
    (the nodes reachable from the entry that also reach the target), after
    the filters: `edge_kinds`, `avoid` (functions no path may touch),
    `via` (functions every path passes, in the given order), `max_depth`
    (hops), `min_confidence`.  Paths are enumerated shortest first
    (`iter_paths`, a generator), `max_paths` of them; `count_paths` counts
    them all.

Counting and cycles (`count_paths`)
    On an acyclic chop the count is exact (dynamic programming, method
    "dag").  On a cyclic one the count is still exact (method "scc") as long
    as the simple paths inside each strongly connected component can be
    enumerated within `budget` steps: a simple path crosses each component
    once, so the count is a product-sum over the DAG of components of the
    paths inside them.  Beyond the budget the count is a lower bound
    (method "scc lower bound": a component contributes 1 per reachable
    exit).  With `max_depth` the paths are counted by a depth-bounded walk
    (method "enumerated", or "enumerated lower bound" past the budget).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import networkx as nx

from chaintrace.errors import NotFound, close_matches
from chaintrace.facts import CallSite, Context, FieldWrite
from chaintrace.graph import EDGE_KINDS, CallGraph

DEFAULT_MAX_PATHS = 50
COUNT_BUDGET = 200_000


class UnknownFunction(NotFound, LookupError):
    """A function the graph does not hold (or an ambiguous name); the message is one line."""


@dataclass(frozen=True)
class TargetSite:
    """One place a query target matches: `kind` is function, assign, call or line; `function` its node id."""

    kind: str
    function: str
    file: str
    line: int
    col: int = 0
    statement: str = ""
    context: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class PathCount:
    """How many paths there are: `total`, whether it is `exact`, and the counting `method`."""

    total: int
    exact: bool
    method: str


@dataclass
class TargetTrace:
    """The paths to one target site: enumerated `paths` (node ids), their `count`, the `chop` size."""

    site: TargetSite
    paths: list[list[str]]
    count: PathCount
    chop_nodes: int = 0

    @property
    def omitted(self) -> int:
        """Return how many paths exist beyond the enumerated ones (a lower bound when the count is)."""
        return max(0, self.count.total - len(self.paths))


@dataclass
class Trace:
    """The answer to a trace query: the entry, the query's parameters, one TargetTrace per site."""

    entry: str
    query: dict
    targets: list[TargetTrace]
    diagnostics: list[dict] = field(default_factory=list)


def find_function(cg: CallGraph, name: str) -> str:
    """Return the node id of a function given as node id or name.

    Raises UnknownFunction with close matches, or listing the candidates when
    several static functions share the name.
    """
    if name in cg.graph:
        return name
    ids = cg.ids_named(name)
    if len(ids) == 1:
        return ids[0]
    if ids:
        raise UnknownFunction(f"ambiguous function {name!r}: {', '.join(ids[:8])}; give one of these ids")
    names = {attrs.get("name", node) for node, attrs in cg.graph.nodes(data=True)}
    raise UnknownFunction(f"unknown function {name!r}{close_matches(name, names)}")


def _context(context: Context) -> dict:
    return {
        "loops": [{"kind": loop.kind, "condition": loop.condition, "line": loop.line} for loop in context.loops],
        "conditions": list(context.conditions),
        "guards": [{"condition": g.condition, "statement": g.statement, "line": g.line} for g in context.guards],
    }


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def find_targets(cg: CallGraph, spec: str, writes: Iterable[FieldWrite] = (), calls: Iterable[CallSite] = (),
                 read_line: Callable[[str, int], str] | None = None) -> list[TargetSite]:
    """Return the sites a target spec matches, in file and line order.

    `writes` (for `assign:`) and `calls` (statements of `call:` sites) are
    facts of the tree; `read_line(file, line)` gives a `FILE:LINE` target's
    statement. Raises UnknownFunction for an unknown FUNC.
    """
    kind, _, value = spec.partition(":")
    sites: list[TargetSite] = []
    if kind == "assign" and value:
        plain = re.fullmatch(r"[A-Za-z_]\w*", value) is not None
        for write in writes:
            if (write.field == value if plain else _squash(write.lhs) == _squash(value)) and write.function:
                function = cg.id_of(write.file, write.function)
                if function is not None:
                    sites.append(TargetSite("assign", function, write.file, write.line, write.col,
                                            write.statement, _context(write.context)))
    elif kind == "call" and value:
        callee = find_function(cg, value)
        texts = {(c.file, c.line, c.col): f"{c.callee}({', '.join(c.args)})" for c in calls}
        for caller, _, edge_kind, data in cg.graph.in_edges(callee, keys=True, data=True):
            if edge_kind in ("direct", "ops", "fnptr"):
                for s in data["sites"]:
                    statement = texts.get((s["file"], s["line"], s["col"]), f"{cg.node(callee)['name']}(...)")
                    sites.append(TargetSite("call", caller, s["file"], s["line"], s["col"], statement,
                                            {"loops": s["loops"], "conditions": s["conditions"], "guards": []}))
    elif re.fullmatch(r".+:\d+", spec) and kind not in ("assign", "call"):
        file, _, line = spec.rpartition(":")
        function = cg.function_at(file, int(line))
        if function is None:
            raise UnknownFunction(f"no function of the graph holds {spec}")
        statement = read_line(file, int(line)).strip() if read_line else ""
        sites.append(TargetSite("line", function, file, int(line), 0, statement))
    else:
        function = find_function(cg, spec)
        attrs = cg.node(function)
        sites.append(TargetSite("function", function, attrs["file"], attrs["line"], 0, attrs["name"]))
    return sorted(set(sites), key=lambda s: (s.file, s.line, s.col))


# -- neighbourhoods ---------------------------------------------------------
def _allowed(data: dict, kind: str, kinds: frozenset[str], min_confidence: str) -> bool:
    return kind in kinds and (min_confidence == "low" or data.get("confidence") != "low")


def _bfs(cg: CallGraph, start: str, forward: bool, kinds: frozenset[str], min_confidence: str,
         avoid: frozenset[str] = frozenset(), depth: int | None = None) -> Iterator[tuple[str, int]]:
    """Yield (node, distance) breadth first along (or against) the allowed edges, `start` first."""
    edges = cg.graph.out_edges if forward else cg.graph.in_edges
    seen = {start}
    queue = deque([(start, 0)])
    while queue:
        node, distance = queue.popleft()
        yield node, distance
        if depth is not None and distance >= depth:
            continue
        for u, v, kind, data in edges(node, keys=True, data=True):
            other = v if forward else u
            if other not in seen and other not in avoid and _allowed(data, kind, kinds, min_confidence):
                seen.add(other)
                queue.append((other, distance + 1))


def callees(cg: CallGraph, func: str, depth: int = 1, edge_kinds: Iterable[str] | None = None,
            min_confidence: str = "low") -> Iterator[tuple[str, int]]:
    """Yield (node id, distance) of the functions `func` reaches within `depth` hops, nearest first."""
    kinds = frozenset(edge_kinds or EDGE_KINDS)
    yield from islice(_bfs(cg, find_function(cg, func), True, kinds, min_confidence, depth=depth), 1, None)


def callers(cg: CallGraph, func: str, depth: int = 1, edge_kinds: Iterable[str] | None = None,
            min_confidence: str = "low") -> Iterator[tuple[str, int]]:
    """Yield (node id, distance) of the functions that reach `func` within `depth` hops, nearest first."""
    kinds = frozenset(edge_kinds or EDGE_KINDS)
    yield from islice(_bfs(cg, find_function(cg, func), False, kinds, min_confidence, depth=depth), 1, None)


def chop(cg: CallGraph, source: str, target: str, edge_kinds: Iterable[str] | None = None,
         avoid: Iterable[str] = (), min_confidence: str = "low", _forward: dict | None = None) -> nx.DiGraph:
    """Return the chop: the DiGraph of allowed edges among nodes reachable from `source` that reach `target`.

    `_forward` caches the nodes reachable from each source, for several chops from one entry.
    """
    kinds, banned = frozenset(edge_kinds or EDGE_KINDS), frozenset(avoid)
    if source in banned or target in banned:
        return nx.DiGraph()
    cache = _forward if _forward is not None else {}
    if (source, banned) not in cache:  # a dict, not a set: its order, hence the paths', is the same every run
        cache[source, banned] = dict.fromkeys(node for node, _ in _bfs(cg, source, True, kinds, min_confidence, banned))
    forward = cache[source, banned]
    if target not in forward:
        return nx.DiGraph()
    backward = {node for node, _ in _bfs(cg, target, False, kinds, min_confidence, banned)}
    nodes = dict.fromkeys(node for node in forward if node in backward)
    sub = nx.DiGraph()
    sub.add_nodes_from(nodes)
    for u in nodes:
        for _, v, kind, data in cg.graph.out_edges(u, keys=True, data=True):
            if v in nodes and u != v and _allowed(data, kind, kinds, min_confidence):
                sub.add_edge(u, v)
    return sub


# -- counting and enumerating -----------------------------------------------
def count_paths(graph: nx.DiGraph, source: str, target: str, max_depth: int | None = None,
                budget: int = COUNT_BUDGET) -> PathCount:
    """Count the simple paths from `source` to `target` in a chop.

    Parameters
    ----------
    graph : nx.DiGraph
        A chop (every node reachable from `source` and reaching `target`).
    max_depth : int, optional
        Count only paths of at most this many edges.
    budget : int
        Steps of path enumeration allowed before settling for a lower bound.

    Returns
    -------
    PathCount
        The total, whether it is exact, and the method (see the module docstring).
    """
    if source not in graph or target not in graph:
        return PathCount(0, True, "dag")
    if source == target:
        return PathCount(1, True, "dag")
    if max_depth is not None:
        # a depth-bounded walk, pruned by each node's distance to the target
        distance = nx.single_target_shortest_path_length(graph, target)
        counts, finished = _walk({n: list(graph.successors(n)) for n in graph}, source, target, [budget],
                                 lambda node, edges: edges + distance.get(node, max_depth + 1) <= max_depth)
        return PathCount(counts.get(target, 0), finished, "enumerated" if finished else "enumerated lower bound")
    succ = {node: list(graph.successors(node)) for node in graph}
    condensation = nx.condensation(graph)
    members = condensation.graph["mapping"]
    order = list(nx.topological_sort(condensation))
    ways: dict = {target: 1}
    if len(order) == len(succ):  # acyclic: each node's count is the sum of its successors'
        for component in reversed(order):
            (node,) = condensation.nodes[component]["members"]
            if node != target:
                ways[node] = sum(ways[w] for w in succ[node])
        return PathCount(ways[source], True, "dag")
    exact = True
    remaining = [budget]  # shared by every component, so a count never takes more than `budget` steps
    for component in reversed(order):
        nodes = condensation.nodes[component]["members"]
        exits = {y: sum(ways[w] for w in succ[y] if members[w] != component) for y in nodes if y != target}
        entries = [x for x in nodes if x == source or any(members[p] != component for p in graph.predecessors(x))]
        lower = None
        for x in entries:
            if x == target:
                continue
            inner, finished = ({x: 1}, True) if len(nodes) == 1 else \
                _walk(succ, x, target, remaining, lambda node, _: node in nodes)
            if not finished:  # too many: every endpoint reachable inside the component counts once
                exact = False
                if lower is None:
                    lower = _reachable_exits(succ, nodes, target, exits)
                ways[x] = lower(x)
                continue
            ways[x] = sum(n * (1 if y == target else exits.get(y, 0)) for y, n in inner.items())
    return PathCount(ways.get(source, 0), exact, "scc" if exact else "scc lower bound")


def _reachable_exits(succ: dict, nodes: set, target, exits: dict) -> Callable:
    """Return x -> the sum of `exits` (and 1 for `target`) over what x reaches inside `nodes` without passing `target`.

    That is one path per reachable exit: a lower bound of the simple paths.
    Nodes strongly connected without `target` reach the same set, so each
    such group is walked once.
    """
    rest = nodes - {target}
    groups = nx.DiGraph()
    groups.add_nodes_from(rest)
    groups.add_edges_from((u, w) for u in rest for w in succ[u] if w in rest)
    group_of = {node: index for index, group in enumerate(nx.strongly_connected_components(groups)) for node in group}
    memo: dict[int, int] = {}

    def lower(x) -> int:
        if group_of[x] not in memo:
            seen, frontier = {x}, [x]
            while frontier:
                for w in succ[frontier.pop()]:
                    if w in nodes and w not in seen:
                        seen.add(w)
                        if w != target:
                            frontier.append(w)
            memo[group_of[x]] = sum(1 if y == target else exits.get(y, 0) for y in seen)
        return memo[group_of[x]]

    return lower


def _walk(succ: dict, start, stop, remaining: list[int], allowed: Callable[[object, int], bool]) -> tuple[dict, bool]:
    """Return ({end: number of simple paths from `start` to it}, finished) over the steps `allowed(node, edges so far)`.

    Paths end at `stop`. `remaining` holds the steps left, shared between
    walks; when they run out the counts so far come back with False.
    """
    counts = {start: 1}
    path, on_path = [start], {start}
    stack = [iter(succ[start])]
    while stack:
        remaining[0] -= 1
        if remaining[0] < 0:
            return counts, False
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            on_path.discard(path.pop())
        elif nxt not in on_path and allowed(nxt, len(path)):
            counts[nxt] = counts.get(nxt, 0) + 1
            if nxt != stop:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(succ[nxt]))
    return counts, True


def iter_paths(graph: nx.DiGraph, source: str, target: str, max_depth: int | None = None) -> Iterator[list[str]]:
    """Yield the simple paths from `source` to `target`, shortest first (Yen's algorithm), up to `max_depth` edges."""
    if source not in graph or target not in graph:
        return
    if source == target:
        yield [source]
        return
    for path in nx.shortest_simple_paths(graph, source, target):
        if max_depth is not None and len(path) - 1 > max_depth:
            return
        yield path


def _layered(cg: CallGraph, stops: list[str], kinds, avoid, min_confidence, forward: dict) -> tuple[nx.DiGraph, bool]:
    """Return the chop through `stops` in order, as a graph of (node, leg) pairs, and whether the legs are disjoint."""
    layered = nx.DiGraph()
    seen: set[str] = set()
    disjoint = True
    for leg, (a, b) in enumerate(zip(stops, stops[1:])):
        part = chop(cg, a, b, kinds, avoid, min_confidence, forward)
        disjoint = disjoint and not (set(part) - {a}) & seen
        seen |= set(part)
        layered.add_edges_from(((u, leg), (v, leg)) for u, v in part.edges)
        if a in part:
            layered.add_node((a, leg))
        if leg and a in part:
            layered.add_edge((a, leg - 1), (a, leg))  # the via node itself carries the path into the next leg
    return layered, disjoint


def trace(cg: CallGraph, entry: str, targets: list[TargetSite], *, max_paths: int = DEFAULT_MAX_PATHS,
          max_depth: int | None = None, via: Iterable[str] = (), avoid: Iterable[str] = (),
          edge_kinds: Iterable[str] | None = None, min_confidence: str = "low") -> Trace:
    """Return the paths from `entry` to every target site (see the module docstring for the filters)."""
    entry = find_function(cg, entry)
    via = [find_function(cg, v) for v in via]
    avoid = [find_function(cg, a) for a in avoid]
    kinds = tuple(edge_kinds or EDGE_KINDS)
    query = {"entry": entry, "max_paths": max_paths, "max_depth": max_depth, "via": via, "avoid": avoid,
             "edge_kinds": list(kinds), "min_confidence": min_confidence}
    results: list[TargetTrace] = []
    done: dict[str, tuple] = {}
    forward: dict = {}
    chop_nodes: set[str] = set()
    for site in targets:
        if site.function not in done:
            stops = [entry, *via, site.function]
            layered, disjoint = _layered(cg, stops, kinds, avoid, min_confidence, forward)
            start, end = (entry, 0), (site.function, len(stops) - 2)
            depth = None if max_depth is None else max_depth + len(via)  # each via adds a hop between legs
            count = count_paths(layered, start, end, depth)
            if via and not disjoint:
                count = PathCount(count.total, False, count.method + ", via legs overlap: upper bound")
            paths = []
            for path in iter_paths(layered, start, end, depth) if max_paths > 0 else ():
                nodes = [node for node, _ in path]
                nodes = [n for i, n in enumerate(nodes) if i == 0 or n != nodes[i - 1]]
                if len(set(nodes)) == len(nodes):
                    paths.append(nodes)
                if len(paths) >= max_paths:
                    break
            done[site.function] = (paths, count, layered.number_of_nodes())
            chop_nodes |= {node for node, _ in layered}
        paths, count, size = done[site.function]
        results.append(TargetTrace(site, paths, count, size))
    diagnostics = [d for d in cg.diagnostics if d.get("caller") in chop_nodes]
    return Trace(entry, query, results, diagnostics)
