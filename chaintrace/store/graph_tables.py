"""The resolved call graph of a tree state, kept in SQLite tables so a query loads only what it needs.

A trace of QEMU shows a few hundred of its ~100,000 functions. The tables
keep every node and edge (with its sites and proofs, as JSON) and, as one
blob, the graph's integer form (`adjacency.Adjacency`): a trace loads that
blob, walks it forward from the entry and backward from the targets, and
reads the rows of just the nodes and edges it shows. Loading the whole
graph into networkx instead would take seconds.

`GraphStore` answers the lookups of `query.GraphLookup`, so queries run on
it as they do on a `graph.CallGraph`; renderers read its `node` and
`edges_between` for the nodes and hops of a trace.

A state whose files differ from another's only by lines that moved (a
comment added: `graph.shift`) is an alias of that state (`g_alias`): its
`GraphStore` reads the other's rows and moves their lines as it reads them.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator

from typing import TYPE_CHECKING

from chaintrace.graph.adjacency import Adjacency
from chaintrace.graph.kinds import kind_order, undecided
from chaintrace.errors import close_matches
from chaintrace.extract.facts import Context, FieldRead, FieldWrite, Guard, Loop
from chaintrace.graph.shift import Shifts, shift_fact, shift_json, shift_node_row
from chaintrace.store.codec import seal, unseal
from chaintrace.store.schema import GRAPH_STATE_TABLES, chunks

if TYPE_CHECKING:  # graph.py imports networkx: only saving and `whole` need it
    from chaintrace.graph.model import CallGraph


_ADJACENCY = b"adjacency"  # the kind of the adjacency blob's checksum


def _access_row(access: FieldWrite | FieldRead) -> str:
    """Return a field write or read as one JSON row: its fields in order, the context last."""
    context = access.context
    fields = [getattr(access, name) for name in access.__slots__ if name != "context"]
    return json.dumps([
        *fields, [[loop.kind, loop.condition, loop.line] for loop in context.loops], list(context.conditions),
        [[guard.condition, guard.statement, guard.line] for guard in context.guards],
    ])


def _access_from_row(cls: type, text: str) -> FieldWrite | FieldRead:
    *fields, loops, conditions, guards = json.loads(text)
    context = Context(tuple(Loop(*loop) for loop in loops), tuple(conditions), tuple(Guard(*guard) for guard in guards))
    return cls(*fields, context)


class GraphStore:
    """The graph tables of one tree state in the store's open connection (`Store.graph_tables(state)`).

    The tables themselves are created with the fact tables when the store opens (`schema`).
    """

    def __init__(self, db: sqlite3.Connection, state: str) -> None:
        self.db = db
        self.requested = state  # the state asked for; `state` is the one whose rows are read (itself, or its alias's base)
        self.state = state
        self.shifts: Shifts = {}
        row = db.execute("SELECT base, shifts FROM g_alias WHERE state = ?", (state,)).fetchone()
        if row is not None:
            try:
                shifts = {file: {int(old): int(new) for old, new in pairs} for file, pairs in json.loads(row[1]).items()}
                self.state, self.shifts = row[0], shifts
            except (ValueError, TypeError, AttributeError):
                pass  # damaged: the state reads as missing and is resolved again
        self._adjacency: Adjacency | None = None
        self._nodes: dict[str, dict] = {}
        self._edges: dict[tuple[str, str], list[tuple[str, dict]]] = {}
        self._passes: dict[str, str] | None = None  # function -> JSON list of objects, once read whole

    def exists(self) -> bool:
        """Return True when the graph of this state has been saved."""
        return self.db.execute("SELECT 1 FROM g_states WHERE state = ?", (self.state,)).fetchone() is not None

    def alias(self, base: str, shifts: Shifts) -> None:
        """Make this state read the graph of the saved state `base`, the lines of `shifts` moved."""
        rows = json.dumps({file: sorted(moves.items()) for file, moves in shifts.items()})
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO g_alias VALUES (?, ?, ?)", (self.requested, base, rows))
        self.state, self.shifts = base, shifts
        self._nodes.clear()
        self._edges.clear()

    def save(self, cg: CallGraph, writes: Iterable[FieldWrite], reads: Iterable[FieldRead] = ()) -> None:
        """Store the whole graph, its integer form, its diagnostics, the field writes and reads, in one transaction."""
        from chaintrace.graph.model import iter_rows

        self.state, self.shifts, self._adjacency = self.requested, {}, None  # no longer an alias, if it was one
        self._nodes.clear()
        self._edges.clear()
        nodes, edges = iter_rows(cg)  # streamed into the tables: no second copy of a graph of QEMU's size
        state = self.state
        adjacency = seal(cg.adjacency().to_bytes(), state, _ADJACENCY)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for table in GRAPH_STATE_TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE state = ?", (state,))
            self.db.executemany("INSERT INTO g_nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                ((state, *row) for row in nodes))
            self.db.executemany(
                "INSERT INTO g_edges VALUES (?, ?, ?, ?, ?, ?)",
                ((state, src, dst, kind, data.get("confidence") == "low", json.dumps(data)) for src, dst, kind, data in edges),
            )
            self.db.executemany(
                "INSERT INTO g_writes VALUES (?, ?, ?, ?, ?)",
                ((state, w.field, w.function, w.file, _access_row(w)) for w in writes if w.function),
            )
            self.db.executemany(
                "INSERT INTO g_reads VALUES (?, ?, ?, ?, ?)",
                ((state, r.field, r.function, r.file, _access_row(r)) for r in reads if r.function),
            )
            self.db.executemany("INSERT INTO g_objects VALUES (?, ?, ?)",
                                ((state, name, json.dumps(members)) for name, members in cg.objects.items()))
            self.db.executemany("INSERT INTO g_passes VALUES (?, ?, ?)",
                                ((state, function, json.dumps(names)) for function, names in cg.passes.items()))
            self.db.executemany("INSERT INTO g_diagnostics VALUES (?, ?, ?)",
                                ((state, d.get("caller", ""), json.dumps(d)) for d in cg.diagnostics))
            self.db.execute("INSERT INTO g_adjacency VALUES (?, ?)", (state, adjacency))
            self.db.execute("INSERT OR REPLACE INTO g_states VALUES (?)", (state,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # --- lookups (what `query.GraphLookup` asks for) ----------------------------------

    def node_rows(self, ids: Iterable[str]) -> list[tuple]:
        """Return the node rows (id, name, file, line, end_line, static, external) of `ids`."""
        rows = []
        for chunk, marks in chunks(sorted(set(ids))):
            rows += self.db.execute(
                f"SELECT id, name, file, line, end_line, static, external FROM g_nodes WHERE state = ? AND id IN ({marks})",
                (self.state, *chunk),
            ).fetchall()
        return [shift_node_row(row, self.shifts) for row in rows] if self.shifts else rows

    def has(self, node_id: str) -> bool:
        """Return True when `node_id` is a node of the graph."""
        return bool(self.node_rows([node_id]))

    def node(self, node_id: str) -> dict:
        """Return the attributes of a node (name, file, line, end_line, static, external); KeyError if unknown."""
        if node_id not in self._nodes:
            rows = self.node_rows([node_id])
            if not rows:
                raise KeyError(node_id)
            self._cache_nodes(rows)
        return self._nodes[node_id]

    def preload_nodes(self, ids: Iterable[str]) -> None:
        """Read the attributes of many nodes at once, for `node`."""
        self._cache_nodes(self.node_rows(node for node in ids if node not in self._nodes))

    def _cache_nodes(self, rows: Iterable[tuple]) -> None:
        for node_id, name, file, line, end_line, static, external in rows:
            self._nodes[node_id] = {"name": name, "file": file, "line": line, "end_line": end_line,
                                    "static": bool(static), "external": bool(external)}

    def ids_named(self, name: str) -> list[str]:
        """Return the ids of the functions called `name`, or whose id is `name` (external-linkage one first)."""
        # a UNION of two indexed lookups: with OR, SQLite scans every node of the state
        rows = self.db.execute("SELECT id FROM g_nodes WHERE state = ? AND id = ? UNION "
                               "SELECT id FROM g_nodes WHERE state = ? AND name = ?", (self.state, name, self.state, name))
        return sorted((row[0] for row in rows), key=lambda i: (i != name, "::" in i, i))

    def close_names(self, name: str) -> str:
        """Return the ' (did you mean: ...?)' hint for an unknown function name."""
        names = {row[0] for row in self.db.execute("SELECT DISTINCT name FROM g_nodes WHERE state = ?", (self.state,))}
        return close_matches(name, names)

    def ids_in_file(self, file: str) -> list[str]:
        """Return the ids of the functions defined in `file`."""
        rows = self.db.execute("SELECT id, name, file, line, end_line, static, external FROM g_nodes "
                               "WHERE state = ? AND file = ?", (self.state, file)).fetchall()
        self._cache_nodes(shift_node_row(row, self.shifts) for row in rows)
        return [row[0] for row in rows]

    def writes(self, field: str | None) -> list[FieldWrite]:
        """Return the field writes to `field` (every write when None)."""
        if field is None:
            rows = self.db.execute("SELECT data FROM g_writes WHERE state = ?", (self.state,))
        else:
            rows = self.db.execute("SELECT data FROM g_writes WHERE state = ? AND field = ?", (self.state, field))
        return [self._access(FieldWrite, row[0]) for row in rows]

    def reads(self, field: str | None) -> list[FieldRead]:
        """Return the reads (and address-takings) of `field` (every read when None)."""
        if field is None:
            rows = self.db.execute("SELECT data FROM g_reads WHERE state = ?", (self.state,))
        else:
            rows = self.db.execute("SELECT data FROM g_reads WHERE state = ? AND field = ?", (self.state, field))
        return [self._access(FieldRead, row[0]) for row in rows]

    def _access(self, cls: type, text: str) -> FieldWrite | FieldRead:
        access = _access_from_row(cls, text)
        moves = self.shifts.get(access.file)
        return shift_fact(access, lambda line: moves.get(line, line)) if moves else access

    def _data(self, text: str) -> dict:
        """Return a row's JSON data, its lines moved when this state is an alias."""
        return shift_json(json.loads(text), self.shifts) if self.shifts else json.loads(text)

    def in_edges(self, node: str) -> list[tuple[str, str, str, dict]]:
        """Return the edges (src, dst, kind, data) into `node`."""
        rows = self.db.execute("SELECT src, dst, kind, data FROM g_edges WHERE state = ? AND dst = ?", (self.state, node))
        return [(src, dst, kind, self._data(data)) for src, dst, kind, data in rows]

    def out_edges(self, node: str) -> list[tuple[str, str, str, dict]]:
        """Return the edges (src, dst, kind, data) out of `node`."""
        rows = self.db.execute("SELECT src, dst, kind, data FROM g_edges WHERE state = ? AND src = ?", (self.state, node))
        return [(src, dst, kind, self._data(data)) for src, dst, kind, data in rows]

    def edges_between(self, src: str, dst: str, kinds: Iterable[str] | None = None) -> list[tuple[str, dict]]:
        """Return [(kind, data)] of the edges from `src` to `dst`, in EDGE_KINDS order."""
        if (src, dst) not in self._edges:
            rows = self.db.execute("SELECT kind, data FROM g_edges WHERE state = ? AND src = ? AND dst = ?",
                                   (self.state, src, dst)).fetchall()
            self._edges[src, dst] = sorted(((kind, self._data(data)) for kind, data in rows),
                                           key=lambda edge: kind_order(edge[0]))
        wanted = set(kinds) if kinds is not None else None
        return [(kind, data) for kind, data in self._edges[src, dst] if wanted is None or kind in wanted]

    def diagnostics_of(self, callers: set[str]) -> list[dict]:
        """Return the diagnostics of indirect calls made by `callers`."""
        # One pass over the state's diagnostics (a few thousand rows) beats thousands of lookups by caller.
        rows = self.db.execute("SELECT caller, data FROM g_diagnostics WHERE state = ? ORDER BY caller, rowid",
                               (self.state,))
        return [self._data(data) for caller, data in rows if caller in callers]

    def adjacency(self) -> Adjacency:
        """Return the graph's integer form; rebuilt from the edge table (and stored) when missing or unreadable."""
        if self._adjacency is None:
            row = self.db.execute("SELECT data FROM g_adjacency WHERE state = ?", (self.state,)).fetchone()
            try:
                self._adjacency = Adjacency.from_bytes(unseal(row[0], self.state, _ADJACENCY)) if row else None
            except ValueError:
                self._adjacency = None
            if self._adjacency is None:
                nodes = [r[0] for r in self.db.execute("SELECT id FROM g_nodes WHERE state = ?", (self.state,))]
                edges = self.db.execute("SELECT src, dst, kind, low, data FROM g_edges WHERE state = ?", (self.state,))
                self._adjacency = Adjacency.from_edges(nodes, ((s, d, k, bool(low), undecided(k, json.loads(data)))
                                                               for s, d, k, low, data in edges))
                with contextlib.suppress(sqlite3.OperationalError), self.db:  # not kept by a read-only cache
                    self.db.execute("INSERT OR REPLACE INTO g_adjacency VALUES (?, ?)",
                                    (self.state, seal(self._adjacency.to_bytes(), self.state, _ADJACENCY)))
        return self._adjacency

    def rows(self) -> tuple[Iterator[tuple], Iterator[tuple[str, str, str, dict]], Iterator[dict]]:
        """Return the whole graph as row iterators, read as they are consumed (for export).

        nodes: (id, name, file, line, end_line, static, external), by id;
        edges: (src, dst, kind, data), by src, dst and kind; diagnostics: dicts, by caller.
        """
        nodes = self.db.execute("SELECT id, name, file, line, end_line, static, external FROM g_nodes WHERE state = ? "
                                "ORDER BY id", (self.state,))
        edges = self.db.execute("SELECT src, dst, kind, data FROM g_edges WHERE state = ? ORDER BY src, dst, kind",
                                (self.state,))
        diagnostics = self.db.execute("SELECT data FROM g_diagnostics WHERE state = ? ORDER BY caller, rowid",
                                      (self.state,))
        return ((shift_node_row(row, self.shifts) for row in nodes),
                ((src, dst, kind, self._data(data)) for src, dst, kind, data in edges),
                (self._data(row[0]) for row in diagnostics))

    def sizes(self) -> tuple[int, int, int]:
        """Return how many nodes, edges and diagnostics the graph has."""
        return tuple(self.db.execute(f"SELECT count(*) FROM {table} WHERE state = ?", (self.state,)).fetchone()[0]
                     for table in ("g_nodes", "g_edges", "g_diagnostics"))

    def whole(self) -> CallGraph:
        """Return the whole graph in networkx (slow on a large tree: queries run on the store itself)."""
        from chaintrace.graph.model import graph_from_rows

        nodes = [shift_node_row(row, self.shifts) for row in self.db.execute(
            "SELECT id, name, file, line, end_line, static, external FROM g_nodes WHERE state = ?", (self.state,))]
        edges = [(src, dst, kind, self._data(data)) for src, dst, kind, data in self.db.execute(
            "SELECT src, dst, kind, data FROM g_edges WHERE state = ?", (self.state,))]
        diagnostics = [self._data(row[0]) for row in self.db.execute(
            "SELECT data FROM g_diagnostics WHERE state = ?", (self.state,))]
        cg = graph_from_rows(nodes, edges, diagnostics)
        cg.objects = {name: json.loads(data) for name, data in self.db.execute(
            "SELECT name, data FROM g_objects WHERE state = ?", (self.state,))}
        cg.passes = {function: json.loads(data) for function, data in self.db.execute(
            "SELECT function, data FROM g_passes WHERE state = ?", (self.state,))}
        return cg

    def passes_of(self, functions: Iterable[str]) -> dict[str, list[str]]:
        """Return {function: [object names]} for those of `functions` that pass constant objects to calls."""
        wanted = set(functions)
        if self._passes is None and len(wanted) > 64:  # a trace asks for thousands: one read of the table
            self._passes = {function: data for function, data in self.db.execute(
                "SELECT function, data FROM g_passes WHERE state = ?", (self.state,))}
        found: dict[str, list[str]] = {}
        for function in wanted:
            if self._passes is not None:
                data = self._passes.get(function)
            else:
                row = self.db.execute("SELECT data FROM g_passes WHERE state = ? AND function = ?",
                                      (self.state, function)).fetchone()
                data = row[0] if row else None
            if data:
                found[function] = json.loads(data)
        return found

    def object_members(self, names: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """Return {object name: {"Struct.member": [function ids]}} of the constant objects `names`."""
        found: dict[str, dict[str, list[str]]] = {}
        for name in set(names):
            row = self.db.execute("SELECT data FROM g_objects WHERE state = ? AND name = ?", (self.state, name)).fetchone()
            if row:
                found[name] = json.loads(row[0])
        return found
