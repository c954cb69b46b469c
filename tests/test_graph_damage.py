"""Row-level damage to a stored call graph: detected by its checksums, the state dropped and resolved again.

mini_qemu is indexed into a temporary cache and its headline traced; then
single rows the trace reads are changed, deleted or doubled — the damage
that used to give a trace whose edges lack hops, a false "no site matches",
`unknown function` or a JSONDecodeError. Each damaged cache must give the
clean answer through the command line, with one warning line saying the
graph was damaged and resolved again, and keep giving it.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.cli import QUERY, run_captured
from helpers.fixture_trees import FIXTURES, complete_tree

WARNING = "the stored call graph is damaged"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tree, a clean cache of it and the clean answers of trace --json and export."""
    base = tmp_path_factory.mktemp("graph-damage")
    tree = complete_tree(FIXTURES / "mini_qemu", base / "mini_qemu")
    cache = base / "clean"
    trace = run_captured(["trace", tree, *QUERY, "--json", "--cache", cache, "-j", "1"])
    assert trace.code == 0, trace.err
    export = run_captured(["export", tree, "-o", base / "clean.jsonl", "--cache", cache])
    assert export.code == 0, export.err
    return {"tree": tree, "cache": cache, "trace": trace.out, "export": (base / "clean.jsonl").read_text(), "base": base}


def _path_edge(db: sqlite3.Connection) -> tuple[str, str]:
    """Return (src, dst) of the headline's hop whose src has exactly one edge (its group: one row)."""
    return db.execute("SELECT src, dst FROM g_edges WHERE src LIKE '%migrate_prepare' AND dst = 'migrate_init'").fetchone()


def _one_edge_and_its_sum(db: sqlite3.Connection) -> None:
    src, dst = _path_edge(db)
    db.execute("DELETE FROM g_edges WHERE src = ? AND dst = ?", (src, dst))
    db.execute("DELETE FROM g_sums WHERE part = 'src' AND key = ?", (src,))


DAMAGE: dict[str, Callable[[sqlite3.Connection], None]] = {
    "edge row deleted": lambda db: db.execute("DELETE FROM g_edges WHERE src = 'qmp_migrate'"),
    "edge data changed": lambda db: db.execute("UPDATE g_edges SET data = replace(data, '\"line\": ', '\"line\": 1') "
                                               "WHERE src = 'qmp_migrate'"),
    "edge data not JSON": lambda db: db.execute("UPDATE g_edges SET data = substr(data, 2) WHERE src = 'qmp_migrate'"),
    "edge key changed": lambda db: db.execute("UPDATE g_edges SET src = 'qmp_migratf' WHERE src = 'qmp_migrate'"),
    "edge row doubled": lambda db: db.execute("INSERT INTO g_edges SELECT * FROM g_edges WHERE src = 'qmp_migrate'"),
    "edge and its sum deleted": _one_edge_and_its_sum,
    "write field changed": lambda db: db.execute(
        "UPDATE g_writes SET field = 'threshold_sizf' WHERE rowid = (SELECT min(rowid) FROM g_writes "
        "WHERE field = 'threshold_size')"),
    "write data changed": lambda db: db.execute("UPDATE g_writes SET data = replace(data, '=', '+=') "
                                                "WHERE field = 'threshold_size'"),
    "node name changed": lambda db: db.execute("UPDATE g_nodes SET name = 'migrate_inix' WHERE id = 'migrate_init'"),
    "node line changed": lambda db: db.execute("UPDATE g_nodes SET line = line + 1 WHERE id = 'qmp_migrate'"),
    "node row deleted": lambda db: db.execute("DELETE FROM g_nodes WHERE id = 'migrate_init'"),
    "sum deleted": lambda db: db.execute("DELETE FROM g_sums WHERE part = 'src' AND key = 'qmp_migrate'"),
    "sum changed": lambda db: db.execute("UPDATE g_sums SET digest = zeroblob(16) WHERE part = 'write'"),
    "row moved to another state": lambda db: db.execute(
        "UPDATE g_edges SET state = state || 'x' WHERE src = 'qmp_migrate'"),
}


def _damaged_copy(clean: dict, name: str, damage: Callable[[sqlite3.Connection], None]) -> Path:
    cache = clean["base"] / name.replace(" ", "-")
    shutil.rmtree(cache, ignore_errors=True)
    shutil.copytree(clean["cache"], cache)
    db = sqlite3.connect(cache / "index.sqlite", isolation_level=None)
    damage(db)
    assert db.total_changes, f"{name}: the damage changed nothing"
    db.close()
    return cache


@pytest.mark.parametrize("name", DAMAGE)
def test_a_damaged_graph_row_is_detected_and_the_graph_resolved_again(clean: dict, name: str) -> None:
    cache = _damaged_copy(clean, name, DAMAGE[name])
    run = run_captured(["trace", clean["tree"], *QUERY, "--json", "--cache", cache, "-j", "1"])
    assert run.code == 0 and run.out == clean["trace"], run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and WARNING in lines[0] and "resolving it again" in lines[0], lines
    again = run_captured(["trace", clean["tree"], *QUERY, "--json", "--cache", cache, "-j", "1"])
    assert again.code == 0 and again.out == clean["trace"] and not again.err  # resolved and stored again: clean


@pytest.mark.parametrize("name", ["node row deleted", "edge data changed", "sum deleted"])
def test_export_of_a_damaged_graph_writes_the_clean_graph(clean: dict, name: str) -> None:
    cache = _damaged_copy(clean, f"export {name}", DAMAGE[name])
    out = clean["base"] / f"{name.replace(' ', '-')}.jsonl"
    run = run_captured(["export", clean["tree"], "-o", out, "--cache", cache])
    assert run.code == 0 and out.read_text() == clean["export"], run.err
    assert WARNING in run.err and "Traceback" not in run.err


def test_a_state_saved_without_sums_is_resolved_again_without_a_warning(clean: dict) -> None:
    cache = _damaged_copy(clean, "no sums", lambda db: db.execute("DELETE FROM g_sums"))
    run = run_captured(["trace", clean["tree"], *QUERY, "--json", "--cache", cache, "-j", "1"])
    assert run.code == 0 and run.out == clean["trace"] and not run.err  # an older chaintrace's state: not damage


def test_a_damaged_alias_is_resolved_again_not_read_with_wrong_lines(clean: dict) -> None:
    tree = clean["base"] / "edited"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(clean["tree"], tree)
    cache = _damaged_copy(clean, "alias", lambda db: db.execute("UPDATE g_states SET state = state"))
    assert run_captured(["trace", tree, *QUERY, "--json", "--cache", cache]).code == 0
    source = tree / "migration" / "migration.c"
    source.write_text("/* a comment moves every line down */\n" + source.read_text())
    fresh = run_captured(["trace", tree, *QUERY, "--json", "--cache", clean["base"] / "fresh-alias"])
    db = sqlite3.connect(cache / "index.sqlite", isolation_level=None)
    run_captured(["index", tree, "--cache", cache])  # the edit only moved lines: the new state is an alias
    assert db.execute("SELECT count(*) FROM g_alias").fetchone()[0] == 1
    db.execute("UPDATE g_alias SET shifts = replace(shifts, '1', '2')")
    db.close()
    run = run_captured(["trace", tree, *QUERY, "--json", "--cache", cache])
    assert run.code == 0 and run.out == fresh.out, run.err


def test_saved_sums_are_those_of_the_rows_read_back(clean: dict) -> None:
    """Saving takes each group's digest from the rows as they go in: every group of every table, read back from
    SQLite as a lookup reads it, must match its stored digest, and no digest may be left without rows."""
    from chaintrace.store import graph_sums

    db = sqlite3.connect(clean["cache"] / "index.sqlite")
    try:
        states = [row[0] for row in db.execute("SELECT state FROM g_states")]
        assert states
        for state in states:
            stored = {(part, key): digest for part, key, digest in
                      db.execute("SELECT part, key, digest FROM g_sums WHERE state = ?", (state,))}
            assert stored.pop(("format", graph_sums.FORMAT)) == graph_sums.group_digest(state, "format",
                                                                                       graph_sums.FORMAT, ())
            found = {}
            for table, (names, groups) in graph_sums.TABLES.items():
                rows = db.execute(f"SELECT {names} FROM {table} WHERE state = ?", (state,)).fetchall()
                for part, column in groups:
                    for key, group in graph_sums.grouped(rows, column).items():
                        found[part, key] = graph_sums.group_digest(state, part, key, group)
            assert {"id", "src", "dst", "write"} <= {part for part, _ in found}  # the fixture fills the big tables
            assert found == stored
    finally:
        db.close()
