"""scan -> normalise -> parse -> facts -> store, for a whole tree, in parallel worker processes.

Two passes over the files that changed since the last run: the first reads
each file's content hash and `#define`s (the macro classes come from the
whole tree), the second normalises, parses and extracts. Unchanged files
(same size and mtime, same macro classes) cost one `stat`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chaintrace.errors import ChaintraceError
from chaintrace.extract.facts import EXTRACTOR_VERSION
from chaintrace.source.scan import ScanOptions, Skipped, SourceFile, scan, unchanged_since
from chaintrace.store.cache import FileRow, Store, encode_facts

_BATCH = 200
_FLUSH_SECONDS = 1.0
# Stored #define summaries are keyed by content hash and this format tag.
_DEFINES_FORMAT = "d2:"


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


# --- worker side ------------------------------------------------------------------

_ROOT: Path = Path(".")
_CLASSES: dict[str, str] = {}
_DB: sqlite3.Connection | None = None
_DB_PATH: str = ""
_DONE = 0
# Extraction makes millions of short-lived objects and no cycles: the cyclic
# collector, left on, walks them over and over for nothing (~4 % of a worker's
# time). Workers run with it off and collect now and then, to be safe.
_COLLECT_EVERY = 500


def _init_worker(root: str, classes: dict[str, str], db_path: str) -> None:
    global _ROOT, _CLASSES, _DB, _DB_PATH
    _ROOT, _CLASSES, _DB_PATH, _DB = Path(root), classes, db_path, None


def _init_pool_worker(root: str, classes: dict[str, str], db_path: str) -> None:
    _init_worker(root, classes, db_path)
    gc.freeze()  # what the parent left is never garbage
    gc.disable()


def _collect_now_and_then() -> None:
    global _DONE
    _DONE += 1
    if _DONE % _COLLECT_EVERY == 0 and not gc.isenabled():
        gc.collect()


def _read(path: str) -> bytes:
    """Return a file's bytes, or raise ValueError saying why it is not indexed."""
    try:
        data = (_ROOT / path).read_bytes()
    except OSError as error:
        raise ValueError(f"unreadable: {error.strerror}") from None
    if b"\0" in data[:8192]:
        raise ValueError("binary file (NUL bytes)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"not UTF-8 (byte 0x{data[error.start]:02x} at line {line})") from None
    return data


def _first_pass(path: str) -> tuple[str, str, list | None, str]:
    """Return (path, content hash, define summaries, error)."""
    from chaintrace.source import normalize  # loaded by `index_tree` before the workers fork

    try:
        data = _read(path)
    except ValueError as error:
        return path, "", None, str(error)
    # Long bodies are kept whole up to a limit: their end says whether they
    # expand to a declaration (normalize.DECL).
    defines = [[name, params, body if len(body) <= 2000 else body[:1000] + " " + body[-1000:]] for name, params, body in normalize.scan_defines(data)]
    return path, hashlib.sha256(data).hexdigest(), defines, ""


def fact_key(path: str, sha: str, signature: str) -> str:
    """Return the content address of a file's facts."""
    return hashlib.sha256(f"{EXTRACTOR_VERSION}\0{path}\0{sha}\0{signature}".encode()).hexdigest()


def _has_key(key: str) -> bool:
    global _DB
    if _DB is None:
        _DB = sqlite3.connect(f"file:{_DB_PATH}?mode=ro", uri=True, timeout=60)
    try:
        return _DB.execute("SELECT 1 FROM facts WHERE key = ?", (key,)).fetchone() is not None
    except sqlite3.DatabaseError:
        return False


def _second_pass(job: tuple[str, str]) -> tuple[str, str, bytes | None, tuple[int, int, int, int] | None, str]:
    """Return (path, key, encoded facts or None when already stored, counts, error)."""
    from chaintrace.source import normalize  # loaded by `index_tree` before the workers fork
    from chaintrace.extract.extractor import extract

    path, sha = job
    _collect_now_and_then()
    try:
        data = _read(path)
        classes = normalize.local_classes(data, _CLASSES)
        used = normalize.used_macros(data, classes)
        key = fact_key(path, sha, normalize.classes_signature(classes, used))
        if _has_key(key):
            return path, key, None, None, ""
        text = normalize.normalize(data, classes, used)
        if path.endswith(".hx"):
            text = normalize.hx_to_c(text)
        facts = extract(path, data, text)
        counts = (len(facts.functions), len(facts.calls), len(facts.refs), len(facts.errors))
        return path, key, encode_facts(facts), counts, ""
    except ValueError as error:
        return path, "", None, None, str(error)
    except Exception as error:  # a bug of ours on odd input: skip the file, say which
        return path, "", None, None, f"extractor failed: {type(error).__name__}: {error}"


# --- main side -------------------------------------------------------------------------


def _run(function: Callable, jobs: Iterable, workers: int, initargs: tuple, chunksize: int = 4) -> Iterator:
    items = list(jobs)
    if workers <= 1 or len(items) < 8:
        _init_worker(*initargs)
        enabled = gc.isenabled()
        gc.disable()
        try:
            for item in items:
                yield function(item)
        finally:
            if enabled:
                gc.enable()
        return
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_pool_worker, initargs=initargs) as pool:
        yield from pool.imap_unordered(function, items, chunksize=chunksize)


class Progress:
    """A progress line on a terminal (files/s, ETA); silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0

    def update(self, phase: str, done: int, total: int, started: float) -> None:
        """Redraw the line at most ten times a second."""
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        rate = done / max(now - started, 1e-6)
        eta = (total - done) / rate if rate else 0
        sys.stderr.write(f"\r{phase}: {done}/{total} files, {rate:.0f} files/s, ETA {eta:.0f}s   ")
        sys.stderr.flush()

    def done(self) -> None:
        """End the progress line."""
        if self.enabled:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()


def index_tree(
    tree: Path,
    store: Store,
    options: ScanOptions | None = None,
    jobs: int = 0,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
) -> IndexSummary:
    """Index `tree` into `store` and return the summary; skipped files are listed, not fatal."""
    started = time.monotonic()
    warn = warn or (lambda message: print(f"chaintrace: {message}", file=sys.stderr))
    workers = jobs or os.cpu_count() or 1
    root = str(tree)
    options = options or ScanOptions()
    state = store.tree_state(root)
    # The stored classes hash carries the extractor version: facts of another version are never reused.
    current_version = bool(state) and state[1].startswith(f"{EXTRACTOR_VERSION}:")
    recorded = store.tree_scan(root)
    # Fastest: the folders and files of the last complete scan are as they were (a stat each, no listing).
    # (Dropping a damaged facts entry forgets every recorded scan, so their facts are all there.)
    if (current_version and recorded and recorded.options == repr(options) and recorded.state == state[0]
            and unchanged_since(tree, recorded.folders, recorded.files)):
        summary = IndexSummary(tree=root, reused=len(recorded.files))
        return _finish(summary, store, len(recorded.files), lambda: store.tree_keys(root), state[0], started)
    folders: dict[str, int] = {}
    scanned_ns = time.time_ns()
    files, skipped = scan(tree, options, folders)
    for left_out in skipped:
        warn(f"skipped {left_out.path}: {left_out.reason}")
    summary = IndexSummary(tree=root, skipped=skipped)
    previous = store.tree_files(root)
    unchanged = {f.path: previous[f.path] for f in files if _same(previous.get(f.path), f)}
    current = {f.path: f for f in files}
    if current_version and len(unchanged) == len(files) == len(previous):
        keys = [row.key for row in unchanged.values()]
        if store.tree_facts_missing(root) == 0:
            summary.reused = len(keys)
            store.record_scan(root, repr(options), _watchable(folders, skipped, scanned_ns))
            return _finish(summary, store, len(keys), lambda: keys, state[0], started)
        # some facts were lost (a damaged entry was dropped): the full path re-extracts them

    # The parsing modules load only now that something must be read (a warm run never needs them),
    # and before the workers fork, so that each does not load them again.
    from chaintrace.extract import extractor as extract  # noqa: F401
    from chaintrace.source import normalize

    bar = Progress(progress)
    # First pass: content hashes and #defines of the files that changed.
    shas = {path: row.sha for path, row in unchanged.items()}
    known = {key[len(_DEFINES_FORMAT):] for key in store.has_defines(_DEFINES_FORMAT + sha for sha in set(shas.values()))}
    defines: dict[str, list] = {}  # of the files read now; the others' are loaded only if classes must be derived
    todo = [f.path for f in files if f.path not in shas or shas[f.path] not in known]
    new_defines = []
    bad: set[str] = set()
    t0 = time.monotonic()
    for done, (path, sha, found, error) in enumerate(_run(_first_pass, todo, workers, (root, {}, str(store.path))), 1):
        if error:
            bad.add(path)
            skipped.append(Skipped(path, error))
            warn(f"skipped {path}: {error}")
            continue
        shas[path] = sha
        defines[sha] = found
        new_defines.append((sha, found))
        bar.update("reading", done, len(todo), t0)
    store.put_defines((_DEFINES_FORMAT + sha, found) for sha, found in new_defines)
    classes = _classes(store, shas, bad, defines)
    defines = new_defines = None  # type: ignore[assignment]  # not needed by the workers forked next
    classes_hash = f"{EXTRACTOR_VERSION}:" + normalize.classes_signature(classes, set(classes))

    # Second pass: facts for every file whose key may have changed.
    same_classes = bool(state) and state[1] == classes_hash
    keys: dict[str, str] = {}
    if same_classes:
        keys = {path: row.key for path, row in unchanged.items() if row.sha == shas.get(path)}
        present = store.has_facts(keys.values())
        keys = {path: key for path, key in keys.items() if key in present}
    # Largest files first, so that no worker is left parsing a big one at the end.
    sizes = {f.path: f.size for f in files}
    jobs_list = sorted(
        ((path, shas[path]) for path in shas if path not in keys and path not in bad), key=lambda job: -sizes.get(job[0], 0)
    )
    batch: list = []
    t0 = flushed = time.monotonic()
    try:
        for done, (path, key, data, counts, error) in enumerate(
            _run(_second_pass, jobs_list, workers, (root, classes, str(store.path))), 1
        ):
            bar.update("indexing", done, len(jobs_list), t0)
            if error:
                skipped.append(Skipped(path, error))
                warn(f"skipped {path}: {error}")
                continue
            keys[path] = key
            if data is None:
                summary.reused += 1
                continue
            summary.extracted += 1
            batch.append((key, data, counts))
            if len(batch) >= _BATCH or time.monotonic() - flushed > _FLUSH_SECONDS:
                # stored as we go: a run killed mid-way leaves its finished files for the next
                store.put_facts(batch)
                batch = []
                flushed = time.monotonic()
        store.put_facts(batch)
    finally:
        bar.done()
    summary.reused += len(files) - len(jobs_list) - len(bad)
    rows = [FileRow(path, current[path].size, current[path].mtime_ns, shas[path], key) for path, key in sorted(keys.items())]
    tree_state = hashlib.sha256("\n".join(f"{r.path}\0{r.key}" for r in rows).encode()).hexdigest()
    store.replace_tree(root, rows, tree_state, classes_hash)
    store.record_scan(root, repr(options), _watchable(folders, skipped, scanned_ns))
    return _finish(summary, store, len(rows), lambda: [r.key for r in rows], tree_state, started)


def _classes(store: Store, shas: dict[str, str], bad: set[str], defines: dict[str, list]) -> dict[str, str]:
    """Return the tree's macro classes, derived once per set of file contents (stored by its hash)."""
    from chaintrace.source import normalize

    contents = sorted({shas[path] for path in shas if path not in bad})
    key = hashlib.sha256("\n".join([normalize.DERIVATION_VERSION, *contents]).encode()).hexdigest()
    stored = store.derived(key, "macro-classes")
    if stored is not None:
        try:
            return json.loads(stored)
        except ValueError:
            pass  # damaged: derive again
    missing = {shas[path] for path in shas if path not in bad and shas[path] not in defines}
    stored = store.defines(_DEFINES_FORMAT + sha for sha in missing)
    defines = {**{key[len(_DEFINES_FORMAT):]: found for key, found in stored.items()}, **defines}
    all_defines = [tuple(d) for path in sorted(shas) if path not in bad for d in defines.get(shas[path], ())]
    classes = normalize.derive_classes(all_defines)
    store.put_derived(key, "macro-classes", json.dumps(classes).encode())
    return classes


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
        store.put_derived(state, "counts", json.dumps(counts).encode())
    summary.functions, summary.calls, summary.refs, summary.errors = counts
    summary.state = state
    summary.seconds = time.monotonic() - started
    return summary


def indexed_keys(store: Store, tree: Path) -> dict[str, str]:
    """Return path -> fact key of an indexed tree; raises ChaintraceError when it was never indexed."""
    if store.tree_state(str(tree)) is None:
        raise ChaintraceError(f"{tree} is not indexed: run `chaintrace index {tree}`")
    rows = store.tree_files(str(tree))
    return {path: row.key for path, row in rows.items()}
