"""The two passes of an index run over the files that changed since the last run.

The first reads each file's content hash and `#define`s (stored by content
hash, so another tree or version with the same file reads nothing); the
macro classes are then derived from the whole tree's `#define`s; the second
normalises, parses and extracts each file whose fact key is new. The work
runs in `workers`; the facts are stored as they come, in batches, so a run
killed mid-way leaves its finished files for the next.

This module loads only when something must be read: a warm run never needs
it, nor the parsing modules it loads (before the workers fork, so that each
does not load them again).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from chaintrace.extract import extractor  # noqa: F401  (loaded before the workers fork)
from chaintrace.source import normalize
from chaintrace.source.scan import Skipped, SourceFile
from chaintrace.store import workers
from chaintrace.store.cache import FileRow, Store
from chaintrace.store.progress import Progress

_BATCH = 200
_FLUSH_SECONDS = 1.0
# Stored #define summaries are keyed by content hash and this format tag.
_DEFINES_FORMAT = "d2:"


class Passes:
    """The two passes of one index run over the files that changed, and what they share."""

    def __init__(self, store: Store, root: str, version: int, processes: int, progress: bool,
                 warn: Callable[[str], None], skipped: list[Skipped], follow: bool = False) -> None:
        self.store, self.processes, self.warn, self.skipped = store, processes, warn, skipped
        self.setup = workers.Setup(root, {}, str(store.path), version, follow)
        self.bar = Progress(progress)
        self.bad: set[str] = set()  # files the first pass could not read
        self.defines: dict[str, list] = {}  # content hash -> #defines, of the files read now
        self.extracted = self.reused = 0  # files whose facts were extracted now, or found stored

    def _skip(self, path: str, error: str) -> None:
        self.skipped.append(Skipped(path, error))
        self.warn(f"skipped {path}: {error}")

    def hashes(self, files: list[SourceFile], unchanged: dict[str, FileRow]) -> dict[str, str]:
        """Return path -> content hash of the readable files; read and store the `#define`s not stored yet."""
        shas = {path: row.sha for path, row in unchanged.items()}
        known = {key[len(_DEFINES_FORMAT):]
                 for key in self.store.has_defines(_DEFINES_FORMAT + sha for sha in set(shas.values()))}
        todo = [f.path for f in files if f.path not in shas or shas[f.path] not in known]
        started = time.monotonic()
        hashed = workers.run(workers.first_pass, todo, self.processes, self.setup)
        for done, (path, sha, found, error) in enumerate(hashed, 1):
            if error:
                self.bad.add(path)
                self._skip(path, error)
                continue
            shas[path] = sha
            self.defines[sha] = found
            self.bar.update("reading", done, len(todo), started)
        self.store.put_defines((_DEFINES_FORMAT + sha, found) for sha, found in self.defines.items())
        return {path: sha for path, sha in shas.items() if path not in self.bad}

    def classes(self, shas: dict[str, str], previous: dict[str, str] | None = None) -> str:
        """Derive the tree's macro classes (handed to the second pass); return their hash, which carries the version.

        `previous`: path -> content hash of the tree's last index, whose classes hold again when no
        changed file changed its `#define`s (an edit of a function body, a comment).
        """
        classes = _classes(self.store, shas, self.defines, previous or {})
        self.defines = {}  # not needed by the workers forked next
        self.setup = self.setup._replace(classes=classes)
        return f"{self.setup.version}:" + normalize.classes_signature(classes, set(classes))

    def facts(self, files: list[SourceFile], shas: dict[str, str], reusable: dict[str, FileRow]) -> dict[str, str]:
        """Return path -> fact key of every indexed file, extracting and storing the facts not stored yet.

        `reusable`: rows of unchanged files whose keys still hold (same macro classes); those whose facts
        are still stored keep their key without a worker.
        """
        keys = {path: row.key for path, row in reusable.items() if row.sha == shas.get(path)}
        present = self.store.has_facts(keys.values())
        keys = {path: key for path, key in keys.items() if key in present}
        # Largest files first, so that no worker is left parsing a big one at the end.
        sizes = {f.path: f.size for f in files}
        jobs = sorted(((path, sha) for path, sha in shas.items() if path not in keys), key=lambda job: -sizes.get(job[0], 0))
        batch: list = []
        started = flushed = time.monotonic()
        extracted = workers.run(workers.second_pass, jobs, self.processes, self.setup)
        for done, (path, key, data, counts, error) in enumerate(extracted, 1):
            self.bar.update("indexing", done, len(jobs), started)
            if error:
                self._skip(path, error)
                continue
            keys[path] = key
            if data is None:
                self.reused += 1
                continue
            self.extracted += 1
            batch.append((key, data, counts))
            if len(batch) >= _BATCH or time.monotonic() - flushed > _FLUSH_SECONDS:
                # stored as we go: a run killed mid-way leaves its finished files for the next
                self.store.put_facts(batch)
                batch, flushed = [], time.monotonic()
        self.store.put_facts(batch)
        self.reused += len(files) - len(jobs) - len(self.bad)
        return keys


def _contents_key(shas: dict[str, str]) -> str:
    return hashlib.sha256("\n".join([normalize.DERIVATION_VERSION, *sorted(set(shas.values()))]).encode()).hexdigest()


def _stored_classes(store: Store, key: str) -> dict[str, str] | None:
    stored = store.derived(key, "macro-classes")
    try:
        return json.loads(stored) if stored is not None else None
    except ValueError:
        return None  # damaged: derive again


# Deriving the classes reads every file's #defines (a second on QEMU): an edit of a few files that keeps
# their #defines as they were reuses the last run's classes instead.
_FEW_CHANGED = 64


def _classes(store: Store, shas: dict[str, str], defines: dict[str, list],
             previous: dict[str, str]) -> dict[str, str]:
    """Return the tree's macro classes, derived once per set of file contents (stored by its hash).

    `shas`: path -> content hash of the readable files; `defines`: the `#define`s of the contents read now;
    `previous`: path -> content hash at the last index (its classes are reused when no `#define` changed).
    """
    key = _contents_key(shas)
    classes = _stored_classes(store, key)
    if classes is not None:
        return classes
    if previous.keys() == shas.keys():
        changed = [path for path, sha in shas.items() if previous[path] != sha]
        last = _stored_classes(store, _contents_key(previous)) if len(changed) <= _FEW_CHANGED else None
        if last is not None and not _defines_changed(store, changed, shas, previous, defines):
            store.put_derived(key, "macro-classes", json.dumps(last).encode())
            return last
    missing = {sha for sha in shas.values() if sha not in defines}
    stored = store.defines(_DEFINES_FORMAT + sha for sha in missing)
    defines = {**{key[len(_DEFINES_FORMAT):]: found for key, found in stored.items()}, **defines}
    all_defines = [tuple(d) for path in sorted(shas) for d in defines.get(shas[path], ())]
    classes = normalize.derive_classes(all_defines)
    store.put_derived(key, "macro-classes", json.dumps(classes).encode())
    return classes


def _defines_changed(store: Store, changed: list[str], shas: dict[str, str], previous: dict[str, str],
                     defines: dict[str, list]) -> bool:
    """Return True unless each changed file has the same `#define`s (in order) as at the last index."""
    wanted = {shas[path] for path in changed} | {previous[path] for path in changed}
    stored = store.defines(_DEFINES_FORMAT + sha for sha in wanted if sha not in defines)
    known = {**{key[len(_DEFINES_FORMAT):]: found for key, found in stored.items()}, **defines}
    as_stored = {sha: json.dumps(found) for sha, found in known.items()}  # lists and tuples alike
    return any(as_stored.get(shas[path]) is None or as_stored.get(shas[path]) != as_stored.get(previous[path])
               for path in changed)
