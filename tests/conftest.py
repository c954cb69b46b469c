"""Shared pytest fixtures.

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

import functools
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FETCH_QEMU_SCRIPT = REPO_ROOT / "scripts" / "fetch-qemu"

# Environment variable that overrides the cache folder fetch-qemu writes to.
QEMU_CACHE_ENV = "CHAINTRACE_QEMU_CACHE"

# Fixtures that need a real QEMU tree; tests using them are marked `qemu`.
QEMU_FIXTURES = frozenset({"qemu_tree", "newest_qemu_tree", "any_qemu_tree", "indexed_qemu"})


# --------------------------------------------------------------------------
# Helpers (plain functions, usable outside fixtures)
# --------------------------------------------------------------------------

@functools.cache
def load_fetch_qemu() -> ModuleType:
    """Return scripts/fetch-qemu loaded as a module (the file has no .py suffix)."""
    name = "chaintrace_fetch_qemu"
    loader = importlib.machinery.SourceFileLoader(name, str(FETCH_QEMU_SCRIPT))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def qemu_cache_dir() -> Path:
    """Return the QEMU cache folder: $CHAINTRACE_QEMU_CACHE, else fetch-qemu's default."""
    override = os.environ.get(QEMU_CACHE_ENV)
    if override:
        return Path(override)
    return load_fetch_qemu().default_cache_dir()


def release_family(version: str) -> str:
    """Return the release family (major.minor) of a QEMU version: '10.2.2' -> '10.2'."""
    return ".".join(version.strip().split(".")[:2])


def version_key(version: str) -> tuple[int, ...]:
    """Return a sortable key of a dotted QEMU version ('10.2' -> (10, 2)); non-numbers count 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.strip().split("."))


@dataclass(frozen=True)
class QemuTree:
    """A fetched, complete QEMU source tree."""

    family: str               # major.minor, e.g. "10.2"
    version: str              # contents of VERSION, e.g. "10.2.2"
    path: Path                # the tree's top folder (holds VERSION)
    suites: tuple[str, ...]   # Debian suites whose record points here

    def at_least(self, family: str) -> bool:
        """Return True when this tree's family is `family` or newer (for version-gated expectations)."""
        return version_key(self.family) >= version_key(family)


def fetched_qemu_trees(cache: Path | None = None) -> dict[str, QemuTree]:
    """Return the complete fetched trees keyed by release family, oldest family first.

    The family comes from the tree's own VERSION file, not from the record
    or the suite name.  When two trees share a family the newer one wins.
    """
    cache = qemu_cache_dir() if cache is None else cache
    suites_by_path: dict[Path, list[str]] = {}
    for record in load_fetch_qemu().read_records(cache):
        path = Path(record["path"])
        if (path / "VERSION").is_file():
            suites_by_path.setdefault(path, []).append(str(record.get("suite", "?")))
    by_family: dict[str, QemuTree] = {}
    for path, suites in suites_by_path.items():
        version = (path / "VERSION").read_text(encoding="utf-8").strip()
        tree = QemuTree(release_family(version), version, path, tuple(sorted(suites)))
        current = by_family.get(tree.family)
        if current is None or version_key(tree.version) > version_key(current.version):
            by_family[tree.family] = tree
    return {family: by_family[family] for family in sorted(by_family, key=version_key)}


def ci_requires_qemu() -> bool:
    """Return True under CI=true, where a missing QEMU tree is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


def qemu_missing(reason: str) -> NoReturn:
    """Skip the current test with `reason`, or fail it under CI=true; never returns."""
    if ci_requires_qemu():
        pytest.fail(f"{reason} (CI=true: real-QEMU tests must run)", pytrace=False)
    pytest.skip(reason)


# Read once at collection so `any_qemu_tree` can be parametrised per family.
_FAMILIES_AT_COLLECTION: list[str] = list(fetched_qemu_trees())


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

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
