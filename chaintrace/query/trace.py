"""Queries on a call graph: targets, paths from an entry to them, callers and callees.

The graph (`GraphLookup`) is either a whole `graph.CallGraph` (networkx) or
the stored graph tables of a tree (`graphstore.GraphStore`); walks run on
its integer form (`adjacency.Adjacency`), so a trace over all of QEMU
loads no more than that and never imports networkx.

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
    (hops), `min_confidence`.  Paths are enumerated shortest first, paths
    of one length in the order of their node ids (`iter_paths`, a
    generator), `max_paths` of them; `count_paths` counts them all.

Counting and cycles (`count_paths`)
    On an acyclic chop the count is exact (dynamic programming, method
    "dag").  On a cyclic one the count is still exact (method "scc") as long
    as the simple paths inside each strongly connected component can be
    enumerated within `budget` steps: a simple path crosses each component
    once, so the count is a product-sum over the DAG of components of the
    paths inside them.  Beyond the budget (or when the walks into a component
    would need more than is left: each reads all of it) the count is a lower
    bound (method "scc lower bound": a component contributes one path per
    exit, or one path when it holds the target).  With `max_depth` the paths are counted by a depth-bounded walk
    (method "enumerated", or "enumerated lower bound" past the budget).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from chaintrace.graph.adjacency import Adjacency, strongly_connected
from chaintrace.graph.kinds import EDGE_KINDS
from chaintrace.errors import NotFound
from chaintrace.extract.facts import CallSite, Context, FieldWrite

DEFAULT_MAX_PATHS = 50
COUNT_BUDGET = 200_000
ENUMERATION_BUDGET = 2_000_000  # steps of the path search: a safety net, far beyond what 50 paths of QEMU take

Succ = dict[Hashable, list]  # a chop: node -> successors inside it


class UnknownFunction(NotFound, LookupError):
    """A function the graph does not hold (or an ambiguous name); the message is one line."""


class GraphLookup(Protocol):
    """What queries read of a call graph (a `CallGraph`, or the stored tables of one)."""

    def has(self, node_id: str) -> bool: ...
    def node(self, node_id: str) -> dict: ...
    def ids_named(self, name: str) -> list[str]: ...
    def close_names(self, name: str) -> str: ...
    def ids_in_file(self, file: str) -> list[str]: ...
    def in_edges(self, node_id: str) -> list[tuple[str, str, str, dict]]: ...
    def edges_between(self, src: str, dst: str, kinds: Iterable[str] | None = None) -> list[tuple[str, dict]]: ...
    def diagnostics_of(self, callers: set[str]) -> list[dict]: ...
    def adjacency(self) -> Adjacency: ...


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


@dataclass
class ShownGraph:
    """The nodes and edges a trace shows, detached from the graph (and store) they were read from.

    It answers the two lookups renderers make, `node` and `edges_between`.
    """

    nodes: dict[str, dict]
    edges: dict[tuple[str, str], list[tuple[str, dict]]]

    def node(self, node_id: str) -> dict:
        """Return the attributes of a node (name, file, line, end_line, static, external)."""
        return self.nodes[node_id]

    def edges_between(self, src: str, dst: str, kinds: Iterable[str] | None = None) -> list[tuple[str, dict]]:
        """Return [(kind, data)] of the edges from `src` to `dst`, in EDGE_KINDS order."""
        wanted = set(kinds) if kinds is not None else None
        return [(kind, data) for kind, data in self.edges.get((src, dst), ()) if wanted is None or kind in wanted]


def shown_graph(graph: GraphLookup, result: Trace) -> ShownGraph:
    """Return the nodes (entry, path nodes, target functions) and the hops of `result`'s paths, read from `graph`."""
    nodes: dict[str, None] = {result.entry: None}
    hops: dict[tuple[str, str], None] = {}
    for target in result.targets:
        nodes[target.site.function] = None
        for path in target.paths:
            nodes.update(dict.fromkeys(path))
            hops.update(dict.fromkeys(zip(path, path[1:])))
    preload = getattr(graph, "preload_nodes", None)
    if preload is not None:  # one query for all, rather than one per node
        preload(nodes)
    return ShownGraph({node: graph.node(node) for node in nodes}, {hop: graph.edges_between(*hop) for hop in hops})


def find_function(graph: GraphLookup, name: str) -> str:
    """Return the node id of a function given as node id or name.

    Raises UnknownFunction with close matches, or listing the candidates when
    several static functions share the name.
    """
    if graph.has(name):
        return name
    ids = graph.ids_named(name)
    if len(ids) == 1:
        return ids[0]
    if ids:
        raise UnknownFunction(f"ambiguous function {name!r}: {', '.join(ids[:8])}; give one of these ids")
    raise UnknownFunction(f"unknown function {name!r}{graph.close_names(name)}")


def id_of(graph: GraphLookup, file: str, name: str) -> str | None:
    """Return the id of the function `name` defined in `file`, or None."""
    return next((node_id for node_id in graph.ids_in_file(file) if graph.node(node_id)["name"] == name), None)


def function_at(graph: GraphLookup, file: str, line: int) -> str | None:
    """Return the id of the innermost function of `file` whose span holds `line`, or None."""
    spans = [(a["end_line"] - a["line"], node_id) for node_id in graph.ids_in_file(file)
             if (a := graph.node(node_id))["line"] <= line <= a["end_line"]]
    return min(spans)[1] if spans else None


def _context(context: Context) -> dict:
    return {
        "loops": [{"kind": loop.kind, "condition": loop.condition, "line": loop.line} for loop in context.loops],
        "conditions": list(context.conditions),
        "guards": [{"condition": g.condition, "statement": g.statement, "line": g.line} for g in context.guards],
    }


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def find_targets(graph: GraphLookup, spec: str, writes: Iterable[FieldWrite] = (), calls: Iterable[CallSite] = (),
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
                function = id_of(graph, write.file, write.function)
                if function is not None:
                    sites.append(TargetSite("assign", function, write.file, write.line, write.col,
                                            write.statement, _context(write.context)))
    elif kind == "call" and value:
        callee = find_function(graph, value)
        texts = {(c.file, c.line, c.col): f"{c.callee}({', '.join(c.args)})" for c in calls}
        for caller, _, edge_kind, data in graph.in_edges(callee):
            if edge_kind in ("direct", "ops", "fnptr"):
                for s in data["sites"]:
                    statement = texts.get((s["file"], s["line"], s["col"]), f"{graph.node(callee)['name']}(...)")
                    sites.append(TargetSite("call", caller, s["file"], s["line"], s["col"], statement,
                                            {"loops": s["loops"], "conditions": s["conditions"], "guards": []}))
    elif re.fullmatch(r".+:\d+", spec) and kind not in ("assign", "call"):
        file, _, line = spec.rpartition(":")
        function = function_at(graph, file, int(line))
        if function is None:
            raise UnknownFunction(f"no function of the graph holds {spec}")
        statement = read_line(file, int(line)).strip() if read_line else ""
        sites.append(TargetSite("line", function, file, int(line), 0, statement))
    else:
        function = find_function(graph, spec)
        attrs = graph.node(function)
        sites.append(TargetSite("function", function, attrs["file"], attrs["line"], 0, attrs["name"]))
    return sorted(set(sites), key=lambda s: (s.file, s.line, s.col))


# -- neighbourhoods ---------------------------------------------------------
def _neighbourhood(graph: GraphLookup, func: str, forward: bool, depth: int, edge_kinds: Iterable[str] | None,
                   min_confidence: str) -> Iterator[tuple[str, int]]:
    adj = graph.adjacency()
    start = adj.index(find_function(graph, func))
    if start is None:  # a node of the lookup that has no edges at all
        return
    reached = adj.reach([start], forward, adj.allowed(edge_kinds, min_confidence), depth=depth)
    for node, distance in reached.items():
        if node != start:
            yield adj.ids[node], distance


def callees(graph: GraphLookup, func: str, depth: int = 1, edge_kinds: Iterable[str] | None = None,
            min_confidence: str = "low") -> Iterator[tuple[str, int]]:
    """Yield (node id, distance) of the functions `func` reaches within `depth` hops, nearest first."""
    return _neighbourhood(graph, func, True, depth, edge_kinds, min_confidence)


def callers(graph: GraphLookup, func: str, depth: int = 1, edge_kinds: Iterable[str] | None = None,
            min_confidence: str = "low") -> Iterator[tuple[str, int]]:
    """Yield (node id, distance) of the functions that reach `func` within `depth` hops, nearest first."""
    return _neighbourhood(graph, func, False, depth, edge_kinds, min_confidence)


def _chop(adj: Adjacency, source: int, target: int, allowed: bytes, banned: frozenset[int],
          forward: dict[int, dict[int, int]], shared: dict | None = None) -> tuple[Succ, Distances]:
    """Return the chop between two node indexes as successor lists, and each node's distance to `target`.

    `shared` is given for walks over every edge with nothing banned: then
    the chop is whole components of the graph, found on their DAG
    (`Adjacency.chop_components`), its successor lists and distances read
    only as far as a trace goes; it is cached per source and target
    component (the targets of one component are reached from the same
    nodes). Otherwise `forward` caches the walks from each source: a walk
    back from the target among the nodes reached is the chop (a shortest
    path from a chop node to `target` stays inside it).
    """
    if source in banned or target in banned:
        return {}, Distances.finished({})
    if shared is not None:
        key = (source, adj.components[target])
        if key not in shared:
            ranks = adj.chop_components(source, target)
            shared[key] = ComponentChop(adj, ranks, source) if ranks else None
        whole = shared[key]
        if whole is None:
            return {}, Distances.finished({})
        return whole, Distances(target, whole.predecessors)
    if source not in forward:
        forward[source] = adj.reach([source], True, allowed, banned)
    reached = forward[source]
    if target not in reached:
        return {}, Distances.finished({})
    # walking back only among the nodes reached forward finds the chop itself: a path from one of them
    # to the target never leaves them (they hold whatever they reach)
    backward = adj.reach([target], False, allowed, banned, within=reached)
    return adj.successors_among(backward, allowed), Distances.finished(backward)


class ComponentChop(Mapping):
    """An unfiltered chop: the members of whole components of the graph, as read-only successor lists.

    Each node's list (its successors inside the chop, in index order) is
    read from the graph's simple CSR on first use: a trace through QEMU's
    12,000-node chop reads a few hundred. `count_shape` gives what counting
    needs of the components without reading every list.
    """

    def __init__(self, adj: Adjacency, ranks: list[int], source: int) -> None:
        self.adj, self.ranks, self.source = adj, ranks, source
        self.components = [list(adj.members(rank)) for rank in ranks]  # sinks first, as counting wants
        self.nodes = {node for component in self.components for node in component}
        self.lists: dict[int, list[int]] = {}
        self.shape: dict | None = None

    def __getitem__(self, node: int) -> list[int]:
        found = self.lists.get(node)
        if found is None:
            if node not in self.nodes:
                raise KeyError(node)
            offsets, successors, nodes = self.adj.simple_offsets, self.adj.simple_nodes, self.nodes
            found = self.lists[node] = [other for other in successors[offsets[node]:offsets[node + 1]] if other in nodes]
        return found

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self.nodes))

    def __len__(self) -> int:
        return len(self.nodes)

    def predecessors(self, node: int) -> list[int]:
        """Return the predecessors of `node` inside the chop (repeats possible: one per edge kind)."""
        offsets, before, nodes = self.adj.in_offsets, self.adj.in_nodes, self.nodes
        return [other for other in before[offsets[node]:offsets[node + 1]] if other in nodes and other != node]

    def count_shape(self) -> dict:
        """Return the `shape` for `count_paths` from the source: components, entered nodes, walk costs.

        A component with no edge to another one of the chop enters none and
        costs its inner edges (all in the chop, as all its members are), so
        its successor lists are not read.
        """
        if self.shape is None:
            adj, ranks = self.adj, set(self.ranks)
            components, entered, costs = self.components, {self.source}, {}
            for index, (rank, component) in enumerate(zip(self.ranks, components)):
                after = adj.comp_out[adj.comp_out_offsets[rank]:adj.comp_out_offsets[rank + 1]]
                leaves = any(other in ranks for other in after)
                if leaves:
                    for node in component:
                        entered.update(other for other in self[node] if adj.components[other] != rank)
                if len(component) > 1:
                    costs[index] = sum(len(self[node]) + 1 for node in component) if leaves \
                        else adj.comp_inner_edges[rank] + len(component)
            self.shape = {"components": components, "entered": entered, "costs": costs}
        return self.shape


class Distances:
    """Fewest edges from chop nodes to a target: a walk back from the target, taken only as deep as asked.

    `walk(depth)` finds every node within `depth` edges; `known` holds what
    was found (a node missing from it is farther than the walk has gone).
    """

    def __init__(self, target: Hashable, predecessors: Callable[[Hashable], Iterable]) -> None:
        self.known: dict = {target: 0}
        self.frontier: list = [target]
        self.depth = 0
        self.predecessors = predecessors

    @classmethod
    def finished(cls, distance: dict) -> Distances:
        """Return the distances of a finished walk."""
        found = cls.__new__(cls)
        found.known, found.frontier, found.depth, found.predecessors = distance, [], 0, None
        return found

    def walk(self, depth: int) -> None:
        """Walk on until every node within `depth` edges of the target is known (or none is left)."""
        while self.frontier and self.depth < depth:
            self.depth += 1
            following = []
            for node in self.frontier:
                for other in self.predecessors(node):
                    if other not in self.known:
                        self.known[other] = self.depth
                        following.append(other)
            self.frontier = following

    def find(self, node: Hashable) -> int | None:
        """Return the distance of `node`, walking as far as it takes; None when it does not reach the target."""
        while node not in self.known and self.frontier:
            self.walk(self.depth + 1)
        return self.known.get(node)


def chop(graph: GraphLookup, source: str, target: str, edge_kinds: Iterable[str] | None = None,
         avoid: Iterable[str] = (), min_confidence: str = "low") -> dict[str, list[str]]:
    """Return the chop as {node id: successor ids}: the allowed edges among nodes reachable from `source` that reach `target`."""
    adj = graph.adjacency()
    ends = adj.index(source), adj.index(target)
    if None in ends:
        return {}
    banned = frozenset(i for i in map(adj.index, avoid) if i is not None)
    succ, _ = _chop(adj, *ends, adj.allowed(edge_kinds, min_confidence), banned, {})
    return {adj.ids[node]: [adj.ids[other] for other in nodes] for node, nodes in succ.items()}


# -- counting and enumerating -----------------------------------------------
def _predecessors(succ: Succ) -> dict:
    pred: dict = {node: [] for node in succ}
    for node, nodes in succ.items():
        for other in nodes:
            pred[other].append(node)
    return pred


def _distances_to(succ: Succ, target) -> dict:
    """Return {node: fewest edges from it to `target`} over the chop."""
    pred = _predecessors(succ)
    distance = {target: 0}
    frontier = [target]
    while frontier:
        following = []
        for node in frontier:
            for other in pred.get(node, ()):
                if other not in distance:
                    distance[other] = distance[node] + 1
                    following.append(other)
        frontier = following
    return distance


def count_paths(succ: Succ, source, target, max_depth: int | None = None, budget: int = COUNT_BUDGET,
                component_of: Callable[[Hashable], int] | None = None, shape: dict | None = None) -> PathCount:
    """Count the simple paths from `source` to `target` in a chop.

    Parameters
    ----------
    succ : dict
        A chop as successor lists (every node reachable from `source` and reaching `target`).
    max_depth : int, optional
        Count only paths of at most this many edges.
    budget : int
        Steps of path enumeration allowed before settling for a lower bound.
    component_of : callable, optional
        Node -> rank of its strongly connected component, ranks sinks first,
        when known (see `adjacency`); otherwise they are searched.
    shape : dict, optional
        Filled with what counting reads of the chop itself (components,
        their entries, the cost of walking each), and read back when
        already filled: targets that share a chop and a source share it
        (`ComponentChop.count_shape` fills it without reading every list).

    Returns
    -------
    PathCount
        The total, whether it is exact, and the method (see the module docstring).
    """
    if source not in succ or target not in succ:
        return PathCount(0, True, "dag")
    if source == target:
        return PathCount(1, True, "dag")
    if max_depth is not None:
        # a depth-bounded walk, pruned by each node's distance to the target
        distance = _distances_to(succ, target)
        counts, finished = _walk(succ, source, target, [budget],
                                 lambda node, edges: edges + distance.get(node, max_depth + 1) <= max_depth)
        return PathCount(counts.get(target, 0), finished, "enumerated" if finished else "enumerated lower bound")
    shape = shape if shape is not None else {}
    if "components" not in shape:
        if component_of is None:
            shape["components"] = strongly_connected(succ, succ)
        else:
            grouped: dict[int, list] = {}
            for node in succ:
                grouped.setdefault(component_of(node), []).append(node)
            shape["components"] = [grouped[rank] for rank in sorted(grouped)]
    components = shape["components"]
    # sinks first: every successor's count is known before its node's
    ways: dict = {target: 1}
    if len(components) == len(succ):  # acyclic: each node's count is the sum of its successors'
        for (node,) in components:
            if node != target:
                ways[node] = sum(ways[w] for w in succ[node])
        return PathCount(ways[source], True, "dag")
    if "entered" not in shape:
        member_of = {node: index for index, component in enumerate(components) for node in component}
        shape["entered"] = entered = {source}
        for node, nodes in succ.items():
            entered.update(other for other in nodes if member_of[other] != member_of[node])
    entered = shape["entered"]
    costs = shape.setdefault("costs", {})
    exact = True
    remaining = [budget]  # shared by every component, so a count never takes more than `budget` steps
    for index, component in enumerate(components):
        if len(component) == 1:
            (node,) = component
            if node != target:
                ways[node] = sum(ways[w] for w in succ[node])
            continue
        nodes = set(component)
        # With the target inside, nothing leaves the component (whatever a chop node reaches, and that
        # reaches the target, is in the target's component): no exits to sum.
        exits = {} if target in nodes else {y: sum(ways[w] for w in succ[y] if w not in nodes) for y in component}
        starts = [x for x in component if x != target and x in entered]
        # Walks that cannot finish within the budget are not started. From each entry a walk reads every
        # successor list of the component (all of it is reachable), but for what only the target leads to.
        if index not in costs:
            costs[index] = sum(len(succ[y]) + 1 for y in component)
        hopeless = costs[index] * len(starts) > remaining[0]
        for x in starts:
            inner, finished = ({}, False) if hopeless else \
                _walk(succ, x, target, remaining, lambda node, _: node in nodes)
            if not finished:  # too many: one path per exit of the component
                exact = False
                ways[x] = _lower_bound(nodes, target, exits)
                continue
            ways[x] = sum(n * (1 if y == target else exits.get(y, 0)) for y, n in inner.items())
    return PathCount(ways.get(source, 0), exact, "scc" if exact else "scc lower bound")


def _lower_bound(nodes: set, target, exits: dict) -> int:
    """Return a lower bound of the simple paths from a node entering the component `nodes` to `target`.

    The component is strongly connected. Without `target` inside, every
    node of it reaches all of it: at least one path per exit. With `target`
    inside it has no exits (whatever a chop node reaches and that reaches
    `target` is in `target`'s component): at least one path, to `target`.
    """
    return 1 if target in nodes else sum(exits.values())


def _walk(succ: Succ, start, stop, remaining: list[int], allowed: Callable[[object, int], bool]) -> tuple[dict, bool]:
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


def iter_paths(succ: Succ, source, target, max_depth: int | None = None, budget: int = ENUMERATION_BUDGET,
               distance: Distances | None = None) -> Iterator[list]:
    """Yield the simple paths from `source` to `target`, shortest first, up to `max_depth` edges.

    Paths of one length come in the order of the successor lists (a chop's
    are sorted, so: in the order of their node ids). Each length is a
    depth-first search pruned by every node's distance to `target`; the
    search ends when a length's search pruned nothing (no longer path
    exists) or after `budget` steps in all. `distance` (each node's fewest
    edges to `target`) is walked when not given; a length's search needs
    only the nodes within that length of `target`.
    """
    if source not in succ or target not in succ:
        return
    if source == target:
        yield [source]
        return
    distance = distance if distance is not None else Distances.finished(_distances_to(succ, target))
    shortest = distance.find(source)
    if shortest is None:
        return
    known = distance.known
    longest = len(succ) - 1 if max_depth is None else min(max_depth, len(succ) - 1)
    for length in range(shortest, longest + 1):
        distance.walk(length)  # a node still unknown is farther from the target than this length
        path, on_path = [source], {source}
        stack = [iter(succ[source])]
        pruned = False
        while stack:
            budget -= 1
            if budget < 0:
                return
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                on_path.discard(path.pop())
                continue
            if nxt in on_path:
                continue
            if nxt == target:
                if len(path) == length:
                    yield [*path, target]
                else:
                    pruned = True
                continue
            left = known.get(nxt)
            if left is None or len(path) + left > length:
                pruned = True
                continue
            path.append(nxt)
            on_path.add(nxt)
            stack.append(iter(succ[nxt]))
        if not pruned:
            return


def _layered(adj: Adjacency, stops: list[int], allowed: bytes, banned: frozenset[int],
             forward: dict, shared: dict | None) -> tuple[Succ, bool, Distances | None]:
    """Return the chop through `stops` in order, over nodes `leg * len(adj) + node`, whether the legs are disjoint,
    and (for a single leg) each node's distance to the end."""
    size = len(adj)
    layered: Succ = {}
    seen: set[int] = set()
    disjoint = True
    for leg, (a, b) in enumerate(zip(stops, stops[1:])):
        part, distance = _chop(adj, a, b, allowed, banned, forward, shared)
        if len(stops) == 2:  # one leg: its nodes are the graph's
            return part, True, distance
        disjoint = disjoint and not (set(part) - {a}) & seen
        seen |= set(part)
        for node, nodes in part.items():
            layered[leg * size + node] = [leg * size + other for other in nodes]
        if leg and a in part:  # the via node itself carries the path into the next leg
            layered.setdefault((leg - 1) * size + a, []).append(leg * size + a)
    return layered, disjoint, (distance if len(stops) == 2 else None)


def _layered_components(adj: Adjacency, legs: int) -> Callable[[int], int]:
    """Return layered node -> component rank, sinks first: a later leg's ranks below an earlier one's.

    Legs join by one-way hops (the via node from one leg into the next), so
    no cycle crosses legs and each leg's components are the graph's.
    """
    ranks, size = adj.components, len(adj)
    if legs == 1:
        return ranks.__getitem__
    return lambda node: (legs - 1 - node // size) * size + ranks[node % size]


def trace(graph: GraphLookup, entry: str, targets: list[TargetSite], *, max_paths: int = DEFAULT_MAX_PATHS,
          max_depth: int | None = None, via: Iterable[str] = (), avoid: Iterable[str] = (),
          edge_kinds: Iterable[str] | None = None, min_confidence: str = "low") -> Trace:
    """Return the paths from `entry` to every target site (see the module docstring for the filters)."""
    entry = find_function(graph, entry)
    via = [find_function(graph, v) for v in via]
    avoid = [find_function(graph, a) for a in avoid]
    kinds = tuple(edge_kinds or EDGE_KINDS)
    query = {"entry": entry, "max_paths": max_paths, "max_depth": max_depth, "via": via, "avoid": avoid,
             "edge_kinds": list(kinds), "min_confidence": min_confidence}
    adj = graph.adjacency()
    allowed = adj.allowed(kinds, min_confidence)
    size = len(adj)
    banned = frozenset(i for i in map(adj.index, avoid) if i is not None)
    results: list[TargetTrace] = []
    done: dict[str, tuple] = {}
    forward: dict = {}
    shared: dict = {}
    chop_nodes: set[int] = set()
    for site in targets:
        if site.function not in done:
            stops = [adj.index(node) for node in (entry, *via, site.function)]
            if None in stops:  # an end without edges: only the empty trace, or the entry itself
                paths = [[entry]] if entry == site.function and not via else []
                done[site.function] = (paths, PathCount(len(paths), True, "dag"), len(paths))
            else:
                # unfiltered and without avoid, each leg's components are the whole graph's
                whole = not banned and all(allowed)
                layered, disjoint, distance = _layered(adj, stops, allowed, banned, forward, shared if whole else None)
                start, end = stops[0], (len(stops) - 2) * size + stops[-1]
                if start == end and start not in layered:
                    layered = {**layered, start: []}
                depth = None if max_depth is None else max_depth + len(via)  # each via adds a hop between legs
                component_of = _layered_components(adj, len(stops) - 1) if whole else None
                # targets of one component share a chop when walking every edge, nothing avoided, no via
                shape = layered.count_shape() if isinstance(layered, ComponentChop) else None
                count = count_paths(layered, start, end, depth, component_of=component_of, shape=shape)
                if via and not disjoint:  # combinations of legs that share a node are counted too
                    overlap = "upper bound" if count.exact else "an estimate"
                    count = PathCount(count.total, False, f"{count.method}, via legs overlap: {overlap}")
                paths = []
                for path in iter_paths(layered, start, end, depth, distance=distance) if max_paths > 0 else ():
                    nodes = [node % size for node in path]
                    nodes = [n for i, n in enumerate(nodes) if i == 0 or n != nodes[i - 1]]
                    if len(set(nodes)) == len(nodes):
                        paths.append([adj.ids[node] for node in nodes])
                    if len(paths) >= max_paths:
                        break
                done[site.function] = (paths, count, len(layered))
                chop_nodes.update(layered if len(stops) == 2 else (node % size for node in layered))
        paths, count, chop_size = done[site.function]
        results.append(TargetTrace(site, paths, count, chop_size))
    diagnostics = graph.diagnostics_of({adj.ids[node] for node in chop_nodes})
    return Trace(entry, query, results, diagnostics)
