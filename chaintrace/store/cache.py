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

Nothing read back can run code: facts are checksummed msgpack (`codec`), a
recorded scan is checksummed msgpack checked field by field. A damaged
entry is dropped and rebuilt, never used.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import msgpack
from pathlib import Path

from chaintrace.errors import ChaintraceError, UsageError
from chaintrace.extract.facts import FileFacts
from chaintrace.store.codec import decode_facts, forget_shared, packed_facts, seal, unseal
from chaintrace.store import schema
from chaintrace.store.graph_tables import GraphStore

_WATCH = b"tree-watch"  # the kind of a recorded scan's checksum


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


def make_cache_folder(cache_dir: Path) -> bool:
    """Create the cache folder (0700: the facts quote the code of every tree indexed) unless it exists.

    Return whether chaintrace may write in it; raise UsageError when the path
    is a dangling symbolic link or not a folder, ChaintraceError when it cannot be made.
    """
    if cache_dir.is_symlink() and not cache_dir.exists():
        raise UsageError(f"the cache folder {cache_dir} is a symbolic link to {os.readlink(cache_dir)}, which does "
                         "not exist: create it, or give another --cache")
    if cache_dir.exists() and not cache_dir.is_dir():
        raise UsageError(f"the cache folder {cache_dir} is not a folder: give a folder with --cache")
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ChaintraceError(f"cannot create cache folder {cache_dir}: {error.strerror}") from None
    database = cache_dir / "index.sqlite"
    return os.access(cache_dir, os.W_OK) and (not database.exists() or os.access(database, os.W_OK))


class Store:
    """An open fact store; use as a context manager.

    A cache chaintrace may not write (`read_only`: a read-only folder, file
    or file system) is opened for reading: it answers what it holds, and the
    indexer says it cannot update it instead of moving it aside.
    """

    def __init__(self, cache_dir: Path, warn=None) -> None:
        self.path = cache_dir / "index.sqlite"
        self.warn = warn or (lambda message: print(f"chaintrace: warning: {message}", file=sys.stderr))
        self.read_only = not make_cache_folder(cache_dir)
        self.db = self._open_read_only() if self.read_only else self._open()

    def _open_read_only(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise ChaintraceError(f"the cache folder {self.path.parent} is read-only and holds no index: "
                                  "give a writable folder with --cache")
        try:
            db = schema.open_reader(str(self.path), must_exist=True)
            schema.check(db)
            return db
        except sqlite3.DatabaseError as error:
            raise ChaintraceError(f"the cache {self.path} is read-only and cannot be read ({error}): "
                                  "give a writable folder with --cache") from None

    def _open(self) -> sqlite3.Connection:
        if not self.path.exists():  # its -wal and -shm files take its mode
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
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
        try:  # one blob: a warm run reads it in a millisecond, not thousands of rows
            state, folders, files = msgpack.unpackb(unseal(row[1], root, _WATCH), use_list=False)
            if not (isinstance(state, str) and isinstance(folders, dict) and isinstance(files, tuple)
                    and all(type(k) is str and type(v) is int for k, v in folders.items())
                    and all(len(f) == 3 and type(f[0]) is str and type(f[1]) is int and type(f[2]) is int
                            for f in files)):
                return None
            return RecordedScan(row[0], state, folders, list(files))
        except (ValueError, TypeError, msgpack.UnpackException):
            return None  # damaged: the next scan records it again

    def record_scan(self, root: str, options: str, folders: dict[str, int] | None) -> None:
        """Remember the tree's state, its scanned folders and its files as stored now (None forgets them: that scan left files out)."""
        with self.transaction():
            self.db.execute("DELETE FROM tree_watch WHERE root = ?", (root,))
            state = self.tree_state(root)
            if folders is not None and state is not None:
                files = self.db.execute("SELECT path, size, mtime_ns FROM tree_files WHERE root = ?", (root,)).fetchall()
                self.db.execute("INSERT INTO tree_watch VALUES (?, ?, ?)",
                                (root, options, seal(msgpack.packb((state[0], folders, files)), root, _WATCH)))

    def forget_scan(self, root: str) -> None:
        """Forget the tree's recorded scan: its next index scans and checks every file's facts."""
        with self.transaction():
            self.db.execute("DELETE FROM tree_watch WHERE root = ?", (root,))

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

    def iter_facts(self, keys: Iterable[str], graph: bool = False, only: frozenset[str] | None = None
                   ) -> Iterator[tuple[str, FileFacts | None]]:
        """Yield (key, facts) for `keys`; facts is None for a missing or damaged entry (which is deleted).
        `graph=True` gives the facts as the call graph reads them, `only` just the lists it names
        (`codec.decode_facts`)."""
        for key in keys:
            row = self.db.execute("SELECT data FROM facts WHERE key = ?", (key,)).fetchone()
            if row is None:
                yield key, None
                continue
            try:
                yield key, decode_facts(row[0], key, graph, only)
            except ValueError as error:
                if self.read_only:
                    raise ChaintraceError(f"cache entry {key[:12]} of {self.path} is damaged ({error}) and the cache "
                                          "is read-only: give a writable folder with --cache") from None
                self.warn(f"cache entry {key[:12]} is damaged ({error}); it will be rebuilt")
                with self.transaction():
                    self.db.execute("DELETE FROM facts WHERE key = ?", (key,))
                    # no tree using it may skip its scan now: the next run must find the hole and re-extract
                    self.db.execute("DELETE FROM tree_watch")
                yield key, None
        forget_shared()  # what was read keeps what it shares: the tables only help a read under way

    def mentioned(self, keys: Iterable[str], words: Iterable[str]) -> set[str]:
        """Return those of `words` whose text occurs anywhere in the stored facts of `keys` (as part of any text:
        `f` is found in `f_init` too); a missing or damaged entry holds every word (it may, for all we know)."""
        words = {word: word.encode("utf-8", "surrogatepass") for word in words}
        found: set[str] = set()
        keys = set(keys)
        for chunk, marks in schema.chunks(sorted(keys)):
            for key, blob in self.db.execute(f"SELECT key, data FROM facts WHERE key IN ({marks})", chunk):
                keys.discard(key)
                try:
                    packed = packed_facts(blob, key)
                except ValueError:
                    return set(words)
                found.update(word for word, text in words.items() if word not in found and text in packed)
                if len(found) == len(words):
                    return found
        return set(words) if keys else found

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
        return GraphStore(self.db, state, self.read_only, self.warn)

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
