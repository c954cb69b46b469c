"""Indexing whole trees: reuse, invalidation, interrupted and concurrent runs, bad input, real QEMU."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaintrace import api
from chaintrace.store.indexer import index_tree
from chaintrace.source.scan import OpenTree, ScanOptions
from chaintrace.store.cache import Store

HEADER = b"""\
#define coroutine_fn __attribute__((annotate("coroutine_fn")))
#define FOREACH(v, list) for ((v) = (list); (v); (v) = (v)->next)
"""
USES_ATTRIBUTE = b'#include "defs.h"\nint coroutine_fn a(void) { return b(); }\n'
USES_LOOP = b'#include "defs.h"\nvoid c(struct n *l) { struct n *v; FOREACH(v, l) { d(v); } }\n'
PLAIN = b"int e(void) { return 1; }\n"


def make_tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "defs.h").write_bytes(HEADER)
    (root / "attr.c").write_bytes(USES_ATTRIBUTE)
    (root / "loop.c").write_bytes(USES_LOOP)
    (root / "plain.c").write_bytes(PLAIN)
    return root


def run_index(tree: Path, cache: Path, warnings: list[str] | None = None, jobs: int = 1):
    with Store(cache, warn=(warnings or []).append) as store:
        summary = index_tree(OpenTree(tree, ScanOptions()), store, jobs=jobs, warn=(warnings if warnings is not None else []).append)
        facts = {f.path: f for f in api.load_facts(store, tree)}
    return summary, facts


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaintrace", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def bump(path: Path, content: bytes | None = None) -> None:
    """Rewrite a file (or only its mtime) so that the indexer sees a change."""
    if content is not None:
        path.write_bytes(content)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_first_run_extracts_and_second_reuses(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    summary, facts = run_index(tree, tmp_path / "cache")
    assert (summary.files, summary.extracted, summary.reused) == (4, 4, 0)
    assert [f.name for f in facts["attr.c"].functions] == ["a"]  # coroutine_fn was neutralised
    assert facts["loop.c"].calls[0].context.loops[0].kind == "macro"
    again, _ = run_index(tree, tmp_path / "cache")
    assert (again.extracted, again.reused, again.state) == (0, 4, summary.state)


def test_a_changed_file_is_re_extracted_alone(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    first, _ = run_index(tree, tmp_path / "cache")
    bump(tree / "plain.c", b"int e(void) { return 2; }\nint f(void) { return e(); }\n")
    summary, facts = run_index(tree, tmp_path / "cache")
    assert (summary.extracted, summary.reused) == (1, 3)
    assert [f.name for f in facts["plain.c"].functions] == ["e", "f"]
    assert summary.state != first.state


def test_a_touched_file_with_the_same_content_reuses_its_facts(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    run_index(tree, tmp_path / "cache")
    bump(tree / "plain.c")
    summary, _ = run_index(tree, tmp_path / "cache")
    assert (summary.extracted, summary.reused) == (0, 4)


def test_a_header_edit_that_changes_a_macro_class_invalidates_only_its_users(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    _, before = run_index(tree, tmp_path / "cache")
    # FOREACH stops being a loop macro: only loop.c uses it
    bump(tree / "defs.h", HEADER.replace(b"for ((v) = (list); (v); (v) = (v)->next)", b"visit(v, list)"))
    summary, after = run_index(tree, tmp_path / "cache")
    assert summary.extracted == 2  # defs.h itself (new content) and loop.c (new class of a macro it uses)
    assert after["loop.c"].calls != before["loop.c"].calls
    assert after["attr.c"] == before["attr.c"] and after["plain.c"] == before["plain.c"]


def test_a_new_and_a_removed_file(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    run_index(tree, tmp_path / "cache")
    (tree / "plain.c").unlink()
    (tree / "new.c").write_bytes(b"void n(void) {}\n")
    summary, facts = run_index(tree, tmp_path / "cache")
    assert sorted(facts) == ["attr.c", "defs.h", "loop.c", "new.c"]
    assert summary.extracted == 1


def age(tree: Path, seconds: int = 60) -> None:
    """Move every folder's mtime into the past, as in a tree unpacked long ago (a recent one is not trusted)."""
    for folder in [tree, *(p for p in tree.rglob("*") if p.is_dir())]:
        stat = folder.stat()
        os.utime(folder, ns=(stat.st_atime_ns, stat.st_mtime_ns - seconds * 1_000_000_000))


def remembered_folders(cache: Path, tree: Path) -> dict | None:
    with Store(cache) as store:
        scan = store.tree_scan(str(tree))
    return scan and scan.folders


def test_a_warm_run_checks_remembered_folders_and_still_sees_every_change(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    (tree / "sub" / "deep").mkdir(parents=True)
    (tree / "sub" / "deep" / "x.c").write_bytes(b"void x(void) {}\n")
    cache = tmp_path / "cache"
    run_index(tree, cache)
    assert remembered_folders(cache, tree) is None  # folders changed a moment ago: not trusted yet
    age(tree)
    first, _ = run_index(tree, cache)
    assert sorted(remembered_folders(cache, tree)) == ["", "sub", "sub/deep"]
    again, _ = run_index(tree, cache)  # the fast path: no listing
    assert (again.reused, again.extracted, again.files, again.functions, again.state) == (
        5, 0, 5, first.functions, first.state)
    (tree / "sub" / "deep" / "y.c").write_bytes(b"void y(void) {}\n")  # only sub/deep's mtime changes
    added, facts = run_index(tree, cache)
    assert (added.extracted, "sub/deep/y.c" in facts) == (1, True)
    age(tree)
    run_index(tree, cache)
    bump(tree / "sub" / "deep" / "x.c", b"void x(void) { y(); }\n")  # no folder changes
    edited, facts = run_index(tree, cache)
    assert edited.extracted == 1 and facts["sub/deep/x.c"].calls[0].callee == "y"


def test_a_run_that_skipped_a_file_is_not_remembered(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    (tree / "bad.c").write_bytes(b"\xff\xfe not utf-8\n")
    age(tree)
    cache = tmp_path / "cache"
    run_index(tree, cache)
    assert remembered_folders(cache, tree) is None
    (tree / "bad.c").write_bytes(b"void good(void) {}\n")  # the folder's mtime does not move
    summary, facts = run_index(tree, cache)
    assert [f.name for f in facts["bad.c"].functions] == ["good"] and not summary.skipped


def test_other_scan_options_scan_again(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    age(tree)
    cache = tmp_path / "cache"
    run_index(tree, cache)
    with Store(cache) as store:
        summary = index_tree(OpenTree(tree, ScanOptions(excludes=("plain.c",))), store, jobs=1, warn=[].append)
    assert summary.files == 3


def test_a_damaged_facts_blob_is_repaired_by_the_next_run(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    cache = tmp_path / "cache"
    run_index(tree, cache)
    db = sqlite3.connect(cache / "index.sqlite")
    db.execute("UPDATE facts SET data = x'0001' WHERE key = (SELECT key FROM tree_files WHERE path = 'plain.c')")
    db.commit()
    db.close()
    result = cli("stats", "--cache", str(cache), str(tree))  # drops the damaged entry and re-extracts its file
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "damaged" in result.stderr and "rebuilt" in result.stderr
    summary, facts = run_index(tree, cache)
    assert summary.extracted == 0
    assert [f.name for f in facts["plain.c"].functions] == ["e"]


def test_a_damaged_facts_blob_found_by_a_reader_is_re_extracted_even_on_the_fast_path(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    age(tree)
    cache = tmp_path / "cache"
    run_index(tree, cache)
    assert remembered_folders(cache, tree) is not None  # the next run would skip its scan
    db = sqlite3.connect(cache / "index.sqlite")
    db.execute("UPDATE facts SET data = x'0001' WHERE key = (SELECT key FROM tree_files WHERE path = 'loop.c')")
    db.commit()
    db.close()
    with Store(cache, warn=[].append) as store:
        assert [found for _, found in store.iter_facts(store.tree_keys(str(tree)))].count(None) == 1
    assert remembered_folders(cache, tree) is None  # the reader forgot the scans that relied on the dropped entry
    summary, facts = run_index(tree, cache)
    assert (summary.extracted, summary.reused) == (1, 3)
    assert facts["loop.c"].calls[0].context.loops[0].kind == "macro"


@pytest.mark.parametrize("damage", [b"", b"junk", "flip", "marshal"])
def test_a_damaged_recorded_scan_is_ignored_and_recorded_again(tmp_path: Path, damage) -> None:
    import marshal

    tree = make_tree(tmp_path / "tree")
    age(tree)
    cache = tmp_path / "cache"
    run_index(tree, cache)
    db = sqlite3.connect(cache / "index.sqlite")
    good = db.execute("SELECT data FROM tree_watch").fetchone()[0]
    bad = {"flip": good[:20] + bytes([good[20] ^ 1]) + good[21:],
           "marshal": marshal.dumps(("state", {}, []))}.get(damage, damage)
    db.execute("UPDATE tree_watch SET data = ?", (bad,))
    db.commit()
    db.close()
    assert remembered_folders(cache, tree) is None
    (tree / "new.c").write_bytes(PLAIN.replace(b"e(", b"f("))
    age(tree)
    summary, facts = run_index(tree, cache)
    assert summary.extracted == 1 and "new.c" in facts
    assert remembered_folders(cache, tree) is not None


class _Payload:
    """A pickle that writes a file when loaded: what a hostile user of a shared cache would store."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path(self.marker).write_text, ("code ran",))


def test_a_pickle_payload_in_the_cache_runs_no_code_and_is_re_extracted(tmp_path: Path) -> None:
    import pickle
    import zlib

    tree = make_tree(tmp_path / "tree")
    cache = tmp_path / "cache"
    _, clean = run_index(tree, cache)
    marker = tmp_path / "ran"
    db = sqlite3.connect(cache / "index.sqlite")
    db.execute("UPDATE facts SET data = ?", (zlib.compress(pickle.dumps(_Payload(marker))),))
    db.commit()
    db.close()
    result = cli("stats", "--cache", str(cache), str(tree))
    assert result.returncode == 0 and "Traceback" not in result.stderr and "damaged" in result.stderr
    summary, facts = run_index(tree, cache)
    assert summary.extracted == 0 and facts == clean  # stats re-extracted every file
    assert not marker.exists()


def test_a_corrupt_database_is_moved_aside_with_a_warning(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "index.sqlite").write_bytes(b"garbage" * 1000)
    result = cli("index", "--cache", str(cache), str(tree))
    assert result.returncode == 0, result.stderr
    assert "moved aside" in result.stderr and "Traceback" not in result.stderr
    assert "4 files (4 parsed" in result.stdout
    assert list(cache.glob("index.sqlite.broken-*"))


def big_tree(root: Path, files: int = 160) -> Path:
    """Return a tree that takes a few seconds to index with one worker."""
    root.mkdir(parents=True)
    body = "".join(f"static int f{i}(int x) {{ if (x) return g{i}(x - 1); return h(x, f{i}); }}\n" for i in range(400))
    for number in range(files):
        (root / f"file{number:03d}.c").write_text(f"/* {number} */\n" + body)
    return root


def test_a_run_killed_mid_way_leaves_a_usable_cache(tmp_path: Path) -> None:
    tree = big_tree(tmp_path / "tree")
    cache = tmp_path / "cache"
    process = subprocess.Popen(
        [sys.executable, "-m", "chaintrace", "index", "--cache", str(cache), "-j", "2", str(tree)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:
            db = sqlite3.connect(f"file:{cache / 'index.sqlite'}?mode=ro", uri=True, timeout=1)
            stored = db.execute("SELECT count(*) FROM facts").fetchone()[0]
            db.close()
        except sqlite3.Error:
            continue
        if stored:
            break
    killed = process.poll() is None
    os.killpg(process.pid, signal.SIGKILL)  # the indexer and its workers
    process.wait()
    result = cli("index", "--json", "--cache", str(cache), str(tree))
    assert result.returncode == 0, result.stderr
    import json

    summary = json.loads(result.stdout)
    assert summary["files"] == 160 and not summary["skipped"]
    assert killed, "the run finished before it could be killed: make big_tree bigger"
    assert summary["reused"] >= stored > 0  # what was stored before the kill is used


def test_two_concurrent_runs_on_one_cache(tmp_path: Path) -> None:
    tree = big_tree(tmp_path / "tree", files=60)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "chaintrace", "index", "--json", "--cache", str(cache), "-j", "1", str(tree)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    import json

    states = [json.loads(out)["state"] for out, _ in outputs]
    assert states[0] == states[1]
    with Store(cache) as store:
        facts = api.load_facts(store, tree)
    assert len(facts) == 60 and all(len(f.functions) == 400 for f in facts)


def test_missing_tree_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("index", "--cache", str(tmp_path / "c"), str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such folder" in result.stderr


def test_a_file_instead_of_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "x.c").write_text("int x;\n")
    result = cli("index", "--cache", str(tmp_path / "c"), str(tmp_path / "x.c"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "not a folder" in result.stderr


def test_bad_files_are_skipped_with_one_line_each(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    (tree / "latin1.c").write_bytes(b"/* caf\xe9 */ int l;\n")
    (tree / "binary.c").write_bytes(b"\x7fELF\x00\x00\x01" * 100)
    (tree / "huge.c").write_bytes(b"int x;\n" * (9 * 1024 * 1024 // 7))
    (tree / "dangling.c").symlink_to(tree / "nowhere.c")
    (tree / "loop1.c").symlink_to(tree / "loop2.c")
    (tree / "loop2.c").symlink_to(tree / "loop1.c")
    (tree / "dirloop").symlink_to(tree, target_is_directory=True)
    unreadable = tree / "secret.c"
    unreadable.write_text("int s;\n")
    unreadable.chmod(0)
    result = cli("index", "--json", "--cache", str(tmp_path / "cache"), str(tree))
    unreadable.chmod(0o644)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    import json

    summary = json.loads(result.stdout)
    reasons = {s["path"]: s["reason"] for s in summary["skipped"]}
    assert reasons["latin1.c"].startswith("not UTF-8")
    assert reasons["binary.c"].startswith("binary file")
    assert reasons["huge.c"].startswith("too large")
    assert reasons["dangling.c"].startswith("unreadable")
    assert reasons["loop1.c"].startswith("unreadable") and reasons["loop2.c"].startswith("unreadable")
    if os.geteuid() != 0:  # root reads anything
        assert reasons["secret.c"].startswith("unreadable")
    warned = [line for line in result.stderr.splitlines() if line.startswith("chaintrace: skipped")]
    assert len(warned) == len(reasons)
    assert summary["files"] == 4 + (1 if os.geteuid() == 0 else 0)


# --- real QEMU --------------------------------------------------------------------


@pytest.fixture(scope="module")
def qemu_migration(qemu_tree, tmp_path_factory):
    """Return the facts of QEMU 10.2's migration/ (and include/, for macro classes), indexed for real."""
    tree = qemu_tree("10.2").path
    cache = tmp_path_factory.mktemp("qemu-cache")
    options = ScanOptions(excludes=("*",), includes=("migration/*", "include/*"))
    with Store(cache) as store:
        summary = index_tree(OpenTree(tree, options), store, jobs=2)
        facts = {f.path: f for f in api.load_facts(store, tree)}
    return summary, facts


def test_qemu_migration_update_counters_writes_threshold_size(qemu_migration) -> None:
    _, facts = qemu_migration
    migration = facts["migration/migration.c"]
    function = [f for f in migration.functions if f.name == "migration_update_counters"]
    assert len(function) == 1 and function[0].is_static
    writes = [w for w in migration.writes if w.function == "migration_update_counters" and w.field == "threshold_size"]
    assert writes and function[0].line <= writes[0].line <= function[0].end_line


def test_qemu_migration_connect_passes_migration_thread(qemu_migration) -> None:
    _, facts = qemu_migration
    migration = facts["migration/migration.c"]
    refs = [r for r in migration.refs if r.function == "migration_connect" and r.name == "migration_thread"]
    assert any(r.usage == "argument" and r.call == "qemu_thread_create" and r.arg_index == 2 for r in refs), refs


def test_qemu_migration_io_and_headers_parse_well(qemu_migration) -> None:
    summary, facts = qemu_migration
    assert not summary.skipped
    migration_errors = sum(len(f.errors) for path, f in facts.items() if path.startswith("migration/"))
    assert migration_errors <= 40  # 63 ERROR/MISSING before the declaration/type macro classes, 21 after
