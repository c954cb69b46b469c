"""`chaintrace trace` on the command line: output, JSON, and exit codes scripts can rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaintrace.cli.app import main

MINI = Path(__file__).resolve().parent.parent / "fixtures" / "mini_qemu"
HEADLINE = ["--from", "qmp:migrate", "--to", "assign:threshold_size"]


def trace(capsys, cache: Path, *args: str) -> tuple[int, str, str]:
    code = main(["trace", str(MINI), "--cache", str(cache), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_a_trace_with_paths_exits_0_and_lists_them(capsys, cache):
    code, out, _ = trace(capsys, cache, *HEADLINE)
    assert code == 0 and "migration_thread" in out and "migration_update_counters" in out


def test_paths_that_exist_but_are_not_listed_still_exit_0(capsys, cache):
    code, out, _ = trace(capsys, cache, *HEADLINE, "--max-paths", "0", "--json")
    document = json.loads(out)
    assert code == 0 and all(not target["paths"] for target in document["targets"])
    assert all(target["counts"]["paths_total"] > 0 for target in document["targets"])


def test_no_path_exits_1(capsys, cache):
    code, out, _ = trace(capsys, cache, *HEADLINE, "--edges", "ops")  # qmp_migrate's own calls are direct
    assert code == 1 and out.count("0 paths") == 2 and "no path from qmp_migrate" in out


def test_an_unknown_function_is_a_usage_error_in_one_line(capsys, cache):
    code, out, err = trace(capsys, cache, "--from", "no_such_function", "--to", "assign:threshold_size")
    assert code == 2 and out == "" and err.count("\n") == 1 and "no_such_function" in err and "Traceback" not in err


def test_a_missing_tree_exits_2(capsys, tmp_path):
    code = main(["trace", str(tmp_path / "nowhere"), "--cache", str(tmp_path / "c"), *HEADLINE])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("chaintrace: error: no such folder")


@pytest.mark.parametrize("argv, says", [
    (["trace", str(MINI), *HEADLINE, "--edges", "direct,bogus"], "unknown edge kind 'bogus'"),
    (["trace", str(MINI), *HEADLINE, "--max-paths", "-1"], "max_paths must be a whole number, 0 or more"),
    (["callers", str(MINI), "migration_thread", "--edges", "bogus"], "unknown edge kind 'bogus'"),
    (["snapshot", str(MINI), *HEADLINE, "--sites", "(", "-o", "x.json"], "sites is not a regular expression"),
    (["doc", str(MINI), *HEADLINE, "--max-depth", "-2", "-o", "x"], "max_depth must be a whole number, 0 or more"),
])
def test_every_command_checks_trace_options_alike_before_indexing(capsys, tmp_path, argv, says):
    code = main([*argv, "--cache", str(tmp_path / "cache")])
    _, err = capsys.readouterr()
    assert code == 2 and says in err and err.count("\n") == 1
    assert not (tmp_path / "cache").exists()


def test_trace_honours_exclude(capsys, tmp_path):
    code = main(["trace", str(MINI), "--cache", str(tmp_path / "cache"), *HEADLINE, "--exclude", "migration/migration.c"])
    _, err = capsys.readouterr()
    assert code == 2 and "no site" in err
