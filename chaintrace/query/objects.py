"""Object sensitivity on paths: a path that builds an object from a constant table dispatches only to what it holds.

`block_job_create(..., &backup_job_driver, ...)` makes a job whose
`job->driver->run(job)` can only be `backup_run`; the graph, resolved by
type, lets that call reach every `JobDriver.run`. `ObjectCheck.feasible`
drops a path that takes such a call to another function: at each `ops` or
`dispatch` hop through a member `Struct.member`, the constant objects the
path has handed on so far (passed as an argument by a function on the path
before the hop, or by a function one of them reaches in at most
`CALLEE_DEPTH` calls, direct or through ops that need no deciding: the bounded context) are looked up; when some of them hold members of `Struct`, the hop
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
        # calls, and the ops calls that need no deciding (each, one, built): 7.2's qmp_transaction makes its
        # jobs in state->ops->prepare, a loop over the actions it filled
        self._direct = adj.allowed(["direct", "ops"], undecided=False)
        self._passed: dict[str, list[str]] = {}  # function -> objects it or its direct callees pass
        self._members: dict[str, dict[str, list[str]]] = {}
        self._hops: dict[tuple[str, str], tuple[set[str], str]] = {}  # (caller, callee) -> _dispatch_members
        self._allowed: dict[tuple[str, str], tuple[bool, set[str]]] = {}  # (function, member) -> see _held_by
        self.dropped = 0

    def feasible(self, path: list[str]) -> bool:
        """Return False when a hop of `path` dispatches through an object made on the path to a function it lacks."""
        for index in range(1, len(path)):
            if not self.hop_feasible(path[:index], path[index]):
                self.dropped += 1
                return False
        return True

    def needs_prefix(self, caller: str, callee: str) -> bool:
        """Return whether the hop from `caller` to `callee` runs only after some prefixes (it dispatches through
        a member the path must decide or narrow); False when every path may take it."""
        return bool(self._dispatch_members(caller, callee)[0])

    def hop_feasible(self, prefix: list[str], callee: str) -> bool:
        """Return whether the hop from the last function of `prefix` to `callee` may run after `prefix`."""
        members, how = self._dispatch_members(prefix[-1], callee)
        if not members:
            return True
        if how == "built":
            return self._filled_with(prefix, callee, members)
        return self._hop_allowed(prefix, callee, members, self.strict and how == "receiver")

    def _filled_with(self, prefix: list[str], callee: str, members: set[str]) -> bool:
        """Return whether a loop over a collection the path filled may call `callee`: the nearest function of
        the path, from the loop's own back, that hands on objects of the member's struct (qmp_transaction's
        tran_add calls, then tran_commit) says what is in it; when none does, the hop stays."""
        for function in reversed(prefix):
            for member in members:
                any_of_struct, callees = self._held_by(function, member)
                if any_of_struct:
                    return callee in callees
        return True

    def _dispatch_members(self, caller: str, callee: str) -> tuple[set[str], str]:
        """Return the members a hop calls through and how it picks its callee: "receiver" (the path must decide
        it, `kinds.undecided`), "built" (a loop over a collection the path filled: narrowed where the path says)
        or "" (a dispatch edge); no members when another kind of edge joins the two too, or for a call that
        runs every target (`each`) or the only one (`one`): those need no deciding."""
        found = self._hops.get((caller, callee))
        if found is None:
            found = self._hops[caller, callee] = self._read_hop(caller, callee)
        return found

    def _read_hop(self, caller: str, callee: str) -> tuple[set[str], str]:
        edges = self.graph.edges_between(caller, callee)
        if not edges or any(kind not in DISPATCH_KINDS or not data.get("member") for kind, data in edges):
            return set(), ""
        choices = {site.get("choice") for kind, data in edges if kind == "ops" for site in data.get("sites", ())}
        if choices and choices != {"built"} and not all(undecided(kind, data) for kind, data in edges):
            return set(), ""  # a call that runs every registered target (`each`) or the only one (`one`)
        how = "built" if choices == {"built"} else "receiver" if choices else ""
        return {data["member"] for _, data in edges}, how

    def _hop_allowed(self, prefix: list[str], callee: str, members: set[str], must_decide: bool) -> bool:
        """Return True when the objects `prefix` handed on let the hop go to `callee`; when none of them holds
        the member's struct, True unless `must_decide` (a strict trace takes an undecided hop only when decided)."""
        for member in members:
            relevant = False
            for function in set(prefix):
                any_of_struct, callees = self._held_by(function, member)
                if callee in callees:
                    return True
                relevant = relevant or any_of_struct
            if not relevant and not must_decide:
                return True
        return False

    def _held_by(self, function: str, member: str) -> tuple[bool, set[str]]:
        """Return (whether the objects `function` hands on hold any member of `member`'s struct, the functions
        they hold in `member`), cached: a path search asks it for the same functions again and again."""
        key = (function, member)
        if key not in self._allowed:
            struct = member.split(".", 1)[0] + "."
            objects = self._objects(self._passed_by(function))
            relevant = [held for held in objects.values() if any(name.startswith(struct) for name in held)]
            self._allowed[key] = (bool(relevant), {f for held in relevant for f in held.get(member, ())})
        return self._allowed[key]

    def _passed_by(self, function: str) -> list[str]:
        """Return the objects `function` hands on, itself or through the calls it makes within CALLEE_DEPTH:
        direct ones, ops that need no deciding, and ops to what an object the caller hands on holds (7.2's
        qmp_transaction calls state->ops->prepare from its own `actions` table: the jobs are made there)."""
        if function not in self._passed:
            node = self.adj.index(function)
            names: list[str] = []
            frontier, seen = ([node] if node is not None else []), {node}
            for _ in range(CALLEE_DEPTH + 1):
                found = self.graph.passes_of(self.adj.ids[n] for n in frontier)
                following = []
                for caller in frontier:
                    own = found.get(self.adj.ids[caller], [])
                    names += own
                    held = {f for table in self._objects(own).values() for fs in table.values() for f in fs}
                    for j in range(self.adj.out_offsets[caller], self.adj.out_offsets[caller + 1]):
                        callee, flag = self.adj.out_nodes[j], self.adj.out_flags[j]
                        if callee not in seen and (self._direct[flag] or self.adj.ids[callee] in held):
                            seen.add(callee)
                            following.append(callee)
                frontier = following
            self._passed[function] = list(dict.fromkeys(names))
        return self._passed[function]

    def _objects(self, names: list[str]) -> dict[str, dict[str, list[str]]]:
        missing = [name for name in names if name not in self._members]
        if missing:
            found = self.graph.object_members(missing)
            for name in missing:
                self._members[name] = found.get(name, {})
        return {name: self._members[name] for name in names}
