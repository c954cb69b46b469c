"""Content-addressed fact cache in SQLite.

Facts are stored once per key = hash(relative path, file content, extractor
version, classes of the macros the file uses), so unchanged files, moved
trees and other versions of the same project share them. Per tree the store
remembers each file's size, mtime, content hash and key, so a warm re-index
stats files and does nothing else.

Every write is a transaction: a run killed at any moment leaves a store
whose facts are all complete (a tree's file list is replaced in one
transaction at the end). A store that SQLite cannot read is moved aside and
rebuilt, with a warning. SQLite's locking lets two runs share one store.
"""

from __future__ import annotations

import dataclasses
import io
import json
import marshal
import operator
import os
import pickle
import sqlite3
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from itertools import starmap
from typing import NamedTuple
from pathlib import Path

from chaintrace.errors import ChaintraceError
from chaintrace.extract import facts as _facts
from chaintrace.extract.facts import FileFacts
from chaintrace.store import schema
from chaintrace.store.graph_tables import GraphStore

class RecordedScan(NamedTuple):
    """What a warm run checks instead of scanning: the last complete scan of a tree."""

    options: str
    state: str
    folders: dict[str, int]  # folder -> mtime_ns
    files: list[tuple[str, int, int]]  # (path, size, mtime_ns)


def default_cache_dir() -> Path:
    """Return `$XDG_CACHE_HOME/chaintrace` (or `~/.cache/chaintrace`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "chaintrace"


class FileRow(NamedTuple):
    """What the store remembers of one file of a tree (a named tuple: a warm run reads thousands)."""

    path: str
    size: int
    mtime_ns: int
    sha: str
    key: str


def _reducer(cls: type) -> object:
    """Return a pickle reducer that stores a fact as (class, field values)."""
    names = [field.name for field in dataclasses.fields(cls)]
    get = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (cls, (get(obj),))
    return lambda obj: (cls, get(obj))


# Pickling a slotted dataclass the default way calls dataclasses.fields() per
# object, which made encoding a third of the indexer's Python time; one
# attrgetter per class does the same work in C. Blobs load with plain
# pickle.loads (each fact is rebuilt by calling its class).
_REDUCERS = {
    cls: _reducer(cls)
    for cls in vars(_facts).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == _facts.__name__
}

# A file's facts are a million small objects per tree: rather than a reducer
# call per fact, each list of facts is stored as plain field tuples (made by
# one attrgetter map, in C) and rebuilt by one starmap of its class. Only the
# objects facts share or nest (contexts, parameters, members) go through the
# reducers above.
_LISTS = [field.name for field in dataclasses.fields(FileFacts) if field.name != "path"]
_LIST_CLASSES = tuple(
    getattr(_facts, name) for name in ("FunctionDef", "Prototype", "CallSite", "FunctionRef", "FieldWrite", "FieldRead",
                                       "StructDef", "Typedef", "VarDecl", "Define", "ParseError")
)
assert _LISTS == [
    "functions", "prototypes", "calls", "refs", "writes", "reads", "structs", "typedefs", "variables", "defines", "errors"
], "FileFacts' fields and _LIST_CLASSES disagree"
_LIST_GETTERS = tuple(operator.attrgetter(*(f.name for f in dataclasses.fields(cls))) for cls in _LIST_CLASSES)
_get_lists = operator.attrgetter(*_LISTS)


def _file_facts(path: str, *lists: list[tuple]) -> FileFacts:
    """Rebuild a file's facts from their field tuples (the reducer of FileFacts, below, stores them so)."""
    return FileFacts(path, *(tuple(starmap(cls, rows)) for cls, rows in zip(_LIST_CLASSES, lists)))


def _reduce_file_facts(facts: FileFacts) -> tuple:
    return _file_facts, (facts.path, *(list(map(get, items)) for get, items in zip(_LIST_GETTERS, _get_lists(facts))))


_REDUCERS[FileFacts] = _reduce_file_facts


def encode_facts(facts: FileFacts) -> bytes:
    """Return the stored form of a file's facts."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _REDUCERS
    pickler.dump(facts)
    return zlib.compress(buffer.getvalue(), 1)


def decode_facts(data: bytes) -> FileFacts:
    """Return facts from their stored form; raises ValueError when the blob is damaged."""
    try:
        facts = pickle.loads(zlib.decompress(data))
    except Exception as error:  # any damage: zlib, pickle or a foreign object
        raise ValueError(f"damaged facts: {error}") from None
    if not isinstance(facts, FileFacts):
        raise ValueError("damaged facts: not a FileFacts")
    return facts


class Store:
    """An open fact store; use as a context manager."""

    def __init__(self, cache_dir: Path, warn=None) -> None:
        self.path = cache_dir / "index.sqlite"
        self.warn = warn or (lambda message: print(f"chaintrace: warning: {message}", file=sys.stderr))
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ChaintraceError(f"cannot create cache folder {cache_dir}: {error.strerror}") from None
        self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            db = schema.connect(self.path)
            try:
                schema.create(db)
            except sqlite3.DatabaseError:
                db.close()
                raise
            return db
        except sqlite3.DatabaseError as error:
            aside = self.path.with_name(f"index.sqlite.broken-{int(time.time())}")
            self.warn(f"the cache {self.path} is unreadable ({error}); moved aside to {aside.name}, rebuilding")
            for suffix in ("", "-wal", "-shm"):
                source = Path(str(self.path) + suffix)
                if source.exists():
                    source.replace(Path(str(aside) + suffix))
            db = schema.connect(self.path)
            schema.create(db)
            return db

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # --- per-tree file lists ------------------------------------------------

    def tree_files(self, root: str) -> dict[str, FileRow]:
        """Return the files remembered for a tree, by relative path."""
        rows = self.db.execute("SELECT path, size, mtime_ns, sha, key FROM tree_files WHERE root = ?", (root,))
        return {row[0]: FileRow._make(row) for row in rows}

    def tree_state(self, root: str) -> tuple[str, str] | None:
        """Return (state hash, macro classes hash) of the tree's last index, or None."""
        row = self.db.execute("SELECT state, classes FROM trees WHERE root = ?", (root,)).fetchone()
        return (row[0], row[1]) if row else None

    def replace_tree(self, root: str, files: Iterable[FileRow], state: str, classes: str) -> None:
        """Replace the tree's file list and state in one transaction."""
        with self.transaction():
            self.db.execute("DELETE FROM tree_watch WHERE root = ?", (root,))  # recorded again once it holds
            self.db.execute("DELETE FROM tree_files WHERE root = ?", (root,))
            self.db.executemany(
                "INSERT INTO tree_files VALUES (?, ?, ?, ?, ?, ?)",
                ((root, f.path, f.size, f.mtime_ns, f.sha, f.key) for f in files),
            )
            self.db.execute("INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?)", (root, state, classes, time.time()))

    def tree_scan(self, root: str) -> RecordedScan | None:
        """Return the tree's last complete scan, or None (never recorded, forgotten or damaged)."""
        row = self.db.execute("SELECT options, data FROM tree_watch WHERE root = ?", (root,)).fetchone()
        if row is None:
            return None
        try:  # one marshalled blob: a warm run reads it in a millisecond, not thousands of rows
            state, folders, files = marshal.loads(row[1])
            return RecordedScan(row[0], state, folders, files)
        except (ValueError, EOFError, TypeError):
            return None  # damaged: the next scan records it again

    def record_scan(self, root: str, options: str, folders: dict[str, int] | None) -> None:
        """Remember the tree's state, its scanned folders and its files as stored now (None forgets them: that scan left files out)."""
        with self.transaction():
            self.db.execute("DELETE FROM tree_watch WHERE root = ?", (root,))
            state = self.tree_state(root)
            if folders is not None and state is not None:
                files = self.db.execute("SELECT path, size, mtime_ns FROM tree_files WHERE root = ?", (root,)).fetchall()
                self.db.execute("INSERT INTO tree_watch VALUES (?, ?, ?)",
                                (root, options, marshal.dumps((state[0], folders, files))))

    def indexed_keys(self, root: str) -> dict[str, str]:
        """Return path -> fact key of every file of an indexed tree; raise ChaintraceError when it was never indexed."""
        if self.tree_state(root) is None:
            raise ChaintraceError(f"{root} is not indexed: run `chaintrace index {root}`")
        return dict(self.db.execute("SELECT path, key FROM tree_files WHERE root = ?", (root,)).fetchall())

    def tree_keys(self, root: str) -> list[str]:
        """Return the fact keys of the tree's remembered files, in path order."""
        return [row[0] for row in self.db.execute("SELECT key FROM tree_files WHERE root = ? ORDER BY path", (root,))]

    def tree_facts_missing(self, root: str) -> int:
        """Return how many of the tree's remembered files have no stored facts (a dropped damaged entry)."""
        return self.db.execute(
            "SELECT count(*) FROM tree_files t WHERE t.root = ? AND NOT EXISTS (SELECT 1 FROM facts f WHERE f.key = t.key)",
            (root,)).fetchone()[0]

    # --- facts ----------------------------------------------------------------

    def has_facts(self, keys: Iterable[str]) -> set[str]:
        """Return which of `keys` have stored facts."""
        return self._present("facts", "key", keys)

    def _present(self, table: str, column: str, values: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk, marks in schema.chunks(values):
            found.update(row[0] for row in self.db.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", chunk))
        return found

    def put_facts(self, rows: Iterable[tuple[str, bytes, tuple[int, int, int, int]]]) -> None:
        """Store encoded facts with their counts (functions, calls, refs, errors)."""
        with self.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO facts VALUES (?, ?, ?, ?, ?, ?)",
                ((key, data, *counts) for key, data, counts in rows),
            )

    def counts(self, keys: Iterable[str]) -> tuple[int, int, int, int]:
        """Return total (functions, calls, refs, errors) over the facts of `keys`."""
        totals = [0, 0, 0, 0]
        for chunk, marks in schema.chunks(keys):
            row = self.db.execute(
                f"SELECT sum(functions), sum(calls), sum(refs), sum(errors) FROM facts WHERE key IN ({marks})", chunk
            ).fetchone()
            totals = [t + (v or 0) for t, v in zip(totals, row)]
        return tuple(totals)  # type: ignore[return-value]

    def iter_facts(self, keys: Iterable[str]) -> Iterator[tuple[str, FileFacts | None]]:
        """Yield (key, facts) for `keys`; facts is None for a missing or damaged entry (which is deleted)."""
        for key in keys:
            row = self.db.execute("SELECT data FROM facts WHERE key = ?", (key,)).fetchone()
            if row is None:
                yield key, None
                continue
            try:
                yield key, decode_facts(row[0])
            except ValueError as error:
                self.warn(f"cache entry {key[:12]} is damaged ({error}); it will be rebuilt")
                with self.transaction():
                    self.db.execute("DELETE FROM facts WHERE key = ?", (key,))
                    # no tree using it may skip its scan now: the next run must find the hole and re-extract
                    self.db.execute("DELETE FROM tree_watch")
                yield key, None

    # --- #defines, by content hash ---------------------------------------------

    def defines(self, shas: Iterable[str]) -> dict[str, list]:
        """Return stored `#define` summaries by content hash."""
        found: dict[str, list] = {}
        for chunk, marks in schema.chunks(shas):
            for sha, data in self.db.execute(f"SELECT sha, data FROM defines WHERE sha IN ({marks})", chunk):
                try:
                    found[sha] = json.loads(data)
                except ValueError:
                    continue
        return found

    def has_defines(self, shas: Iterable[str]) -> set[str]:
        """Return which of `shas` have stored `#define` summaries."""
        return self._present("defines", "sha", shas)

    def put_defines(self, rows: Iterable[tuple[str, list]]) -> None:
        """Store `#define` summaries by content hash."""
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO defines VALUES (?, ?)", ((sha, json.dumps(data)) for sha, data in rows))

    # --- derived data (resolved graphs), by tree state ----------------------------

    def derived(self, state: str, name: str) -> bytes | None:
        """Return derived data stored for a tree state, or None."""
        row = self.db.execute("SELECT data FROM derived WHERE state = ? AND name = ?", (state, name)).fetchone()
        return row[0] if row else None

    def put_derived(self, state: str, name: str, data: bytes) -> None:
        """Store derived data for a tree state."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO derived VALUES (?, ?, ?)", (state, name, data))

    # --- the resolved graph of a tree state -------------------------------------------

    def graph_tables(self, state: str) -> GraphStore:
        """Return the graph tables of a tree state (empty until `GraphStore.save`; see `exists`)."""
        return GraphStore(self.db, state)

    def transaction(self) -> _Transaction:
        """Return a context manager running its body in one IMMEDIATE transaction."""
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


class FactReader:
    """Whether facts are stored, asked by worker processes over their own read-only connection (opened on first use)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def has(self, key: str) -> bool:
        """Return True when facts of `key` are stored (False when the database cannot say)."""
        if self._db is None:
            self._db = schema.open_reader(self.path)
        try:
            return self._db.execute("SELECT 1 FROM facts WHERE key = ?", (key,)).fetchone() is not None
        except sqlite3.DatabaseError:
            return False
