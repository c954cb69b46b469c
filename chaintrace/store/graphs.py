"""Keep a resolved graph ready for every indexed tree state: stored, patched from the last one, or resolved.

A graph is resolved from the facts of a program's files (`graph.build`):
about a minute on QEMU. Most edits leave it as it was: a file outside the
program, a comment, code moved down by a few lines. `ready_graph` compares
the program's files with those of the tree's last resolved graph (kept
beside it in the store's `derived` table): when every changed file has the
same facts but for lines that moved (`graph.shift.line_shift`), for
prototypes of functions no other fact names and for macros the last
resolve never asked about (`graph.delta`: a prototype or a macro added to
a header included by 500 files), the new state becomes an alias
of the old graph with those lines moved (`GraphStore.alias`), in about a
second; otherwise it is resolved in full, and the progress line says why.
Either way the result is the graph a full resolve gives
(`tests/test_incremental.py` compares them).
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections.abc import Callable

from chaintrace.errors import ChaintraceError
from chaintrace.extract.facts import FieldWrite, FileFacts
from chaintrace.graph.kinds import RESOLVER_VERSION
from chaintrace.graph.programs import program_filter
from chaintrace.graph.delta import other_text, unread_edit
from chaintrace.graph.shift import Shifts, compose
from chaintrace.store.cache import Store
from chaintrace.store.codec import seal, unseal
from chaintrace.store.graph_tables import GraphStore
from chaintrace.store.heap import keep_large_blocks_mapped
from chaintrace.store.prune import drop_unreachable_graphs

# More changed files than this and a full resolve is the better bet (each is decoded twice to compare).
_MOST_COMPARED = 200
_MACROS_READ = "macros-read"  # derived(graph key): the macro names its resolve asked about, JSON, compressed
_MACROS_SEAL = b"macros-read"
_READS = frozenset({"reads"})


def graph_key(state: str, program: str, sound: bool) -> str:
    """Return the key of the graph of an index `state` for `program`, precise or `sound`."""
    return f"{state}:r{RESOLVER_VERSION}:{program}:{'sound' if sound else 'precise'}"


def ready_graph(store: Store, root: str, state: str, load: Callable[[Callable[[str], bool]], list[FileFacts]],
                program: str, sound: bool = False, progress: bool = False) -> tuple[GraphStore, str]:
    """Return the graph tables of the indexed tree `root` at `state`, and how they were made ready:
    "stored" (already there), "patched" (an alias of the last graph, lines moved) or "resolved".

    `load(paths)` returns the facts of the tree's files whose path passes `paths`.
    """
    key = graph_key(state, program, sound)
    tables = store.graph_tables(key)
    if store.read_only:  # what it holds, or nothing: it can neither resolve nor patch
        if tables.exists():
            return tables, "stored"
        raise ChaintraceError(f"the cache {store.path.parent} is read-only and holds no call graph of {root} "
                              f"for --program {program}{' --sound' if sound else ''}: give a writable folder with --cache")
    mode = f"r{RESOLVER_VERSION}:{program}:{'sound' if sound else 'precise'}"
    last = store.derived(root, f"last-graph:{mode}")
    if tables.exists():
        if last != key.encode():  # back to an earlier state (a checkout): the next edit compares with this one
            _keep(store, root, mode, key, last, progress)
        return tables, "stored"
    in_program = program_filter(program)
    files = {path: fact_key for path, fact_key in store.indexed_keys(root).items() if in_program(path)}
    why = _patch(store, tables, files, last)
    how = "patched" if not why else "resolved"
    if how == "resolved":
        keep_large_blocks_mapped()  # the resolve is the process's peak of memory: its large blocks freed are returned
        _resolve(store, tables, load(in_program), [files[path] for path in sorted(files)], sound, progress,
                 "" if last is None else why)
    store.put_derived(key, "files", json.dumps(files).encode())
    _keep(store, root, mode, key, last, progress)
    return tables, how


def _keep(store: Store, root: str, mode: str, key: str, last: bytes | None, progress: bool) -> None:
    """Record `key` as the last graph of `root` (for `mode`) and `last` as the one before it, then drop the graph
    this displaces when no tree keeps it, and those of other resolver versions (`store.prune`); return None."""
    previous = store.derived(root, f"previous-graph:{mode}")
    if last is not None and last != key.encode():
        store.put_derived(root, f"previous-graph:{mode}", last)
    store.put_derived(root, f"last-graph:{mode}", key.encode())
    displaced = previous.decode(errors="replace") if previous not in (None, last, key.encode()) else None
    started = time.monotonic()
    dropped = drop_unreachable_graphs(store, displaced)
    if dropped and progress:
        print(f"dropped {dropped} call graph{'s' if dropped > 1 else ''} no indexed tree reads any more "
              f"({time.monotonic() - started:.1f} s)", file=sys.stderr)


def _patch(store: Store, tables: GraphStore, files: dict[str, str], last: bytes | None) -> str:
    """Make `tables` an alias of the `last` graph when the files differ from its files only by moved lines and by
    prototypes and macros no resolution reads (`graph.delta`); return "" when it did, else why not."""
    if last is None:
        return "no earlier graph"
    base = store.graph_tables(last.decode())
    try:
        before = json.loads(store.derived(last.decode(), "files") or b"null")
    except ValueError:
        return "the earlier graph's file list is unreadable"
    if not base.exists() or not isinstance(before, dict):
        return "no earlier graph"
    if before.keys() != files.keys():
        return "files were added or removed"
    changed = [path for path, fact_key in files.items() if before[path] != fact_key]
    if len(changed) > _MOST_COMPARED:
        return f"{len(changed)} files changed"
    shifts: Shifts = {}
    prototypes: set[str] = set()
    macros: set[str] = set()
    edited: list[FileFacts] = []
    for path in changed:
        pair = dict(store.iter_facts([before[path], files[path]]))
        old, new = pair.get(before[path]), pair.get(files[path])
        edit = unread_edit(old, new) if old is not None and new is not None else None
        if edit is None:
            return f"the facts of {path} changed"
        if edit.moves:
            shifts[path] = edit.moves
        prototypes |= edit.prototypes
        macros |= edit.defines
        edited.append(new)
    why = _macros_read(store, base.state, macros) or _prototypes_read(store, files, changed, edited, prototypes)
    if why:
        return why
    tables.alias(base.state, compose(base.shifts, shifts))
    return ""


def _macros_read(store: Store, state: str, macros: set[str]) -> str:
    """Return "" when the resolve of the graph `state` read none of `macros`, else why they may matter."""
    if not macros:
        return ""
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(unseal(store.derived(state, _MACROS_READ) or b"", state, _MACROS_SEAL), 256 << 20)
        read = set(json.loads(text)) if inflater.eof else None
    except (ValueError, TypeError, zlib.error):
        read = None  # damaged, or resolved by a chaintrace that kept no record: resolve, and keep one
    if read is None:
        return "no record of the macros the last resolve read"
    found = sorted(macros & read)
    return f"the macro {found[0]}, which resolution reads, changed" if found else ""


def _prototypes_read(store: Store, files: dict[str, str], changed: list[str], edited: list[FileFacts],
                     prototypes: set[str]) -> str:
    """Return "" when no fact but the prototypes names any of `prototypes` (their return types are then unread),
    else why they may matter."""
    if not prototypes:
        return ""
    texts = [other_text(facts, prototypes) for facts in edited]
    read = {name for name in prototypes if any(name in text for text in texts)}
    if prototypes - read:
        others = set(changed)
        read |= store.mentioned((key for path, key in files.items() if path not in others), prototypes - read)
    return f"the prototype of {min(read)} changed" if read else ""


def save_graph(store: Store, tables: GraphStore, cg, writes: list[FieldWrite], keys: list[str]) -> None:
    """Save the graph `cg` resolved from the facts of the fact `keys` in `tables`, with their field `writes` and their
    field reads read again from the store (the graph's facts hold only those it reads: the rest wait here, after
    the resolver's own tables are freed); return None."""
    reads = []
    for key, found in store.iter_facts(keys, only=_READS):  # before the save's transaction: a damaged entry is
        if found is None:                                     # deleted in one of its own
            raise ChaintraceError(f"the cache lost the facts {key[:12]} while the call graph was resolved: "
                                  "run the command again")
        reads += found.reads
    tables.save(cg, writes, reads)


def _resolve(store: Store, tables: GraphStore, facts: list[FileFacts], keys: list[str], sound: bool,
             progress: bool, why: str = "") -> None:
    """Resolve the graph of `facts` (read with `graph=True` from the fact `keys`, in path order) and save it in
    `tables` (`why` it could not be patched, for the progress line). `facts` is emptied once the graph is built:
    only its field writes wait for the save."""
    from chaintrace.graph.build import build_graph

    started = time.monotonic()
    if progress:
        reason = f" ({why}: resolved in full)" if why else ""
        print(f"resolving the call graph of {len(facts)} files{reason} ...", file=sys.stderr, end="", flush=True)
    cg = build_graph(facts, sound=sound, lean=True)  # saving streams the direct edges: never all their dicts at once
    writes = [write for file_facts in facts for write in file_facts.writes]
    facts.clear()  # the caller passed the only reference: what the graph keeps no longer waits for the save
    save_graph(store, tables, cg, writes, keys)
    read = zlib.compress(json.dumps(sorted(cg.macros_read)).encode(), 1)
    store.put_derived(tables.state, _MACROS_READ, seal(read, tables.state, _MACROS_SEAL))
    if progress:
        print(f" {time.monotonic() - started:.1f} s", file=sys.stderr)
