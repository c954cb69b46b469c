"""A new extractor version never reuses facts of the old one, even when no file changed."""

from __future__ import annotations

import shutil
from pathlib import Path

from chaintrace import api

from chaintrace.store import indexer as index

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "thread_entry"


def test_a_new_extractor_version_re_extracts_an_unchanged_tree(tmp_path: Path, monkeypatch) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURE, tree)
    with api.open_store(tmp_path / "cache") as store:
        first = api.index(tree, store, jobs=1)
        again = api.index(tree, store, jobs=1)
        monkeypatch.setattr(index, "EXTRACTOR_VERSION", index.EXTRACTOR_VERSION + 1)
        bumped = api.index(tree, store, jobs=1)
    assert first.extracted == first.files > 0
    assert again.extracted == 0
    assert bumped.extracted == bumped.files == first.files
