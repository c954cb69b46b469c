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
that it can be cached in SQLite and loaded a chop at a time.
"""

from __future__ import annotations

import gc
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import networkx as nx

from chaintrace.graph.adjacency import Adjacency, kind_order
from chaintrace.errors import close_matches
from chaintrace.extract.facts import CallSite, Context, FileFacts, FunctionDef

NodeRow = tuple[str, str, str, int, int, bool, bool]  # id, name, file, line, end_line, static, external
EdgeRow = tuple[str, str, str, dict]  # src, dst, kind, data



@dataclass
class CallGraph:
    """A call graph: `graph` holds the nodes and edges, `diagnostics` the indirect calls left unresolved.

    Each diagnostic is a dict {kind, caller, file, line, col, callee, reason}.
    """

    graph: nx.MultiDiGraph = field(default_factory=nx.MultiDiGraph)
    diagnostics: list[dict] = field(default_factory=list)
    _by_name: dict[str, list[str]] | None = field(default=None, repr=False)
    _by_file: dict[str, list[str]] | None = field(default=None, repr=False)
    _adjacency: Adjacency | None = field(default=None, repr=False)

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
            edge = {"sites": [], "confidence": "high"}
            edge.update({k: v for k, v in data.items() if k != "proof"})
            self.graph.add_edge(src, dst, key=kind, **edge)
            edge = self.graph.get_edge_data(src, dst, key=kind)
            self._adjacency = None
        if site not in edge["sites"]:
            edge["sites"].append(site)
        proof = data.get("proof")
        if proof is not None:
            proofs = edge.setdefault("proofs", [])
            if proof not in proofs:
                proofs.append(proof)
            edge.setdefault("proof", proof)

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
        return list(self.graph.in_edges(node_id, keys=True, data=True))

    def diagnostics_of(self, callers: set[str]) -> list[dict]:
        """Return the diagnostics of indirect calls made by `callers`."""
        return [d for d in self.diagnostics if d.get("caller") in callers]

    def adjacency(self) -> Adjacency:
        """Return the graph's integer form for fast walks (built once, until the graph changes)."""
        if self._adjacency is None:
            edges = ((src, dst, kind, data.get("confidence") == "low")
                     for src, dst, kind, data in self.graph.edges(keys=True, data=True))
            self._adjacency = Adjacency.from_edges(self.graph.nodes, edges)
        return self._adjacency

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

    def edges_between(self, src: str, dst: str, kinds: Iterable[str] | None = None) -> list[tuple[str, dict]]:
        """Return [(kind, data)] of the edges from `src` to `dst`, in EDGE_KINDS order."""
        found = self.graph.get_edge_data(src, dst) or {}
        wanted = set(kinds) if kinds is not None else None
        return [(kind, found[kind]) for kind in sorted(found, key=kind_order) if wanted is None or kind in wanted]


def site_of(file: str, line: int, col: int, context: Context, **extra: object) -> dict:
    """Return the JSON-able dict of one site: position, `#if` conditions and enclosing loops."""
    site = {
        "file": file,
        "line": line,
        "col": col,
        "conditions": list(context.conditions),
        "loops": [{"kind": loop.kind, "condition": loop.condition, "line": loop.line} for loop in context.loops],
    }
    site.update(extra)
    return site


def call_site(call: CallSite, **extra: object) -> dict:
    """Return the site dict of a call."""
    return site_of(call.file, call.line, call.col, call.context, **extra)


# Names that are never functions of the tree: compiler builtins and C-library macros, and
# C keywords, which look like calls in a macro body (`if (`) and which a misparse can give
# a "function" (`if (x) {...}` read as a definition).
_BUILTIN_PREFIXES = ("__builtin_", "__atomic_", "__sync_")
_KEYWORDS = frozenset({"va_start", "va_end", "va_arg", "va_copy", "offsetof", "alignof", "_Alignof",
                       "_Static_assert", "static_assert", "if", "else", "while", "for", "do", "switch", "case",
                       "return", "goto", "sizeof", "typeof", "__typeof__", "_Generic", "__attribute__",
                       "__asm__", "asm", "defined"})
_IDENT_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_NON_TYPE_WORDS = {"const", "volatile", "struct", "union", "enum", "static", "restrict"}


@dataclass(frozen=True)
class Target:
    """What a called name resolves to: a node id, with the other candidates when ambiguous."""

    id: str
    external: bool = False
    candidates: tuple[str, ...] = ()
    reason: str = ""
    macro: str = ""


def is_stub(path: str) -> bool:
    """Return True for QEMU stub files: under a `stubs/` folder or named `*stub*`."""
    parts = PurePosixPath(path).parts
    return "stubs" in parts[:-1] or "stub" in parts[-1]


def bare_type(text: str) -> str:
    """Return a type's name without qualifiers, `struct` and stars: `const struct Foo *` -> `Foo`."""
    words = [w for w in re.split(r"[\s*()\[\]]+", text) if w and w not in _NON_TYPE_WORDS]
    return words[-1] if words else ""


class Symbols:
    """The tree's definitions, declarations and macros, and what names mean in each file."""

    def __init__(self, facts: Iterable[FileFacts]) -> None:
        self._ids: dict[tuple[str, str], str] = {}  # (file, name) -> node id
        self._defs: dict[str, FunctionDef] = {}  # node id -> first definition
        self.external: dict[str, list[str]] = {}  # name -> ids, preferred first
        self.header_static: dict[str, list[str]] = defaultdict(list)  # statics outside .c files
        self.macros: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        self.types: set[str] = set()
        self.typedefs: dict[str, str] = {}
        self.structs: dict[str, list] = defaultdict(list)
        self.locals: dict[tuple[str, str, str], str] = {}  # (file, function, name) -> type
        self.globals: dict[tuple[str, str], str] = {}  # (file, name) -> type
        self.global_types: dict[str, str] = {}  # name -> type, any file
        self.returns: dict[str, str] = {}  # function name -> return type
        self._shared: dict[str, Target | None] = {}  # name -> what it means outside its own file
        self._expanded: dict[tuple[str, str], list[Target]] = {}
        externals: dict[str, list[FunctionDef]] = defaultdict(list)
        for file_facts in facts:
            self._index(file_facts, externals)
        for name, defs in externals.items():
            defs.sort(key=lambda d: (is_stub(d.file), d.file))
            ids = []
            for rank, definition in enumerate(defs):
                node_id = name if rank == 0 else f"{definition.file}::{name}"
                self._define(definition, node_id)
                ids.append(self._ids[definition.file, name])
            self.external[name] = list(dict.fromkeys(ids))

    def _index(self, facts: FileFacts, externals: dict[str, list[FunctionDef]]) -> None:
        for definition in facts.functions:
            if definition.name in _KEYWORDS:
                continue
            self.returns.setdefault(definition.name, definition.return_type)
            if definition.is_static:
                self._define(definition, f"{definition.file}::{definition.name}")
                if not definition.file.endswith(".c"):
                    self.header_static[definition.name].append(self._ids[definition.file, definition.name])
            elif not any(d.file == definition.file for d in externals[definition.name]):
                externals[definition.name].append(definition)
        for prototype in facts.prototypes:
            self.returns.setdefault(prototype.name, prototype.return_type)
        for define in facts.defines:
            self.macros[define.name].append((define.params or (), define.body))
        for typedef in facts.typedefs:
            self.types.add(typedef.name)
            self.typedefs.setdefault(typedef.name, bare_type(typedef.type))
        for struct in facts.structs:
            self.types.add(struct.name)
            self.structs[struct.name].append(struct)
        for var in facts.variables:
            if var.function:
                self.locals[var.file, var.function, var.name] = var.type
            else:
                self.globals[var.file, var.name] = var.type
                if not var.file.endswith(".c"):  # declared in a header: visible everywhere
                    self.global_types.setdefault(var.name, var.type)

    def _define(self, definition: FunctionDef, node_id: str) -> None:
        # A second definition in the same file (#if/#else) is the same node.
        if (definition.file, definition.name) not in self._ids:
            self._ids[definition.file, definition.name] = node_id
            self._defs.setdefault(node_id, definition)

    def nodes(self) -> Iterator[tuple[str, FunctionDef]]:
        """Yield (node id, first definition) of every defined function."""
        yield from self._defs.items()

    def id_of(self, file: str, name: str) -> str | None:
        """Return the node id of the function `name` defined in `file`, or None."""
        return self._ids.get((file, name))

    def is_variable(self, file: str, function: str, name: str) -> bool:
        """Return True when `name` is a local of `function` or a variable of `file` (not a function)."""
        return (file, function, name) in self.locals or ((file, name) in self.globals and (file, name) not in self._ids)

    def resolve_function(self, file: str, name: str) -> Target | None:
        """Return the defined function `name` means in `file`: its static, the external one, a header's static."""
        own = self._ids.get((file, name))
        if own is not None:
            return Target(own)  # the file's static, or its own definition of an external name
        if name not in self._shared:
            self._shared[name] = None
            for ids in (self.external.get(name), self.header_static.get(name)):
                if ids and len(ids) == 1:
                    self._shared[name] = Target(ids[0])
                elif ids:
                    stubs = [is_stub(self._defs[i].file) for i in ids]
                    reason = "non-stub definition preferred" if any(stubs) and not stubs[0] else "first definition by path"
                    self._shared[name] = Target(ids[0], candidates=tuple(ids), reason=reason)
                if ids:
                    break
        return self._shared[name]

    def is_pointer_variable(self, file: str, name: str) -> bool:
        """Return True when a plain-name call of `name` in `file` calls through a global variable."""
        return self.resolve_function(file, name) is None and name not in self.macros and (
            (file, name) in self.globals or name in self.global_types)

    def direct_targets(self, file: str, name: str, depth: int = 0) -> list[Target]:
        """Return what a plain-name call of `name` in `file` calls.

        A defined function; else, for a macro, the defined functions its body
        calls (marked `macro`); else an external leaf, except for type names
        (a cast the parser read as a call), builtins and global variables
        (calls through a global pointer are `fnptr`, not direct).
        """
        target = self.resolve_function(file, name)
        if target is not None:
            return [target]
        if not depth and name in self.macros:  # the same macro is called from many places: expand it once per file
            if (file, name) not in self._expanded:
                self._expanded[file, name] = self._expand(file, name, depth)
            return self._expanded[file, name]
        if name in self.macros:
            return self._expand(file, name, depth)
        if depth or name in self.types or name.startswith(_BUILTIN_PREFIXES) or name in _KEYWORDS:
            return []
        if self.is_pointer_variable(file, name):
            return []
        return [Target(name, external=True)]

    def _expand(self, file: str, name: str, depth: int) -> list[Target]:
        """Return the defined functions a macro's bodies call, directly or through other macros."""
        if depth > 4:
            return []
        found: dict[str, Target] = {}
        for params, body in self.macros[name]:
            for word in _IDENT_CALL.findall(body):
                if word not in params and word != name and word not in _KEYWORDS:
                    for t in self.direct_targets(file, word, depth + 1):
                        if not t.external:
                            found.setdefault(t.id, Target(t.id, False, t.candidates, t.reason, t.macro or name))
        return list(found.values())


def build_graph(facts: Iterable[FileFacts], registrars: dict | None = None) -> CallGraph:
    """Return the call graph of a tree's facts, all edge kinds included.

    Parameters
    ----------
    facts : iterable of FileFacts
        The facts of every file of the tree (paths relative to its root).
    registrars : dict, optional
        The registrar table (see `resolve.load_registrars`); QEMU's by default.

    Returns
    -------
    CallGraph
        Nodes for every definition and every called external name; `direct`
        edges from plain-name calls, then the indirect kinds added by
        `chaintrace.graph.indirect.add_indirect_edges`.
    """
    facts = list(facts)
    # Building allocates millions of small containers that never form cycles:
    # the cyclic garbage collector would rescan them all again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(facts, registrars)
    finally:
        if collecting:
            gc.enable()


def _build(facts: list[FileFacts], registrars: dict | None) -> CallGraph:
    # Imported here: resolve builds on this module's CallGraph and Symbols.
    from chaintrace.graph import indirect as resolve

    symbols = Symbols(facts)
    cg = CallGraph()
    for node_id, definition in symbols.nodes():
        cg.add_function(node_id, definition.name, definition.file, definition.line,
                        definition.end_line, definition.is_static)
    for file_facts in facts:
        for call in file_facts.calls:
            if call.caller and call.via == "name":
                _add_direct(cg, symbols, call)
    resolve.add_indirect_edges(cg, symbols, facts, registrars)
    return cg


def _add_direct(cg: CallGraph, symbols: Symbols, call: CallSite) -> None:
    """Add the direct edge(s) of a plain-name call, or hand it to the indirect resolver."""
    caller = symbols.id_of(call.file, call.caller)
    if caller is None:
        return
    for target in symbols.direct_targets(call.file, call.callee):
        if target.external:
            cg.add_function(target.id, call.callee, "", 0, 0, False, external=True)
        extra = {"macro": target.macro} if target.macro else {}
        data = {}
        if target.candidates:
            data = {"ambiguous": list(target.candidates), "preferred": target.reason}
        cg.add_site(caller, target.id, "direct", call_site(call, **extra), **data)


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
    edges = [(src, dst, kind, dict(data)) for src, dst, kind, data in cg.graph.edges(keys=True, data=True)]
    return nodes, edges


def graph_from_rows(nodes: Iterable[NodeRow], edges: Iterable[EdgeRow],
                    diagnostics: Iterable[dict] = ()) -> CallGraph:
    """Return a CallGraph from rows made by `graph_rows` (the whole graph or any part of it).

    An edge whose endpoint is missing from `nodes` (a partial load) gets a
    bare node named after the id's last `::` part, with file "" and line 0.
    """
    cg = CallGraph(diagnostics=list(diagnostics))
    collecting = gc.isenabled()
    gc.disable()  # as in build_graph: no cycles among the rows' containers
    try:
        for node_id, name, file, line, end_line, static, external in nodes:
            cg.add_function(node_id, name, file, line, end_line, bool(static), bool(external))
        for src, dst, kind, data in edges:
            for endpoint in (src, dst):
                if endpoint not in cg.graph:
                    cg.add_function(endpoint, endpoint.rsplit("::", 1)[-1], "", 0, 0, "::" in endpoint)
            cg.graph.add_edge(src, dst, key=kind, **data)
    finally:
        if collecting:
            gc.enable()
    return cg
