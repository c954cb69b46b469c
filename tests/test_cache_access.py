"""Who may read the cache, and what a cache chaintrace cannot write does: answer what it holds, say it, move nothing.

The read-only cases run the real command line in a subprocess as a user the
cache does not belong to (as root, `nobody`: root writes anywhere), so SQLite
and the file system refuse the writes for real.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.cli import run_captured

SOURCE = "void b(void) { }\nvoid a(void) { b(); }\n"
NOBODY = 65534


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_cache_folder_is_private_and_so_is_its_database(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.c").write_text(SOURCE)
    cache = tmp_path / "new" / "cache"
    run = run_captured(["trace", tree, "--from", "a", "--to", "b", "--cache", cache])
    assert run.code == 0, run.err
    assert _mode(cache) == 0o700
    assert all(_mode(path) & 0o077 == 0 for path in cache.iterdir()), {p.name: oct(_mode(p)) for p in cache.iterdir()}


def test_a_dangling_link_as_cache_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "cache").symlink_to(tmp_path / "gone")
    run = run_captured(["index", tmp_path / "tree", "--cache", tmp_path / "cache"])
    assert run.code == 2 and run.err.strip().splitlines() == [
        f"chaintrace: error: the cache folder {tmp_path / 'cache'} is a symbolic link to {tmp_path / 'gone'}, which "
        "does not exist: create it, or give another --cache"]
    assert not (tmp_path / "gone").exists()


def test_a_file_as_cache_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "cache").write_text("not a folder")
    run = run_captured(["index", tmp_path / "tree", "--cache", tmp_path / "cache"])
    assert run.code == 2 and run.err.strip().splitlines() == [
        f"chaintrace: error: the cache folder {tmp_path / 'cache'} is not a folder: give a folder with --cache"]


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    """A folder another user can read (pytest's own are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="chaintrace-ro-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def _as_reader(argv: list[object]) -> subprocess.CompletedProcess:
    """Run `chaintrace ARGV` as a user that may read the cache but not write it."""
    command = [sys.executable, "-m", "chaintrace", *map(str, argv)]
    if os.geteuid() == 0:  # util-linux's setpriv: the interpreter may sit in a folder only root may enter
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot run as a user the cache does not belong to")
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    env = {**os.environ, "HOME": "/nonexistent"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd="/")


def _freeze(cache: Path) -> dict[str, bytes]:
    """Make the cache read-only for everyone (root excepted) and return its files' bytes."""
    for path in [*cache.iterdir(), cache]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return {path.name: path.read_bytes() for path in cache.iterdir()}


@pytest.fixture
def indexed(shared: Path) -> tuple[Path, Path]:
    """A tree and a healthy cache holding its index and graph, then made read-only."""
    tree = shared / "tree"
    tree.mkdir()
    (tree / "a.c").write_text(SOURCE)
    cache = shared / "cache"
    assert run_captured(["trace", tree, "--from", "a", "--to", "b", "--cache", cache]).code == 0
    for path in [shared, tree, tree / "a.c"]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    probe = _as_reader(["--version"])
    if probe.returncode != 0:
        pytest.skip(f"chaintrace cannot run as another user here: {probe.stderr.strip()[-200:]}")
    return tree, cache


def test_a_read_only_cache_answers_what_it_holds_and_says_it_cannot_update(indexed: tuple[Path, Path]) -> None:
    tree, cache = indexed
    before = _freeze(cache)
    run = _as_reader(["trace", tree, "--from", "a", "--to", "b", "--cache", cache])
    assert run.returncode == 0 and "└─ b" in run.stdout, run.stderr
    assert run.stderr.splitlines() == [f"chaintrace: the cache {cache} is read-only: answering from what it holds; "
                                       "it cannot be updated"]
    assert {path.name: path.read_bytes() for path in cache.iterdir()} == before  # nothing moved aside, nothing written


def test_a_read_only_cache_says_when_the_tree_changed_and_what_it_does_not_hold(indexed: tuple[Path, Path]) -> None:
    tree, cache = indexed
    _freeze(cache)
    (tree / "c.c").write_text("void a(void);\nvoid c(void) { a(); }\n")
    (tree / "c.c").chmod(0o644)
    run = _as_reader(["callers", tree, "b", "--cache", cache])
    assert run.returncode == 0 and "a" in run.stdout, run.stderr
    assert run.stderr.splitlines() == [f"chaintrace: the cache {cache} is read-only: answering from what it holds, "
                                       f"an index of {tree} older than its files; it cannot be updated"]
    run = _as_reader(["trace", tree, "--from", "a", "--to", "b", "--sound", "--cache", cache])
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1] == (f"chaintrace: error: the cache {cache} is read-only and holds no call graph "
                                           f"of {tree} for --program system --sound: give a writable folder with --cache")
    other = tree.parent / "other"
    other.mkdir(mode=0o755)
    run = _as_reader(["index", other, "--cache", cache])
    assert run.returncode == 1 and run.stderr.splitlines() == [
        f"chaintrace: error: the cache {cache} is read-only and holds no index of {other} by this chaintrace: "
        "give a writable folder with --cache"]
