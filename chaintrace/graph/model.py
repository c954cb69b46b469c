"""The call graph of a tree: one node per function definition, one edge per (caller, callee, kind).

Node ids
--------
* `path/to/file.c::name` for a `static` function (a `static inline` in a
  header is named after the header);
* `name` for a function with external linkage;
* an external name defined more than once (QEMU's `stubs/`, per-target
  files) keeps every definition: the *preferred* one (a non-stub file first,
  then the smallest path) is `name`, every other is `path::name` with
  `static=False`;
* several definitions of one name in one file (`#ifdef` / `#else` branches)
  are one node, at the first definition;
* a called name defined nowhere in the tree is an external leaf node `name`
  with `external=True`.

Edges
-----
The graph is an `nx.MultiDiGraph` whose edge key is the edge kind
(`direct`, `thread`, `callback`, `ops`, `fnptr`); each edge's data is a plain
JSON-able dict (see `docs/trace-schema.md`)::

    {"sites": [{"file", "line", "col", "conditions", "loops", ...}],
     "proof": {...}, "proofs": [...],          # non-direct kinds
     "confidence": "high" | "low",
     "ambiguous": [candidate ids], "preferred": "why", ...}

`graph_rows` / `graph_from_rows` turn the graph into plain rows and back, so
that it can be cached in SQLite and loaded a chop at a time. The graph is
built by `build.build_graph`, from the names `symbols.Symbols` resolves.
"""


from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import networkx as nx

from chaintrace.errors import close_matches
from chaintrace.graph.adjacency import Adjacency
from chaintrace.graph.direct_edges import DirectEdges, merged
from chaintrace.graph.kinds import kind_order, undecided

NodeRow = tuple[str, str, str, int, int, bool, bool]  # id, name, file, line, end_line, static, external
EdgeRow = tuple[str, str, str, dict]  # src, dst, kind, data


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while a graph is built or loaded.

    Building allocates millions of small containers that never form cycles:
    the collector would rescan them all again and again.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@dataclass
class CallGraph:
    """A call graph: `graph` holds the nodes and edges, `diagnostics` the indirect calls left unresolved.

    Each diagnostic is a dict {kind, caller, file, line, col, callee, reason}.
    """

    graph: nx.MultiDiGraph = field(default_factory=nx.MultiDiGraph)
    diagnostics: list[dict] = field(default_factory=list)
    # constant objects holding functions, and who passes them on (graph.objects): object sensitivity's facts
    objects: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    passes: dict[str, list[str]] = field(default_factory=dict)
    # the macro names resolution asked about (graph.scope.ReadNames): an edit of any other macro changes nothing
    macros_read: set[str] = field(default_factory=set, repr=False)
    _by_name: dict[str, list[str]] | None = field(default=None, repr=False)
    _by_file: dict[str, list[str]] | None = field(default=None, repr=False)
    _adjacency: Adjacency | None = field(default=None, repr=False)
    # (id(edge data), "sites"/"proofs") -> {(file, line, col): the item there, or a list when several are}, made
    # only for a list longer than _SCANNED (edges are never removed: ids stay theirs); most lists hold one or
    # two items, and an index entry per item cost QEMU 200 MB
    _seen: dict[tuple, dict] = field(default_factory=dict, repr=False)
    # the `conditions` and `loops` lists of the sites, one shared list per distinct value: most sites have none,
    # and an empty list per site cost QEMU 100 MB (nothing edits a site once it is in the graph)
    _lists: dict[tuple, list] = field(default_factory=dict, repr=False)
    # the direct edges as the calls that make them (graph.direct_edges), while a graph being saved holds them so;
    # None once they are in `graph` (any lookup but `edges` and `adjacency` puts them there first)
    direct: DirectEdges | None = field(default=None, repr=False)

    # -- building ---------------------------------------------------------
    def add_function(self, node_id: str, name: str, file: str, line: int, end_line: int,
                     static: bool, external: bool = False) -> None:
        """Add a node (a second definition of the same id keeps the first's attributes)."""
        if node_id not in self.graph:
            self.graph.add_node(node_id, name=name, file=file, line=line, end_line=end_line,
                                static=static, external=external)
            self._by_name = self._by_file = None
            self._adjacency = None

    def add_site(self, src: str, dst: str, kind: str, site: dict, **data: object) -> None:
        """Add a call site to the edge (src, dst, kind), creating it with `data` if needed.

        A `proof` in `data` is appended to the edge's `proofs` when new.
        """
        edge = self.graph.get_edge_data(src, dst, key=kind)  # the graph's own dict, updated in place
        if edge is None:
            self._share_lists(site)
            edge = {"sites": [site], "confidence": "high"}  # a list of one, not one with room for four
            edge.update({k: v for k, v in data.items() if k != "proof"})
            self.graph.add_edge(src, dst, key=kind, **edge)
            edge = self.graph.get_edge_data(src, dst, key=kind)
            self._adjacency = None
        else:
            self._append_new(edge, "sites", site)
        proof = data.get("proof")
        if proof is not None:
            self._append_new(edge, "proofs", proof)
            edge.setdefault("proof", proof)

    def _append_new(self, edge: dict, name: str, item: dict) -> None:
        """Append `item` to the list `edge[name]` unless an equal item is in it, in time independent of its length.

        A short list is scanned; a longer one is indexed by position (file,
        line, col) once, so one caller calling one callee 100,000 times costs
        100,000 lookups, not a scan of the list per site; only items at the
        same position are compared.
        """
        if name == "sites":
            self._share_lists(item)
        items = edge.get(name)
        if items is None:
            edge[name] = [item]
            return
        index = self._seen.get((id(edge), name))
        if index is None:
            if len(items) < _SCANNED:
                if item not in items:
                    items.append(item)
                return
            index = self._seen[id(edge), name] = {}
            for old in items:
                _remember(index, (old.get("file"), old.get("line"), old.get("col")), old)
        if _remember(index, (item.get("file"), item.get("line"), item.get("col")), item):
            items.append(item)

    def _share_lists(self, site: dict) -> None:
        """Point the site's `conditions` and `loops` at the graph's one list of each value."""
        try:
            conditions = site.get("conditions")
            if type(conditions) is list:
                site["conditions"] = self._lists.setdefault(("c", *conditions), conditions)
            loops = site.get("loops")
            if type(loops) is list and all(type(loop) is dict for loop in loops):
                site["loops"] = self._lists.setdefault(("l", *(tuple(loop.items()) for loop in loops)), loops)
        except TypeError:  # a value that cannot be a key (no site made here has one): the site keeps its own
            pass

    def settle(self) -> None:
        """Put the direct edges held as calls (`direct`) into `graph`, in the order `edges` lists them; returns None."""
        if self.direct is None:
            return
        graph = nx.MultiDiGraph()
        graph.add_nodes_from(self.graph.nodes(data=True))
        for src, dst, kind, data in self.edges():
            graph.add_edge(src, dst, key=kind, **data)
        self.graph, self.direct = graph, None
        self._by_name = self._by_file = self._adjacency = None
        self._seen = {}  # keyed by the ids of the old graph's data dicts

    def edges(self) -> Iterator[EdgeRow]:
        """Return an iterator over every edge (src, dst, kind, data), the direct edges held as calls included (their
        data made as each is reached), in networkx's order."""
        if self.direct is None:
            return iter(self.graph.edges(keys=True, data=True))
        return merged(self.graph.nodes, self.direct, self.graph.succ)

    # -- lookups (what `query.GraphLookup` asks for) -------------------------
    def has(self, node_id: str) -> bool:
        """Return True when `node_id` is a node of the graph."""
        return node_id in self.graph

    def node(self, node_id: str) -> dict:
        """Return the attributes of a node."""
        return self.graph.nodes[node_id]

    def close_names(self, name: str) -> str:
        """Return the ' (did you mean: ...?)' hint for an unknown function name."""
        return close_matches(name, {attrs.get("name", node) for node, attrs in self.graph.nodes(data=True)})

    def in_edges(self, node_id: str) -> list[tuple[str, str, str, dict]]:
        """Return the edges (src, dst, kind, data) into `node_id`."""
        self.settle()
        return list(self.graph.in_edges(node_id, keys=True, data=True))

    def diagnostics_of(self, callers: set[str]) -> list[dict]:
        """Return the diagnostics of indirect calls made by `callers`."""
        return [d for d in self.diagnostics if d.get("caller") in callers]

    def passes_of(self, functions: Iterable[str]) -> dict[str, list[str]]:
        """Return {function: [object names]} for those of `functions` that pass constant objects to calls."""
        return {f: self.passes[f] for f in set(functions) if f in self.passes}

    def object_members(self, names: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """Return {object name: {"Struct.member": [function ids]}} of the constant objects `names`."""
        return {n: self.objects[n] for n in set(names) if n in self.objects}

    def adjacency(self) -> Adjacency:
        """Return the graph's integer form for fast walks (built once, until the graph changes)."""
        if self._adjacency is None:
            # the direct edges held as calls are not made into dicts for this: they are high and decided
            edges = ((src, dst, kind, data is not None and data.get("confidence") == "low",
                      data is not None and undecided(kind, data))
                     for src, dst, kind, data in (self.edges() if self.direct is None else
                                                  merged(self.graph.nodes, self.direct, self.graph.succ, with_data=False)))
            self._adjacency = Adjacency.from_edges(self.graph.nodes, edges)
        return self._adjacency

    def forget_adjacency(self) -> None:
        """Drop the integer form `adjacency` made (it is made again when next asked for); returns None."""
        self._adjacency = None

    def ids_named(self, name: str) -> list[str]:
        """Return the ids of every node whose function name is `name` (external-linkage one first)."""
        if self._by_name is None:
            self._by_name = {}
            for node_id, attrs in self.graph.nodes(data=True):
                self._by_name.setdefault(attrs.get("name", node_id), []).append(node_id)
            for ids in self._by_name.values():
                ids.sort(key=lambda i: ("::" in i, i))
        return list(self._by_name.get(name, ()))

    def ids_in_file(self, file: str) -> list[str]:
        """Return the ids of the functions defined in `file`."""
        if self._by_file is None:
            self._by_file = {}
            for node_id, attrs in self.graph.nodes(data=True):
                self._by_file.setdefault(attrs.get("file", ""), []).append(node_id)
        return list(self._by_file.get(file, ()))

    def prefetch(self, sources: Iterable[str]) -> None:
        """Return None: the whole graph is in memory (the stored tables read rows ahead here)."""

    def edges_between(self, src: str, dst: str, kinds: Iterable[str] | None = None) -> list[tuple[str, dict]]:
        """Return [(kind, data)] of the edges from `src` to `dst`, in EDGE_KINDS order."""
        self.settle()
        found = self.graph.get_edge_data(src, dst) or {}
        wanted = set(kinds) if kinds is not None else None
        return [(kind, found[kind]) for kind in sorted(found, key=kind_order) if wanted is None or kind in wanted]


_SCANNED = 8  # items of an edge's list compared one by one before the list gets an index by position


def _remember(index: dict, position: tuple, item: dict) -> bool:
    """Record `item` at `position` in `index`; return False when an equal item is there already."""
    here = index.get(position)
    if here is None:
        index[position] = item
    elif type(here) is list:
        if item in here:
            return False
        here.append(item)
    elif here == item:
        return False
    else:
        index[position] = [here, item]
    return True


def graph_rows(cg: CallGraph) -> tuple[list[NodeRow], list[EdgeRow]]:
    """Return the graph as plain rows.

    Returns
    -------
    nodes : list of (id, name, file, line, end_line, static, external)
    edges : list of (src, dst, kind, data)
        `data` is a JSON-able dict (sites, proof, proofs, confidence,
        ambiguous, ...). Diagnostics are not part of the rows: store
        `cg.diagnostics` (a list of JSON-able dicts) beside them.
    """
    nodes = [
        (node_id, a["name"], a["file"], a["line"], a["end_line"], a["static"], a["external"])
        for node_id, a in cg.graph.nodes(data=True)
    ]
    edges = [(src, dst, kind, dict(data)) for src, dst, kind, data in cg.edges()]
    return nodes, edges


def iter_rows(cg: CallGraph) -> tuple[Iterator[NodeRow], Iterator[EdgeRow]]:
    """Return the rows of `graph_rows` as iterators over the graph itself (no copy of any edge's data, and the data
    of direct edges held as calls made one at a time: saving a graph of QEMU's size streams them)."""
    nodes = ((node_id, a["name"], a["file"], a["line"], a["end_line"], a["static"], a["external"])
             for node_id, a in cg.graph.nodes(data=True))
    return nodes, cg.edges()


def graph_from_rows(nodes: Iterable[NodeRow], edges: Iterable[EdgeRow],
                    diagnostics: Iterable[dict] = ()) -> CallGraph:
    """Return a CallGraph from rows made by `graph_rows` (the whole graph or any part of it).

    An edge whose endpoint is missing from `nodes` (a partial load) gets a
    bare node named after the id's last `::` part, with file "" and line 0.
    """
    cg = CallGraph(diagnostics=list(diagnostics))
    with no_cycle_collection():
        for node_id, name, file, line, end_line, static, external in nodes:
            cg.add_function(node_id, name, file, line, end_line, bool(static), bool(external))
        for src, dst, kind, data in edges:
            for endpoint in (src, dst):
                if endpoint not in cg.graph:
                    cg.add_function(endpoint, endpoint.rsplit("::", 1)[-1], "", 0, 0, "::" in endpoint)
            cg.graph.add_edge(src, dst, key=kind, **data)
    return cg
