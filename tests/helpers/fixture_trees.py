"""The fixture trees as chaintrace sees them: complete, indexed by the real indexer into a temporary cache.

A fixture folder (`fixtures/<name>/`) is compiled with `-I fixtures/include`
(see `oracle.py`): its sources include the shared stand-in for QEMU's and
GLib's headers, `qemu-mini.h`, which defines the loop, statement and
attribute macros the fixtures use.  A real QEMU tree holds its headers, so
a fixture is indexed the same way: copied with the shared header at
`include/qemu-mini.h`, then indexed through `chaintrace.api` (the scan, the
per-tree macro classes, the workers, the store) like any tree.

    trees = IndexedFixtures(tmp_folder)      # conftest's `fixture_trees` fixture
    trees.tree("mini_qemu")    # the complete copy (entries read its qapi/ and .hx files)
    trees.facts("mini_qemu")   # the facts the indexer stored, sorted by path
    trees.graph("mini_qemu")   # build_graph of those facts
"""

from __future__ import annotations

import shutil
from pathlib import Path

from chaintrace import api
from chaintrace.extract.facts import FieldWrite, FileFacts
from chaintrace.graph.build import build_graph
from chaintrace.graph.model import CallGraph

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "fixtures"
SHARED_HEADER = FIXTURES / "include" / "qemu-mini.h"
# Where the shared header sits in a complete fixture tree (node ids of its static inlines name this path).
SHARED_HEADER_PATH = "include/qemu-mini.h"


def complete_tree(fixture: Path, destination: Path) -> Path:
    """Copy `fixture` to `destination` with the shared header at `include/qemu-mini.h`; return `destination`."""
    shutil.copytree(fixture, destination)
    header = destination / SHARED_HEADER_PATH
    header.parent.mkdir(exist_ok=True)
    shutil.copyfile(SHARED_HEADER, header)
    return destination


def indexed_facts(tree: Path, cache: Path) -> tuple[FileFacts, ...]:
    """Index `tree` into `cache` with the real indexer and return the facts it stored, sorted by path."""
    with api.open_store(cache) as store:
        api.index(tree, store, jobs=1, warn=lambda message: None)
        return tuple(api.load_facts(store, tree))


class IndexedFixtures:
    """The fixture trees, each copied complete and indexed once into one cache under `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cache = workdir / "cache"
        self._facts: dict[str, tuple[FileFacts, ...]] = {}
        self._graphs: dict[str, CallGraph] = {}

    def tree(self, name: str) -> Path:
        """Return the complete copy of fixture `name` (made on first use)."""
        tree = self.workdir / "trees" / name
        if not tree.is_dir():
            complete_tree(FIXTURES / name, tree)
        return tree

    def facts(self, name: str) -> tuple[FileFacts, ...]:
        """Return the facts of fixture `name` as the indexer stores them."""
        if name not in self._facts:
            self._facts[name] = indexed_facts(self.tree(name), self.cache)
        return self._facts[name]

    def graph(self, name: str, sound: bool = False) -> CallGraph:
        """Return the call graph of fixture `name`, built from its indexed facts (`sound`: the over-approximation)."""
        if (name, sound) not in self._graphs:
            self._graphs[name, sound] = build_graph(self.facts(name), sound=sound)
        return self._graphs[name, sound]

    def writes(self, name: str) -> list[FieldWrite]:
        """Return every field write of fixture `name` (what `assign:` targets match)."""
        return [write for facts in self.facts(name) for write in facts.writes]
