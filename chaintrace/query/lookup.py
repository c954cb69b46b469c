"""Names to node ids: what every query reads of a call graph, and how a function is found in it.

The graph (`GraphLookup`) is either a whole `graph.model.CallGraph`
(networkx) or the stored graph tables of a tree
(`store.graph_tables.GraphStore`); both answer these lookups, so a query
never needs to know which it was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from chaintrace.errors import NotFound

if TYPE_CHECKING:
    from chaintrace.graph.adjacency import Adjacency


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
    def prefetch(self, sources: Iterable[str]) -> None: ...
    def edges_between(self, src: str, dst: str, kinds: Iterable[str] | None = None) -> list[tuple[str, dict]]: ...
    def diagnostics_of(self, callers: set[str]) -> list[dict]: ...
    def adjacency(self) -> Adjacency: ...
    def passes_of(self, functions: Iterable[str]) -> dict[str, list[str]]: ...
    def object_members(self, names: Iterable[str]) -> dict[str, dict[str, list[str]]]: ...


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
