"""Walks of a graph given as successor lists, without recursion: what is reachable, strongly connected components.

The adjacency ranks its ~100,000 nodes by component, and a chop's paths are
counted per component: both need Tarjan's algorithm on graphs deeper than
Python's recursion limit, and networkx's is not used there because importing
networkx costs a third of a second on the warm path.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping


def strongly_connected(succ: dict | list, nodes: Iterable) -> list[list]:
    """Return the strongly connected components among `nodes` (edges `succ[node]`), sinks first (Tarjan, iterative).

    Sinks first: every edge leaving a component goes to one listed before it.
    """
    members = nodes if isinstance(nodes, (set, dict, range)) else set(nodes)
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    components: list[list] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(succ[root]))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in members:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ[child])))
                    break
                if child in on_stack and index[child] < low[node]:
                    low[node] = index[child]
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    if low[node] < low[parent]:
                        low[parent] = low[node]
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def reachable(start: Hashable, successors: Mapping) -> set:
    """Return every node reachable from `start` over `successors[node]` (absent: none), `start` included."""
    seen = {start}
    todo = [start]
    while todo:
        for node in successors.get(todo.pop(), ()):
            if node not in seen:
                seen.add(node)
                todo.append(node)
    return seen
