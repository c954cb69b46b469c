"""The library behind the CLI: index a tree, load its facts. The CLI is a thin layer over this."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chaintrace.errors import ChaintraceError
from chaintrace.facts import FileFacts
from chaintrace.index import IndexSummary, index_tree, indexed_keys
from chaintrace.scan import check_tree, read_options
from chaintrace.store import Store, default_cache_dir


def open_store(cache: Path | None = None, warn: Callable[[str], None] | None = None) -> Store:
    """Return the fact store in `cache` (default `$XDG_CACHE_HOME/chaintrace`)."""
    return Store(cache or default_cache_dir(), warn=warn)


def index(
    tree: Path,
    store: Store,
    jobs: int = 0,
    excludes: list[str] | None = None,
    includes: list[str] | None = None,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
) -> IndexSummary:
    """Index (or refresh) `tree` and return the run's summary."""
    root = check_tree(tree)
    return index_tree(root, store, read_options(root, excludes, includes), jobs=jobs, progress=progress, warn=warn)


def load_facts(store: Store, tree: Path) -> list[FileFacts]:
    """Return the facts of every indexed file of `tree`, sorted by path."""
    keys = indexed_keys(store, check_tree(tree))
    facts = []
    for key, found in store.iter_facts(keys[path] for path in sorted(keys)):
        if found is None:
            raise ChaintraceError(f"the cache lost facts of {tree}: run `chaintrace index {tree}` again")
        facts.append(found)
    return facts


def parse_error_stats(facts: list[FileFacts], worst: int = 20) -> dict:
    """Return ERROR/MISSING region counts: totals, files with any, and the `worst` files."""
    per_file = [(f.path, sum(e.kind == "ERROR" for e in f.errors), sum(e.kind == "MISSING" for e in f.errors)) for f in facts]
    with_errors = [row for row in per_file if row[1] or row[2]]
    with_errors.sort(key=lambda row: (-(row[1] + row[2]), row[0]))
    return {
        "files": len(facts),
        "files_with_errors": len(with_errors),
        "error_regions": sum(row[1] for row in per_file),
        "missing_regions": sum(row[2] for row in per_file),
        "functions": sum(len(f.functions) for f in facts),
        "worst": [{"path": p, "errors": e, "missing": m} for p, e, m in with_errors[:worst]],
    }
