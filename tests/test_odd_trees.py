"""Trees that try to hang, flood or escape the indexer: FIFOs, devices, links leaving the tree.

Every case runs the real command line in a subprocess with a timeout, so a
read that blocks fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaintrace.source.scan import MAX_FILE_BYTES, read_tree_file, scan

GOOD = b"int helper(void) { return 1; }\nint main(void) { return helper(); }\n"


def index_json(tree: Path, cache: Path) -> tuple[int, dict, str]:
    result = subprocess.run([sys.executable, "-m", "chaintrace", "index", str(tree), "--cache", str(cache), "--json",
                             "-j", "1"], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout or "{}"), result.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "main.c").write_bytes(GOOD)
    return root


def skipped(summary: dict) -> dict[str, str]:
    return {item["path"]: item["reason"] for item in summary["skipped"]}


def test_a_fifo_named_like_a_source_file_is_skipped_not_read(tree: Path, tmp_path: Path) -> None:
    os.mkfifo(tree / "x.c")
    os.mkfifo(tree / "VERSION")
    code, summary, _ = index_json(tree, tmp_path / "cache")
    assert code == 0 and summary["files"] == 1
    assert skipped(summary) == {"x.c": "not a regular file (a FIFO)"}


def test_a_link_to_a_device_is_skipped(tree: Path, tmp_path: Path) -> None:
    (tree / "zero.c").symlink_to("/dev/zero")
    code, summary, stderr = index_json(tree, tmp_path / "cache")
    assert code == 0 and summary["files"] == 1
    assert skipped(summary)["zero.c"].startswith("links outside the tree")
    assert "skipped zero.c" in stderr


def test_a_link_leaving_the_tree_is_skipped_and_named_and_one_inside_is_indexed(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.c"
    outside.write_bytes(b"int secret(void) { return 42; }\n")
    (tree / "leak.c").symlink_to(outside)
    (tree / "sub").mkdir()
    (tree / "sub" / "up.c").symlink_to("../../secret.c")
    (tree / "same.c").symlink_to("main.c")  # inside the tree: indexed under its own path
    code, summary, _ = index_json(tree, tmp_path / "cache")
    assert code == 0 and summary["files"] == 2
    assert set(skipped(summary)) == {"leak.c", "sub/up.c"}
    assert str(outside) in skipped(summary)["leak.c"]


def test_a_link_inside_the_tree_to_a_fifo_is_skipped(tree: Path, tmp_path: Path) -> None:
    os.mkfifo(tree / "pipe")
    (tree / "pipe.c").symlink_to("pipe")
    code, summary, _ = index_json(tree, tmp_path / "cache")
    assert code == 0 and skipped(summary) == {"pipe.c": "not a regular file (a FIFO)"}


def test_the_reader_checks_the_opened_file_not_the_scan(tree: Path, tmp_path: Path) -> None:
    os.mkfifo(tree / "later.c")  # a file that became a FIFO after the scan: the open does not block
    with pytest.raises(ValueError, match="FIFO"):
        read_tree_file(tree, "later.c")
    (tree / "big.c").write_bytes(b"x" * 2000)
    with pytest.raises(ValueError, match="too large"):
        read_tree_file(tree, "big.c", limit=1000)
    assert read_tree_file(tree, "big.c", limit=2000) == b"x" * 2000
    with pytest.raises(ValueError, match="outside the tree"):
        read_tree_file(tree, "../x.c")
    with pytest.raises(ValueError, match="unreadable"):
        read_tree_file(tree, "missing.c")


def test_a_file_over_the_limit_is_skipped_by_the_scan(tree: Path) -> None:
    with open(tree / "huge.c", "wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    files, left_out = scan(tree)
    assert [f.path for f in files] == ["main.c"] and left_out[0].reason.startswith("too large")


def test_a_socket_named_like_a_source_file_is_skipped(tree: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tree / "sock.c"))
        code, summary, _ = index_json(tree, tmp_path / "cache")
    assert code == 0 and skipped(summary) == {"sock.c": "not a regular file (a socket)"}


def _linked_tree(tree: Path, tmp_path: Path) -> None:
    """main.c calls ext() of a file linked from outside, which calls lib_f() of a folder linked from outside."""
    outside = tmp_path / "outside"
    (outside / "lib").mkdir(parents=True)
    (outside / "lib" / "l.c").write_text("void lib_f(void) { }\n")
    (outside / "lib" / "again").symlink_to(outside / "lib")  # a loop, once followed
    (outside / "e.c").write_text("void lib_f(void);\nvoid ext(void) { lib_f(); }\n")
    (tree / "main.c").write_text("void ext(void);\nint main(void) { ext(); return 0; }\n")
    (tree / "e.c").symlink_to(outside / "e.c")
    (tree / "lib").symlink_to(outside / "lib")
    (tree / "up").symlink_to("..")  # holds the tree: never walked
    (tree / "zero.c").symlink_to("/dev/zero")


def test_links_leaving_the_tree_are_skipped_and_named_files_and_folders(tree: Path, tmp_path: Path) -> None:
    _linked_tree(tree, tmp_path)
    code, summary, stderr = index_json(tree, tmp_path / "cache")
    assert code == 0 and summary["files"] == 1
    assert set(skipped(summary)) == {"e.c", "lib", "up", "zero.c"}
    assert skipped(summary)["lib"] == f"links outside the tree (to {tmp_path / 'outside' / 'lib'}; --follow-symlinks walks it)"
    assert f"skipped e.c: links outside the tree (to {tmp_path / 'outside' / 'e.c'}; --follow-symlinks indexes it)" in stderr


def test_follow_symlinks_indexes_and_traces_through_what_links_lead_to(tree: Path, tmp_path: Path) -> None:
    _linked_tree(tree, tmp_path)
    cache = tmp_path / "cache"
    result = subprocess.run([sys.executable, "-m", "chaintrace", "index", str(tree), "--cache", str(cache), "--json",
                             "-j", "1", "--follow-symlinks"], capture_output=True, text=True, timeout=60)
    summary = json.loads(result.stdout)
    assert result.returncode == 0 and summary["files"] == 3  # main.c, e.c, lib/l.c: the loop and `up` walked not
    assert skipped(summary) == {"zero.c": "not a regular file (a character device)"}  # followed, still not read
    trace = subprocess.run([sys.executable, "-m", "chaintrace", "trace", str(tree), "--from", "main", "--to",
                            "e.c:2", "--cache", str(cache), "--follow-symlinks"], capture_output=True, text=True, timeout=60)
    assert trace.returncode == 0 and "◆ void ext(void) { lib_f(); }  e.c:2" in trace.stdout, trace.stderr  # read via the link
    plain = subprocess.run([sys.executable, "-m", "chaintrace", "trace", str(tree), "--from", "main", "--to",
                            "call:lib_f", "--cache", str(cache)], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr  # without the option, lib_f is not in the tree
