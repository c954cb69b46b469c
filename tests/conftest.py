"""Shared pytest fixtures; the plain helpers they use live in `tests/helpers/` (test modules import those, never each other).

Fixture trees
-------------
`fixture_trees` (session) copies each `fixtures/<name>/` complete (with the
shared `qemu-mini.h`) and indexes it with the real indexer into one
temporary cache (see `helpers/fixture_trees.py`):

    def test_x(fixture_trees):
        cg = fixture_trees.graph("mini_qemu")

`gcc` gives the compiler the oracle needs: a skip without it, a failure
under `CI=true` when apt cannot install it.

Real-QEMU layer
---------------
`scripts/fetch-qemu` (or `make qemu`) unpacks Debian's QEMU sources into a
cache folder and leaves one record per suite (`<suite>.json`).  The fixtures
below find those trees and key them by *release family*, the major.minor of
the tree's `VERSION` ("7.2", "10.0", "10.2", later "11.1" ...), because a
suite such as sid moves on: tests must key expectations by family, never by
suite or by a hard-coded newest version.

    def test_x(qemu_tree):            # a given family
        tree = qemu_tree("10.2")      # -> QemuTree, or skip
    def test_y(newest_qemu_tree): ... # the newest family fetched
    def test_z(any_qemu_tree): ...    # runs once per fetched family

A missing tree skips the test with a visible reason, except under `CI=true`
where it fails: CI must run the real-QEMU tests.  Tests using these fixtures
get the `qemu` marker automatically (`pytest -m "not qemu"` deselects them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from helpers.ci import require_tool
from helpers.fixture_trees import IndexedFixtures
from helpers.qemu_trees import QemuTree, fetched_qemu_trees, load_fetch_qemu, qemu_cache_dir, qemu_missing, version_key

# Fixtures that need a real QEMU tree; tests using them are marked `qemu`.
QEMU_FIXTURES = frozenset({"qemu_tree", "newest_qemu_tree", "any_qemu_tree", "indexed_qemu"})


# Read once at collection so `any_qemu_tree` can be parametrised per family.
_FAMILIES_AT_COLLECTION: list[str] = list(fetched_qemu_trees())


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fixture_trees(tmp_path_factory: pytest.TempPathFactory) -> IndexedFixtures:
    """Return the fixture trees, each made complete and indexed (on first use) into one temporary cache."""
    return IndexedFixtures(tmp_path_factory.mktemp("fixture-trees"))


@pytest.fixture(scope="session")
def gcc() -> str:
    """Return gcc's path (the oracle); skip without it, or fail under CI=true when apt cannot install it."""
    return require_tool(("gcc",), "gcc", "the gcc oracle must run")


@pytest.fixture(scope="session")
def fetch_qemu_module() -> ModuleType:
    """Return scripts/fetch-qemu as an importable module."""
    return load_fetch_qemu()


@pytest.fixture(scope="session")
def qemu_cache() -> Path:
    """Return the QEMU cache folder the real-QEMU fixtures read (it may not exist)."""
    return qemu_cache_dir()


@pytest.fixture(scope="session")
def qemu_trees() -> dict[str, QemuTree]:
    """Return every fetched tree keyed by family (possibly empty; never skips)."""
    return fetched_qemu_trees()


@pytest.fixture(scope="session")
def qemu_tree(qemu_trees: dict[str, QemuTree]) -> Callable[[str], QemuTree]:
    """Return a factory: qemu_tree("10.2") gives that family's tree, or skips (fails under CI)."""

    def get(family: str) -> QemuTree:
        tree = qemu_trees.get(family)
        if tree is None:
            qemu_missing(f"QEMU {family} not fetched: run `make qemu`")
        return tree

    return get


@pytest.fixture(scope="session")
def newest_qemu_tree(qemu_trees: dict[str, QemuTree]) -> QemuTree:
    """Return the tree of the newest fetched family, or skip (fail under CI)."""
    if not qemu_trees:
        qemu_missing("no QEMU tree fetched: run `make qemu`")
    return qemu_trees[max(qemu_trees, key=version_key)]


@pytest.fixture(
    params=_FAMILIES_AT_COLLECTION or [None],
    ids=lambda family: f"qemu-{family}" if family else "qemu-none",
)
def any_qemu_tree(request: pytest.FixtureRequest, qemu_trees: dict[str, QemuTree]) -> QemuTree:
    """Return each fetched family's tree in turn (one test run per family), or skip (fail under CI)."""
    family = request.param
    if family is None or family not in qemu_trees:
        qemu_missing("no QEMU tree fetched: run `make qemu`")
    return qemu_trees[family]


@pytest.fixture(scope="session")
def index_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return one chaintrace cache folder shared by the whole session, so each tree is indexed cold once.

    `CHAINTRACE_TEST_CACHE` names a lasting folder instead (`make test` sets
    it under CI, so the `chaintrace check` that follows reuses the index).
    """
    lasting = os.environ.get("CHAINTRACE_TEST_CACHE")
    if lasting:
        Path(lasting).mkdir(parents=True, exist_ok=True)
        return Path(lasting)
    return tmp_path_factory.mktemp("chaintrace-cache")


@pytest.fixture(scope="session")
def indexed_qemu(qemu_tree: Callable[[str], QemuTree], index_cache: Path) -> Callable[[str], QemuTree]:
    """Return a factory: indexed_qemu("10.2") indexes that family's tree into `index_cache` (once) and returns it."""
    from chaintrace import api

    done: set[str] = set()

    def get(family: str) -> QemuTree:
        tree = qemu_tree(family)
        if family not in done:
            with api.open_store(index_cache) as store:
                api.index(tree.path, store, warn=lambda message: None)
            done.add(family)
        return tree

    return get


# --------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a real-QEMU fixture with the `qemu` marker."""
    for item in items:
        if QEMU_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.qemu)
