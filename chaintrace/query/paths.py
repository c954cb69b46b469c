"""Simple paths in a chop, counted and enumerated: pure algorithms over successor lists, networkx-style.

A *chop* is given as `succ`, a mapping node -> successors inside it (every
node reachable from the source that also reaches the target). Nodes are any
hashable values; the trace passes integer indexes of `graph.adjacency`.

Counting and cycles (`count_paths`)
    On an acyclic chop the count is exact (dynamic programming, method
    "dag").  On a cyclic one the count is still exact (method "scc") as long
    as the simple paths inside each strongly connected component can be
    enumerated within `budget` steps: a simple path crosses each component
    once, so the count is a product-sum over the DAG of components of the
    paths inside them.  Beyond the budget (or when the walks into a component
    would need more than is left: each reads all of it) the count is a lower
    bound (method "scc lower bound": a component contributes one path per
    exit, or one path when it holds the target).  With `max_depth` the paths
    are counted by a depth-bounded walk (method "enumerated", or
    "enumerated lower bound" past the budget).

Enumeration (`iter_paths`)
    A generator of the simple paths, shortest first, paths of one length in
    the order of the successor lists; it stops after `budget` steps, as path
    counts in a call graph can explode.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping

from chaintrace.graph.components import strongly_connected
from chaintrace.query.results import PathCount

COUNT_BUDGET = 200_000
ENUMERATION_BUDGET = 2_000_000  # steps of the path search: a safety net, far beyond what 50 paths of QEMU take

Succ = Mapping[Hashable, list]  # a chop: node -> successors inside it


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


def count_paths(succ: Succ, source, target, max_depth: int | None = None, budget: int = COUNT_BUDGET,
                component_of: Callable[[Hashable], int] | None = None, shape: dict | None = None) -> PathCount:
    """Count the simple paths from `source` to `target` in a chop.

    Parameters
    ----------
    succ : mapping
        A chop as successor lists (every node reachable from `source` and reaching `target`).
    source, target : node
        The ends of the paths.
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

    Examples
    --------
    >>> count_paths({"s": ["a", "t"], "a": ["t"], "t": []}, "s", "t")
    PathCount(total=2, exact=True, method='dag')

    Notes
    -----
    Linear in the chop's size when it is acyclic; inside a strongly
    connected component the simple paths are walked, at most `budget` steps
    in all.
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
    components = _components(succ, shape, component_of)
    if len(components) == len(succ):  # acyclic: each node's count is the sum of its successors'
        ways: dict = {target: 1}
        for (node,) in components:  # sinks first: every successor's count is known before its node's
            if node != target:
                ways[node] = sum(ways[w] for w in succ[node])
        return PathCount(ways[source], True, "dag")
    return _count_through_components(succ, source, target, budget, shape)


def _components(succ: Succ, shape: dict, component_of: Callable[[Hashable], int] | None) -> list[list]:
    """Return (and keep in `shape`) the chop's strongly connected components, sinks first."""
    if "components" not in shape:
        if component_of is None:
            shape["components"] = strongly_connected(succ, succ)
        else:
            grouped: dict[int, list] = {}
            for node in succ:
                grouped.setdefault(component_of(node), []).append(node)
            shape["components"] = [grouped[rank] for rank in sorted(grouped)]
    return shape["components"]


def _count_through_components(succ: Succ, source, target, budget: int, shape: dict) -> PathCount:
    """Count the paths of a cyclic chop: a product-sum over the DAG of its components (sinks first)."""
    components = shape["components"]
    if "entered" not in shape:
        member_of = {node: index for index, component in enumerate(components) for node in component}
        shape["entered"] = entered = {source}
        for node, nodes in succ.items():
            entered.update(other for other in nodes if member_of[other] != member_of[node])
    entered = shape["entered"]
    costs = shape.setdefault("costs", {})
    ways: dict = {target: 1}
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
               distance: Distances | None = None, hop_ok: Callable[[list, Hashable], bool] | None = None,
               status: dict | None = None) -> Iterator[list]:
    """Yield the simple paths from `source` to `target`, shortest first, up to `max_depth` edges.

    Paths of one length come in the order of the successor lists (a chop's
    are sorted, so: in the order of their node ids). Each length is a
    depth-first search pruned by every node's distance to `target`; the
    search ends when a length's search pruned nothing (no longer path
    exists) or after `budget` steps in all. `distance` (each node's fewest
    edges to `target`) is walked when not given; a length's search needs
    only the nodes within that length of `target`. `hop_ok(path, node)`, when
    given, prunes every path that extends `path` by `node` (a feasibility
    check: no longer path through that hop is tried either). `status`, when
    given, gets "complete": True when every path was seen, False when the
    budget ran out.
    """
    if status is not None:
        status["complete"] = False
    if source not in succ or target not in succ:
        if status is not None:
            status["complete"] = True
        return
    if source == target:
        if status is not None:
            status["complete"] = True
        yield [source]
        return
    distance = distance if distance is not None else Distances.finished(_distances_to(succ, target))
    shortest = distance.find(source)
    if shortest is None:
        if status is not None:
            status["complete"] = True
        return
    known = distance.known
    longest = len(succ) - 1 if max_depth is None else min(max_depth, len(succ) - 1)
    remaining = [budget]
    for length in range(shortest, longest + 1):
        distance.walk(length)  # a node still unknown is farther from the target than this length
        pruned = yield from _paths_of_length(succ, source, target, length, known, hop_ok, remaining)
        if pruned is None:  # out of steps
            return
        if not pruned:
            break
    if status is not None:
        status["complete"] = True


def every_path(succ: Succ, source, target, max_depth: int | None = None, limit: int = 10_000,
               budget: int = ENUMERATION_BUDGET // 4, distance: Distances | None = None,
               hop_ok: Callable[[list, Hashable], bool] | None = None) -> list[list] | None:
    """Return every simple path from `source` to `target` (up to `max_depth` edges) in `iter_paths`' order, or
    None when there are more than `limit` or the search needs more than `budget` steps.

    One depth-first search, bounded by the longest length allowed, then a
    stable sort by length: `iter_paths` searches once per length (for its
    shortest-first promise under a budget), so listing all of a chop's paths
    through it repeats the search of every shorter length (33 searches, 23
    times the steps, for the headline's 80 paths). The search finds paths in
    the order of the successor lists, so the sort gives `iter_paths`' order.
    """
    if source not in succ or target not in succ:
        return []
    if source == target:
        return [[source]]
    distance = distance if distance is not None else Distances.finished(_distances_to(succ, target))
    longest = len(succ) - 1 if max_depth is None else min(max_depth, len(succ) - 1)
    distance.walk(longest)
    known = distance.known
    if source not in known:
        return []
    found: list[list] = []
    remaining = [budget]
    for path in _paths_of_length(succ, source, target, longest, known, hop_ok, remaining, exact=False):
        found.append(path)
        if len(found) > limit:
            return None
    if remaining[0] < 0:  # out of steps
        return None
    found.sort(key=len)
    return found


def _paths_of_length(succ: Succ, source, target, length: int, known: Mapping, hop_ok: Callable | None,
                     remaining: list[int], exact: bool = True) -> Iterator[list]:
    """Yield the simple paths of `length` edges (of at most `length` unless `exact`: a depth-first search pruned
    by `known` distances to `target` and by `hop_ok`); return whether the distances pruned anything (a longer
    path may exist), or None when `remaining` steps ran out."""
    path, on_path = [source], {source}
    stack = [iter(succ[source])]
    pruned = False
    while stack:
        remaining[0] -= 1
        if remaining[0] < 0:
            return None
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            on_path.discard(path.pop())
            continue
        if nxt in on_path:
            continue
        if nxt == target:
            if exact and len(path) != length:
                pruned = True
            elif hop_ok is None or hop_ok(path, nxt):
                yield [*path, target]
            continue
        left = known.get(nxt)
        if left is None or len(path) + left > length:
            pruned = True
            continue
        if hop_ok is not None and not hop_ok(path, nxt):
            continue
        path.append(nxt)
        on_path.add(nxt)
        stack.append(iter(succ[nxt]))
    return pruned


def _distances_to(succ: Succ, target) -> dict:
    """Return {node: fewest edges from it to `target`} over the whole chop."""
    pred: dict = {node: [] for node in succ}
    for node, nodes in succ.items():
        for other in nodes:
            pred[other].append(node)
    distance = Distances(target, pred.__getitem__)
    distance.walk(len(succ))
    return distance.known
