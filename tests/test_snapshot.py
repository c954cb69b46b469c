"""Snapshots: canonical, stable JSON of a chain; `check --snapshot` and `--update` on the version fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chaintrace.regress.snapshot import SCHEMA, dumps, read_snapshot

from helpers.cli import run_cli

REPO = Path(__file__).resolve().parent.parent
V1 = REPO / "fixtures" / "versions" / "v1"
V2 = REPO / "fixtures" / "versions" / "v2"
QUERY = ["--from", "qmp:migrate", "--to", "assign:threshold_size"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("snapshot-cache")


@pytest.fixture()
def v1_snapshot(cache: Path, tmp_path: Path) -> Path:
    path = tmp_path / "v1.json"
    assert run_cli(["snapshot", str(V1), *QUERY, "-o", str(path), "--cache", str(cache)]) == 0
    return path


def test_snapshot_content_is_canonical(v1_snapshot):
    text = v1_snapshot.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["schema"] == SCHEMA and data["version"] == "1.0.0" and data["tree"] == "v1"
    assert data["query"] == {"from": "qmp:migrate", "to": "assign:threshold_size", "max_paths": 50, "max_depth": None,
                             "via": [], "avoid": [], "edges": [], "sites": "", "undecided": False}
    assert [f["id"] for f in data["functions"]] == sorted(f["id"] for f in data["functions"])
    assert {"migrate_fd_connect", "migration/migration.c::migration_thread"} <= {f["id"] for f in data["functions"]}
    assert ("migrate_fd_connect", "migration/migration.c::migration_thread", "thread") in {
        (e["src"], e["dst"], e["kind"]) for e in data["edges"]}
    assert [len(p["nodes"]) for p in data["paths"]] == [8, 8, 9]
    assert data["counts"]["paths_total"] == 3
    [target] = data["targets"]
    assert target["statement"] == "s->threshold_size = bandwidth * s->parameters.downtime_limit;" and target["line"] == 35
    assert text == dumps(data)  # sorted keys, fixed indent: the file is its own canonical form


def test_snapshot_round_trips_and_is_stable(v1_snapshot, cache, tmp_path):
    again = tmp_path / "again.json"
    assert run_cli(["snapshot", str(V1), *QUERY, "-o", str(again), "--cache", str(cache)]) == 0
    assert again.read_bytes() == v1_snapshot.read_bytes()
    data = read_snapshot(v1_snapshot)
    assert dumps(read_snapshot(again)) == dumps(data)


def test_check_snapshot_passes_on_same_tree_and_names_the_change_on_the_other(v1_snapshot, cache, capsys):
    assert run_cli(["check", "--snapshot", str(v1_snapshot), "--tree", str(V1), "--cache", str(cache)]) == 0
    capsys.readouterr()
    assert run_cli(["check", "--snapshot", str(v1_snapshot), "--tree", str(V1), "--tree", str(V2),
                    "--cache", str(cache)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == ["snapshot", "v1.json", "pass", "FAIL"]
    message = next(line for line in out.splitlines() if line.startswith("  snapshot:"))
    assert "chain changed since 1.0.0" in message
    assert "renamed migrate_fd_connect -> migration_connect" in message
    assert "moved migration_rate_limit migration/migration.c -> migration/ram.c" in message
    assert "edge removed migration/migration.c::migration_iteration_run -> migration_update_counters (direct)" in message
    assert "statement changed in migration_update_counters" in message
    assert "path count 3 -> 2" in message


def test_update_accepts_the_new_chain(v1_snapshot, cache, capsys):
    assert run_cli(["check", "--snapshot", str(v1_snapshot), "--tree", str(V2), "--update", "--cache", str(cache)]) == 0
    assert "updated" in capsys.readouterr().out
    assert read_snapshot(v1_snapshot)["version"] == "2.0.0"
    assert run_cli(["check", "--snapshot", str(v1_snapshot), "--tree", str(V2), "--cache", str(cache)]) == 0
    assert run_cli(["check", "--snapshot", str(v1_snapshot), "--tree", str(V1), "--cache", str(cache)]) == 1
    # --update wants one tree
    assert run_cli(["check", "--snapshot", str(v1_snapshot), "--tree", str(V1), "--tree", str(V2), "--update"]) == 2


def test_update_creates_a_missing_snapshot_from_one_spec(cache, tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('from = "qmp:migrate"\nto = "assign:threshold_size"\n', encoding="utf-8")
    path = tmp_path / "new.json"
    assert run_cli(["check", str(spec), "--snapshot", str(path), "--tree", str(V1), "--update",
                    "--cache", str(cache)]) == 0
    assert read_snapshot(path)["counts"]["paths_total"] == 3


def test_line_numbers_are_data_not_compared_by_default(v1_snapshot, cache, tmp_path, capsys):
    shifted = tmp_path / "v1-shifted"
    shutil.copytree(V1, shifted)
    source = shifted / "migration" / "migration.c"
    source.write_text("/* one more line */\n" + source.read_text(encoding="utf-8"), encoding="utf-8")
    assert run_cli(["check", "--snapshot", str(v1_snapshot), "--tree", str(shifted), "--cache", str(cache)]) == 0
    capsys.readouterr()
    assert run_cli(["check", "--snapshot", str(v1_snapshot), "--tree", str(shifted), "--lines",
                    "--cache", str(cache)]) == 1
    assert "line change(s)" in capsys.readouterr().out


def test_snapshot_of_an_unknown_entry_records_the_error(cache, tmp_path, capsys):
    path = tmp_path / "bad.json"
    assert run_cli(["snapshot", str(V1), "--from", "qmp:nothing", "--to", "assign:threshold_size", "-o", str(path),
                    "--cache", str(cache)]) == 1
    assert "unknown QMP command 'nothing'" in read_snapshot(path)["error"]
    assert run_cli(["snapshot", str(V1), "--to", "assign:threshold_size", "-o", str(path)]) == 2
