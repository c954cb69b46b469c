"""Calls whose receiver picks the callee: which of them a trace may take, and which it leaves.

`klass->io_close(ioc)` goes to the `io_close` of the class of `ioc`; the
graph, resolved by type, gives the call an edge to every `QIOChannelClass.io_close`
of the tree, flagged *undecided* (`graph.kinds.undecided`). A path takes such
a hop only where what the path did decides it: a constant object that holds
the callee in that member was handed on by a function of the path
(`block_job_create(..., &backup_job_driver, ...)` then `job->driver->run`:
the object check, `query.objects`, strict). Every other undecided hop is a
door the trace does not open; `--undecided` (and `--sound`) open them all.

`decidable_hops` returns, for one trace, the undecided edges that some
object handed on by a function reachable from the entry holds: the only ones
a path of the trace can take, added to the walk as extra edges; the object
check then keeps a path only where its own prefix decides each of them.
`closed_doors` returns the undecided call sites of a chop whose callees
would reach the target: the diagnostics a trace shows for what it left out.
"""

from __future__ import annotations

from collections import defaultdict

from chaintrace.graph.adjacency import Adjacency
from chaintrace.graph.kinds import EDGE_KINDS, undecided
from chaintrace.query.lookup import GraphLookup

_OPS = EDGE_KINDS.index("ops")


def decidable_hops(graph: GraphLookup, adj: Adjacency, entry: int, allowed: bytes,
                   banned: frozenset[int] = frozenset()) -> tuple[dict[int, list[int]], dict[int, int]]:
    """Return ({caller: [callees]} of the undecided `ops` edges a path from `entry` may take (see the module
    docstring), grown to a fixpoint: a hop taken reaches functions that hand on more objects, and callers
    of what the objects already seen hold; and the walk from `entry` with them: `adj.reach([entry], True,
    allowed, banned, extra=those edges)`, which the trace's chops start from)."""
    extra: dict[int, list[int]] = defaultdict(list)
    added: set[tuple[int, int]] = set()
    seen_objects: set[str] = set()
    held: set[tuple[str, str]] = set()  # (member, function) the objects handed on so far hold
    while True:
        reached = adj.reach([entry], True, allowed, banned, extra=extra)
        passed = {name for names in graph.passes_of(adj.ids[node] for node in reached).values() for name in names}
        fresh = passed - seen_objects
        seen_objects |= fresh
        for members in graph.object_members(fresh).values():
            held.update((member, function) for member, functions in members.items() for function in functions)
        grew = False
        for member, function in sorted(held):
            callee = adj.index(function)
            for caller in _undecided_callers(graph, adj, function, member, reached) if callee is not None else ():
                if (caller, callee) not in added:
                    added.add((caller, callee))
                    extra[caller].append(callee)
                    grew = True
        if not grew:
            return dict(extra), reached


def _undecided_callers(graph: GraphLookup, adj: Adjacency, function: str, member: str,
                       reached: dict[int, int]) -> list[int]:
    """Return the reached functions with an undecided `ops` edge through `member` to `function`."""
    node = adj.index(function)
    if node is None:
        return []
    callers = sorted({adj.in_nodes[j] for j in range(adj.in_offsets[node], adj.in_offsets[node + 1])
                      if adj.in_flags[j] // 4 == _OPS and adj.in_flags[j] & 2 and adj.in_nodes[j] in reached})
    graph.prefetch(adj.ids[caller] for caller in callers)
    return [caller for caller in callers
            if any(data.get("member") == member and undecided(kind, data)
                   for kind, data in graph.edges_between(adj.ids[caller], function, ["ops"]))]


def closed_doors(graph: GraphLookup, adj: Adjacency, region: dict[int, int], targets: list[int],
                 taken: dict[int, list[int]], limit: int = 20) -> tuple[list[dict], int]:
    """Return (the nearest `limit` undecided call sites, how many there are): the sites in `region` (reached
    from the entry: node -> hops) that the trace did not take though a callee reaches one of `targets` (over
    any edge: read on the component DAG, a few hundred steps where a walk would visit the whole graph).
    Each is a diagnostic dict, nearest the entry first."""
    if not targets:
        return [], 0
    ranks, components = adj.components_reaching(targets), adj.components
    doors: dict[tuple, dict] = {}
    calls = [(caller, callee) for caller in sorted(region, key=lambda node: (region[node], node))
             for j in range(adj.out_offsets[caller], adj.out_offsets[caller + 1])
             if (flag := adj.out_flags[j]) & 2 and flag // 4 == _OPS
             and components[callee := adj.out_nodes[j]] in ranks and callee not in taken.get(caller, ())]
    graph.prefetch(adj.ids[caller] for caller, _ in calls)
    for caller, callee in calls:
        for kind, data in graph.edges_between(adj.ids[caller], adj.ids[callee], ["ops"]):
            for site in data.get("sites", ()):
                key = (site.get("file"), site.get("line"), site.get("col"))
                door = doors.setdefault(key, {
                    "kind": "ops", "caller": adj.ids[caller], "file": site.get("file"), "line": site.get("line"),
                    "col": site.get("col"), "callee": site.get("callee", ""), "member": data.get("member", ""),
                    "targets": 0, "distance": region[caller]})
                door["targets"] += 1
    found = sorted(doors.values(), key=lambda d: (d["distance"], d["file"] or "", d["line"] or 0))[:limit]
    for door in found:
        door["reason"] = (f"the receiver picks the callee at run time, {door['targets']} of its callees lead to "
                          "the target, and nothing on the path decides which")
    return found, len(doors)
