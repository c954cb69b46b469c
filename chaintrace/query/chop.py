"""Chops of a call graph's integer form: the nodes reachable from one node that also reach another.

A trace counts and lists its paths (`paths`) inside the chop between its
entry and each target, after the filters (edge kinds, confidence, avoided
functions). Unfiltered, the chop is whole strongly connected components,
found on the component DAG of `Adjacency` (`ComponentChop`); filtered, it is
a walk forward from the entry and one back from the target. With `via`
functions the chop is *layered*: one copy of the graph per leg, joined at
each via node (`layered_chop`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from chaintrace.graph.adjacency import Adjacency
from chaintrace.query.paths import Distances, Succ


def chop_between(adj: Adjacency, source: int, target: int, allowed: bytes, banned: frozenset[int],
                 forward: dict[int, dict[int, int]], shared: dict | None = None,
                 extra: dict[int, list[int]] | None = None) -> tuple[Succ, Distances]:
    """Return the chop between two node indexes as successor lists, and each node's distance to `target`.

    `shared` is given for walks over every edge with nothing banned: then
    the chop is whole components of the graph, found on their DAG
    (`Adjacency.chop_components`), its successor lists and distances read
    only as far as a trace goes; it is cached per source and target
    component (the targets of one component are reached from the same
    nodes). Otherwise `forward` caches the walks from each source: a walk
    back from the target among the nodes reached is the chop (a shortest
    path from a chop node to `target` stays inside it). `extra` adds edges the flags leave out
    (`query.decided`).
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
        forward[source] = adj.reach([source], True, allowed, banned, extra=extra)
    reached = forward[source]
    if target not in reached:
        return {}, Distances.finished({})
    back: dict[int, list[int]] = {}
    for caller, callees in (extra or {}).items():
        for callee in callees:
            back.setdefault(callee, []).append(caller)
    # walking back only among the nodes reached forward finds the chop itself: a path from one of them
    # to the target never leaves them (they hold whatever they reach)
    backward = adj.reach([target], False, allowed, banned, within=reached, extra=back)
    return adj.successors_among(backward, allowed, extra), Distances.finished(backward)


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


def layered_chop(adj: Adjacency, stops: list[int], allowed: bytes, banned: frozenset[int],
                 forward: dict, shared: dict | None,
                 extra: dict[int, list[int]] | None = None) -> tuple[Succ, bool, Distances | None]:
    """Return the chop through `stops` in order, over nodes `leg * len(adj) + node`, whether the legs are disjoint,
    and (for a single leg) each node's distance to the end."""
    size = len(adj)
    layered: dict[int, list[int]] = {}
    seen: set[int] = set()
    disjoint = True
    for leg, (a, b) in enumerate(zip(stops, stops[1:])):
        part, distance = chop_between(adj, a, b, allowed, banned, forward, shared, extra)
        if len(stops) == 2:  # one leg: its nodes are the graph's
            return part, True, distance
        disjoint = disjoint and not (set(part) - {a}) & seen
        seen |= set(part)
        for node, nodes in part.items():
            layered[leg * size + node] = [leg * size + other for other in nodes]
        if leg and a in part:  # the via node itself carries the path into the next leg
            layered.setdefault((leg - 1) * size + a, []).append(leg * size + a)
    return layered, disjoint, None


def layered_components(adj: Adjacency, legs: int) -> Callable[[int], int]:
    """Return layered node -> component rank, sinks first: a later leg's ranks below an earlier one's.

    Legs join by one-way hops (the via node from one leg into the next), so
    no cycle crosses legs and each leg's components are the graph's.
    """
    ranks, size = adj.components, len(adj)
    if legs == 1:
        return ranks.__getitem__
    return lambda node: (legs - 1 - node // size) * size + ranks[node % size]