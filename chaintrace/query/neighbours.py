"""Callers and callees of a function within a number of hops, read from the graph's integer form."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from chaintrace.query.lookup import GraphLookup, find_function


def callees(graph: GraphLookup, func: str, depth: int = 1, edge_kinds: Iterable[str] | None = None,
            min_confidence: str = "low") -> Iterator[tuple[str, int]]:
    """Yield (node id, distance) of the functions `func` reaches within `depth` hops, nearest first."""
    return _neighbourhood(graph, func, True, depth, edge_kinds, min_confidence)


def callers(graph: GraphLookup, func: str, depth: int = 1, edge_kinds: Iterable[str] | None = None,
            min_confidence: str = "low") -> Iterator[tuple[str, int]]:
    """Yield (node id, distance) of the functions that reach `func` within `depth` hops, nearest first."""
    return _neighbourhood(graph, func, False, depth, edge_kinds, min_confidence)


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
