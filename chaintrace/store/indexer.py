"""scan -> normalise -> parse -> facts -> store, for a whole tree, in parallel worker processes.

A warm run first checks what the last run recorded: the folders and files
of its scan (a `stat` each), or else a fresh scan against the stored file
list. When something changed, two passes run over the files that did
(`workers`): the first reads each file's content hash and `#define`s (the
macro classes come from the whole tree), the second normalises, parses and
extracts. Unchanged files (same size and mtime, same macro classes) cost
one `stat`. Everything read or written goes through `Store`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaintrace.extract.facts import EXTRACTOR_VERSION
from chaintrace.source.scan import OpenTree, Skipped, SourceFile, scan, unchanged_since
from chaintrace.errors import ChaintraceError
from chaintrace.store.cache import FileRow, RecordedScan, Store


@dataclass(slots=True)
class IndexSummary:
    """What an index run did: counts, skipped files, seconds."""

    tree: str
    files: int = 0
    extracted: int = 0
    reused: int = 0
    functions: int = 0
    calls: int = 0
    refs: int = 0
    errors: int = 0
    seconds: float = 0.0
    state: str = ""
    skipped: list[Skipped] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the summary as a JSON-able dict."""
        return {
            "tree": self.tree,
            "files": self.files,
            "extracted": self.extracted,
            "reused": self.reused,
            "functions": self.functions,
            "calls": self.calls,
            "references": self.refs,
            "error_regions": self.errors,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 3),
            "state": self.state,
        }


def _say(message: str) -> None:
    print(f"chaintrace: {message}", file=sys.stderr)


def index_tree(tree: OpenTree, store: Store, jobs: int = 0, progress: bool = False,
               warn: Callable[[str], None] | None = None) -> IndexSummary:
    """Index the open `tree` into `store` and return the summary; skipped files are listed, not fatal."""
    started = time.monotonic()
    warn = warn or _say
    root, options = str(tree.root), repr(tree.options)
    state = store.tree_state(root)
    # The stored classes hash carries the extractor version: facts of another version are never reused.
    current_version = bool(state) and state[1].startswith(f"{EXTRACTOR_VERSION}:")
    recorded = store.tree_scan(root)
    if store.read_only:
        return _as_held(tree, store, state if current_version else None, recorded, started, warn)
    # Fastest: the folders and files of the last complete scan are as they were (a stat each, no listing).
    # (Dropping a damaged facts entry forgets every recorded scan, so their facts are all there.)
    if (current_version and recorded and recorded.options == options and recorded.state == state[0]
            and unchanged_since(tree.root, recorded.folders, recorded.files)):
        summary = IndexSummary(tree=root, reused=len(recorded.files))
        return _finish(summary, store, len(recorded.files), lambda: store.tree_keys(root), state[0], started)
    folders: dict[str, int] = {}
    scanned_ns = time.time_ns()
    files, skipped = scan(tree.root, tree.options, folders)
    for left_out in skipped:
        warn(f"skipped {left_out.path}: {left_out.reason}")
    summary = IndexSummary(tree=root, skipped=skipped)
    previous = store.tree_files(root)
    unchanged = {f.path: previous[f.path] for f in files if _same(previous.get(f.path), f)}
    # Next: nothing changed since the stored file list (unless facts were lost: a damaged entry was dropped).
    if (current_version and len(unchanged) == len(files) == len(previous)
            and store.tree_facts_missing(root) == 0):
        keys = [row.key for row in unchanged.values()]
        summary.reused = len(keys)
        store.record_scan(root, options, _watchable(folders, skipped, scanned_ns))
        return _finish(summary, store, len(keys), lambda: keys, state[0], started)

    from chaintrace.store.passes import Passes  # only now that something must be read

    cores = os.cpu_count() or 1  # more workers than cores (or than files: workers.run) only cost memory
    passes = Passes(store, root, EXTRACTOR_VERSION, max(1, min(jobs or cores, cores)), progress, warn, skipped,
                    tree.options.follow_symlinks)
    try:
        shas = passes.hashes(files, unchanged)
        classes_hash = passes.classes(shas, {path: row.sha for path, row in previous.items()} if current_version else None)
        reusable = state is not None and state[1] == classes_hash
        keys = passes.facts(files, shas, unchanged if reusable else {})
    finally:
        passes.bar.done()
    summary.extracted, summary.reused = passes.extracted, passes.reused
    current = {f.path: f for f in files}
    rows = [FileRow(path, current[path].size, current[path].mtime_ns, shas[path], key) for path, key in sorted(keys.items())]
    import hashlib  # here: a fresh tree (the warm path) hashes nothing, and OpenSSL's start-up is not free

    tree_state = hashlib.sha256("\n".join(f"{r.path}\0{r.key}" for r in rows).encode()).hexdigest()
    store.replace_tree(root, rows, tree_state, classes_hash)
    store.record_scan(root, options, _watchable(folders, skipped, scanned_ns))
    if state is not None and store.derived(tree_state, "counts") is None:
        _count_edit(store, state[0], tree_state, previous, rows)
    return _finish(summary, store, len(rows), lambda: [r.key for r in rows], tree_state, started)


def _as_held(tree: OpenTree, store: Store, state: tuple[str, str] | None, recorded: RecordedScan | None,
             started: float, warn: Callable[[str], None]) -> IndexSummary:
    """Return the summary of the tree as a read-only store holds it, saying in one line that it cannot update it.

    Raises ChaintraceError when the store holds no index of the tree (of this extractor version).
    """
    root = str(tree.root)
    if state is None:
        raise ChaintraceError(f"the cache {store.path.parent} is read-only and holds no index of {root} "
                              "by this chaintrace: give a writable folder with --cache")
    held = store.tree_files(root)
    fresh = (recorded is not None and recorded.options == repr(tree.options) and recorded.state == state[0]
             and unchanged_since(tree.root, recorded.folders, recorded.files))
    if not fresh:  # a scan only stats: it writes nothing
        files, _ = scan(tree.root, tree.options)
        fresh = len(files) == len(held) and all(_same(held.get(f.path), f) for f in files)
    warn(f"the cache {store.path.parent} is read-only: answering from what it holds"
         + ("" if fresh else f", an index of {root} older than its files") + "; it cannot be updated")
    summary = IndexSummary(tree=root, reused=len(held))
    return _finish(summary, store, len(held), lambda: [row.key for row in held.values()], state[0], started)


# A folder changed this close to the scan may change again within the same tick of the file
# system's clock, leaving its mtime as recorded (git's "racy" entries): such a scan is not remembered.
_RACY_NS = 2_000_000_000


def _watchable(folders: dict[str, int], skipped: list[Skipped], scanned_ns: int) -> dict[str, int] | None:
    """Return the folders a later run may check instead of scanning, or None when it must scan.

    It must when this scan left files out (they are watched by no recorded
    file) or when a folder changed too close to the scan to trust its mtime.
    """
    if skipped or any(mtime_ns > scanned_ns - _RACY_NS for mtime_ns in folders.values()):
        return None
    return folders


def _same(row: FileRow | None, file: SourceFile) -> bool:
    return row is not None and row.size == file.size and row.mtime_ns == file.mtime_ns


def _count_edit(store: Store, old_state: str, new_state: str, previous: dict[str, FileRow], rows: list[FileRow]) -> None:
    """Store the new state's totals as the old state's, less the files that changed, plus what they became.

    Summing the facts of every file again reads 7,000 rows of blobs (half a second on QEMU); an edit
    changes a few. Nothing is stored when the old totals are unknown or a changed file's facts are gone.
    """
    try:
        old = json.loads(store.derived(old_state, "counts") or b"null")
    except ValueError:
        return
    now = {row.path: row.key for row in rows}
    gone = [row.key for path, row in previous.items() if now.get(path) != row.key]
    came = [key for path, key in now.items() if path not in previous or previous[path].key != key]
    if not (isinstance(old, list) and len(old) == 4) or len(gone) + len(came) > 500 \
            or len(store.has_facts(gone + came)) != len(set(gone + came)):
        return
    totals = [before + plus - minus for before, plus, minus in zip(old, store.counts(came), store.counts(gone))]
    store.put_derived(new_state, "counts", json.dumps(totals).encode())


def _finish(summary: IndexSummary, store: Store, files: int, keys: Callable[[], list[str]], state: str,
            started: float) -> IndexSummary:
    """Return the summary with the state's totals (fact `keys` are read only when they were never summed)."""
    summary.files = files
    # The totals of a state never change (its hash covers every file's fact key): summed once, then kept.
    try:
        counts = json.loads(store.derived(state, "counts") or b"null")
    except ValueError:
        counts = None
    if not (isinstance(counts, list) and len(counts) == 4):
        counts = list(store.counts(keys()))
        if not store.read_only:
            store.put_derived(state, "counts", json.dumps(counts).encode())
    summary.functions, summary.calls, summary.refs, summary.errors = counts
    summary.state = state
    summary.seconds = time.monotonic() - started
    return summary
