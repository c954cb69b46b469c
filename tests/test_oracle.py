"""The fixtures' expected direct edges are exactly what gcc's call graph says.

These tests check the fixtures, not chaintrace: they prove that every
fixture compiles warning-free and that the `direct` edges of each
expected.json are gcc's, call site for call site.  Without gcc they skip;
under CI=true they fail (conftest's `gcc` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import oracle

KINDS = {"direct", "thread", "callback", "ops", "fnptr", "dispatch"}
FIXTURES = oracle.fixture_dirs()


def _format(edges: set) -> str:
    """Return the edges one per line, sorted, for a failure message."""
    return "\n".join(f"    {edge}" for edge in sorted(edges)) or "    (none)"


def _direct(fixture_dir: Path) -> list[dict]:
    """Return the expected edges of kind `direct`."""
    return [edge for edge in oracle.expected_edges(fixture_dir) if edge["kind"] == "direct"]


def test_fixtures_exist() -> None:
    assert len(FIXTURES) >= 12, [p.name for p in FIXTURES]


@pytest.mark.parametrize("fixture_dir", FIXTURES, ids=lambda p: p.name)
def test_fixture_is_well_formed(fixture_dir: Path) -> None:
    readme = fixture_dir / "README"
    assert readme.is_file() and len(readme.read_text().strip().splitlines()) == 1
    assert oracle.c_sources(fixture_dir), "a fixture has C sources"
    graph = oracle.expected_graph(fixture_dir)
    assert set(graph) <= {"edges", "absent", "note"}
    seen = set()
    for edge in graph["edges"]:
        assert {"from", "to", "kind", "file", "line"} <= set(edge), edge
        assert set(edge) <= {"from", "to", "kind", "file", "line", "note", "confidence"}, edge
        assert edge["kind"] in KINDS, edge
        assert edge.get("confidence", "low") == "low", edge
        assert (fixture_dir / edge["file"]).is_file(), edge
        key = (edge["from"], edge["to"], edge["kind"], edge["file"], edge["line"])
        assert key not in seen, f"duplicate edge {key}"
        seen.add(key)
    expected_pairs = {(edge["from"], edge["to"]) for edge in graph["edges"]}
    for edge in graph.get("absent", []):
        assert {"from", "to"} <= set(edge) <= {"from", "to", "note"}, edge
        assert (edge["from"], edge["to"]) not in expected_pairs, f"absent edge is also expected: {edge}"


@pytest.mark.parametrize("fixture_dir", FIXTURES, ids=lambda p: p.name)
def test_fixture_compiles_without_warnings(fixture_dir: Path, gcc: str) -> None:
    warnings = oracle.gcc_warnings(fixture_dir)
    assert not warnings, "\n".join(warnings)


@pytest.mark.parametrize("fixture_dir", FIXTURES, ids=lambda p: p.name)
def test_direct_edges_match_gcc(fixture_dir: Path, gcc: str) -> None:
    expected = {(edge["from"], edge["to"]) for edge in _direct(fixture_dir)}
    actual = oracle.gcc_direct_edges(fixture_dir)
    missing = expected - actual
    extra = actual - expected
    assert not missing and not extra, (
        f"{fixture_dir.name}: expected.json and gcc disagree\n"
        f"  in expected.json, not seen by gcc (missing):\n{_format(missing)}\n"
        f"  seen by gcc, not in expected.json (extra):\n{_format(extra)}"
    )


@pytest.mark.parametrize("fixture_dir", FIXTURES, ids=lambda p: p.name)
def test_direct_call_sites_match_gcc(fixture_dir: Path, gcc: str) -> None:
    expected = {(e["from"], e["to"], e["file"], e["line"]) for e in _direct(fixture_dir)}
    actual = {(s.caller, s.callee, s.file, s.line) for s in oracle.gcc_call_sites(fixture_dir)}
    missing = expected - actual
    extra = actual - expected
    assert not missing and not extra, (
        f"{fixture_dir.name}: call sites (from, to, file, line) disagree\n"
        f"  in expected.json, not seen by gcc (missing):\n{_format(missing)}\n"
        f"  seen by gcc, not in expected.json (extra):\n{_format(extra)}"
    )


@pytest.mark.parametrize("fixture_dir", FIXTURES, ids=lambda p: p.name)
def test_absent_edges_are_not_direct_in_gcc(fixture_dir: Path, gcc: str) -> None:
    absent = {(edge["from"], edge["to"]) for edge in oracle.expected_graph(fixture_dir).get("absent", [])}
    wrong = absent & oracle.gcc_direct_edges(fixture_dir)
    assert not wrong, f"gcc sees these 'absent' edges as direct calls:\n{_format(wrong)}"


def test_parse_vcg_reads_gcc12_format() -> None:
    text = (
        'graph: { title: "a.c"\n'
        'node: { title: "a.c:helper" label: "helper\\na.c:3:13" }\n'
        'node: { title: "puts" label: "puts\\n/usr/include/stdio.h:661:12" shape : ellipse }\n'
        'edge: { sourcename: "a.c:helper" targetname: "puts" label: "a.c:3:28" }\n'
        'node: { title: "__indirect_call" label: "Indirect Call Placeholder" shape : ellipse }\n'
        'edge: { sourcename: "a.c:helper" targetname: "__indirect_call" label: "a.c:4:3" }\n'
        "}\n"
    )
    labels, edges = oracle.parse_vcg(text)
    assert labels["a.c:helper"] == "helper\\na.c:3:13"
    assert edges == [("a.c:helper", "puts", "a.c:3:28"), ("a.c:helper", "__indirect_call", "a.c:4:3")]
    assert oracle.node_id("a.c:helper", labels["a.c:helper"], "a.c", Path(".")) == "a.c::helper"
    assert oracle.node_id("puts", labels["puts"], "a.c", Path(".")) == "puts"
    assert oracle.is_builtin("puts", "__builtin_puts\\n<built-in>")
    assert oracle.node_id("*lseek64", "lseek\\n/usr/include/unistd.h:342:18", "a.c", Path(".")) == "lseek"


def test_gcc_call_sites_on_a_small_tree(tmp_path: Path, gcc: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "h.h").write_text(
        "void ext(int x);\n"
        "static inline int twice(int x) { ext(x); return 2 * x; }\n"
    )
    (tmp_path / "sub" / "a.c").write_text(
        '#include "sub/h.h"\n'
        "extern int renamed(int) __asm__(\"real_name\");\n"
        "static void helper(void) { ext(1); }\n"
        "int run(void (*cb)(int), int x)\n"
        "{\n"
        "    helper();\n"
        "    cb(x);\n"
        "    __builtin_expect(x, 0);\n"
        "    return renamed(twice(x));\n"
        "}\n"
    )
    sites = {(s.caller, s.callee, s.file, s.line) for s in oracle.gcc_call_sites(tmp_path)}
    assert sites == {
        ("sub/h.h::twice", "ext", "sub/h.h", 2),
        ("sub/a.c::helper", "ext", "sub/a.c", 3),
        ("run", "sub/a.c::helper", "sub/a.c", 6),
        ("run", "sub/h.h::twice", "sub/a.c", 9),
        ("run", "renamed", "sub/a.c", 9),
    }
