"""Each `queries/c/*.scm` file against its annotated fixture `fixtures/queries/<name>.c`.

Annotations follow tree-sitter's tags tests: a comment line under a code
line puts a caret at a column and names a capture,

    int x = add(1, 2);
    //      ^ reference.call

meaning a match of that capture is marked at that column of the code line
above (several annotation lines may follow one code line). A match is marked
at its `@name` capture when the pattern has one, else at the construct
capture itself (`@reference.call`, `@context.loop`, ...). `// <- capture`
marks the column where the `//` starts (column 0 cannot hold a caret
under `//`), and `// ^ nothing` says the line above has no match. Only that .scm file's query runs, and
the matches on annotated lines must be exactly the annotated ones.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tree_sitter import Query, QueryCursor

from chaintrace.source import parse

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "queries"
ANNOTATION = re.compile(r"^(\s*)//\s*(\^|<-)\s+(\S+)\s*$")


def annotations(text: str) -> tuple[dict[int, set[tuple[int, str]]], str]:
    """Return ({code line (0-based): {(column, capture)}}, source with annotation lines blanked)."""
    expected: dict[int, set[tuple[int, str]]] = {}
    lines = text.split("\n")
    code_line = -1
    for number, line in enumerate(lines):
        match = ANNOTATION.match(line)
        if not match:
            code_line = number
            continue
        assert code_line >= 0, f"line {number + 1}: annotation before any code"
        column = line.index("^") if match.group(2) == "^" else len(match.group(1))
        marks = expected.setdefault(code_line, set())
        if match.group(3) != "nothing":
            marks.add((column, match.group(3)))
    return expected, text


def matches(query_name: str, source: bytes) -> dict[int, set[tuple[int, str]]]:
    """Return {line: {(column, capture)}} of one .scm file's matches over `source`."""
    query = Query(parse.language(), parse.query_source(query_name))
    found: dict[int, set[tuple[int, str]]] = {}
    for _, captures in QueryCursor(query).matches(parse.parse(source).root_node):
        construct = next(name for name in captures if "." in name)
        node = captures["name"][0] if "name" in captures else captures[construct][0]
        found.setdefault(node.start_point[0], set()).add((node.start_point[1], construct))
    return found


QUERY_FILES = sorted(path.name for path in (REPO / "queries" / "c").glob("*.scm"))


def test_every_query_file_is_in_the_extraction_query() -> None:
    assert sorted(parse.QUERY_FILES) == QUERY_FILES


@pytest.mark.parametrize("query_name", QUERY_FILES)
def test_query_matches_its_annotated_fixture(query_name: str) -> None:
    fixture = FIXTURES / query_name.replace(".scm", ".c")
    assert fixture.is_file(), f"{query_name} has no fixture {fixture.relative_to(REPO)}"
    expected, text = annotations(fixture.read_text())
    assert expected, f"{fixture.name} has no annotations"
    found = matches(query_name, text.encode())
    problems = []
    for line, marks in sorted(expected.items()):
        got = found.get(line, set())
        for column, capture in sorted(marks - got):
            problems.append(f"line {line + 1} col {column}: missing {capture}")
        for column, capture in sorted(got - marks):
            problems.append(f"line {line + 1} col {column}: unexpected {capture}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("query_name", QUERY_FILES)
def test_fixture_is_c_that_compiles(query_name: str, tmp_path: Path, gcc: str) -> None:
    fixture = FIXTURES / query_name.replace(".scm", ".c")
    result = subprocess.run(["gcc", "-c", "-Wall", "-o", str(tmp_path / "out.o"), str(fixture)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
