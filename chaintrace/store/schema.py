"""The cache's one SQLite database: its tables, and how a connection to it is opened.

One file (`index.sqlite` in the cache folder) holds two groups of tables,
created together when the store opens:

- the **fact tables**, read and written by `cache.Store`: facts by content
  key, `#define` summaries, each tree's file list and last scan, and data
  derived from a tree state (macro classes, counts);
- the **graph tables** (`g_*`), read and written by `graph_tables.GraphStore`:
  the resolved call graph of each tree state, or (`g_alias`) the state whose
  graph it shares, with the lines that moved (`graph.shift`).

`SCHEMA_VERSION` covers both: a database of another version is moved aside
and rebuilt. Worker processes open the same file read-only (`open_reader`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

SCHEMA_VERSION = "1"

FACT_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS facts (
    key TEXT PRIMARY KEY, data BLOB NOT NULL,
    functions INTEGER, calls INTEGER, refs INTEGER, errors INTEGER);
CREATE TABLE IF NOT EXISTS defines (sha TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trees (root TEXT PRIMARY KEY, state TEXT NOT NULL, classes TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tree_files (
    root TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (root, path));
CREATE TABLE IF NOT EXISTS derived (state TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (state, name));
CREATE TABLE IF NOT EXISTS tree_watch (root TEXT PRIMARY KEY, options TEXT NOT NULL, data BLOB NOT NULL);
DROP TABLE IF EXISTS tree_scans;
"""

GRAPH_TABLES = """
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
CREATE TABLE IF NOT EXISTS g_reads (
    state TEXT NOT NULL, field TEXT NOT NULL, function TEXT NOT NULL, file TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS g_reads_field ON g_reads (state, field);
CREATE TABLE IF NOT EXISTS g_diagnostics (state TEXT NOT NULL, caller TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS g_diagnostics_caller ON g_diagnostics (state, caller);
CREATE TABLE IF NOT EXISTS g_adjacency (state TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS g_objects (state TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (state, name));
CREATE TABLE IF NOT EXISTS g_passes (state TEXT NOT NULL, function TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (state, function));
CREATE TABLE IF NOT EXISTS g_sums (state TEXT NOT NULL, part TEXT NOT NULL, key TEXT NOT NULL, digest BLOB NOT NULL,
    PRIMARY KEY (state, part, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS g_alias (state TEXT PRIMARY KEY, base TEXT NOT NULL, shifts TEXT NOT NULL);
"""

# Per tree state, the graph tables a saved graph fills (`GraphStore.save` replaces them together).
GRAPH_STATE_TABLES = ("g_nodes", "g_edges", "g_writes", "g_reads", "g_diagnostics", "g_adjacency", "g_objects", "g_passes",
                      "g_alias", "g_sums")


def connect(path: Path) -> sqlite3.Connection:
    """Return a connection to the database at `path` in autocommit mode (transactions are explicit), WAL journal."""
    db = sqlite3.connect(path, timeout=120, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 120000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def create(db: sqlite3.Connection) -> None:
    """Create every table that is missing and record the schema version; raise DatabaseError for another version."""
    with db:
        db.executescript(FACT_TABLES + GRAPH_TABLES)
    found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if found is None:
        db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
    elif found[0] != SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"schema {found[0]}, expected {SCHEMA_VERSION}")
    db.execute("SELECT count(*) FROM trees").fetchone()  # a damaged file fails here, not later


def check(db: sqlite3.Connection) -> None:
    """Raise DatabaseError unless `db` holds the tables of this schema version (for a cache opened read-only)."""
    found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if found is None or found[0] != SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"schema {found[0] if found else 'missing'}, expected {SCHEMA_VERSION}")
    db.execute("SELECT count(*) FROM trees").fetchone()
    db.execute("SELECT count(*) FROM g_states").fetchone()


def open_reader(path: str, must_exist: bool = False) -> sqlite3.Connection:
    """Return a read-only connection to the database at `path` (for worker processes, and read-only caches).

    A database in a read-only folder whose WAL was checkpointed away cannot make
    the files WAL reading needs: then, `must_exist`, it is read as immutable.
    """
    location = "file:" + quote(path)
    db = sqlite3.connect(f"{location}?mode=ro", uri=True, timeout=60)
    if not must_exist:
        return db
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
    if os.path.exists(path + "-wal"):  # its last writes are there: immutable would not read them
        raise sqlite3.DatabaseError("its write-ahead log cannot be read")
    return sqlite3.connect(f"{location}?mode=ro&immutable=1", uri=True, timeout=60)


# SQLite limits how many values one statement binds: long lists are asked for a chunk at a time.
CHUNK = 500


def chunks(values: Iterable) -> Iterator[tuple[list, str]]:
    """Yield (chunk of `values`, its "?,?,..." placeholders), CHUNK values at a time."""
    values = list(values)
    for start in range(0, len(values), CHUNK):
        chunk = values[start:start + CHUNK]
        yield chunk, ",".join("?" * len(chunk))
