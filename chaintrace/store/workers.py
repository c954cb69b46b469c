"""The indexer's two passes over one file, as run in worker processes, and the pool that runs them.

`first_pass(path)` reads a file's content hash and `#define`s; `second_pass
((path, sha))` normalises, parses and extracts its facts, unless facts of
its key are stored already. Both return plain tuples (what crosses the
process boundary) and never raise: a file that cannot be indexed comes
back with the reason. `run` maps a pass over the files, in worker
processes forked from the indexer, or in this process for a handful.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from chaintrace.extract.facts import EXTRACTOR_VERSION
from chaintrace.source.qapi_schema import SCHEMA_SUFFIX, generated_header
from chaintrace.source.scan import read_tree_file
from chaintrace.store.cache import FactReader
from chaintrace.store.codec import encode_facts


class Setup(NamedTuple):
    """What every worker is given once: the tree's root, its macro classes, the store's file, the extractor version,
    and whether files that links lead to outside the tree are read (`--follow-symlinks`)."""

    root: str
    classes: dict[str, str]
    db_path: str
    version: int = EXTRACTOR_VERSION
    follow: bool = False


_ROOT: Path = Path(".")
_SETUP = Setup("", {}, "")
_FACTS: FactReader | None = None
_DONE = 0
# Extraction makes millions of short-lived objects and no cycles: the cyclic
# collector, left on, walks them over and over for nothing (~4 % of a worker's
# time). Workers run with it off and collect now and then, to be safe.
_COLLECT_EVERY = 500


def _init_worker(setup: Setup) -> None:
    global _ROOT, _SETUP, _FACTS
    _ROOT, _SETUP, _FACTS = Path(setup.root), setup, FactReader(setup.db_path)


def _init_pool_worker(setup: Setup) -> None:
    _init_worker(setup)
    gc.freeze()  # what the parent left is never garbage
    gc.disable()


def _collect_now_and_then() -> None:
    global _DONE
    _DONE += 1
    if _DONE % _COLLECT_EVERY == 0 and not gc.isenabled():
        gc.collect()


def _read(path: str) -> bytes:
    """Return a file's bytes, or raise ValueError saying why it is not indexed."""
    data = read_tree_file(_ROOT, path, follow=_SETUP.follow)  # a regular file of the tree, at most MAX_FILE_BYTES
    if b"\0" in data[:8192]:
        raise ValueError("binary file (NUL bytes)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"not UTF-8 (byte 0x{data[error.start]:02x} at line {line})") from None
    return data


def first_pass(path: str) -> tuple[str, str, list | None, str]:
    """Return (path, content hash, define summaries, error)."""
    from chaintrace.source import normalize  # loaded by the indexer before the workers fork

    try:
        data = _read(path)
    except ValueError as error:
        return path, "", None, str(error)
    # Long bodies are kept whole up to a limit: their end says whether they
    # expand to a declaration (normalize.DECL).
    defines = [[name, params, body if len(body) <= 2000 else body[:1000] + " " + body[-1000:]]
               for name, params, body in normalize.scan_defines(data)]
    return path, hashlib.sha256(data).hexdigest(), defines, ""


def fact_key(path: str, sha: str, signature: str, version: int = EXTRACTOR_VERSION) -> str:
    """Return the content address of a file's facts."""
    return hashlib.sha256(f"{version}\0{path}\0{sha}\0{signature}".encode()).hexdigest()


def second_pass(job: tuple[str, str]) -> tuple[str, str, bytes | None, tuple[int, int, int, int] | None, str]:
    """Return (path, key, encoded facts or None when already stored, counts, error)."""
    from chaintrace.source import normalize  # loaded by the indexer before the workers fork
    from chaintrace.extract.extractor import extract

    path, sha = job
    _collect_now_and_then()
    try:
        data = _read(path)
        classes = normalize.local_classes(data, _SETUP.classes)
        used = normalize.used_macros(data, classes)
        key = fact_key(path, sha, normalize.classes_signature(classes, used), _SETUP.version)
        if _FACTS is not None and _FACTS.has(key):
            return path, key, None, None, ""
        if path.endswith(SCHEMA_SUFFIX):  # C of other bytes than the file's, the same lines: read as it is
            data = text = generated_header(data)
        else:
            text = normalize.normalize(data, classes, used)
        if path.endswith(".hx"):
            text = normalize.hx_to_c(text)
        facts = extract(path, data, text)
        counts = (len(facts.functions), len(facts.calls), len(facts.refs), len(facts.errors))
        return path, key, encode_facts(facts, key), counts, ""
    except ValueError as error:
        return path, "", None, None, str(error)
    except Exception as error:  # a bug of ours on odd input: skip the file, say which
        return path, "", None, None, f"extractor failed: {type(error).__name__}: {error}"


def run(function: Callable, jobs: Iterable, workers: int, setup: Setup, chunksize: int = 4) -> Iterator:
    """Yield `function(job)` for every job, in any order: in `workers` forked processes, or here for fewer than 8 jobs."""
    items = list(jobs)
    workers = min(workers, len(items))
    if workers <= 1 or len(items) < 8:
        _init_worker(setup)
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
    with context.Pool(workers, initializer=_init_pool_worker, initargs=(setup,)) as pool:
        yield from pool.imap_unordered(function, items, chunksize=chunksize)
