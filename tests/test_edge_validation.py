"""Values from the edge (command line, chaintrace.toml, spec files) are checked: one line, exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaintrace.errors import UsageError
from chaintrace.regress.spec import load_spec
from chaintrace.render.diagram.labels import link
from chaintrace.render.diagram.options import DiagramOptions
from helpers.cli import run_cli


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("toml, says", [
    ("index = 5\n", "[index] must be a table"),
    ("[index]\nexclude = 5\n", "exclude must be a list of glob strings"),
    ("[index]\ninclude = [1, 2]\n", "include must be a list of glob strings"),
    (b"[index]\nexclude = ['\xff']\n", "not valid TOML"),
])
def test_chaintrace_toml_of_the_wrong_types(tmp_path: Path, capsys, toml, says) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.c").write_text("int a(void) { return 0; }\n")
    (tree / "chaintrace.toml").write_bytes(toml.encode() if isinstance(toml, str) else toml)
    assert run_cli(["index", tree, "--cache", tmp_path / "cache"]) == 2
    assert says in one_error_line(capsys)


def test_an_empty_tree_path_is_refused(capsys) -> None:
    assert run_cli(["index", ""]) == 2
    assert "empty path" in one_error_line(capsys)


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "", "x\ny"])
def test_a_spec_name_must_be_a_plain_name(tmp_path: Path, name: str) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = {name!r}\nfrom = "a"\nto = "b"\n'.replace("'", '"').replace("\n\"", '\\n"') if "\n" not in name
                    else 'name = "x\\ny"\nfrom = "a"\nto = "b"\n')
    if name == "":
        assert load_spec(spec).name == "s"  # no name: the file's stem
        return
    with pytest.raises(UsageError, match="plain name"):
        load_spec(spec)


@pytest.mark.parametrize("template", ["javascript:alert(1)//{file}", "data:text/html,x", "vbscript:x",
                                      'https://x/{file}" onload="y'])
def test_link_templates_other_than_http_file_or_relative_are_refused(template: str) -> None:
    with pytest.raises(UsageError, match="link-template"):
        DiagramOptions(link_template=template)


@pytest.mark.parametrize("template", ["https://gitlab.com/q/-/blob/master/{file}#L{line}", "file:///src/{file}",
                                      "../src/{file}#L{line}", "http://x/{file}"])
def test_http_file_and_relative_link_templates_are_kept(template: str) -> None:
    assert DiagramOptions(link_template=template).link_template == template


def test_a_file_name_cannot_leave_its_link() -> None:
    url = link("https://x/{file}#L{line}", 'a"b\nclick x call y\n.c', 3)
    assert '"' not in url and "\n" not in url and url.endswith("#L3")
    assert link("https://x/{file}", "migration/migration.c", 1) == "https://x/migration/migration.c"
