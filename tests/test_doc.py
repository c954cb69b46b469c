"""Generated docs (`chaintrace doc`): what the page says, Markdown that CommonMark, MyST and MkDocs read,
self-contained HTML, determinism, the command line and batches of specs."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers.cli import MINI_QEMU, QUERY, CliRun, run_captured, run_cli

from chaintrace import __version__, api

from chaintrace.render.page import walkthrough as doc
from chaintrace.render.page.contents import headings_of, slug

from chaintrace.cli import doc as doc_command
from chaintrace.errors import UsageError
from chaintrace.regress.spec import is_spec, load_spec
from chaintrace.render.page import html
from chaintrace.render.page import markdown

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_doc(*argv: object) -> int:
    """Run `chaintrace doc ARGV` as the command line does; return its exit code."""
    return run_cli(["doc", *argv])


def doc_error(*argv: object) -> CliRun:
    """Run `chaintrace doc ARGV`, which must fail as a usage error: exit 2, one line on stderr, nothing on stdout."""
    run = run_captured(["doc", *argv])
    assert (run.code, run.out, run.err.count("\n")) == (2, "", 1), run
    assert run.err.startswith("chaintrace: error: ") and "Traceback" not in run.err
    return run


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def make_page(cache: Path, source: str = "qmp:migrate", target: str = "assign:threshold_size",
              tree: Path = MINI_QEMU, context: int = 3) -> tuple[doc.Page, dict]:
    with api.open_store(cache) as store:
        tg = api.tree_graph(store, tree)
        document = api.trace_document(tg, source, target)
        return doc.gather(document, tg.root, store, context, "chaintrace doc mini_qemu ..."), document


@pytest.fixture(scope="module")
def mini(cache: Path) -> tuple[doc.Page, dict]:
    """The page of qmp:migrate -> assign:threshold_size on fixtures/mini_qemu, and its trace document."""
    return make_page(cache)


@pytest.fixture(scope="module")
def written(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder `chaintrace doc fixtures/mini_qemu --from qmp:migrate --to assign:threshold_size` wrote."""
    out = tmp_path_factory.mktemp("doc") / "out"
    assert run_doc(MINI_QEMU, *QUERY, "-o", out, "--cache", cache) == 0
    return out


# ------------------------------------------------------------------ what the page says


def test_header_names_query_tree_and_chaintrace_version(mini: tuple[doc.Page, dict]) -> None:
    text = markdown.render(mini[0])
    assert "| Query | `qmp:migrate` → `assign:threshold_size` |" in text
    assert "| Entry | [`qmp_migrate`](#qmp_migrate) |" in text
    assert "| Tree | `mini_qemu` |" in text
    assert "| QEMU version | (no VERSION file) |" in text
    assert f"| chaintrace | `{__version__}` |" in text
    assert "Git revision" not in text  # the fixture sits inside chaintrace's checkout, it is not one itself


def test_git_revision_and_version_of_a_checkout(tmp_path: Path) -> None:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    tree = tmp_path / "qemu"
    shutil.copytree(MINI_QEMU, tree)
    (tree / "VERSION").write_text("10.2.2\n", encoding="utf-8")
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run(git + command, check=True, capture_output=True)
    revision = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    page, _ = make_page(tmp_path / "cache", tree=tree)
    text = markdown.render(page)
    assert f"| Git revision | `{revision}` |" in text
    assert "| QEMU version | 10.2.2 |" in text and "| Tree | `qemu` |" in text


def test_target_excerpt_marks_the_line_and_resolves_the_guard_macro(mini: tuple[doc.Page, dict]) -> None:
    page, _ = mini
    target = next(t for t in page.targets if t.name == "migration_update_counters")
    assert target.excerpt and target.excerpt.marked == 121
    text = markdown.render(page)
    assert "> 121 |     s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();" in text
    assert "  107 | static void migration_update_counters(" in text  # its enclosing function
    assert "  112 |     if (current_time < s->iteration_start_time + BUFFER_DELAY) {" in text
    assert ("early return before it (line 112): `if (current_time < s->iteration_start_time + BUFFER_DELAY) { return; }`; "
            "`BUFFER_DELAY` is `100` (`#define` at migration/migration.c:9)") in text
    assert "- no loop around it in its function" in text


def test_threads_each_part_runs_in(mini: tuple[doc.Page, dict]) -> None:
    page, _ = mini
    thread = "the thread [`migration_thread`](#migration_thread), started by `qemu_thread_create` at migration/migration.c:206"
    assert page.section("migration/migration.c::migration_update_counters").threads == (thread,)
    assert page.section("migration/migration.c::migration_thread").threads == (thread,)
    for node in ("qmp_migrate", "migrate_init", "migrate_fd_connect", "migration/socket.c::socket_outgoing_migration"):
        assert page.section(node).threads == ("the caller's thread (the QMP/main loop)",)
    rows = {words: (nodes, paths) for words, nodes, paths in page.thread_rows}
    assert rows[thread] == (["migration/migration.c::migration_thread", "migration/migration.c::migration_update_counters"], 1)


def test_hmp_entry_names_the_monitor_thread(cache: Path) -> None:
    page, _ = make_page(cache, source="hmp:migrate")
    assert page.section("hmp_migrate").threads == ("the caller's thread (the HMP monitor/main loop)",)


def test_each_edge_kind_in_plain_words(mini: tuple[doc.Page, dict], cache: Path) -> None:
    page, _ = mini
    words = {call.kind: call.words for section in page.sections for call in section.calls}
    assert words["thread"] == ("runs in a new thread started by `qemu_thread_create` at migration/migration.c:206, "
                               "in [`migrate_fd_connect`](#migrate_fd_connect)")
    assert words["callback"] == ("called back by the QIO channel when the connection completes, registered by "
                                 "`qio_channel_socket_connect_async` at migration/socket.c:46, in "
                                 "[`socket_start_outgoing_migration`](#socket_start_outgoing_migration)")
    assert words["direct"].startswith("called directly by [`")
    ops_page, _ = make_page(cache, target="ram_save_iterate")
    ops = next(call for section in ops_page.sections for call in section.calls if call.kind == "ops")
    assert ops.words.startswith("called through `SaveVMHandlers.save_live_iterate`, bound to `ram_save_iterate` at migration/ram.c:")
    assert "the call `se->ops->save_live_iterate` is in [`qemu_savevm_state_iterate`](#qemu_savevm_state_iterate)" in ops.words


def test_call_sites_show_loops_guards_and_the_marked_line(mini: tuple[doc.Page, dict]) -> None:
    page, _ = mini
    (call,) = page.section("migration/migration.c::migration_update_counters").calls
    assert call.when.loops == ("`while (migration_is_active())` (line 177)",)
    assert call.excerpts[0].marked == 190
    starts = [start for start, _ in call.excerpts[0].windows]
    assert starts[0] == 166  # the caller's first line, then the loop header, then the call with its context
    (thread,) = page.section("migration/migration.c::migration_thread").calls
    assert thread.when.guards == ("early return before it (line 200): `if (error_in) { migrate_fd_error(s, error_in); return; }`",)


def test_call_and_line_targets_get_their_guards_from_the_facts(cache: Path) -> None:
    for target in ("call:migration_wait_for_urgent", "migration/migration.c:140"):
        page, _ = make_page(cache, target=target)
        assert page.targets[0].when.guards == (
            "early return before it (line 136): `if (!migration_rate_exceeded(s->to_dst_file)) { return false; }`",)


def test_context_lines(cache: Path) -> None:
    page, _ = make_page(cache, context=0)
    target = next(t for t in page.targets if t.name == "migration_update_counters")
    assert [start for start, _ in target.excerpt.windows] == [107, 112, 121]


def test_outline_merges_paths_and_every_function_has_one_section(mini: tuple[doc.Page, dict]) -> None:
    page, document = mini
    assert [section.node for section in page.sections][0] == "qmp_migrate"
    assert {section.node for section in page.sections} == {node["id"] for node in document["nodes"]}
    text = markdown.render(page)
    headings = re.findall(r"^### `([^`]+)`", text, re.M)
    assert len(headings) == len(set(headings)) == len(document["nodes"])
    (root,) = page.outline
    assert root.steps == (("", "qmp_migrate"),) and len(root.children) == 2
    assert [node for _, node in root.children[1].steps][-1] == "migration/migration.c::migration_update_counters"
    assert ("thread", "migration/migration.c::migration_thread") in root.children[1].steps


def small_document() -> dict:
    """A hand-made trace over files the tree does not have: every kind, unknown registrar, low confidence, `#if`."""
    def site(line: int, file: str = "a.c", **extra: object) -> dict:
        return {"file": file, "line": line, "col": 5, "conditions": [], "loops": [], **extra}

    def node(node_id: str, file: str, line: int) -> dict:
        return {"id": node_id, "name": node_id.split("::")[-1], "file": file, "line": line, "end_line": line + 9,
                "static": "::" in node_id, "external": False}

    edges = [
        {"src": "main", "dst": "a.c::start", "kind": "direct", "confidence": "high", "proof": None,
         "sites": [site(10, loops=[{"kind": "for", "condition": "for (i = 0; i < N; i++)", "line": 9}]), site(12), site(14), site(16)],
         "ambiguous": ["a.c::start", "stubs/a.c::start"], "preferred": "non-stub definition preferred"},
        {"src": "a.c::start", "dst": "b.c::on_ready", "kind": "callback", "confidence": "high", "detail": "bottom half",
         "sites": [site(30, registrar="qemu_bh_new", arg_index=0, conditions=["defined(CONFIG_LINUX)"])],
         "proof": {"file": "a.c", "line": 30, "col": 9, "function": "a.c::start", "registrar": "qemu_bh_new", "arg_index": 0}},
        {"src": "b.c::on_ready", "dst": "c.c::save", "kind": "ops", "confidence": "low", "receiver_type": "",
         "sites": [site(50, "b.c", callee="x->ops->save")],
         "proof": {"file": "c.c", "line": 5, "col": 3, "function": "", "field": "save", "struct_type": "", "how": "initializer"}},
        {"src": "c.c::save", "dst": "set_limit", "kind": "fnptr", "confidence": "high",
         "sites": [site(8, "c.c", callee="fn")], "proof": {"file": "c.c", "line": 6, "col": 5, "function": "c.c::save",
                                                          "lhs": "fn", "how": "assignment"}},
        {"src": "set_limit", "dst": "d.c::later", "kind": "callback", "confidence": "high", "detail": "unknown registrar",
         "sites": [site(3, "d.c", registrar="defer_call", arg_index=1)],
         "proof": {"file": "d.c", "line": 3, "col": 20, "function": "set_limit", "registrar": "defer_call", "arg_index": 1}},
    ]
    ids = ["main", "a.c::start", "b.c::on_ready", "c.c::save", "set_limit", "d.c::later"]
    files = ["a.c", "a.c", "b.c", "c.c", "d.c", "d.c"]
    return {
        "schema": "chaintrace.trace/1",
        "query": {"from": "main", "to": "d.c::later", "entry": "main", "max_paths": 50, "max_depth": None, "via": [],
                  "avoid": [], "edge_kinds": ["direct", "thread", "callback", "ops", "fnptr"]},
        "tree": "t", "version": "",
        "targets": [{"kind": "function", "function": "d.c::later", "file": "d.c", "line": 20, "col": 1, "statement": "later",
                     "context": {"loops": [], "conditions": [], "guards": []}, "paths": [0],
                     "counts": {"paths_total": 1, "exact": True, "enumerated": 1, "omitted": 0, "by_edge_kind": {},
                                "method": "dag", "chop_nodes": 6}}],
        "nodes": [node(i, f, 1 + 20 * n) for n, (i, f) in enumerate(zip(ids, files))],
        "edges": edges,
        "paths": [{"nodes": ids, "kinds": [[e["kind"]] for e in edges], "targets": [0]}],
        "counts": {"paths_total": 1, "exact": True, "enumerated": 1, "omitted": 0,
                   "by_edge_kind": {"callback": 1, "direct": 1, "fnptr": 1, "ops": 1},
                   "edges_by_kind": {"callback": 2, "direct": 1, "fnptr": 1, "ops": 1}},
        "diagnostics": [{"kind": "fnptr", "caller": "b.c::on_ready", "file": "b.c", "line": 60, "col": 5, "callee": "cb",
                         "reason": "a parameter"}],
    }


def test_words_of_registrars_pointers_and_doubts(cache: Path) -> None:
    """A trace over files the tree lacks still gives a page: words and facts from the document alone."""
    with api.open_store(cache) as store:
        tg = api.tree_graph(store, MINI_QEMU)
        page = doc.gather(small_document(), tg.root, store)
    calls = {section.node: section.calls[0] for section in page.sections if section.calls}
    assert calls["b.c::on_ready"].words.startswith("runs as a bottom half (from the event loop), scheduled by `qemu_bh_new` at a.c:30")
    assert calls["b.c::on_ready"].when.conditions == ("`#if defined(CONFIG_LINUX)`",)
    assert calls["c.c::save"].words.startswith("called through the field `.save`, bound to `save` at c.c:5 (initializer)")
    assert any("low confidence" in note for note in calls["c.c::save"].notes)
    assert calls["set_limit"].words.startswith("called through the function pointer `fn`, which is assigned `set_limit` at c.c:6")
    assert calls["d.c::later"].words.startswith("passed as a function pointer to `defer_call` at d.c:3")
    assert "is not a known registrar, so when it is called is not known" in calls["d.c::later"].words
    start = calls["a.c::start"]
    assert start.excerpts == () and start.more_sites[0] == "4 call sites; the first 3 are shown"
    assert start.more_sites[1] == "also at a.c:16"
    assert any("2 definitions of this name (non-stub definition preferred)" in note for note in start.notes)
    assert page.diagnostics == ["`cb` in [`on_ready`](#on_ready) at b.c:60: a parameter"]
    markdown.render(page), html.render(page)  # renders without excerpts or targets with statements


def test_clashing_names_get_qualified_headings() -> None:
    nodes = [{"id": "a.c::save", "name": "save", "file": "a.c"}, {"id": "b/c.c::save", "name": "save", "file": "b/c.c"},
             {"id": "Save", "name": "Save", "file": "d.c"}, {"id": "diagram", "name": "diagram", "file": "e.c"},
             {"id": "solo", "name": "solo", "file": "f.c"}]
    headings = headings_of(nodes)
    assert headings == {"a.c::save": "save (a.c)", "b/c.c::save": "save (b/c.c)", "Save": "Save (d.c)",
                        "diagram": "diagram (e.c)", "solo": "solo"}
    assert [slug(h) for h in headings.values()] == ["save-ac", "save-bcc", "save-dc", "diagram-ec", "solo"]


# ------------------------------------------------------------------ Markdown


def _anchors_of_markdown(text: str) -> tuple[set[str], set[str]]:
    """Return (heading anchors, #links) of Markdown as markdown-it (CommonMark) reads it."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings, links = set(), set()
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            headings.add(slug("".join(child.content for child in tokens[index + 1].children)))
        for child in token.children or ():
            if child.type == "link_open" and child.attrs["href"].startswith("#"):
                links.add(child.attrs["href"][1:])
    return headings, links


def test_markdown_is_commonmark_with_tables_fences_and_working_links(written: Path) -> None:
    pytest.importorskip("markdown_it", reason="pip install markdown-it-py (the test extra) to check the Markdown")
    from markdown_it import MarkdownIt

    text = (written / "index.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert sum(token.type == "table_open" for token in tokens) == 3
    fences = [token for token in tokens if token.type == "fence"]
    assert len(fences) == text.count("```text") and all(token.info == "text" for token in fences)
    assert all(token.level == 0 for token in fences)  # Python-Markdown (MkDocs) reads no fence inside a list
    headings, links = _anchors_of_markdown(text)
    assert links and links <= headings, links - headings
    assert not [t for t in tokens if t.type == "html_block"]
    assert "![The call chain" in text and "(chain.svg)" in text and "(chain.mmd)" in text


def test_markdown_builds_with_sphinx_and_myst_without_warnings(written: Path, tmp_path: Path) -> None:
    pytest.importorskip("myst_parser", reason="pip install myst-parser (the test extra) to build the page with Sphinx")
    from sphinx.cmd.build import build_main

    source = tmp_path / "src"
    source.mkdir()
    for name in ("index.md", "chain.svg", "chain.mmd"):
        shutil.copy(written / name, source / name)
    (source / "conf.py").write_text('extensions = ["myst_parser"]\nmyst_heading_anchors = 3\nproject = "t"\n', encoding="utf-8")
    warnings = tmp_path / "warnings.txt"
    assert build_main(["-b", "html", "-q", "-W", "-w", str(warnings), str(source), str(tmp_path / "out")]) == 0, warnings.read_text()
    built = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'class="reference internal" href="#([^"]+)"', built))
    assert "migration-update-counters" in links and links <= set(re.findall(r'id="([^"]+)"', built))


def test_markdown_reads_in_python_markdown_as_mkdocs_does(written: Path) -> None:
    md = pytest.importorskip("markdown", reason="pip install markdown to check the page as MkDocs reads it")
    text = (written / "index.md").read_text(encoding="utf-8")
    out = md.markdown(text, extensions=["toc", "tables", "fenced_code"])
    assert out.count("<table>") == 3 and out.count('<code class="language-text">') == text.count("```text")
    ids, links = set(re.findall(r'id="([^"]+)"', out)), set(re.findall(r'href="#([^"]+)"', out))
    assert links and links <= ids, links - ids


# ------------------------------------------------------------------ HTML


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.tags: set[str] = set()
        self.resources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(values["id"] or "")
        for key in ("href", "xlink:href"):
            if values.get(key):
                self.hrefs.append(values[key] or "")
        if tag in ("img", "script", "link", "iframe") or values.get("src"):
            self.resources.append(tag)


def test_html_is_self_contained_and_every_link_lands(written: Path) -> None:
    text = (written / "index.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(text)
    assert not parser.resources and "<script" not in text
    assert not re.findall(r"https?://(?!www\.w3\.org/)", text)
    assert len(parser.ids) == len(set(parser.ids))
    assert {href for href in parser.hrefs if href.startswith("#")} - {f"#{i}" for i in parser.ids} == set()
    assert "svg" in parser.tags and "class=\"hll\"" in text and '<span class="linenos">121</span>' in text


def test_html_diagram_links_every_function_box_to_its_section(mini: tuple[doc.Page, dict]) -> None:
    import xml.etree.ElementTree as ET

    from chaintrace.render.diagram import dot

    page, document = mini
    svg = html.link_diagram(dot_svg(document, dot), page)
    root = ET.fromstring(svg)
    linked = {}
    for group in root.iter(f"{{{html.SVG_NS}}}g"):
        if group.get("class") == "node":
            title = group.find(f"{{{html.SVG_NS}}}title").text
            link = next(group.iter(f"{{{html.SVG_NS}}}a"), None)
            linked[title] = link.get("href") if link is not None else None
    for node in document["nodes"]:
        assert linked[node["id"]] == f"#{page.anchors[node['id']]}"
    assert linked["target:1"] == "#target-2"


def dot_svg(document: dict, dot_module) -> str:
    import pygraphviz

    return pygraphviz.AGraph(string=dot_module.render_dot(document)).draw(format="svg", prog="dot").decode("utf-8")


# ------------------------------------------------------------------ command line, determinism, batches


def test_doc_command_writes_the_pages_and_diagrams(written: Path) -> None:
    assert sorted(path.name for path in written.iterdir()) == sorted(doc_command.OUTPUTS)
    assert (written / "chain.mmd").read_text(encoding="utf-8").startswith(("flowchart", "%%", "---"))
    text = (written / "index.md").read_text(encoding="utf-8")
    assert text.rstrip().endswith("`chaintrace doc mini_qemu --from qmp:migrate --to assign:threshold_size "
                                  "--max-paths 50 --context 3 -o DIR`")


def test_output_is_deterministic_without_absolute_paths(written: Path, cache: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert run_doc("--tree", MINI_QEMU, *QUERY, "-o", again, "--cache", cache) == 0
    for name in doc_command.OUTPUTS:
        data = (written / name).read_text(encoding="utf-8")
        assert data == (again / name).read_text(encoding="utf-8"), name
        for absolute in (str(REPO_ROOT), str(tmp_path), str(cache)):
            assert absolute not in data, (name, absolute)


@pytest.mark.parametrize("argv, says", [
    ([MINI_QEMU, "-o", "x"], "give --from ENTRY and --to TARGET"),
    (["-o", "x", *QUERY], "give the source tree"),
    ([MINI_QEMU, "-o", "x", "--context", "-1", *QUERY], "--context must be 0 or more"),
    ([MINI_QEMU, "-o", "x", "--edges", "bogus", *QUERY], "unknown edge kind 'bogus'"),
])
def test_usage_errors(argv: list, says: str, cache: Path, tmp_path: Path) -> None:
    assert says in doc_error(*[tmp_path / a if a == "x" else a for a in argv], "--cache", cache).err


def test_unknown_function_is_not_found(cache: Path, tmp_path: Path) -> None:
    run = doc_error(MINI_QEMU, "--from", "qmp:migrate", "--to", "no_such_function", "-o", tmp_path, "--cache", cache)
    assert "no_such_function" in run.err


def test_batch_of_specs_writes_a_page_each_and_an_index(cache: Path, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "threshold.toml").write_text(
        'name = "migrate-threshold"\ndescription = "where the threshold is set"\nfrom = "qmp:migrate"\n'
        'to = "assign:threshold_size"\n[options]\nmax_paths = 5\n'
        '[expect]\nreach = true\n[versions.">=10.0"]\nnote = "not this tree: it has no VERSION"\nskip = true\n',
        encoding="utf-8")
    (specs / "iterate.toml").write_text('from = "qmp:migrate"\nto = "ram_save_iterate"\n', encoding="utf-8")
    (specs / "broken.toml").write_text('name = "broken"\nfrom = "qmp:migrate"\nto = "no_such_function"\n', encoding="utf-8")
    (specs / "registrars.toml").write_text('[[registrar]]\nname = "x"\n', encoding="utf-8")
    out = tmp_path / "out"
    code = run_doc("--spec", *sorted(specs.glob("*.toml")), "--tree", MINI_QEMU, "-o", out, "--cache", cache)
    assert code == 1  # the broken spec
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "index.md", "iterate", "migrate-threshold"]
    assert (out / "iterate" / "index.html").is_file() and (out / "migrate-threshold" / "chain.svg").is_file()
    assert "--max-paths 5" in (out / "migrate-threshold" / "index.md").read_text(encoding="utf-8")
    index = (out / "index.md").read_text(encoding="utf-8")
    assert "[migrate-threshold](migrate-threshold/index.md)" in index and "[iterate](iterate/index.md)" in index
    assert "| broken |" in index and "unknown function" in index
    assert "where the threshold is set" in index
    assert '<a href="iterate/index.html">iterate</a>' in (out / "index.html").read_text(encoding="utf-8")


def test_spec_version_tables_apply(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('from = "qmp:migrate"\nto = "a"\n[options]\nmax_paths = 3\n[versions."<10.0"]\nto = "b"\n'
                    '[versions."7.2"]\nskip = "not in 7.2"\n', encoding="utf-8")
    new, old = load_spec(spec).resolve("10.2.2"), load_spec(spec).resolve("7.2.0")
    assert (new.spec.name, new.query.target, new.skip, new.query.max_paths) == ("s", "a", "", 3)
    assert (old.query.target, old.skip) == ("b", "not in 7.2")
    (tmp_path / "n.toml").write_text("[index]\nexclude = []\n", encoding="utf-8")
    assert not is_spec(tmp_path / "n.toml")
    (tmp_path / "bad.toml").write_text("from = \n", encoding="utf-8")
    with pytest.raises(UsageError, match="bad.toml"):
        load_spec(tmp_path / "bad.toml")


def test_doc_reads_specs_as_strictly_as_check(cache: Path, tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('from = "qmp:migrate"\nto = "ram_save_iterate"\nowner = "someone"\n', encoding="utf-8")
    assert "unknown key 'owner'" in doc_error("--spec", spec, "--tree", MINI_QEMU, "-o", tmp_path / "o", "--cache", cache).err


def test_give_spec_or_query_not_both(cache: Path, tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('from = "qmp:migrate"\nto = "ram_save_iterate"\n', encoding="utf-8")
    assert "not both" in doc_error("--spec", spec, "--tree", MINI_QEMU, *QUERY, "-o", tmp_path / "o", "--cache", cache).err


def test_sites_keeps_the_matching_targets(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run_doc(MINI_QEMU, *QUERY, "--sites", "expected_bw", "-o", out, "--cache", cache) == 0
    text = (out / "index.md").read_text(encoding="utf-8")
    assert "### Target 1: `s->threshold_size = expected_bw_per_ms" in text and "Target 2" not in text
    assert "--sites expected_bw" in text and "### `migrate_prepare`" not in text
    assert "sites is not a regular expression" in doc_error(MINI_QEMU, *QUERY, "--sites", "(", "-o", out, "--cache", cache).err


def test_fences_outgrow_backticks_in_the_code() -> None:
    assert markdown.fenced(["a ``` b"], "c") == ["````c", "a ``` b", "````"]
    assert markdown.fenced(["x"], "text") == ["```text", "x", "```"]


def test_a_tree_after_spec_files_is_named_as_the_mistake(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('from = "qmp:migrate"\nto = "ram_save_iterate"\n', encoding="utf-8")
    assert "give the tree as --tree TREE" in doc_error("--spec", spec, MINI_QEMU, "-o", tmp_path / "o").err
