"""What a trace answers: the target sites, the paths to each, how many there are, and the graph they show.

Plain dataclasses that renderers read (`render.text`, `render.document`);
`shown_graph` detaches the nodes and edges a trace shows from the graph (or
store) they came from, so rendering needs neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chaintrace.query.lookup import GraphLookup


@dataclass(frozen=True)
class TargetSite:
    """One place a query target matches: `kind` is function, assign, read, use, call or line; `function` its node id.

    A field access (assign, read, use) says how it accesses the field
    (`access`: the operator of a write, `=`, `+=`, `++`; the place of a
    read, `argument`, `condition`, `rhs` ...; `address` for `&s->field`),
    the member's name (`field`), the struct type of its receiver when known
    (`receiver_type`), and how the target matched it (`match`: `type`,
    `name` or `expr`).
    """

    kind: str
    function: str
    file: str
    line: int
    col: int = 0
    statement: str = ""
    context: dict = field(default_factory=dict, hash=False, compare=False)
    access: str = ""
    field: str = ""
    receiver_type: str = ""
    match: str = ""
    target: str = ""  # the target spec that matched the site, when a trace has several


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
    """The answer to a trace query: the entry, the query's parameters, one TargetTrace per site, the indirect
    calls on the way left without a callee (`diagnostics`), and the nearest calls not followed because their
    receiver picks among callees that lead to a target and the path does not decide which (`undecided`,
    `undecided_total` in all: `query.decided`)."""

    entry: str
    query: dict
    targets: list[TargetTrace]
    diagnostics: list[dict] = field(default_factory=list)
    undecided: list[dict] = field(default_factory=list)
    undecided_total: int = 0


def counts_by_target(trace: Trace) -> list[dict]:
    """Return, per target spec of a trace with several (in their order), its sites and its paths.

    [{to, sites, paths_total, exact, method}]; the paths of a spec are summed
    over its distinct target functions, as the trace's own total is (`method`:
    the first inexact count's, else the first's). Empty when the
    trace's sites carry no spec (one `--to`).
    """
    specs: dict[str, dict[str, TargetTrace]] = {}
    for result in trace.targets:
        if result.site.target:
            specs.setdefault(result.site.target, {}).setdefault(result.site.function, result)
    sites = {spec: sum(r.site.target == spec for r in trace.targets) for spec in specs}
    found = []
    for spec, functions in specs.items():
        counts = [r.count for r in functions.values()]
        inexact = [count.method for count in counts if not count.exact]
        found.append({"to": spec, "sites": sites[spec], "paths_total": sum(count.total for count in counts),
                      "exact": not inexact, "method": inexact[0] if inexact else counts[0].method})
    return found


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
