"""Object sensitivity on paths: a path that builds an object from a constant table dispatches only to what it holds.

`block_job_create(..., &backup_job_driver, ...)` makes a job whose
`job->driver->run(job)` can only be `backup_run`; the graph, resolved by
type, lets that call reach every `JobDriver.run`. `ObjectCheck.feasible`
drops a path that takes such a call to another function: at each `ops` or
`dispatch` hop through a member `Struct.member`, the constant objects the
path has handed on so far (passed as an argument by a function on the path
before the hop, or by a function one of them reaches in at most
`CALLEE_DEPTH` direct calls: the bounded context) are looked up; when some of them hold members of `Struct`, the hop
must go to a function one of them holds in `member`. When none does, the
hop stays: what cannot be decided is kept.

The facts come from the graph (`graph.objects`: `passes_of`,
`object_members`); the check reads only what the paths it sees need.
"""

from __future__ import annotations

from chaintrace.graph.adjacency import Adjacency
from chaintrace.graph.kinds import undecided
from chaintrace.query.lookup import GraphLookup

DISPATCH_KINDS = ("ops", "dispatch")
# How far down direct calls an object a path's function hands on still counts as made on the path: the
# constructor is often a callee of a callee (replication_start -> backup_job_create -> block_job_create).
CALLEE_DEPTH = 4


class ObjectCheck:
    """The feasibility check of one trace, with its lookups cached across the paths it sees."""

    def __init__(self, graph: GraphLookup, adj: Adjacency, strict: bool = False) -> None:
        self.graph, self.adj, self.strict = graph, adj, strict
        self._direct = adj.allowed(["direct"])
        self._passed: dict[str, list[str]] = {}  # function -> objects it or its direct callees pass
        self._members: dict[str, dict[str, list[str]]] = {}
        self.dropped = 0

    def feasible(self, path: list[str]) -> bool:
        """Return False when a hop of `path` dispatches through an object made on the path to a function it lacks."""
        for index in range(1, len(path)):
            members, receiver = self._dispatch_members(path[index - 1], path[index])
            if members and not self._hop_allowed(path[:index], path[index], members, self.strict and receiver):
                self.dropped += 1
                return False
        return True

    def _dispatch_members(self, caller: str, callee: str) -> tuple[set[str], bool]:
        """Return the members a hop calls through and whether the receiver picks the callee (`kinds.undecided`),
        or no members when another kind of edge joins the two too, or a call that runs every target
        (`each`) or the only one (`one`): those need no deciding."""
        edges = self.graph.edges_between(caller, callee)
        if not edges or any(kind not in DISPATCH_KINDS or not data.get("member") for kind, data in edges):
            return set(), False
        if any(kind == "ops" and not undecided(kind, data) for kind, data in edges):
            return set(), False
        return {data["member"] for _, data in edges}, all(undecided(kind, data) for kind, data in edges)

    def _hop_allowed(self, prefix: list[str], callee: str, members: set[str], must_decide: bool) -> bool:
        """Return True when the objects `prefix` handed on let the hop go to `callee`; when none of them holds
        the member's struct, True unless `must_decide` (a strict trace takes an undecided hop only when decided)."""
        objects = self._objects([name for function in prefix for name in self._passed_by(function)])
        for member in members:
            struct = member.split(".", 1)[0] + "."
            relevant = [held for held in objects.values() if any(key.startswith(struct) for key in held)]
            if relevant and any(callee in held.get(member, ()) for held in relevant):
                return True
            if not relevant and not must_decide:
                return True
        return False

    def _passed_by(self, function: str) -> list[str]:
        if function not in self._passed:
            node = self.adj.index(function)
            reached = self.adj.reach([node], True, self._direct, depth=CALLEE_DEPTH) if node is not None else {}
            near = [self.adj.ids[i] for i in reached]
            found = self.graph.passes_of([function, *near])
            self._passed[function] = [name for names in found.values() for name in names]
        return self._passed[function]

    def _objects(self, names: list[str]) -> dict[str, dict[str, list[str]]]:
        missing = [name for name in names if name not in self._members]
        if missing:
            found = self.graph.object_members(missing)
            for name in missing:
                self._members[name] = found.get(name, {})
        return {name: self._members[name] for name in names}
