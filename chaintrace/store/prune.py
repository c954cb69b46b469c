"""Drop the resolved graphs no tree will read again, so the cache stops growing with every resolve.

A resolved graph of QEMU takes about 1 GB of the store. Each edit that is
not patched, each new chaintrace release (another `RESOLVER_VERSION`) and
each checkout resolves a new one, and nothing dropped the old ones: a
developer's cache grew by a gigabyte an edit, and the test cache by one a
run.

What is kept: for every indexed tree and each program and mode
(`--program`, `--sound`), its last graph and the one before it
(`graphs.ready_graph` records both; the one before keeps a checkout back
one step, or a second run still reading it, answered from the store), and
the graph each of those is an alias of. Everything else of the form
`graphs.graph_key` makes is dropped: graphs of other resolver versions,
older graphs of a tree, aliases nobody names. Keys of another form (a
caller's own `Store.graph_tables`) are never touched.

Each graph is dropped in a transaction of its own, so an interrupted prune
leaves every graph whole or gone. SQLite reuses the freed pages for the
next graph; the file does not shrink without a `VACUUM`, but it stops
growing.
"""

from __future__ import annotations

import re
import sqlite3
from typing import TYPE_CHECKING

from chaintrace.graph.kinds import RESOLVER_VERSION
from chaintrace.store.schema import GRAPH_STATE_TABLES

if TYPE_CHECKING:
    from chaintrace.store.cache import Store

# graphs.graph_key: <index state>:r<resolver version>:<program>:<precise|sound>
_GRAPH_KEY = re.compile(r"^[0-9a-f]+:r(\d+):[^:]+:(?:precise|sound)$")


def kept_names() -> tuple[str, str]:
    """Return the LIKE patterns of the derived rows (per tree root) that name the graphs a tree keeps."""
    return f"last-graph:r{RESOLVER_VERSION}:%", f"previous-graph:r{RESOLVER_VERSION}:%"


def _other_version(key: str) -> bool:
    """Return True when `key` is a graph key of another resolver version (no run of this chaintrace reads it)."""
    match = _GRAPH_KEY.match(key)
    return match is not None and int(match.group(1)) != RESOLVER_VERSION


def unreachable_graphs(db: sqlite3.Connection, displaced: str | None) -> tuple[list[str], list[str]]:
    """Return the graph states to drop and the aliases to delete (sorted): those of other resolver versions, and
    `displaced` (a graph a tree no longer keeps) with the graph it reads, unless some tree still keeps them.

    Only a displaced graph is a candidate of this version: a graph just resolved by another run is saved before
    that run records it as kept, and must not look unreachable in between."""
    kept: set[str] = set()
    for pattern in kept_names():
        kept |= {bytes(data).decode(errors="replace") for (data,) in
                 db.execute("SELECT data FROM derived WHERE name LIKE ?", (pattern,))}
    aliases = dict(db.execute("SELECT state, base FROM g_alias").fetchall())
    read = {aliases.get(key, key) for key in kept}
    states = {state for (state,) in db.execute("SELECT state FROM g_states") if _other_version(state)}
    unnamed = {state for state in aliases if _other_version(state)}
    if displaced is not None and displaced not in kept:
        base = aliases.get(displaced, displaced)
        if displaced in aliases:
            unnamed.add(displaced)
        if base not in read:
            states.add(base)
            unnamed |= {state for state, of in aliases.items() if of == base and state not in kept}
    return sorted(states - read), sorted(unnamed)


def drop_unreachable_graphs(store: Store, displaced: str | None = None) -> int:
    """Drop what `unreachable_graphs` finds, in one transaction (deciding and dropping under one lock); return how
    many graphs went."""
    db = store.db
    with store.transaction():
        states, unnamed = unreachable_graphs(db, displaced)
        for state in states:
            for table in (*GRAPH_STATE_TABLES, "g_states"):
                db.execute(f"DELETE FROM {table} WHERE state = ?", (state,))
            db.execute("DELETE FROM derived WHERE state = ?", (state,))
        for state in unnamed:
            db.execute("DELETE FROM g_alias WHERE state = ?", (state,))
            db.execute("DELETE FROM derived WHERE state = ?", (state,))
        db.execute("DELETE FROM derived WHERE (name LIKE 'last-graph:%' OR name LIKE 'previous-graph:%') "
                   "AND name NOT LIKE ? AND name NOT LIKE ?", kept_names())
    return len(states)
