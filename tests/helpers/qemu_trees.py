"""Real QEMU trees fetched by `scripts/fetch-qemu`, keyed by release family (see conftest.py's fixtures)."""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from helpers.ci import missing

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_QEMU_SCRIPT = REPO_ROOT / "scripts" / "fetch-qemu"

# Environment variable that overrides the cache folder fetch-qemu writes to.
QEMU_CACHE_ENV = "CHAINTRACE_QEMU_CACHE"


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


def qemu_missing(reason: str) -> NoReturn:
    """Skip the current test with `reason`, or fail it under CI=true; never returns."""
    missing(reason, "real-QEMU tests must run")
