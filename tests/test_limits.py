"""Inputs that grow: each costs time linear in its size, or meets a limit with a one-line message."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from chaintrace.extract.extractor import extract
from helpers.cli import run_cli

DEPTH = 50_000


@pytest.mark.parametrize("name, source", [
    ("nested blocks", "void f(void) {" + "{" * DEPTH + "g();" + "}" * DEPTH + "}\n"),
    ("nested parentheses", "void f(void) { k(" + "(" * DEPTH + "1" + ")" * DEPTH + "); }\n"),
    ("nested ifs", "void f(void) { " + "if (a) " * DEPTH + "g(); }\n"),
    ("one line of calls", "void f(void) {" + "g();" * DEPTH + "}\n"),
])
def test_deep_or_long_input_extracts_in_seconds(name: str, source: str) -> None:
    started = time.process_time()
    facts = extract("a.c", source.encode())
    assert time.process_time() - started < 10, name  # minutes before the query patterns were flattened
    assert facts.path == "a.c"


def test_render_of_deeply_nested_json_is_a_usage_error(tmp_path: Path, capsys) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    assert run_cli(["render", deep, "-o", tmp_path / "x.dot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nested too deeply" in err[0]


@pytest.mark.parametrize("limit", ["1000000000000000s", "0s"])
def test_model_time_limit_out_of_range_is_a_usage_error(limit: str, capsys) -> None:
    code = run_cli(["model", "migration", "--ram", "1GiB", "--dirty-rate", "1MB/s", "--wss", "100MiB",
                    "--bandwidth", "1Gbit/s", "--time-limit", limit])
    assert code == 2 and "--time-limit must be" in capsys.readouterr().err


def test_model_with_no_ram_is_a_usage_error(capsys) -> None:
    code = run_cli(["model", "migration", "--ram", "0", "--dirty-rate", "1MB/s", "--wss", "0", "--bandwidth", "1Gbit/s"])
    assert code == 2 and "--ram must be at least one page" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["index", ".", "-j", "-3"], ["callers", ".", "f", "--depth", "-1"], ["trace", ".", "--from", "a", "--to", "b",
                                                                        "--max-paths", "-1"],
    ["trace", ".", "--from", "a", "--to", "b", "--max-depth", "-2"], ["stats", ".", "--worst", "-1"],
])
def test_negative_counts_are_usage_errors(argv: list[str], capsys) -> None:
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0 or more" in err[0]


def test_more_jobs_than_files_start_no_more_workers(tmp_path: Path, monkeypatch) -> None:
    from chaintrace.store import workers

    asked = []
    real = workers.run

    def spy(function, jobs, count, setup, chunksize=4):
        jobs = list(jobs)
        asked.append(count)
        return real(function, jobs, count, setup, chunksize)

    monkeypatch.setattr(workers, "run", spy)
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(3):
        (tree / f"f{i}.c").write_text(f"int f{i}(void) {{ return {i}; }}\n")
    assert run_cli(["index", tree, "-j", "5000", "--cache", tmp_path / "cache", "--json"]) == 0
    assert asked and max(asked) <= (os.cpu_count() or 1)  # and workers.run starts at most one per job


@pytest.mark.parametrize("depth, code", [(10, 0), (5_000, 1)])
def test_a_function_stored_through_nested_parentheses_resolves_to_a_bound_without_recursion(
        tmp_path: Path, capsys, depth: int, code: int) -> None:
    # value flow types the receiver of `((...(s)...))->cb = f`: a few parentheses are read through (a path),
    # thousands are given up on at a bound (no path, exit 1), never recursed into (RecursionError before)
    (tmp_path / "a.c").write_text(
        "struct S { void (*cb)(void); };\nstatic void f(void) {}\nvoid g(struct S *s)\n{\n"
        f"    {'(' * depth}s{')' * depth}->cb = f;\n    s->cb();\n}}\n")
    assert run_cli(["trace", tmp_path, "--cache", tmp_path / "cache", "--from", "g", "--to", "a.c::f"]) == code
    assert "internal error" not in capsys.readouterr().err
