"""The resolved call graph of a tree state, kept in SQLite tables so a query loads only what it needs.

A trace of QEMU touches a few hundred of its ~100,000 functions: walking
forward from the entry and backward from the targets in SQL (recursive
queries over indexed edge tables) and loading only the chop into networkx
keeps a warm trace well under a second, where unpickling the whole graph
would take many.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from chaintrace.errors import close_matches
from chaintrace.facts import Context, FieldWrite, Guard, Loop
from chaintrace.graph import EDGE_KINDS, CallGraph, graph_from_rows, graph_rows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS g_states (state TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS g_nodes (
    state TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL,
    line INTEGER NOT NULL, end_line INTEGER NOT NULL, static INTEGER NOT NULL, external INTEGER NOT NULL,
    PRIMARY KEY (state, id));
CREATE INDEX IF NOT EXISTS g_nodes_name ON g_nodes (state, name);
CREATE INDEX IF NOT EXISTS g_nodes_file ON g_nodes (state, file);
CREATE TABLE IF NOT EXISTS g_edges (
    state TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, kind TEXT NOT NULL,
    low INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS g_edges_src ON g_edges (state, src);
CREATE INDEX IF NOT EXISTS g_edges_dst ON g_edges (state, dst);
CREATE TABLE IF NOT EXISTS g_writes (
    state TEXT NOT NULL, field TEXT NOT NULL, function TEXT NOT NULL, file TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS g_writes_field ON g_writes (state, field);
CREATE TABLE IF NOT EXISTS g_diagnostics (state TEXT NOT NULL, caller TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS g_diagnostics_caller ON g_diagnostics (state, caller);
"""


def _write_row(write: FieldWrite) -> str:
    context = write.context
    return json.dumps([
        write.function, write.file, write.line, write.col, write.lhs, write.field, write.base, write.base_type,
        write.rhs, write.operator, write.statement,
        [[loop.kind, loop.condition, loop.line] for loop in context.loops], list(context.conditions),
        [[guard.condition, guard.statement, guard.line] for guard in context.guards],
    ])


def _write_from_row(text: str) -> FieldWrite:
    (function, file, line, col, lhs, field, base, base_type, rhs, operator, statement, loops, conditions,
     guards) = json.loads(text)
    context = Context(tuple(Loop(*loop) for loop in loops), tuple(conditions), tuple(Guard(*guard) for guard in guards))
    return FieldWrite(function, file, line, col, lhs, field, base, base_type, rhs, operator, statement, context)


class GraphStore:
    """The graph tables of one tree state in an open SQLite connection."""

    def __init__(self, db: sqlite3.Connection, state: str) -> None:
        self.db = db
        self.state = state
        with db:
            db.executescript(_SCHEMA)

    def exists(self) -> bool:
        """Return True when the graph of this state has been saved."""
        return self.db.execute("SELECT 1 FROM g_states WHERE state = ?", (self.state,)).fetchone() is not None

    def save(self, cg: CallGraph, writes: Iterable[FieldWrite]) -> None:
        """Store the whole graph, its diagnostics and the field writes, in one transaction."""
        nodes, edges = graph_rows(cg)
        state = self.state
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for table in ("g_nodes", "g_edges", "g_writes", "g_diagnostics"):
                self.db.execute(f"DELETE FROM {table} WHERE state = ?", (state,))
            self.db.executemany("INSERT INTO g_nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                ((state, *row) for row in nodes))
            self.db.executemany(
                "INSERT INTO g_edges VALUES (?, ?, ?, ?, ?, ?)",
                ((state, src, dst, kind, data.get("confidence") == "low", json.dumps(data)) for src, dst, kind, data in edges),
            )
            self.db.executemany(
                "INSERT INTO g_writes VALUES (?, ?, ?, ?, ?)",
                ((state, w.field, w.function, w.file, _write_row(w)) for w in writes if w.function),
            )
            self.db.executemany("INSERT INTO g_diagnostics VALUES (?, ?, ?)",
                                ((state, d.get("caller", ""), json.dumps(d)) for d in cg.diagnostics))
            self.db.execute("INSERT OR REPLACE INTO g_states VALUES (?)", (state,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # --- lookups -------------------------------------------------------------------------

    def node_rows(self, ids: Iterable[str]) -> list[tuple]:
        """Return the node rows (id, name, file, line, end_line, static, external) of `ids`."""
        rows = []
        ids = sorted(set(ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(
                f"SELECT id, name, file, line, end_line, static, external FROM g_nodes WHERE state = ? AND id IN ({marks})",
                (self.state, *chunk),
            ).fetchall()
        return rows

    def ids_named(self, name: str) -> list[str]:
        """Return the ids of the functions called `name`, or whose id is `name` (external-linkage one first)."""
        rows = self.db.execute("SELECT id FROM g_nodes WHERE state = ? AND (id = ? OR name = ?)", (self.state, name, name))
        return sorted((row[0] for row in rows), key=lambda i: (i != name, "::" in i, i))

    def close_names(self, name: str) -> str:
        """Return the ' (did you mean: ...?)' hint for an unknown function name."""
        names = {row[0] for row in self.db.execute("SELECT DISTINCT name FROM g_nodes WHERE state = ?", (self.state,))}
        return close_matches(name, names)

    def ids_in_file(self, file: str) -> list[str]:
        """Return the ids of the functions defined in `file`."""
        return [row[0] for row in self.db.execute("SELECT id FROM g_nodes WHERE state = ? AND file = ?", (self.state, file))]

    def writes(self, field: str | None) -> list[FieldWrite]:
        """Return the field writes to `field` (every write when None)."""
        if field is None:
            rows = self.db.execute("SELECT data FROM g_writes WHERE state = ?", (self.state,))
        else:
            rows = self.db.execute("SELECT data FROM g_writes WHERE state = ? AND field = ?", (self.state, field))
        return [_write_from_row(row[0]) for row in rows]

    def write_functions(self, writes: Iterable[FieldWrite]) -> list[str]:
        """Return the node ids of the functions holding `writes`."""
        ids = []
        for write in writes:
            for node_id in self.ids_in_file(write.file):
                if node_id == write.function or node_id.endswith("::" + write.function):
                    ids.append(node_id)
        return ids

    # --- walking ---------------------------------------------------------------------------

    def reachable(self, starts: Iterable[str], forward: bool, kinds: Iterable[str] | None = None,
                  include_low: bool = True) -> set[str]:
        """Return the nodes reachable from `starts` along (or against) edges of `kinds`, starts included."""
        kinds = list(kinds or EDGE_KINDS)
        starts = list(starts)
        if not starts:
            return set()
        near, far = ("src", "dst") if forward else ("dst", "src")
        seed = " UNION ".join("SELECT ?" for _ in starts)
        marks = ",".join("?" * len(kinds))
        low = "" if include_low else "AND e.low = 0"
        sql = (
            f"WITH RECURSIVE walk(id) AS ({seed} UNION SELECT e.{far} FROM g_edges e JOIN walk ON e.{near} = walk.id "
            f"WHERE e.state = ? AND e.kind IN ({marks}) {low}) SELECT id FROM walk"
        )
        return {row[0] for row in self.db.execute(sql, (*starts, self.state, *kinds))}

    def edges_among(self, nodes: set[str], kinds: Iterable[str] | None = None) -> list[tuple[str, str, str, dict]]:
        """Return the edges (src, dst, kind, data) whose both ends are in `nodes`.

        The data holds only the edge's confidence: a chop of QEMU has tens
        of thousands of edges, of which a trace shows a few dozen, so their
        sites and proofs are read later, for those (`fill_edge_data`).
        """
        kinds = set(kinds or EDGE_KINDS)
        found = []
        ordered = sorted(nodes)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for src, dst, kind, low in self.db.execute(
                f"SELECT src, dst, kind, low FROM g_edges WHERE state = ? AND src IN ({marks})", (self.state, *chunk)
            ):
                if dst in nodes and kind in kinds:
                    found.append((src, dst, kind, {"sites": [], "confidence": "low" if low else "high"}))
        return found

    def fill_edge_data(self, cg: CallGraph, pairs: Iterable[tuple[str, str]]) -> None:
        """Load the full data (sites, proofs) of every edge between the given (src, dst) pairs into `cg`."""
        for src, dst in sorted(set(pairs)):
            for _, _, kind, data in self.db.execute(
                "SELECT src, dst, kind, data FROM g_edges WHERE state = ? AND src = ? AND dst = ?", (self.state, src, dst)
            ):
                if cg.graph.has_edge(src, dst, key=kind):
                    cg.graph.edges[src, dst, kind].update(json.loads(data))

    def in_edges(self, node: str) -> list[tuple[str, str, str, dict]]:
        """Return the edges (src, dst, kind, data) into `node`."""
        rows = self.db.execute("SELECT src, dst, kind, data FROM g_edges WHERE state = ? AND dst = ?", (self.state, node))
        return [(src, dst, kind, json.loads(data)) for src, dst, kind, data in rows]

    def out_edges(self, node: str) -> list[tuple[str, str, str, dict]]:
        """Return the edges (src, dst, kind, data) out of `node`."""
        rows = self.db.execute("SELECT src, dst, kind, data FROM g_edges WHERE state = ? AND src = ?", (self.state, node))
        return [(src, dst, kind, json.loads(data)) for src, dst, kind, data in rows]

    def diagnostics(self, callers: set[str]) -> list[dict]:
        """Return the diagnostics of indirect calls made by `callers`."""
        found = []
        ordered = sorted(callers)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found += [json.loads(row[0]) for row in self.db.execute(
                f"SELECT data FROM g_diagnostics WHERE state = ? AND caller IN ({marks})", (self.state, *chunk))]
        return found

    def subgraph(self, nodes: set[str], edges: list[tuple[str, str, str, dict]]) -> CallGraph:
        """Return a CallGraph of `nodes` (attributes from the tables), `edges` and their callers' diagnostics."""
        # Sorted, so that networkx's insertion order (and so ties between paths) never follows the hash seed.
        return graph_from_rows(sorted(self.node_rows(nodes)), sorted(edges, key=lambda edge: edge[:3]),
                               self.diagnostics(nodes))

    def whole(self) -> CallGraph:
        """Return the whole graph (slow on a large tree: prefer `subgraph`)."""
        nodes = self.db.execute("SELECT id, name, file, line, end_line, static, external FROM g_nodes WHERE state = ?",
                                (self.state,)).fetchall()
        edges = [(src, dst, kind, json.loads(data)) for src, dst, kind, data in self.db.execute(
            "SELECT src, dst, kind, data FROM g_edges WHERE state = ?", (self.state,))]
        diagnostics = [json.loads(row[0]) for row in self.db.execute(
            "SELECT data FROM g_diagnostics WHERE state = ?", (self.state,))]
        return graph_from_rows(nodes, edges, diagnostics)
