"""Diagrams of traces: DOT structure and style, SVG through the bundled Graphviz, Mermaid, options, CLI."""

from __future__ import annotations

import argparse
import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.cli import run_captured, run_cli

from chaintrace import api
from chaintrace.errors import ChaintraceError, UsageError
from chaintrace.cli import render as command
from chaintrace.render.diagram import output as diagram
from chaintrace.render.diagram import dot
from chaintrace.render.diagram import mermaid
from chaintrace.render.diagram.layout import build
from chaintrace.render.diagram.options import DiagramOptions

REPO_ROOT = Path(__file__).resolve().parent.parent
MINI_QEMU = REPO_ROOT / "fixtures" / "mini_qemu"
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The trace document of qmp:migrate -> assign:threshold_size on fixtures/mini_qemu."""
    with api.open_store(tmp_path_factory.mktemp("cache")) as store:
        tg = api.tree_graph(store, MINI_QEMU)
        return api.trace_document(tg, "qmp:migrate", "assign:threshold_size")


def _site(line: int, **extra: object) -> dict:
    return {"file": "a.c", "line": line, "col": 5, "conditions": [], "loops": [], **extra}


def _node(node_id: str, file: str = "a.c", line: int = 1, *, external: bool = False) -> dict:
    return {"id": node_id, "name": node_id.split("::")[-1], "file": file, "line": line, "end_line": line + 5,
            "static": "::" in node_id, "external": external}


def small_document() -> dict:
    """A hand-written trace with every edge kind, loops, `#if`, several sites and awkward characters."""
    edges = [
        {"src": "main", "dst": "a.c::start", "kind": "direct", "confidence": "high", "proof": None,
         "sites": [_site(10, loops=[{"kind": "for", "condition": 'for (i = 0; i < n["x"]; i++)', "line": 9}]),
                   _site(12), _site(14), _site(16)]},
        {"src": "a.c::start", "dst": "b.c::worker", "kind": "thread", "confidence": "high",
         "sites": [_site(30, registrar="qemu_thread_create", arg_index=2)],
         "proof": {"file": "a.c", "line": 30, "col": 40, "function": "a.c::start", "registrar": "qemu_thread_create", "arg_index": 2}},
        {"src": "b.c::worker", "dst": "b.c::on_ready", "kind": "callback", "confidence": "high", "detail": "bottom half",
         "sites": [{**_site(50, registrar="qemu_bh_schedule", arg_index=0), "file": "b.c",
                    "conditions": ["defined(CONFIG_LINUX)", "!(CONFIG_WIN32)"]}],
         "proof": {"file": "b.c", "line": 50, "col": 9, "function": "b.c::worker", "registrar": "qemu_bh_schedule", "arg_index": 0}},
        {"src": "b.c::on_ready", "dst": "c.c::save_iter", "kind": "ops", "confidence": "low", "receiver_type": "",
         "sites": [{**_site(70, callee="se->ops->save_iter"), "file": "b.c"}],
         "proof": {"file": "c.c", "line": 5, "col": 3, "function": "", "field": "save_iter", "struct_type": "", "how": "initializer"}},
        {"src": "b.c::on_ready", "dst": "c.c::save_iter", "kind": "direct", "confidence": "high", "proof": None,
         "sites": [{**_site(72), "file": "b.c"}]},
        {"src": "c.c::save_iter", "dst": "set_limit", "kind": "fnptr", "confidence": "high",
         "sites": [{**_site(20, callee="fn"), "file": "c.c"}],
         "proof": {"file": "c.c", "line": 18, "col": 5, "function": "c.c::save_iter", "lhs": "fn", "how": "assignment"}},
        {"src": "c.c::save_iter", "dst": "g_free", "kind": "direct", "confidence": "high", "proof": None,
         "sites": [{**_site(22), "file": "c.c"}]},
    ]
    path = ["main", "a.c::start", "b.c::worker", "b.c::on_ready", "c.c::save_iter", "set_limit"]
    return {
        "schema": "chaintrace.trace/1",
        "query": {"from": "main", "to": "assign:limit", "entry": "main", "max_paths": 50, "max_depth": None,
                  "via": [], "avoid": [], "edge_kinds": ["direct", "thread", "callback", "ops", "fnptr"]},
        "tree": "/src/small", "version": "1.0",
        "targets": [{"kind": "assign", "function": "set_limit", "file": "d.c", "line": 7, "col": 5,
                     "statement": 's->limit = strlen("a|b") + x[2]; /* <b> \\n */',
                     "context": {"loops": [{"kind": "while", "condition": "while (more(s))", "line": 6}],
                                 "conditions": ["defined(CONFIG_X)"], "guards": []},
                     "paths": [0], "counts": {"paths_total": 2, "exact": True, "enumerated": 1, "omitted": 1,
                                              "by_edge_kind": {}, "method": "dag", "chop_nodes": 6}},
                    {"kind": "function", "function": "g_free", "file": "", "line": 0, "col": 0, "statement": "g_free",
                     "context": {"loops": [], "conditions": [], "guards": []}, "paths": [1],
                     "counts": {"paths_total": 1, "exact": True, "enumerated": 1, "omitted": 0,
                                "by_edge_kind": {}, "method": "dag", "chop_nodes": 6}}],
        "nodes": [_node("main", "a.c", 3), _node("a.c::start", "a.c", 25), _node("b.c::worker", "b.c", 40),
                  _node("b.c::on_ready", "b.c", 60), _node("c.c::save_iter", "c.c", 15), _node("set_limit", "d.c", 2),
                  _node("g_free", "", 0, external=True)],
        "edges": edges,
        "paths": [{"nodes": path, "kinds": [["direct"], ["thread"], ["callback"], ["ops", "direct"], ["fnptr"]], "targets": [0]},
                  {"nodes": path[:-1] + ["g_free"], "kinds": [["direct"], ["thread"], ["callback"], ["ops", "direct"], ["direct"]],
                   "targets": [1]}],
        "counts": {"paths_total": 2, "exact": True, "enumerated": 1, "omitted": 1, "by_edge_kind": {}, "edges_by_kind": {}},
        "diagnostics": [],
    }


def _edge_lines(source: str) -> dict[tuple[str, str], list[str]]:
    """Return (tail, head) -> the attribute text of every edge statement in DOT source."""
    found: dict[tuple[str, str], list[str]] = {}
    for match in re.finditer(r'^\t+("(?:[^"\\]|\\.)*"|\w+) -> ("(?:[^"\\]|\\.)*"|\w+) \[(.*)\]$', source, re.M):
        found.setdefault((match[1].strip('"'), match[2].strip('"')), []).append(match[3])
    return found


def _node_line(source: str, node_id: str) -> str:
    name = re.escape(node_id if re.fullmatch(r"\w+", node_id) else f'"{node_id}"')
    match = re.search(rf"^\t+{name} \[(.*)\]$", source, re.M)
    assert match, f"no node {node_id} in DOT"
    return match[1]


# ---------------------------------------------------------------- DOT, mini_qemu


def test_dot_has_every_function_and_hop_of_the_mini_qemu_trace(mini: dict) -> None:
    source = dot.render_dot(mini)
    for node in mini["nodes"]:
        assert node["name"] in _node_line(source, node["id"])
        assert f"{node['file'].split('/')[-1]}:{node['line']}" in _node_line(source, node["id"])
    edges = _edge_lines(source)
    for edge in mini["edges"]:
        assert (edge["src"], edge["dst"]) in edges, edge
    # the call-site line is each edge's label
    assert 'label=L94' in edges[("qmp_migrate", "socket_start_outgoing_migration")][0]


def test_dot_styles_each_edge_kind(mini: dict) -> None:
    edges = _edge_lines(dot.render_dot(mini))
    thread = edges[("migrate_fd_connect", "migration/migration.c::migration_thread")][0]
    assert "style=bold" in thread and 'color="#1f4fbf"' in thread and "qemu_thread_create L206" in thread
    callback = edges[("socket_start_outgoing_migration", "migration/socket.c::socket_outgoing_migration")][0]
    assert "style=dashed" in callback and 'color="#1e8a3c"' in callback and "qio_channel_socket_connect_async L46" in callback
    direct = edges[("migration_channel_connect", "migrate_fd_connect")][0]
    assert "style=solid" in direct and "color=black" in direct


def test_dot_marks_calls_in_loops(mini: dict) -> None:
    edges = _edge_lines(dot.render_dot(mini))
    in_loop = edges[("migration/migration.c::migration_thread", "migration/migration.c::migration_update_counters")][0]
    assert 'label="↻ L190"' in in_loop
    assert "in while (migration_is_active()) (line 177)" in in_loop  # the tooltip


def test_dot_clusters_by_file_and_by_dir(mini: dict) -> None:
    by_file = dot.render_dot(mini)
    labels = re.findall(r'subgraph cluster_\d+ \{\n\t+[^\n]*label="([^"]+)"', by_file)
    assert labels == ["migration/channel.c", "migration/migration.c", "migration/socket.c"]
    by_dir = dot.render_dot(mini, DiagramOptions(cluster="dir"))
    assert re.findall(r'subgraph cluster_\d+ \{\n\t+[^\n]*label="([^"]+)"', by_dir) == ["migration/"]
    flat = dot.render_dot(mini, DiagramOptions(cluster="none"))
    assert "subgraph cluster_0" not in flat and "subgraph cluster_legend" in flat
    assert "migration/socket.c:32" in _node_line(flat, "socket_start_outgoing_migration")


def test_dot_highlights_entry_targets_and_statements(mini: dict) -> None:
    source = dot.render_dot(mini)
    assert 'fillcolor="#c8f0c8"' in _node_line(source, "qmp_migrate")
    for target in mini["targets"]:
        assert "peripheries=2" in _node_line(source, target["function"])
    note = _node_line(source, "target:1")
    assert "shape=note" in note and "s->threshold_size = expected_bw_per_ms" in note
    assert "after early return if (current_time < s->iteration_start_time + BUFFER_DELAY)" in note
    assert ("migration/migration.c::migration_update_counters", "target:1") in _edge_lines(source)


def test_dot_legend_lists_the_kinds_drawn(mini: dict) -> None:
    source = dot.render_dot(mini)
    legend = source[source.index("subgraph cluster_legend"):]
    assert "direct call" in legend and "thread start" in legend and "callback registered" in legend
    assert "ops table" not in legend  # no ops edge in this trace
    assert "↻  call inside a loop" in legend


def test_dot_title_says_query_tree_and_counts(mini: dict) -> None:
    assert 'label="qmp:migrate → assign:threshold_size  ·  mini_qemu  ·  2 paths"' in dot.render_dot(mini)


def test_rankdir_and_link_template(mini: dict) -> None:
    template = "https://gitlab.com/qemu-project/qemu/-/blob/master/{file}#L{line}"
    source = dot.render_dot(mini, DiagramOptions(rankdir="TB", link_template=template))
    assert "rankdir=TB" in source
    assert 'URL="https://gitlab.com/qemu-project/qemu/-/blob/master/migration/migration.c#L81"' in _node_line(source, "qmp_migrate")
    assert 'URL="https://gitlab.com/qemu-project/qemu/-/blob/master/migration/migration.c#L94"' in \
        _edge_lines(source)[("qmp_migrate", "socket_start_outgoing_migration")][0]


def test_dot_is_deterministic(mini: dict) -> None:
    shuffled = copy.deepcopy(mini)
    shuffled["nodes"].reverse()
    shuffled["edges"].reverse()
    first = dot.render_dot(mini)
    assert dot.render_dot(copy.deepcopy(mini)) == first
    assert dot.render_dot(shuffled) == first  # order in the document does not matter either


# ---------------------------------------------------------------- DOT, edge cases


def test_every_kind_has_its_style_and_label() -> None:
    edges = _edge_lines(dot.render_dot(small_document()))
    ops = edges[("b.c::on_ready", "c.c::save_iter")]
    assert len(ops) == 2  # an ops and a direct edge between the same pair: both drawn
    low = next(attrs for attrs in ops if "dotted" in attrs)
    assert 'label=".save_iter L70 ?"' in low and 'color="#8e44ad"' in low  # low confidence: purple
    assert "low confidence" in low
    fnptr = edges[("c.c::save_iter", "set_limit")][0]
    assert 'label="fn L20"' in fnptr and "style=dashed" in fnptr and 'color="#808080"' in fnptr
    assert "fn set at c.c:18 (assignment)" in fnptr
    callback = edges[("b.c::worker", "b.c::on_ready")][0]
    assert 'label="qemu_bh_schedule L50 #if"' in callback
    assert "#if defined(CONFIG_LINUX)" in callback and "#if !(CONFIG_WIN32)" in callback
    assert "callback (bottom half)" in callback
    many = edges[("main", "a.c::start")][0]
    assert 'label="↻ L10,L12 +2"' in many  # four sites: the first two, then a count
    assert all(f"a.c:{line}" in many for line in (10, 12, 14, 16))


def test_labels_are_escaped_for_dot() -> None:
    source = dot.render_dot(small_document())
    note = _node_line(source, "target:0")
    # quotes escaped, backslashes doubled, `<b>` kept as text (no HTML label)
    assert r's->limit = strlen(\"a|b\") + x[2]; /* <b> \\n */' in note
    assert r'for (i = 0; i < n[\"x\"]; i++)' in _edge_lines(source)[("main", "a.c::start")][0]
    import pygraphviz

    graph = pygraphviz.AGraph(string=source)  # parses
    assert graph.get_node("target:0").attr["label"].startswith('s->limit = strlen("a|b")')


def test_external_function_stands_outside_the_clusters() -> None:
    source = dot.render_dot(small_document())
    assert "(not in the tree)" in _node_line(source, "g_free")
    last_cluster_end = source.rindex("\t}\n", 0, source.index("subgraph cluster_legend"))
    assert source.index("\tg_free [") > last_cluster_end


def _with_detour(files: dict[str, int]) -> dict:
    """Return small_document() plus a longer second path to set_limit through `files` (file -> functions in it)."""
    document = small_document()
    detour = [f"{file}::fn{index}" for file, count in files.items() for index in range(count)]
    document["nodes"] += [_node(node_id, node_id.split("::")[0], 10 * (index + 1)) for index, node_id in enumerate(detour)]
    hops = list(zip(["main", *detour], [*detour, "set_limit"]))
    document["edges"] += [{"src": a, "dst": b, "kind": "direct", "confidence": "high", "proof": None,
                           "sites": [{**_site(99), "file": (a.split("::")[0] if "::" in a else "a.c")}]} for a, b in hops]
    document["paths"].append({"nodes": ["main", *detour, "set_limit"], "kinds": [["direct"]] * len(hops), "targets": [0]})
    document["targets"][0]["paths"] = [0, 2]
    return document


def test_max_nodes_folds_the_rest_per_file() -> None:
    document = _with_detour({"e.c": 3, "sub/f.c": 3})  # 7 + 6 functions
    folded = build(document, DiagramOptions(max_nodes=12))  # 2 '+N more' boxes, 10 functions
    ids = {box.id for box in folded.boxes}
    assert {"main", "a.c::start", "b.c::worker", "b.c::on_ready", "c.c::save_iter", "set_limit", "g_free"} <= ids  # paths 0, 1 fit
    assert {"more:e.c", "more:sub/f.c"} <= ids and "e.c::fn0" not in ids
    more_e = next(box for box in folded.boxes if box.id == "more:e.c")
    assert more_e.lines == ("+3 more",) and more_e.cluster == "e.c"  # the cluster names the file
    assert "fn0  e.c:10" in more_e.tooltip and "fn2  e.c:30" in more_e.tooltip
    pairs = {(arrow.src, arrow.dst) for arrow in folded.arrows}
    assert ("main", "more:e.c") in pairs and ("more:e.c", "more:sub/f.c") in pairs and ("more:sub/f.c", "set_limit") in pairs
    assert ("more:e.c", "more:e.c") not in pairs  # fn0 -> fn1 is inside the folded box
    assert folded.folded == 6
    # entry and targets are kept whatever the budget
    tiny = {box.id for box in build(document, DiagramOptions(max_nodes=1)).boxes}
    assert {"main", "set_limit", "g_free"} <= tiny and "a.c::start" not in tiny
    # everything drawn when it fits
    assert "more:e.c" not in {box.id for box in build(document, DiagramOptions(max_nodes=13)).boxes}


def test_max_nodes_folds_per_dir_when_files_are_many() -> None:
    document = _with_detour({"hw/x.c": 1, "hw/y.c": 1, "hw/z.c": 1, "util/u.c": 1, "util/v.c": 1, "util/w.c": 1})
    folded = build(document, DiagramOptions(max_nodes=12))  # 2 '+N more' boxes for 6 files: per dir
    more = {box.id: box for box in folded.boxes if box.id.startswith("more:")}
    assert set(more) == {"more:hw/", "more:util/"}
    assert more["more:hw/"].lines == ("+3 more", "in hw/") and more["more:hw/"].cluster == ""
    by_dir = build(document, DiagramOptions(max_nodes=12, cluster="dir"))
    hw = next(box for box in by_dir.boxes if box.id == "more:hw/")
    assert hw.lines == ("+3 more",) and hw.cluster == "hw"  # the dir cluster names the dir
    one = build(document, DiagramOptions(max_nodes=8))  # 1 box: everything folded together
    assert {box.id for box in one.boxes if box.id.startswith("more:")} == {"more:*"}
    assert next(box for box in one.boxes if box.id == "more:*").lines[1] == "elsewhere"
    source = dot.render_dot(document, DiagramOptions(max_nodes=8))
    assert "shape=box3d" in _node_line(source, "more:*") and 'label="+6 more\\nelsewhere"' in _node_line(source, "more:*")


def test_collapse_file_draws_one_box_per_file() -> None:
    diagram_ = build(small_document(), DiagramOptions(collapse_file=("b.c", "c.*")))
    ids = {box.id for box in diagram_.boxes}
    assert {"file:b.c", "file:c.c"} <= ids and "b.c::worker" not in ids and "c.c::save_iter" not in ids
    b = next(box for box in diagram_.boxes if box.id == "file:b.c")
    assert b.lines == ("b.c", "2 functions") and b.role == "group"
    kinds = {(arrow.src, arrow.dst): arrow.kind for arrow in diagram_.arrows}
    assert kinds[("a.c::start", "file:b.c")] == "thread"
    assert kinds[("file:c.c", "set_limit")] == "fnptr"
    source = dot.render_dot(small_document(), DiagramOptions(collapse_file=("b.c",)))
    assert "shape=box3d" in _node_line(source, "file:b.c")


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="cluster"):
        DiagramOptions(cluster="module")
    with pytest.raises(UsageError, match="rankdir"):
        DiagramOptions(rankdir="RL")
    with pytest.raises(UsageError, match="max_nodes"):
        DiagramOptions(max_nodes=0)
    assert DiagramOptions(collapse_file=["x.c"]).collapse_file == ("x.c",)  # type: ignore[arg-type]


def test_wrong_documents_are_refused() -> None:
    with pytest.raises(UsageError, match="chaintrace.trace/1"):
        build({"schema": "other/1"})
    with pytest.raises(UsageError, match="JSON object"):
        build([])  # type: ignore[arg-type]
    broken = small_document()
    del broken["edges"]
    with pytest.raises(UsageError, match="'edges'"):
        build(broken)


# ---------------------------------------------------------------- rendering


def test_svg_render_has_node_titles_tooltips_and_links(mini: dict, tmp_path: Path) -> None:
    template = "https://example.org/{file}#L{line}"
    out = tmp_path / "trace.svg"
    diagram.write(mini, out, DiagramOptions(link_template=template))
    root = ET.parse(out).getroot()
    titles = {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert {node["id"] for node in mini["nodes"]} <= titles
    assert {"target:0", "target:1"} <= titles
    links = {a.get(f"{XLINK}href"): a.get(f"{XLINK}title") for a in root.iter(f"{SVG}a")}
    assert links["https://example.org/migration/migration.c#L81"] == "qmp_migrate\nmigration/migration.c:81"
    assert "migrate_fd_connect → migration_thread: thread\nmigration/migration.c:206 via qemu_thread_create" in links.values()
    edge_titles = {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "edge"}
    assert "migrate_fd_connect->migration/migration.c::migration_thread" in edge_titles
    assert not list(tmp_path.glob("*.dot"))  # the DOT is written only when it cannot be drawn


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_png_and_pdf_render(mini: dict, tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"trace{suffix}"
    diagram.write(mini, out)
    assert out.read_bytes().startswith(magic)


def test_render_twice_gives_the_same_bytes(mini: dict, tmp_path: Path) -> None:
    for name in ("a", "b"):
        diagram.write(mini, tmp_path / f"{name}.dot")
        diagram.write(mini, tmp_path / f"{name}.mmd")
    assert (tmp_path / "a.dot").read_bytes() == (tmp_path / "b.dot").read_bytes()
    assert (tmp_path / "a.mmd").read_bytes() == (tmp_path / "b.mmd").read_bytes()


def test_no_renderer_names_the_fix_and_keeps_the_dot(mini: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    import graphviz

    real_import = builtins.__import__

    def no_pygraphviz(name: str, *args: object, **kwargs: object):
        if name == "pygraphviz":
            raise ImportError("No module named 'pygraphviz'")
        return real_import(name, *args, **kwargs)

    def no_dot(*args: object, **kwargs: object) -> bytes:
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(builtins, "__import__", no_pygraphviz)
    monkeypatch.setattr(graphviz, "pipe", no_dot)
    out = tmp_path / "trace.svg"
    with pytest.raises(ChaintraceError) as caught:
        diagram.write(mini, out)
    message = str(caught.value)
    assert "pip install pygraphviz" in message and "apt-get install graphviz" in message
    assert str(tmp_path / "trace.dot") in message and "\n" not in message
    assert not out.exists()
    assert (tmp_path / "trace.dot").read_text(encoding="utf-8") == dot.render_dot(mini)


def test_system_dot_is_the_fallback(mini: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    import graphviz

    real_import = builtins.__import__
    calls = []

    def no_pygraphviz(name: str, *args: object, **kwargs: object):
        if name == "pygraphviz":
            raise ImportError("No module named 'pygraphviz'")
        return real_import(name, *args, **kwargs)

    def fake_pipe(engine: str, fmt: str, data: bytes) -> bytes:
        calls.append((engine, fmt))
        return b"<svg/>"

    monkeypatch.setattr(builtins, "__import__", no_pygraphviz)
    monkeypatch.setattr(graphviz, "pipe", fake_pipe)
    diagram.write(mini, tmp_path / "trace.svg")
    assert calls == [("dot", "svg")] and (tmp_path / "trace.svg").read_bytes() == b"<svg/>"


def test_unknown_extension_is_a_usage_error(mini: dict, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown format \.jpg"):
        diagram.write(mini, tmp_path / "trace.jpg")


# ---------------------------------------------------------------- Mermaid

NODE_ID = r"n\d+"
LABEL = r'"[^"\[\](){}<>|;#`\\]*(?:#\d+;[^"\[\](){}<>|;#`\\]*)*"'  # quoted text; specials only as #NN; codes
LABEL_WITH_BREAKS = rf'"(?:[^"\[\](){{}}<>|;#`\\]|#\d+;|<br/>)*"'
MERMAID_LINE = re.compile("|".join([
    r"---", r'title: "[^"\\]*"',
    r"flowchart (LR|TB)",
    rf"subgraph c\d+\[{LABEL}\]", r"end",
    rf"{NODE_ID}\[{LABEL_WITH_BREAKS}\]", rf"{NODE_ID}\[\[{LABEL_WITH_BREAKS}\]\]", rf"{NODE_ID}>{LABEL_WITH_BREAKS}\]",
    rf"{NODE_ID} (-->|==>|-\.->|-\.-)(\|{LABEL}\|)? {NODE_ID}",
    r"linkStyle \d+ [a-z-]+:[#\w. ]+(,[a-z-]+:[#\w. ]+)*",
    r"classDef \w+ [a-z-]+:[#\w. ]+(,[a-z-]+:[#\w. ]+)*",
    r"style c\d+ [a-z-]+:[#\w. ]+(,[a-z-]+:[#\w. ]+)*",
    rf"class {NODE_ID}(,{NODE_ID})* \w+",
    rf'click {NODE_ID} href "[^"\s]+" "[^"\n]*" _blank',
]))


def _check_mermaid(text: str) -> list[str]:
    """Check `text` line by line against the Mermaid flowchart grammar chaintrace writes; return the lines."""
    lines = text.rstrip("\n").split("\n")
    assert lines[:4] == ["---", lines[1], "---", lines[3]] and lines[3].startswith("flowchart ")
    depth = 0
    for line in lines:
        assert MERMAID_LINE.fullmatch(line.strip()), f"not Mermaid as written by chaintrace: {line!r}"
        depth += line.strip().startswith("subgraph ") - (line.strip() == "end")
        assert depth in (0, 1)
    assert depth == 0
    return [line.strip() for line in lines]


def test_mermaid_of_mini_qemu(mini: dict) -> None:
    lines = _check_mermaid(mermaid.render_mermaid(mini))
    assert lines[3] == "flowchart LR"
    boxes = [line for line in lines if re.match(r"n\d+[\[>]", line)]
    assert len(boxes) == len(mini["nodes"]) + len(mini["targets"])
    assert 'n4["qmp_migrate<br/>migration.c:81"]' in boxes or any("qmp_migrate<br/>migration.c:81" in b for b in boxes)
    arrows = [line for line in lines if re.match(r"n\d+ [-=]", line)]
    assert len(arrows) == len(mini["edges"]) + len(mini["targets"])
    assert sum("==>" in a for a in arrows) == 1  # the thread
    assert any('-.->|"qio_channel_socket_connect_async L46"|' in a for a in arrows)
    assert any('-->|"↻ L190"|' in a for a in arrows)
    styles = [line for line in lines if line.startswith("linkStyle")]
    assert [int(line.split()[1]) for line in styles] == list(range(len(arrows)))
    thread_index = next(i for i, a in enumerate(arrows) if "==>" in a)
    assert "stroke:#1f4fbf" in styles[thread_index]
    assert any(line.startswith("class ") and line.endswith(" entry") for line in lines)
    assert [line for line in lines if line.startswith("subgraph")] == [
        'subgraph c0["migration/channel.c"]', 'subgraph c1["migration/migration.c"]', 'subgraph c2["migration/socket.c"]']


def test_mermaid_escapes_labels() -> None:
    text = mermaid.render_mermaid(small_document(), DiagramOptions(link_template='https://x/{file}#L{line}'))
    lines = _check_mermaid(text)
    note = next(line for line in lines if line.startswith("n") and ">" in line.split('"')[0])
    assert 's-#62;limit = strlen#40;#34;a#124;b#34;#41; + x#91;2#93;#59; /* #60;b#62; #92;n<br/>*/' in note
    assert any("#35;if" in line for line in lines)
    assert any(line.startswith("click ") and "https://x/a.c#L25" in line for line in lines)
    assert mermaid.escape('a"b[c]') == "a#34;b#91;c#93;"


def test_mermaid_rankdir_and_folding() -> None:
    lines = _check_mermaid(mermaid.render_mermaid(small_document(), DiagramOptions(rankdir="TB", collapse_file=("b.c",))))
    assert lines[3] == "flowchart TB"
    assert any(re.fullmatch(r'n\d+\[\["b\.c<br/>2 functions"\]\]', line) for line in lines)


MERMAID_CHECK = r"""
import { JSDOM } from "jsdom";
import fs from "fs";
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window; globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser; globalThis.Element = dom.window.Element;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });
for (const file of process.argv.slice(2)) {
  try { await mermaid.parse(fs.readFileSync(file, "utf8")); }
  catch (error) { console.log("FAILED " + file); console.log(String(error.message)); process.exitCode = 1; }
}
"""


def test_mermaid_parses_with_mermaid_itself(mini: dict, tmp_path: Path) -> None:
    """Mermaid's own parser (the pinned npm packages of tests/data/mermaid-node: helpers/mermaid_node) reads every
    diagram chaintrace writes, and reports a broken one (so it did read them)."""
    import subprocess

    from helpers.ci import require_tool
    from helpers.mermaid_node import WHY, mermaid_folder

    node = require_tool(("node",), "nodejs", WHY)
    folder = mermaid_folder()
    files = []
    for name, document, options in (("mini", mini, DiagramOptions()), ("small", small_document(), DiagramOptions(
            rankdir="TB", link_template="https://x/{file}#L{line}")), ("folded", small_document(), DiagramOptions(
            collapse_file=("b.c",), max_nodes=2, cluster="dir"))):
        files.append(tmp_path / f"{name}.mmd")
        files[-1].write_text(mermaid.render_mermaid(document, options), encoding="utf-8")
    # the same diagram with one label's closing quote lost, as an escaping slip would leave it
    broken = tmp_path / "broken.mmd"
    text = files[1].read_text(encoding="utf-8")
    assert '"]' in text
    broken.write_text(text.replace('"]', "]", 1), encoding="utf-8")
    script = folder / "chaintrace-mermaid-check.mjs"
    script.write_text(MERMAID_CHECK, encoding="utf-8")
    run = subprocess.run([node, str(script), *map(str, files), str(broken)], capture_output=True, text=True,
                         timeout=120)
    reported = [line.removeprefix("FAILED ") for line in run.stdout.splitlines() if line.startswith("FAILED ")]
    assert (run.returncode, reported) == (1, [str(broken)]), run.stdout + run.stderr


# ---------------------------------------------------------------- command line


def test_render_command_draws_a_saved_trace(mini: dict, tmp_path: Path) -> None:
    saved = tmp_path / "trace.json"
    saved.write_text(json.dumps(mini, indent=2), encoding="utf-8")
    for suffix in (".svg", ".mmd", ".dot"):
        out = tmp_path / f"out{suffix}"
        assert run_cli(["render", saved, "-o", out, "--cluster", "dir", "--max-nodes", "5",
                        "--collapse-file", "migration/channel.c", "--rankdir", "TB",
                        "--link-template", "https://x/{file}#L{line}"]) == 0
        assert out.stat().st_size > 200
    options = DiagramOptions(cluster="dir", max_nodes=5, collapse_file=("migration/channel.c",), rankdir="TB",
                             link_template="https://x/{file}#L{line}")
    assert (tmp_path / "out.dot").read_text(encoding="utf-8") == dot.render_dot(mini, options)


def test_trace_subparser_gets_the_diagram_options() -> None:
    parser = argparse.ArgumentParser()
    command.add_diagram_arguments(parser)
    args = parser.parse_args([])
    assert command.options_from_args(args) == DiagramOptions()
    with pytest.raises(SystemExit):
        parser.parse_args(["--cluster", "module"])


@pytest.mark.parametrize(("content", "says"), [
    ("{not json", "is not JSON: Expecting property name"),
    ('{"schema": "chaintrace.trace/0"}', "not a chaintrace.trace/1 document"),
    ("[1, 2]", "not a chaintrace trace document"),
    ('{"schema": "chaintrace.trace/1", "query": {}, "targets": [], "paths": [], "edges": [], '
     '"nodes": [{"id": "f"}]}', r"malformed trace document \(KeyError: 'name'\)"),
])
def test_render_command_refuses_bad_documents(tmp_path: Path, content: str, says: str) -> None:
    saved = tmp_path / "trace.json"
    saved.write_text(content, encoding="utf-8")
    run = run_captured(["render", saved, "-o", tmp_path / "out.svg"])
    assert (run.code, run.out, run.err.count("\n")) == (2, "", 1) and re.search(says, run.err), run
    missing = run_captured(["render", tmp_path / "nope.json", "-o", tmp_path / "out.svg"])
    assert missing.code == 2 and "no such file" in missing.err and not (tmp_path / "out.svg").exists()
