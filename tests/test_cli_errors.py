"""Every command, given bad input, exits 0, 1 or 2 with one line on stderr and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import MINI_QEMU, QUERY, run_cli


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("odd")
    files = {
        "binary_spec": (b"\xff\xfe name = 1", "bad.toml"),
        "typed_spec": (b'name = "x"\nfrom = 5\nto = "b"\n', "typed.toml"),
        "table_spec": (b'name = "x"\nfrom = "a"\nto = "b"\noptions = "fast"\n', "table.toml"),
        "deep_json": (b"[" * 100_000 + b"]" * 100_000, "deep.json"),
        "not_json": (b"{", "broken.json"),
        "wrong_json": (b'{"schema": "chaintrace.trace/1", "paths": 5}', "wrong.json"),
        "file": (b"int x;\n", "file.c"),
    }
    made = {}
    for name, (data, filename) in files.items():
        (root / filename).write_bytes(data)
        made[name] = root / filename
    made["missing"] = root / "missing"
    made["cache"] = root / "cache"
    made["out"] = root / "out"
    return made


CASES = [
    ["index", "{missing}"], ["index", "{file}"], ["stats", "{missing}"],
    ["trace", "{mini}", "--from", "nope", "--to", "assign:threshold_size", "--cache", "{cache}"],
    ["trace", "{mini}", *QUERY, "--edges", "bogus", "--cache", "{cache}"],
    ["trace", "{mini}", *QUERY, "--max-paths", "x", "--cache", "{cache}"],
    ["trace", "{mini}", *QUERY, "--link-template", "javascript:x", "-o", "{out}/a.svg", "--cache", "{cache}"],
    ["trace", "{mini}", *QUERY, "-o", "{out}/a.unknown", "--cache", "{cache}"],
    ["callers", "{mini}", "no_such_function", "--cache", "{cache}"],
    ["callees", "{mini}", "migrate_prepare", "--depth", "-1", "--cache", "{cache}"],
    ["why-not", "{mini}", "--from", "nope", "--to", "nope", "--cache", "{cache}"],
    ["render", "{deep_json}", "-o", "{out}/x.dot"], ["render", "{not_json}", "-o", "{out}/x.dot"],
    ["render", "{wrong_json}", "-o", "{out}/x.dot"], ["render", "{missing}", "-o", "{out}/x.dot"],
    ["check", "{binary_spec}", "--tree", "{mini}", "--cache", "{cache}"],
    ["check", "{typed_spec}", "--tree", "{mini}", "--cache", "{cache}"],
    ["check", "{table_spec}", "--tree", "{mini}", "--cache", "{cache}"],
    ["doc", "--spec", "{typed_spec}", "--tree", "{mini}", "-o", "{out}/doc", "--cache", "{cache}"],
    ["snapshot", "{mini}", "--from", "nope", "--to", "x", "-o", "{out}/s.json", "--cache", "{cache}"],
    ["diff", "{not_json}", "{wrong_json}"],
    ["model", "migration", "--ram", "0", "--dirty-rate", "1MB/s", "--wss", "0", "--bandwidth", "1Gbit/s"],
    ["model", "migration", "--ram", "1GiB", "--dirty-rate", "x", "--wss", "0", "--bandwidth", "1Gbit/s"],
    ["model", "migration", "--ram", "1GiB", "--dirty-rate", "1MB/s", "--wss", "0", "--bandwidth", "0"],
    ["model", "migration", "--ram", "1GiB", "--dirty-rate", "1MB/s", "--wss", "0", "--bandwidth", "1Gbit/s",
     "--time-limit", "9999999999999s"],
    ["nonsense"], [], ["index"],
]


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(case[:2]) + f"#{i}" for i, case in enumerate(CASES)])
def test_bad_input_is_one_line_and_an_exit_code(argv: list[str], odd: dict[str, Path], capsys) -> None:
    values = {**{name: str(path) for name, path in odd.items()}, "mini": str(MINI_QEMU)}
    code = run_cli([word.format(**values) for word in argv])
    captured = capsys.readouterr()
    assert code in (0, 1, 2)
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    if code and argv:
        assert len(captured.err.strip().splitlines()) == 1, captured.err


def test_an_unknown_program_is_named_with_the_known_ones_and_the_default_is_one_of_them(odd, capsys) -> None:
    from chaintrace.graph.programs import DEFAULT_PROGRAM, load_programs

    known = sorted(load_programs())
    assert DEFAULT_PROGRAM in known  # api.tree_graph takes the default's presence for granted (no table read)
    code = run_cli(["trace", str(MINI_QEMU), *QUERY, "--program", "nope", "--cache", str(odd["cache"])])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"chaintrace: error: unknown program 'nope' (known: {', '.join(known)})"
