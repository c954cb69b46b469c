"""Inputs that grow: each costs time linear in its size, or meets a limit with a one-line message."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from chaintrace.extract.extractor import extract
from chaintrace.source import parse
from helpers.cli import run_cli
from helpers.fixture_trees import FIXTURES

DEPTH = 50_000  # past the limit the indexer reads (parse.MAX_DEPTH), short of tree-sitter's own (65,535)
UNDER = parse.MAX_DEPTH - 400  # deep, with something to extract at every level


@pytest.mark.parametrize("name, source", [
    ("nested blocks", "void f(void) {" + "{" * DEPTH + "g();" + "}" * DEPTH + "}\n"),
    ("nested parentheses", "void f(void) { k(" + "(" * DEPTH + "1" + ")" * DEPTH + "); }\n"),
    ("nested ifs", "void f(void) { " + "if (a) " * DEPTH + "g(); }\n"),
    ("100,000 nested initializers", "void (*t[])(void) = " + "{ " * 100_000 + "f" + " }" * 100_000 + ";\n"),
    ("a member chain", "void f(struct A *x) { x" + "->a" * DEPTH + "->fn(); }\n"),
])
def test_input_nested_past_the_limit_is_refused_in_seconds_saying_so(name: str, source: str) -> None:
    started = time.process_time()
    with pytest.raises(ValueError, match=f"nested more than {parse.MAX_DEPTH:,} levels deep"):
        extract("a.c", source.encode())
    assert time.process_time() - started < 10, name  # tree-sitter's queries lose nodes and slow down past 65,535


@pytest.mark.parametrize("name, source, calls, refs", [
    ("one line of calls", "void f(void) {" + "g();" * DEPTH + "}\n", DEPTH, 0),
    ("a call in every nested block", "void f(void) " + "{ g(); " * UNDER + "}" * UNDER + "\n", UNDER, 0),
    ("calls nested as arguments", "void f(void) { " + "k(" * (UNDER // 2) + "1" + ")" * (UNDER // 2) + "; }\n",
     UNDER // 2, 0),
    ("a function in every nested initializer", "void (*t[])(void) = " + "{ g, " * UNDER + "g" + " }" * UNDER + ";\n",
     0, UNDER + 1),
    ("a write in every nested block", "void f(struct A *p) " + "{ p->fn = g; " * UNDER + "}" * UNDER + "\n", 0, UNDER),
])
def test_deep_or_long_input_extracts_everything_in_seconds(name: str, source: str, calls: int, refs: int) -> None:
    # each level asked tree-sitter for parents (a walk from the root each): 6,000 nested blocks with a call
    # took 6 s, 3,000 nested calls minutes; nothing below the limit may be lost
    started = time.process_time()
    facts = extract("a.c", source.encode())
    assert time.process_time() - started < 10, name
    assert (len(facts.calls), len(facts.refs)) == (calls, refs)


def test_parents_from_one_walk_give_the_facts_tree_sitter_gives(monkeypatch) -> None:
    # a deep tree reads parents from parse.deep_parents; every other file from tree-sitter: the same facts
    sources = [(path, path.read_bytes()) for path in sorted(FIXTURES.rglob("*.c"))]
    assert len(sources) > 20
    shallow = [extract(str(path), data) for path, data in sources]
    monkeypatch.setattr(parse, "DEEP", -1)
    mapped = [extract(str(path), data) for path, data in sources]
    assert mapped == shallow


def test_a_file_nested_too_deep_is_skipped_saying_so_and_the_rest_traced(tmp_path: Path, capsys) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "deep.c").write_text("void d(void) " + "{ " * 100_000 + "g(); " + "} " * 100_000 + "\n")
    (tree / "ok.c").write_text("void g(void) { }\nvoid f(void) { g(); }\n")
    cache = tmp_path / "cache"
    started = time.monotonic()
    assert run_cli(["index", tree, "--cache", cache, "--json"]) == 0
    captured = capsys.readouterr()
    skipped = json.loads(captured.out)["skipped"]
    assert skipped == [{"path": "deep.c", "reason": f"nested more than {parse.MAX_DEPTH:,} levels deep "
                                                   "(brackets, else-if or operator chains)"}]
    assert "skipped deep.c: nested more than" in captured.err
    assert run_cli(["trace", tree, "--cache", cache, "--from", "f", "--to", "g"]) == 0
    assert run_cli(["trace", tree, "--cache", cache, "--from", "d", "--to", "g"]) == 2  # d was never read
    assert "unknown" in capsys.readouterr().err
    assert time.monotonic() - started < 10


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
