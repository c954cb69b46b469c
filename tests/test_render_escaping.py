"""Hostile names and sources through every renderer: nothing they hold may become markup, a statement or a link.

A tree whose file and folder names hold quotes, line breaks, `click ... call`
lines, `%%{init}%%` directives and HTML, and whose comments hold `<script>`,
is indexed into a temporary cache and traced through the command line to
Mermaid, DOT, SVG, Markdown and HTML. Each output is read back as its own
format would read it, and must hold only what chaintrace writes itself.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers.cli import run_captured

EVIL_FILE = 'a"b\nclick n0 call alert(1)\n<img src=x onerror=alert(1)>] `x` x.c'
EVIL_DIR = 'd"ir\n%%{init: {"securityLevel": "loose"}}%%\n# heading'
TEMPLATE = "https://example.org/{file}#L{line}"


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Trace main -> inner of the hostile tree to every text format; return {suffix: text}."""
    base = tmp_path_factory.mktemp("hostile")
    tree = base / "tree"
    (tree / EVIL_DIR).mkdir(parents=True)
    (tree / EVIL_FILE).write_text("static void inner(void) { }\n"
                                  "void target(void) {\n  inner(); /* <script>alert(3)</script> ``` */\n}\n")
    (tree / EVIL_DIR / "q.c").write_text("void target(void);\nvoid mid(void) { target(); }\n")
    (tree / "main.c").write_text("void mid(void);\n/* <script>alert(1)</script> */\n"
                                 "void helper(void) { mid(); /* <script>alert(2)</script> */ }\n"
                                 "int main(void) { helper(); return 0; }\n")
    cache, out = base / "cache", base / "out"
    found = {}
    for suffix in (".mmd", ".dot", ".svg"):
        run = run_captured(["trace", tree, "--from", "main", "--to", "inner", "--cache", cache, "--cluster", "dir",
                            "--link-template", TEMPLATE, "-o", out.with_suffix(suffix)])
        assert run.code == 0, run.err
        found[suffix] = out.with_suffix(suffix).read_text()
    run = run_captured(["doc", tree, "--from", "main", "--to", "inner", "--cache", cache, "-o", base / "doc"])
    assert run.code == 0, run.err
    found[".md"] = (base / "doc" / "index.md").read_text()
    found[".html"] = (base / "doc" / "index.html").read_text()
    found["doc.mmd"] = (base / "doc" / "chain.mmd").read_text()
    return found


MERMAID_STATEMENT = re.compile(
    r'(---|title: "[^"\n]*"|flowchart (LR|TB)|end'
    r'|subgraph c\d+\["[^"]*"\]'
    r'|n\d+(\["[^"]*"\]|\[\["[^"]*"\]\]|>"[^"]*"\])'
    r'|n\d+ (-->|==>|-\.->|-\.-)(\|"[^"]*"\|)? n\d+'
    r'|linkStyle \d+ [\w:#,.\- ]+|style c\d+ [\w:#,.\- ]+|classDef \w+ [\w:#,.\- ]+|class [n\d,]+ \w+'
    r'|click n\d+ href "https://example\.org/[^"\s]*" "[^"\n]*" _blank)')


@pytest.mark.parametrize("name", [".mmd", "doc.mmd"])
def test_mermaid_holds_only_statements_chaintrace_writes(traced: dict[str, str], name: str) -> None:
    lines = traced[name].splitlines()
    strange = [line for line in lines if not MERMAID_STATEMENT.fullmatch(line.strip())]
    assert not strange, f"lines that are not chaintrace's statements: {strange}"
    assert sum(line.strip().startswith("click") for line in lines) == sum(
        'href "' in line for line in lines)  # every click a link of the template, none from a name
    assert "%%{" not in traced[name] and "<img" not in traced[name]  # no directive, no tag even in a tooltip


def test_dot_reads_back_as_the_boxes_and_names_it_was_given(traced: dict[str, str]) -> None:
    import pygraphviz

    graph = pygraphviz.AGraph(string=traced[".dot"])
    names = {node.attr["label"].split("\\n")[0] for node in graph.nodes() if not node.startswith("legend:")}
    assert names == {"main", "helper", "mid", "target", "inner"}
    labels = [node.attr["label"] for node in graph.nodes()]
    assert all("\n" not in label for label in labels), labels  # a line break in a name is a DOT `\n`, not a raw one
    assert all(str(link).startswith("https://example.org/") for link in
               [node.attr["URL"] for node in graph.nodes() if node.attr.get("URL")])


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs += [value or "" for name, value in attrs if name in ("href", "xlink:href")]
        assert not any(name.startswith("on") for name, _ in attrs), (tag, attrs)


@pytest.mark.parametrize("name", [".html", ".svg"])
def test_html_and_svg_hold_no_tag_or_handler_from_the_source(traced: dict[str, str], name: str) -> None:
    parser = _Tags()
    parser.feed(traced[name])
    assert not parser.tags & {"script", "img", "iframe", "object", "embed"}
    assert all(href.startswith(("#", "https://example.org/")) for href in parser.hrefs), parser.hrefs


def _outside_fences(markdown: str) -> list[str]:
    lines, fence = [], ""
    for line in markdown.splitlines():
        run = re.match(r"`{3,}", line)
        if fence and run and run.group() == fence and not line[len(fence):].strip():
            fence = ""
        elif not fence and run:
            fence = run.group()
        elif not fence:
            lines.append(line)
    return lines


def test_markdown_carries_no_raw_html_or_blocks_from_names_and_sources(traced: dict[str, str]) -> None:
    prose = _outside_fences(traced[".md"])
    assert not [line for line in prose if line.lstrip().startswith(("<", "click", "%%"))]
    headings = [line for line in prose if line.startswith("#")]
    assert not [line for line in headings if line.startswith("# heading")], headings
    unescaped_tag = re.compile(r"(?<!\\)<(script|img)")
    assert not [line for line in prose if unescaped_tag.search(line)]
    assert "<script>alert(2)</script>" in traced[".md"]  # the excerpt shows the comment as written, in its fence


@pytest.mark.parametrize("template", ["javascript:alert(1)//{file}", " JavaScript:alert(1)", "java\tscript:alert(1)",
                                      "data:text/html,<script>x</script>", "vbscript:msgbox", 'https://x/" onload="y'])
def test_the_command_line_refuses_link_templates_that_are_not_http_or_relative(tmp_path: Path, template: str) -> None:
    run = run_captured(["render", tmp_path / "missing.json", "-o", tmp_path / "x.svg", "--link-template", template])
    assert run.code == 2 and "link-template" in run.err and len(run.err.strip().splitlines()) == 1, run.err


def test_terminal_output_and_graphml_show_control_characters_instead_of_obeying_them(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    evil = "ctl\x01\x1b[31mred\x1b]0;title\x07.c"
    (tree / evil).write_text("static void s(void) { }\nvoid h(void) { s(); /* \x1b[2J */ }\n")
    run = run_captured(["trace", tree, "--from", "h", "--to", "call:s", "--cache", tmp_path / "cache"])
    assert run.code == 0 and "ctl\\u0001\\u001b[31mred" in run.out, run.out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", run.out + run.err)
    run = run_captured(["export", tree, "-o", tmp_path / "g.graphml", "--cache", tmp_path / "cache"])
    assert run.code == 0, run.err
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(tmp_path / "g.graphml").getroot()  # well-formed XML, whatever the names hold
    assert any("\\x1b[31mred" in (element.text or "") for element in root.iter())
