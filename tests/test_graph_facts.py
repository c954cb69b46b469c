"""Facts of a source tree in memory, for the graph and query tests (the index pipeline does this for real).

`tree_facts(root, dirs)` walks `*.c` / `*.h` (and `*.c.inc`), neutralises
the tree's attribute and loop macros with `chaintrace.source.normalize` and
extracts each file.  Fixture trees also get the shared
`fixtures/include/qemu-mini.h`, as `../include/qemu-mini.h`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from chaintrace.source import normalize
from chaintrace.extract.extractor import extract
from chaintrace.extract.facts import FileFacts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHARED_HEADER = FIXTURES / "include" / "qemu-mini.h"
SOURCE_SUFFIXES = (".c", ".h", ".c.inc", ".h.inc")


def source_files(root: Path, dirs: tuple[str, ...] = ()) -> dict[str, Path]:
    """Return {relative path: file} of the C sources under `root` (or only under `dirs` of it)."""
    tops = [root / d for d in dirs] if dirs else [root]
    found: dict[str, Path] = {}
    for top in tops:
        candidates = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in candidates:
            if path.is_file() and path.name.endswith(SOURCE_SUFFIXES):
                found[path.relative_to(root).as_posix()] = path
    return found


def tree_facts(root: Path, dirs: tuple[str, ...] = (), extra: dict[str, Path] | None = None) -> list[FileFacts]:
    """Return the facts of every source file of the tree, macros normalised with the tree's own classes."""
    files = source_files(root, dirs)
    files.update(extra or {})
    sources = {rel: path.read_bytes() for rel, path in files.items()}
    defines = [d for source in sources.values() for d in normalize.scan_defines(source)]
    classes = normalize.derive_classes(defines)
    facts = []
    for rel, source in sources.items():
        used = normalize.used_macros(source, classes)
        facts.append(extract(rel, source, normalize.normalize(source, classes, used)))
    return facts


@functools.cache
def fixture_facts(name: str) -> tuple[FileFacts, ...]:
    """Return the facts of fixture `name`, the shared header included."""
    return tuple(tree_facts(FIXTURES / name, extra={"../include/qemu-mini.h": SHARED_HEADER}))


def test_tree_facts_reads_every_source_and_the_shared_header():
    facts = fixture_facts("thread_entry")
    paths = {f.path for f in facts}
    assert {"worker.c", "worker.h", "util/qemu-thread-posix.c", "../include/qemu-mini.h"} <= paths


def test_tree_facts_normalises_loop_macros():
    facts = {f.path: f for f in fixture_facts("foreach_macro")}
    callees = {c.callee for c in facts["clients.c"].calls}
    assert "QTAILQ_FOREACH" not in callees


# The directories of a QEMU tree the migration traces need (the whole tree takes minutes).
QEMU_DIRS = ("migration", "io", "util", "include")


@functools.cache
def qemu_facts(root: Path, dirs: tuple[str, ...] = QEMU_DIRS) -> tuple[FileFacts, ...]:
    """Return the facts of `dirs` of a real QEMU tree (cached for the session)."""
    return tuple(tree_facts(root, dirs))
