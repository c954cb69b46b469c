"""`chaintrace diff` on the version fixtures (a rename, a move, a removed edge, a changed formula) and on synthetic snapshots."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from chaintrace.regress.diff import diff_snapshots, is_changed, render_text, summary

from helpers.cli import run_cli

REPO = Path(__file__).resolve().parent.parent
V1 = REPO / "fixtures" / "versions" / "v1"
V2 = REPO / "fixtures" / "versions" / "v2"
QUERY = ["--from", "qmp:migrate", "--to", "assign:threshold_size"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("diff-cache")


def diff_json(capsys, *argv: str) -> dict:
    assert run_cli(["diff", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_diff_reports_each_change_exactly_and_nothing_else(cache, capsys):
    d = diff_json(capsys, str(V1), str(V2), *QUERY, "--cache", str(cache))
    f = d["functions"]
    assert [(r["from"], r["to"], r["from_file"], r["to_file"]) for r in f["renamed"]] == [
        ("migrate_fd_connect", "migration_connect", "migration/migration.c", "migration/migration.c")]
    assert [(m["function"], m["from_file"], m["to_file"]) for m in f["moved"]] == [
        ("migration_rate_limit", "migration/migration.c", "migration/ram.c")]
    assert f["added"] == [] and f["removed"] == []
    assert d["edges"] == {"added": [], "removed": [
        {"src": "migration/migration.c::migration_iteration_run", "dst": "migration_update_counters", "kind": "direct"}]}
    assert d["targets"]["added"] == [] and d["targets"]["removed"] == []
    assert [(t["function"], t["from"], t["to"]) for t in d["targets"]["changed"]] == [(
        "migration_update_counters", "s->threshold_size = bandwidth * s->parameters.downtime_limit;",
        "s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();")]
    # the removed edge takes exactly the one path that used it
    assert d["paths"]["added"] == []
    assert [p["nodes"][-3:] for p in d["paths"]["removed"]] == [
        ["migration/migration.c::migration_thread", "migration/migration.c::migration_iteration_run",
         "migration_update_counters"]]
    assert "migrate_fd_connect" in d["paths"]["removed"][0]["nodes"]  # shown as A spelled it
    assert d["counts"]["paths_total"] == [3, 2] and d["changed"] is True
    assert (d["a"]["version"], d["b"]["version"]) == ("1.0.0", "2.0.0")


def test_diff_backwards_is_the_mirror(cache, capsys):
    d = diff_json(capsys, str(V2), str(V1), *QUERY, "--cache", str(cache))
    assert [(r["from"], r["to"]) for r in d["functions"]["renamed"]] == [("migration_connect", "migrate_fd_connect")]
    assert [(m["from_file"], m["to_file"]) for m in d["functions"]["moved"]] == [("migration/ram.c", "migration/migration.c")]
    assert d["edges"]["removed"] == [] and len(d["edges"]["added"]) == 1 and len(d["paths"]["added"]) == 1


def test_same_tree_has_no_change_and_exit_code(cache, capsys):
    assert run_cli(["diff", str(V1), str(V1), *QUERY, "--cache", str(cache), "--exit-code"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(no change)")
    assert run_cli(["diff", str(V1), str(V2), *QUERY, "--cache", str(cache), "--exit-code"]) == 1


def test_diff_of_snapshot_files_equals_diff_of_trees(cache, capsys, tmp_path):
    for name, tree in (("a.json", V1), ("b.json", V2)):
        assert run_cli(["snapshot", str(tree), *QUERY, "-o", str(tmp_path / name), "--cache", str(cache)]) == 0
    capsys.readouterr()
    from_files = diff_json(capsys, str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    from_trees = diff_json(capsys, str(V1), str(V2), *QUERY, "--cache", str(cache))
    assert from_files == from_trees
    # a snapshot against a tree: the tree is traced with the snapshot's query
    assert diff_json(capsys, str(tmp_path / "a.json"), str(V2), "--cache", str(cache)) == from_trees


def test_text_output(cache, capsys):
    assert run_cli(["diff", str(V1), str(V2), *QUERY, "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "renamed   migrate_fd_connect -> migration_connect" in out
    assert "moved     migration_rate_limit  migration/migration.c -> migration/ram.c" in out
    assert "removed   edge migration/migration.c::migration_iteration_run -> migration_update_counters (direct)" in out
    assert "  - s->threshold_size = bandwidth * s->parameters.downtime_limit;" in out
    assert "  + s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();" in out
    assert "paths     3 -> 2" in out


# -- synthetic snapshots -------------------------------------------------------------------------------------------


def fn(node: str, file: str = "m.c", callees: tuple[str, ...] = (), lines: int = 10, line: int = 1) -> dict:
    return {"id": node, "name": node.rpartition("::")[2], "file": file, "line": line, "end_line": line + lines - 1,
            "lines": lines, "callees": sorted(callees)}


def snap(functions: list[dict], chain: list[str], statement: str = "s->x = 1;") -> dict:
    edges = [{"src": a, "dst": b, "kind": "direct", "sites": []} for a, b in zip(chain, chain[1:])]
    return {"schema": "chaintrace.regress.snapshot/1", "query": {"from": chain[0], "to": "assign:x"}, "tree": "", "version": "",
            "error": "", "functions": functions, "edges": edges,
            "paths": [{"nodes": chain, "kinds": [["direct"]] * (len(chain) - 1)}],
            "targets": [{"function": chain[-1], "file": "m.c", "line": 9, "statement": statement, "reached": True}],
            "counts": {"paths_total": 1, "exact": True, "enumerated": 1}}


def test_static_function_moved_changes_its_id_but_is_one_move():
    a = snap([fn("e"), fn("a.c::helper", "a.c", ("t",)), fn("t")], ["e", "a.c::helper", "t"])
    b = snap([fn("e"), fn("b.c::helper", "b.c", ("t",)), fn("t")], ["e", "b.c::helper", "t"])
    d = diff_snapshots(a, b)
    assert [(m["from_id"], m["to_id"]) for m in d["functions"]["moved"]] == [("a.c::helper", "b.c::helper")]
    assert d["edges"] == {"added": [], "removed": []} and d["paths"] == {"added": [], "removed": []}
    assert summary(d) == "moved helper a.c -> b.c"


def test_two_renames_side_by_side_are_both_found():
    a = snap([fn("e", callees=("one",)), fn("one", callees=("two", "log")), fn("two", callees=("t", "log")), fn("t")],
             ["e", "one", "two", "t"])
    b = snap([fn("e", callees=("uno",)), fn("uno", callees=("dos", "log")), fn("dos", callees=("t", "log")), fn("t")],
             ["e", "uno", "dos", "t"])
    d = diff_snapshots(a, b)
    assert sorted((r["from"], r["to"]) for r in d["functions"]["renamed"]) == [("one", "uno"), ("two", "dos")]
    assert not d["edges"]["added"] and not d["edges"]["removed"] and not d["paths"]["added"]


@pytest.mark.parametrize("callees, lines", [
    (("t", "b1", "b2", "b3"), 10),  # other callees (1 of 7 shared)
    (("t", "a1", "a2", "a3"), 40),  # four times longer
])
def test_a_different_body_is_not_a_rename(callees, lines):
    a = snap([fn("e"), fn("old", callees=("t", "a1", "a2", "a3")), fn("t")], ["e", "old", "t"])
    b = snap([fn("e"), fn("new", callees=callees, lines=lines), fn("t")], ["e", "new", "t"])
    d = diff_snapshots(a, b)
    assert d["functions"]["renamed"] == [] and d["functions"]["removed"] == ["old"] and d["functions"]["added"] == ["new"]
    assert len(d["edges"]["removed"]) == 2 and len(d["edges"]["added"]) == 2


def test_a_rename_needs_a_shared_neighbour():
    a = snap([fn("e"), fn("x"), fn("old", callees=("t",)), fn("t")], ["e", "old", "t"])
    b = snap([fn("f"), fn("new", callees=("t",)), fn("u")], ["f", "new", "u"])
    assert diff_snapshots(a, b)["functions"]["renamed"] == []


def test_static_becoming_external_in_the_same_file_is_a_linkage_change():
    a = snap([fn("e"), fn("m.c::helper", callees=("t",)), fn("t")], ["e", "m.c::helper", "t"])
    b = snap([fn("e"), fn("helper", callees=("t",)), fn("t")], ["e", "helper", "t"])
    d = diff_snapshots(a, b)
    assert d["functions"]["moved"] == [] and [(x["from_id"], x["to_id"]) for x in d["functions"]["linkage"]] == [
        ("m.c::helper", "helper")]
    assert d["edges"] == {"added": [], "removed": []}
    assert "linkage   m.c::helper -> helper" in render_text(d)


def test_lines_are_compared_only_when_asked():
    a = snap([fn("e"), fn("t", line=5)], ["e", "t"])
    b = snap([fn("e"), fn("t", line=8)], ["e", "t"])
    b["targets"][0]["line"] = 12
    assert not is_changed(diff_snapshots(a, b))
    d = diff_snapshots(a, b, lines=True)
    assert d["changed"] and d["functions"]["lines"] == [{"function": "t", "line_a": 5, "line_b": 8}]
    assert d["targets"]["lines"] == [{"function": "t", "statement": "s->x = 1;", "line_a": 9, "line_b": 12}]
    assert "line      t: 5 -> 8" in render_text(d)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_version_fixtures_compile(version, tmp_path, gcc):
    root = REPO / "fixtures" / "versions" / version
    for source in sorted((root / "migration").glob("*.c")):
        subprocess.run(["gcc", "-c", "-Wall", "-Werror", "-I", str(REPO / "fixtures" / "include"),
                        "-I", str(root / "include"), "-o", str(tmp_path / (source.stem + ".o")), str(source)],
                       check=True, capture_output=True)
