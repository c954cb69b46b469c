"""Checksums of a stored call graph: every group of rows a lookup reads is checked against a digest saved with it.

A graph state's tables (`graph_tables`) hold hundreds of thousands of rows:
checking one checksum over all of them would cost every trace seconds.
So the rows are checksummed in the groups lookups read them by — the node
of an id, the nodes of a name or a file, the edges out of or into a
function, the writes and reads of a field, the diagnostics — each group's
digest covering its state, its part, its key and every one of its rows, in
any order. The digests are saved with the rows (`g_sums`), and a lookup
compares the rows it read with its group's digest: a changed row, a
deleted one, one that moved in from another group (a damaged key column),
and a damaged or missing digest all differ. A group never read is never
checked, and never used.

On a mismatch, `GraphStore` drops the whole state and raises
`DamagedCache`; the graph is resolved again from the facts (`api`), never
answered from. A state saved without sums (by an older chaintrace) counts
as not saved (`saved_with_sums`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

import xxhash

from chaintrace.store.schema import chunks

FORMAT = "2"  # the key of a state's "format" row: a state without it has no sums; 2: xxh3-128, not BLAKE2b

# Per table: the columns lookups read (in this order), and its groups: (part, index of the key column, or None
# when the whole table is one group).
TABLES: dict[str, tuple[str, tuple[tuple[str, int | None], ...]]] = {
    "g_nodes": ("id, name, file, line, end_line, static, external", (("id", 0), ("name", 1), ("file", 2))),
    "g_edges": ("src, dst, kind, low, data", (("src", 0), ("dst", 1))),
    "g_writes": ("field, function, file, data", (("write", 0),)),
    "g_reads": ("field, function, file, data", (("read", 0),)),
    "g_diagnostics": ("caller, data", (("diagnostics", None),)),
    "g_objects": ("name, data", (("object", 0),)),
    "g_passes": ("function, data", (("passes", 0),)),
}


def columns(table: str) -> str:
    """Return the columns of `table` as lookups read them and sums cover them (for a SELECT)."""
    return TABLES[table][0]


def row_digest(row: tuple, _xxh3=xxhash.xxh3_128_digest) -> bytes:
    """Return the digest of one row as SQLite gives it back (strings and whole numbers: a bool must be 0 or 1)."""
    # xxh3-128 rather than BLAKE2b: a warm trace checks thousands of rows; the sums catch damage, not authors
    return _xxh3("\0".join(map(str, row)).encode("utf-8", "surrogatepass"))


def group_digest(state: str, part: str, key: str, rows: Iterable[tuple]) -> bytes:
    """Return the digest of a group: its state, part and key, and its rows in any order."""
    return _combined(state, part, key, map(row_digest, rows))


def _combined(state: str, part: str, key: str, row_digests: Iterable[bytes]) -> bytes:
    digest = xxhash.xxh3_128()
    digest.update(f"chaintrace-sums\0{state}\0{part}\0{key}\0".encode("utf-8", "surrogatepass"))
    digest.update(b"".join(sorted(row_digests)))
    return digest.digest()


class Sums:
    """The digests of the groups of a state being saved, taken from its rows as they are inserted.

    Each row is hashed once, whichever groups it is in (an edge is in its
    source's and its callee's, a node in its id's, name's and file's), and
    nothing is read back: reading 700,000 edges again in the order of each
    group's index, to hash them twice, was a fifth of saving QEMU's graph.
    A group holds only its rows' 16-byte digests until `rows` combines them.
    The rows must be given as SQLite gives them back (`row_digest`).
    """

    def __init__(self, state: str) -> None:
        self.state = state
        self._groups: dict[str, dict[str, bytes | bytearray]] = {}  # part -> key -> its rows' digests, end to end

    def taken(self, table: str, rows: Iterable[tuple]) -> Iterator[tuple]:
        """Yield `rows` of `table` (its `columns`, in order) as they come, after taking their digests."""
        parts = [("" if column is None else None, column, self._groups.setdefault(part, {}))
                 for part, column in TABLES[table][1]]
        for row in rows:
            digest = row_digest(row)
            for whole, column, groups in parts:
                key = whole if column is None else row[column]
                found = groups.get(key)
                if found is None:  # most groups are one row (a node's id, most names): its digest, shared
                    groups[key] = digest
                elif found.__class__ is bytes:
                    groups[key] = bytearray(found) + digest
                else:
                    found += digest
            yield row

    def rows(self) -> Iterator[tuple[str, str, str, bytes]]:
        """Yield the `g_sums` rows (state, part, key, digest) of every group taken, and the state's "format" row;
        each group's digests are dropped once combined."""
        state = self.state
        yield state, "format", FORMAT, group_digest(state, "format", FORMAT, ())
        for part, groups in self._groups.items():
            for key in sorted(groups):
                data = groups.pop(key)
                yield state, part, key, _combined(state, part, key, (data[i:i + _SIZE] for i in range(0, len(data), _SIZE)))


_SIZE = 16  # bytes of a row's digest (xxh3-128)


def saved_with_sums(db: sqlite3.Connection, state: str) -> bool:
    """Return True when the state was saved with its sums (its "format" row is there and intact)."""
    row = db.execute("SELECT digest FROM g_sums WHERE state = ? AND part = 'format' AND key = ?",
                     (state, FORMAT)).fetchone()
    return row is not None and row[0] == group_digest(state, "format", FORMAT, ())


def mismatches(db: sqlite3.Connection, state: str, part: str, groups: dict[str, list[tuple]],
               every: bool = False) -> list[str]:
    """Return the keys of `groups` whose rows (all the rows of that group a lookup read) differ from their digest.

    A key with no rows and no digest is a group that does not exist: not a
    mismatch. `every`: `groups` claims to be every group of `part`, so a
    stored digest with no group read is a mismatch too (its rows are gone).
    """
    stored: dict[str, bytes] = {}
    if every:
        stored.update(db.execute("SELECT key, digest FROM g_sums WHERE state = ? AND part = ?", (state, part)))
    else:
        for chunk, marks in chunks(groups):
            stored.update(db.execute(f"SELECT key, digest FROM g_sums WHERE state = ? AND part = ? AND key IN ({marks})",
                                     (state, part, *chunk)))
    wrong = [key for key, rows in groups.items()
             if (key in stored or rows) and stored.get(key) != group_digest(state, part, key, rows)]
    if every:
        wrong += [key for key in stored if key not in groups]
    return wrong


def grouped(rows: Iterable[tuple], column: int | None, keys: Iterable[str] = ()) -> dict[str, list[tuple]]:
    """Return `rows` by the value of their `column` (None: all under ""), every key of `keys` present."""
    found: dict[str, list[tuple]] = {key: [] for key in keys}
    for row in rows:
        found.setdefault("" if column is None else str(row[column]), []).append(row)
    return found
