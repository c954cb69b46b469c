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

A state whose facts differ from another's only by lines that moved and by
facts no resolve reads (`graph.shift`, `graph.delta`) is an alias of that state (`g_alias`): its
`GraphStore` reads the other's rows and moves their lines as it reads them.

Nothing is trusted: every lookup checks the rows it read against the
digest of their group (`graph_sums`), an alias's shifts carry a digest too,
and the adjacency blob has a checksum of its own. Damage drops the state and
raises `DamagedCache`, so the graph is resolved again and a damaged row is
never answered from.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterable, Iterator

from typing import TYPE_CHECKING

from chaintrace.graph.adjacency import Adjacency
from chaintrace.graph.kinds import kind_order
from chaintrace.errors import ChaintraceError, DamagedCache, close_matches
from chaintrace.extract.facts import FieldRead, FieldWrite
from chaintrace.graph.shift import Shifts, shift_fact, shift_json, shift_node_row
from chaintrace.store import graph_sums
from chaintrace.store.access_rows import access_from_row, access_row
from chaintrace.store.codec import seal, unseal
from chaintrace.store.graph_sums import columns, grouped
from chaintrace.store.schema import GRAPH_STATE_TABLES, chunks

if TYPE_CHECKING:  # graph.py imports networkx: only saving and `whole` need it
    from chaintrace.graph.model import CallGraph


_ADJACENCY = b"adjacency"  # the kind of the adjacency blob's checksum


class GraphStore:
    """The graph tables of one tree state in the store's open connection (`Store.graph_tables(state)`).

    The tables themselves are created with the fact tables when the store opens (`schema`).
    """

    def __init__(self, db: sqlite3.Connection, state: str, read_only: bool = False, warn=None) -> None:
        self.db = db
        self.requested = state  # the state asked for; `state` is the one whose rows are read (itself, or its alias's base)
        self.state = state
        self.shifts: Shifts = {}
        self.read_only = read_only  # a damaged state cannot be dropped: it is refused
        self.warn = warn or (lambda message: None)
        row = db.execute("SELECT base, shifts FROM g_alias WHERE state = ?", (state,)).fetchone()
        if row is not None:
            try:
                digest, pairs = json.loads(row[1])
                shifts = {file: {int(old): int(new) for old, new in moves} for file, moves in pairs.items()}
                if digest == _alias_digest(state, row[0], shifts):
                    self.state, self.shifts = row[0], shifts
            except (ValueError, TypeError, AttributeError):
                pass  # damaged (or of an older chaintrace): the state reads as missing and is resolved again
        self._adjacency: Adjacency | None = None
        self._nodes: dict[str, dict] = {}
        self._out: dict[str, list[tuple]] = {}  # src -> its edge rows, checked
        self._between: dict[tuple[str, str], list[tuple[str, dict]]] = {}
        self._keyed: dict[str, dict[str, object]] = {}  # table -> key -> its data (None: no row), read once
        self._grouped: dict[str, dict[str, list[tuple[str, str]]]] = {}  # src -> dst -> its (kind, data) rows
        self._adjacency_kinds: dict[str, dict[str, list[str]]] = {}  # src -> dst -> the kinds the adjacency has
        self._dropped = False  # found damaged and dropped: every later lookup must fail, not find nothing

    def exists(self) -> bool:
        """Return True when the graph of this state has been saved (with the checksums of its rows)."""
        return (self.db.execute("SELECT 1 FROM g_states WHERE state = ?", (self.state,)).fetchone() is not None
                and graph_sums.saved_with_sums(self.db, self.state))

    def alias(self, base: str, shifts: Shifts) -> None:
        """Make this state read the graph of the saved state `base`, the lines of `shifts` moved."""
        rows = json.dumps([_alias_digest(self.requested, base, shifts),
                           {file: sorted(moves.items()) for file, moves in shifts.items()}])
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO g_alias VALUES (?, ?, ?)", (self.requested, base, rows))
        self.state, self.shifts = base, shifts
        self._forget()

    def _forget(self) -> None:
        self._adjacency, self._nodes, self._out, self._between, self._keyed, self._grouped = None, {}, {}, {}, {}, {}
        self._adjacency_kinds = {}

    def drop(self) -> None:
        """Delete the graph whose rows this state reads (its own, or its alias's base), and the aliases of it."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for table in (*GRAPH_STATE_TABLES, "g_states"):
                self.db.execute(f"DELETE FROM {table} WHERE state = ?", (self.state,))
            self.db.execute("DELETE FROM g_alias WHERE state = ? OR base = ?", (self.requested, self.state))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _damaged(self, what: str) -> DamagedCache:
        """Drop this damaged state and return the error to raise (a read-only cache refuses to answer instead)."""
        message = f"the stored call graph is damaged ({what} do not match their checksum)"
        if self.read_only:
            raise ChaintraceError(f"{message} and the cache is read-only: give a writable folder with --cache")
        self.drop()
        self._forget()
        self._dropped = True
        self.warn(f"{message}; dropped, resolving it again")
        return DamagedCache(f"{message}; it was dropped: run the command again")

    def _alive(self) -> None:
        """Raise DamagedCache when this state was dropped as damaged (a query still holding it starts again)."""
        if self._dropped:
            raise DamagedCache("the stored call graph was dropped as damaged")

    def _rows(self, table: str, where: str, *values: object) -> list[tuple]:
        self._alive()
        return self.db.execute(f"SELECT {columns(table)} FROM {table} WHERE state = ? {where}",
                               (self.state, *values)).fetchall()

    def _checked(self, table: str, part: str, rows: list[tuple], keys: Iterable[str] = (), every: bool = False
                 ) -> list[tuple]:
        """Return `rows` (the rows of `table` read for the groups `keys` of `part`) once they match their sums."""
        column = dict(graph_sums.TABLES[table][1])[part]
        wrong = graph_sums.mismatches(self.db, self.state, part, grouped(rows, column, keys), every)
        if wrong:
            raise self._damaged(f"{table} rows of {part} {wrong[0]!r}")
        return rows

    def save(self, cg: CallGraph, writes: Iterable[FieldWrite], reads: Iterable[FieldRead] = ()) -> None:
        """Store the whole graph, its integer form, its diagnostics, the field writes and reads, and the sums of
        their rows, in one transaction."""
        from chaintrace.graph.model import iter_rows

        self.state, self.shifts, self._dropped = self.requested, {}, False  # no longer an alias, if it was one
        self._forget()
        nodes, edges = iter_rows(cg)  # streamed into the tables: no second copy of a graph of QEMU's size
        state = self.state
        adjacency = seal(cg.adjacency().to_bytes(), state, _ADJACENCY)
        cg.forget_adjacency()  # its arrays and index: the rows need none of them (made again if asked for)
        sums = graph_sums.Sums(state)  # each row's digest taken as it goes in, as lookups will read it back

        def insert(table: str, rows: Iterable[tuple]) -> None:
            marks = ", ".join("?" * (len(columns(table).split(", ")) + 1))
            self.db.executemany(f"INSERT INTO {table} VALUES ({marks})",
                                ((state, *row) for row in sums.taken(table, rows)))

        self.db.execute("BEGIN IMMEDIATE")
        try:
            for table in GRAPH_STATE_TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE state = ?", (state,))
            # bools as the 0 and 1 SQLite stores and gives back, so that the digests are of the rows read back
            insert("g_nodes", ((node, name, file, line, end_line, int(static), int(external))
                               for node, name, file, line, end_line, static, external in nodes))
            insert("g_edges", ((src, dst, kind, int(data.get("confidence") == "low"), json.dumps(data))
                               for src, dst, kind, data in edges))
            insert("g_writes", ((w.field, w.function, w.file, access_row(w)) for w in writes if w.function))
            insert("g_reads", ((r.field, r.function, r.file, access_row(r)) for r in reads if r.function))
            insert("g_objects", ((name, json.dumps(members)) for name, members in cg.objects.items()))
            insert("g_passes", ((function, json.dumps(names)) for function, names in cg.passes.items()))
            insert("g_diagnostics", ((d.get("caller", ""), json.dumps(d)) for d in cg.diagnostics))
            self.db.executemany("INSERT INTO g_sums VALUES (?, ?, ?, ?)", sums.rows())
            # written into a zeroblob in place: bound as a value, SQLite copied QEMU's 16 MB twice at the save's peak
            row = self.db.execute("INSERT INTO g_adjacency VALUES (?, zeroblob(?))", (state, len(adjacency))).lastrowid
            with self.db.blobopen("g_adjacency", "data", row) as blob:
                blob.write(adjacency)
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
            rows += self._checked("g_nodes", "id", self._rows("g_nodes", f"AND id IN ({marks})", *chunk), chunk)
        return [shift_node_row(row, self.shifts) for row in rows] if self.shifts else rows

    def has(self, node_id: str) -> bool:
        """Return True when `node_id` is a node of the graph."""
        return bool(self.node_rows([node_id]))

    def node(self, node_id: str) -> dict:
        """Return the attributes of a node (name, file, line, end_line, static, external); KeyError if unknown."""
        if node_id not in self._nodes:
            rows = self.node_rows([node_id])
            if not rows:
                if self._adjacency is not None and self._adjacency.index(node_id) is not None:
                    raise self._damaged(f"g_nodes rows of id {node_id!r}")  # its row and its sum both gone
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
        # two indexed lookups: with OR, SQLite scans every node of the state
        named = self._checked("g_nodes", "name", self._rows("g_nodes", "AND name = ?", name), [name])
        ids = {row[0] for row in named} | {row[0] for row in self.node_rows([name])}
        return sorted(ids, key=lambda i: (i != name, "::" in i, i))

    def close_names(self, name: str) -> str:
        """Return the ' (did you mean: ...?)' hint for an unknown function name (a hint: not checked)."""
        names = {row[0] for row in self.db.execute("SELECT DISTINCT name FROM g_nodes WHERE state = ?", (self.state,))}
        return close_matches(name, names)

    def ids_in_file(self, file: str) -> list[str]:
        """Return the ids of the functions defined in `file`."""
        rows = self._checked("g_nodes", "file", self._rows("g_nodes", "AND file = ?", file), [file])
        self._cache_nodes(shift_node_row(row, self.shifts) for row in rows)
        return [row[0] for row in rows]

    def writes(self, field: str | None) -> list[FieldWrite]:
        """Return the field writes to `field` (every write when None)."""
        return [self._access(FieldWrite, row[-1]) for row in self._field_rows("g_writes", "write", field)]

    def reads(self, field: str | None) -> list[FieldRead]:
        """Return the reads (and address-takings) of `field` (every read when None)."""
        return [self._access(FieldRead, row[-1]) for row in self._field_rows("g_reads", "read", field)]

    def _field_rows(self, table: str, part: str, field: str | None) -> list[tuple]:
        if field is None:
            return self._checked(table, part, self._rows(table, ""), every=True)
        return self._checked(table, part, self._rows(table, "AND field = ?", field), [field])

    def _access(self, cls: type, text: str) -> FieldWrite | FieldRead:
        access = access_from_row(cls, text)
        moves = self.shifts.get(access.file)
        return shift_fact(access, lambda line: moves.get(line, line)) if moves else access

    def _data(self, text: str) -> dict:
        """Return a row's JSON data, its lines moved when this state is an alias."""
        return shift_json(json.loads(text), self.shifts) if self.shifts else json.loads(text)

    def in_edges(self, node: str) -> list[tuple[str, str, str, dict]]:
        """Return the edges (src, dst, kind, data) into `node`."""
        rows = self._checked("g_edges", "dst", self._rows("g_edges", "AND dst = ?", node), [node])
        return [(src, dst, kind, self._data(data)) for src, dst, kind, _, data in rows]

    def out_edges(self, node: str) -> list[tuple[str, str, str, dict]]:
        """Return the edges (src, dst, kind, data) out of `node`."""
        return [(src, dst, kind, self._data(data)) for src, dst, kind, _, data in self._out_rows(node)]

    def _out_rows(self, node: str) -> list[tuple]:
        if node not in self._out:
            self._out[node] = self._checked("g_edges", "src", self._rows("g_edges", "AND src = ?", node), [node])
        return self._out[node]

    def prefetch(self, sources: Iterable[str]) -> None:
        """Read (and check) the edge rows out of all of `sources` at once; returns None. A trace that asks
        `edges_between` for a thousand callers would otherwise make a thousand queries and sum checks."""
        wanted = sorted(set(sources) - self._out.keys())
        for chunk, marks in chunks(wanted):
            rows = self._checked("g_edges", "src", self._rows("g_edges", f"AND src IN ({marks})", *chunk), chunk)
            found: dict[str, list[tuple]] = {src: [] for src in chunk}
            for row in rows:
                found[row[0]].append(row)
            self._out.update(found)

    def edges_between(self, src: str, dst: str, kinds: Iterable[str] | None = None) -> list[tuple[str, dict]]:
        """Return [(kind, data)] of the edges from `src` to `dst`, in EDGE_KINDS order."""
        if (src, dst) not in self._between:  # from the checked rows of all of src's edges, read once per src
            found = sorted(self._out_by_dst(src).get(dst, ()), key=lambda edge: kind_order(edge[0]))
            if self._adjacency is not None:  # the rows of a whole group gone with its sum: the adjacency differs
                if src not in self._adjacency_kinds:  # src's edges grouped by callee once, not scanned per callee
                    self._adjacency_kinds[src] = self._adjacency.kinds_by_callee(src)
                if sorted(self._adjacency_kinds[src].get(dst, ())) != sorted(kind for kind, _ in found):
                    raise self._damaged(f"g_edges rows of src {src!r}")
            self._between[src, dst] = [(kind, self._data(data)) for kind, data in found]
        wanted = set(kinds) if kinds is not None else None
        return [(kind, data) for kind, data in self._between[src, dst] if wanted is None or kind in wanted]

    def _out_by_dst(self, src: str) -> dict[str, list[tuple[str, str]]]:
        """Return {dst: [(kind, raw data)]} of `src`'s edge rows, grouped once: a caller with hundreds of
        edges is asked for many of them, and a scan of its rows per question was quadratic."""
        if src not in self._grouped:
            grouped: dict[str, list[tuple[str, str]]] = {}
            for _, to, kind, _, data in self._out_rows(src):
                grouped.setdefault(to, []).append((kind, data))
            self._grouped[src] = grouped
        return self._grouped[src]

    def diagnostics_of(self, callers: set[str]) -> list[dict]:
        """Return the diagnostics of indirect calls made by `callers`."""
        # One pass over the state's diagnostics (a few thousand rows) beats thousands of lookups by caller.
        rows = self._checked("g_diagnostics", "diagnostics", self._rows("g_diagnostics", "ORDER BY caller, rowid"), [""])
        return [self._data(data) for caller, data in rows if caller in callers]

    def adjacency(self) -> Adjacency:
        """Return the graph's integer form; DamagedCache (the state dropped) when it is missing or damaged."""
        if self._adjacency is None:
            self._alive()
            row = self.db.execute("SELECT data FROM g_adjacency WHERE state = ?", (self.state,)).fetchone()
            try:  # rebuilding it from the edge rows would mean checking every one of them: the state is resolved again
                self._adjacency = Adjacency.from_bytes(unseal(row[0], self.state, _ADJACENCY), every_index=False)
            except (ValueError, TypeError):
                raise self._damaged("the adjacency's bytes") from None
        return self._adjacency

    def rows(self) -> tuple[Iterator[tuple], Iterator[tuple[str, str, str, dict]], Iterator[dict]]:
        """Return the whole graph as row iterators, read as they are consumed, each group checked (for export).

        nodes: (id, name, file, line, end_line, static, external), by id;
        edges: (src, dst, kind, data), by src, dst and kind; diagnostics: dicts, by caller.
        """
        nodes = self._streamed("g_nodes", "id", "id")
        edges = self._streamed("g_edges", "src", "src, dst, kind")
        diagnostics = self._streamed("g_diagnostics", "diagnostics", "caller, rowid")
        return ((shift_node_row(row, self.shifts) for row in nodes),
                ((src, dst, kind, self._data(data)) for src, dst, kind, _, data in edges),
                (self._data(row[1]) for row in diagnostics))

    def _streamed(self, table: str, part: str, order: str) -> Iterator[tuple]:
        """Yield every row of `table` in `order` (which groups the rows of `part`), each group once it is checked."""
        column = dict(graph_sums.TABLES[table][1])[part]
        self._alive()
        stored = dict(self.db.execute("SELECT key, digest FROM g_sums WHERE state = ? AND part = ?", (self.state, part)))
        cursor = self.db.execute(f"SELECT {columns(table)} FROM {table} WHERE state = ? ORDER BY {order}", (self.state,))
        group: list[tuple] = []
        key = ""
        for row in itertools.chain(cursor, [None]):  # None: the end of the last group
            row_key = None if row is None else "" if column is None else row[column]
            if group and row_key != key:
                if stored.pop(key, None) != graph_sums.group_digest(self.state, part, key, group):
                    cursor.close()
                    raise self._damaged(f"{table} rows of {part} {key!r}")
                yield from group
                group = []
            if row is not None:
                key = row_key
                group.append(row)
        if stored:  # a group whose every row is gone
            raise self._damaged(f"{table} rows of {part} {next(iter(stored))!r}")

    def sizes(self) -> tuple[int, int, int]:
        """Return how many nodes, edges and diagnostics the graph has (counts: not checked)."""
        return tuple(self.db.execute(f"SELECT count(*) FROM {table} WHERE state = ?", (self.state,)).fetchone()[0]
                     for table in ("g_nodes", "g_edges", "g_diagnostics"))

    def whole(self) -> CallGraph:
        """Return the whole graph in networkx (slow on a large tree: queries run on the store itself)."""
        from chaintrace.graph.model import graph_from_rows

        def every(table: str, part: str) -> list[tuple]:
            return self._checked(table, part, self._rows(table, ""), every=True)

        nodes = [shift_node_row(row, self.shifts) for row in every("g_nodes", "id")]
        edges = [(src, dst, kind, self._data(data)) for src, dst, kind, _, data in every("g_edges", "src")]
        cg = graph_from_rows(nodes, edges, [self._data(data) for _, data in every("g_diagnostics", "diagnostics")])
        cg.objects = {name: json.loads(data) for name, data in every("g_objects", "object")}
        cg.passes = {function: json.loads(data) for function, data in every("g_passes", "passes")}
        return cg

    def passes_of(self, functions: Iterable[str]) -> dict[str, list[str]]:
        """Return {function: [object names]} for those of `functions` that pass constant objects to calls."""
        return self._by_key("g_passes", "passes", "function", functions)

    def object_members(self, names: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """Return {object name: {"Struct.member": [function ids]}} of the constant objects `names`."""
        return self._by_key("g_objects", "object", "name", names)

    def _by_key(self, table: str, part: str, key: str, values: Iterable[str]) -> dict:
        """Return {value: its data} of the rows (value, data) of `table` whose `key` column is one of `values`."""
        known = self._keyed.setdefault(table, {})
        wanted = set(values)
        for chunk, marks in chunks(sorted(wanted - known.keys())):  # a trace asks for thousands: 500 a statement
            rows = self._checked(table, part, self._rows(table, f"AND {key} IN ({marks})", *chunk), chunk)
            known.update(dict.fromkeys(chunk))
            known.update((value, json.loads(data)) for value, data in rows)
        return {value: known[value] for value in wanted if known[value] is not None}


def _alias_digest(state: str, base: str, shifts: Shifts) -> str:
    """Return the digest an alias's row carries: of its state, its base and its shifts."""
    moves = [(file, sorted(lines.items())) for file, lines in sorted(shifts.items())]
    return graph_sums.group_digest(state, "alias", base, [(json.dumps(moves),)]).hex()
