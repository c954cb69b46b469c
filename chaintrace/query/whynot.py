"""Why no path joins an entry to a target: where each side ends, and the unresolved calls that could join them.

When a trace finds no path, two sets of functions still say a lot: the
functions the entry reaches (forward, along the trace's edge kinds) and the
functions that reach the target (backward). A missing edge must run from
the first set into the second. `why_not` names

- the functions of the entry's side closest to the target, and those of
  the target's side closest to the entry, closeness being the number of
  calls between them in either direction (an undirected walk that does not
  pass through hubs such as `g_free`, which would make every function a
  neighbour of every other); when no calls connect enough of them (a
  function pointer chaintrace could not follow often cuts the graph in
  two), the nearest by source file fill the list, their distance None;
- the unresolved indirect calls (the graph's diagnostics) made by
  functions of the entry's side, closest to the target first: each could
  be the missing edge.

Walks run on the integer form of the graph (`graph.adjacency`), as traces do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chaintrace.graph.adjacency import Adjacency
from chaintrace.graph.kinds import EDGE_KINDS
from chaintrace.query.lookup import GraphLookup, find_function

HUB_DEGREE = 64  # a function with more callers and callees than this links unrelated code: never walked through


@dataclass
class WhyNot:
    """Why `entry` reaches none of `targets` (node ids): each side's size, its functions nearest the other, joins.

    `near_target` and `near_entry` are [(node id, distance)], nearest first
    (distance None: no calls connect them, near by source file);
    `joins` the diagnostics of unresolved indirect calls in the entry's side,
    nearest the target first (`joins_total` of them in all). `path_exists`
    is True when there is a path after all (nothing else is filled then);
    `filters_cut` when a path exists with every edge kind and nothing avoided.
    """

    entry: str
    targets: list[str]
    path_exists: bool = False
    reached: int = 0
    reaching: int = 0
    near_target: list[tuple[str, int | None]] = field(default_factory=list)
    near_entry: list[tuple[str, int | None]] = field(default_factory=list)
    joins: list[dict] = field(default_factory=list)
    joins_total: int = 0
    filters_cut: bool = False


def why_not(graph: GraphLookup, entry: str, targets: Iterable[str], *, edge_kinds: Iterable[str] | None = None,
            avoid: Iterable[str] = (), limit: int = 5) -> WhyNot:
    """Return why no path runs from `entry` to the target functions `targets` (see the module docstring).

    Parameters
    ----------
    graph : the call graph (whole or stored)
    entry, targets : function names or node ids
    edge_kinds, avoid : the trace's filters (every kind, nothing avoided by default)
    limit : how many functions of each side, and how many joins, to name

    Notes
    -----
    Two directed walks and two undirected ones, each O(nodes + edges) at
    worst; the undirected walks stop once `limit` functions are found.
    """
    entry = find_function(graph, entry)
    targets = sorted({find_function(graph, target) for target in targets})
    result = WhyNot(entry, targets)
    adj = graph.adjacency()
    allowed = adj.allowed(tuple(edge_kinds or EDGE_KINDS))
    banned = frozenset(i for i in (adj.index(a) for a in avoid) if i is not None)
    start = adj.index(entry)
    ends = [i for i in map(adj.index, targets) if i is not None]
    reached = adj.reach([start], True, allowed, banned) if start is not None else {}
    reaching = adj.reach(ends, False, allowed, banned)
    if any(end in reached for end in ends):
        result.path_exists = True
        return result
    result.reached, result.reaching = len(reached), len(reaching)
    if (banned or not all(allowed)) and start is not None:
        everything = adj.allowed()
        result.filters_cut = any(end in adj.reach([start], True, everything) for end in ends)
    from_target = _undirected(adj, ends, reached, limit)
    from_entry = _undirected(adj, [start] if start is not None else [], reaching, limit)
    result.near_target = _nearest(graph, adj, from_target, reached, targets, limit)
    result.near_entry = _nearest(graph, adj, from_entry, reaching, [entry], limit)
    reached_ids = {adj.ids[node] for node in reached}
    if start is None:
        reached_ids.add(entry)
    joins = graph.diagnostics_of(reached_ids)
    far = len(adj) + 1
    distance = {adj.ids[node]: hops for node, hops in from_target.items()}
    files = [graph.node(target)["file"] for target in targets]
    joins.sort(key=lambda d: (distance.get(d.get("caller", ""), far), -_closeness(d.get("file", ""), files),
                              d.get("file", ""), d.get("line", 0)))
    result.joins, result.joins_total = joins[:limit], len(joins)
    return result


def _undirected(adj: Adjacency, starts: list[int], wanted: dict[int, int], limit: int) -> dict[int, int]:
    """Return {node: distance} of an undirected walk from `starts`, to the level where `limit` of `wanted` are found.

    Hubs are reached but never walked through.
    """
    distance = {node: 0 for node in starts}
    frontier = list(distance)
    found = sum(node in wanted for node in frontier)
    hops = 0
    while frontier and found < limit:
        hops += 1
        following = []
        for node in frontier:
            if hops > 1 and _degree(adj, node) > HUB_DEGREE:
                continue
            for side in (adj.out_nodes[adj.out_offsets[node]:adj.out_offsets[node + 1]],
                         adj.in_nodes[adj.in_offsets[node]:adj.in_offsets[node + 1]]):
                for other in side:
                    if other not in distance:
                        distance[other] = hops
                        following.append(other)
                        found += other in wanted
        frontier = following
    return distance


def _degree(adj: Adjacency, node: int) -> int:
    return (adj.out_offsets[node + 1] - adj.out_offsets[node]) + (adj.in_offsets[node + 1] - adj.in_offsets[node])


def _nearest(graph: GraphLookup, adj: Adjacency, distance: dict[int, int], wanted: dict[int, int],
             other_side: list[str], limit: int) -> list[tuple[str, int | None]]:
    """Return the `limit` nodes of `wanted` nearest in `distance`, as (id, distance), nearest first, then by id.

    When the walk found fewer, the nodes of `wanted` whose files are nearest those of `other_side` fill the list.
    """
    files = [graph.node(node)["file"] for node in other_side]
    found = sorted((hops, adj.ids[node]) for node, hops in distance.items() if node in wanted)
    if found:  # every node as near as the limit-th, so that ties go to the nearest files
        found = [item for item in found if item[0] <= found[min(limit, len(found)) - 1][0]]
    _preload(graph, (node for _, node in found))
    found.sort(key=lambda item: (item[0], -_closeness(graph.node(item[1])["file"], files), item[1]))
    nearest: list[tuple[str, int | None]] = [(node, hops) for hops, node in found[:limit]]
    if len(nearest) < limit:
        taken = {node for node, _ in nearest}
        rest = [adj.ids[node] for node in wanted if adj.ids[node] not in taken]
        _preload(graph, rest)
        rest.sort(key=lambda node: (-_closeness(graph.node(node)["file"], files), node))
        nearest += [(node, None) for node in rest[:limit - len(nearest)] if graph.node(node)["file"]]
    return nearest


def _preload(graph: GraphLookup, nodes: Iterable[str]) -> None:
    preload = getattr(graph, "preload_nodes", None)
    if preload is not None:  # one query for all, rather than one per node
        preload(nodes)


def _closeness(file: str, others: list[str]) -> int:
    """Return how many leading path parts `file` shares with the nearest of `others` (a whole match counts one more)."""
    parts = file.split("/")
    best = 0
    for other in others:
        shared = 0
        for mine, theirs in zip(parts, other.split("/")):
            if mine != theirs:
                break
            shared += 1
        best = max(best, shared + (file == other))
    return best
