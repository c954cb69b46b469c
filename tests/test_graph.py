"""The call graph against the fixtures: every edge kind against expected.json, direct edges against gcc.

Each fixture is indexed by the real indexer (conftest's `fixture_trees`), so
the graph is built from the facts `chaintrace trace` would read.
"""

from __future__ import annotations

import json

import pytest
from helpers.oracle import expected_graph, fixture_dirs, gcc_call_sites

from chaintrace.extract.facts import CallSite, Context, FileFacts, FunctionDef, FunctionRef
from chaintrace.graph.build import build_graph
from chaintrace.graph.model import CallGraph, graph_from_rows, graph_rows
from chaintrace.graph.symbols import is_stub
from chaintrace.graph.indirect import load_registrars

FIXTURES = [d.name for d in fixture_dirs()]

# Fixtures whose expectations need facts the extractor does not give yet
# (see the report of the trace issue); they pass as soon as it does.
EXTRACTOR_GAPS: dict[str, str] = {}


@pytest.fixture
def graph_of(fixture_trees):
    """Return a function: the call graph of a fixture, from its indexed facts."""
    return fixture_trees.graph


def site_edges(cg: CallGraph) -> set[tuple[str, str, str, str, int]]:
    """Return (from, to, kind, file, line) for every site of every edge."""
    return {(u, v, kind, site["file"], site["line"])
            for u, v, kind, data in cg.graph.edges(keys=True, data=True) for site in data["sites"]}


def describe(title: str, rows: set) -> str:
    return f"{title} ({len(rows)}):\n" + "".join(f"  {row}\n" for row in sorted(rows))


@pytest.mark.parametrize("name", FIXTURES)
def test_edges_equal_expected(name: str, request: pytest.FixtureRequest, graph_of) -> None:
    if name in EXTRACTOR_GAPS:
        request.applymarker(pytest.mark.xfail(reason=EXTRACTOR_GAPS[name], strict=False))
    expected = expected_graph(fixtures_dir(name))
    want = {(e["from"], e["to"], e["kind"], e["file"], e["line"]) for e in expected["edges"]
            if e.get("confidence") != "low"}
    got = site_edges(graph_of(name))
    assert got == want, describe("missing", want - got) + describe("extra", got - want)


@pytest.mark.parametrize("name", FIXTURES)
def test_sound_graph_adds_the_low_confidence_edges(name: str, fixture_trees) -> None:
    # --sound keeps the over-approximation: name-only matches (confidence low) come on top of the precise graph
    expected = expected_graph(fixtures_dir(name))
    low = {(e["from"], e["to"], e["kind"], e["file"], e["line"]) for e in expected["edges"] if e.get("confidence") == "low"}
    sound = site_edges(fixture_trees.graph(name, sound=True))
    assert low <= sound, describe("missing from the sound graph", low - sound)
    assert site_edges(fixture_trees.graph(name)) <= sound


@pytest.mark.parametrize("name", FIXTURES)
def test_absent_edges_are_absent(name: str, graph_of) -> None:
    cg = graph_of(name)
    present = {(a["from"], a["to"]) for a in expected_graph(fixtures_dir(name))["absent"]
               if cg.graph.has_edge(a["from"], a["to"])}
    assert not present, describe("present but expected absent", present)


@pytest.mark.parametrize("name", FIXTURES)
def test_low_confidence_as_expected(name: str, fixture_trees) -> None:
    cg = fixture_trees.graph(name, sound=True)
    for edge in expected_graph(fixtures_dir(name))["edges"]:
        data = cg.graph.get_edge_data(edge["from"], edge["to"], key=edge["kind"])
        if data is not None:
            assert data["confidence"] == edge.get("confidence", "high"), edge


@pytest.mark.parametrize("name", FIXTURES)
def test_direct_sites_equal_gcc(name: str, request: pytest.FixtureRequest, graph_of, gcc) -> None:
    if name in EXTRACTOR_GAPS:
        request.applymarker(pytest.mark.xfail(reason=EXTRACTOR_GAPS[name], strict=False))
    want = {(s.caller, s.callee, "direct", s.file, s.line) for s in gcc_call_sites(fixtures_dir(name))}
    got = {row for row in site_edges(graph_of(name)) if row[2] == "direct"}
    assert got == want, describe("missing (gcc has them)", want - got) + describe("extra (gcc has not)", got - want)


def test_a_fixture_tree_is_indexed_with_the_shared_header(fixture_trees) -> None:
    paths = {f.path for f in fixture_trees.facts("thread_entry")}
    assert {"worker.c", "worker.h", "util/qemu-thread-posix.c", "include/qemu-mini.h"} <= paths


def test_loop_macros_of_the_shared_header_are_no_calls(fixture_trees) -> None:
    # qemu-mini.h defines QTAILQ_FOREACH as a `for (`: the indexer's macro classes come from the whole tree
    facts = {f.path: f for f in fixture_trees.facts("foreach_macro")}
    assert "QTAILQ_FOREACH" not in {c.callee for c in facts["clients.c"].calls if c.via != "macro"}
    # the use is kept as a macro site, for what its expansion calls (nothing, in qemu-mini.h)
    assert "QTAILQ_FOREACH" in {c.callee for c in facts["clients.c"].calls if c.via == "macro"}


def fixtures_dir(name: str):
    return next(d for d in fixture_dirs() if d.name == name)


# -- node ids and name resolution -------------------------------------------------
def test_static_and_external_node_ids(graph_of):
    cg = graph_of("static_clash")
    assert cg.node("block/a.c::helper")["static"] is True
    assert cg.node("common_log")["file"] == "util/log.c"
    stub = cg.node("stubs/log.c::common_log")
    assert stub["static"] is False and stub["file"] == "stubs/log.c"


def test_external_leaves_are_marked(graph_of):
    cg = graph_of("thread_entry")
    assert cg.node("pthread_create")["external"] is True
    assert cg.node("qemu_thread_create")["external"] is False


def test_duplicate_definition_in_one_file_is_one_node(graph_of):
    cg = graph_of("ifdef_call")
    assert cg.ids_named("host_cpus") == ["host_cpus"]


def _def(name: str, file: str, static: bool = False) -> FunctionDef:
    return FunctionDef(name, file, 1, 3, static, False, "void", ())


def _call(caller: str, file: str, callee: str, line: int = 2, via: str = "name", **kw) -> CallSite:
    return CallSite(caller, file, line, 5, callee, via, (), Context(), **kw)


def test_ambiguous_external_prefers_the_non_stub_and_keeps_candidates():
    facts = [
        FileFacts("stubs/vm.c", functions=(_def("vm_stop", "stubs/vm.c"),)),
        FileFacts("system/cpus.c", functions=(_def("vm_stop", "system/cpus.c"),)),
        FileFacts("main.c", functions=(_def("main", "main.c"),), calls=(_call("main", "main.c", "vm_stop"),)),
    ]
    cg = build_graph(facts)
    assert cg.node("vm_stop")["file"] == "system/cpus.c"
    data = cg.graph.get_edge_data("main", "vm_stop", key="direct")
    assert data["ambiguous"] == ["vm_stop", "stubs/vm.c::vm_stop"]
    assert data["preferred"] == "non-stub definition preferred"
    assert is_stub("stubs/vm.c") and is_stub("target/i386/kvm/kvm-stub.c") and not is_stub("system/cpus.c")


def test_call_through_local_is_never_a_direct_edge_and_unresolved_is_a_diagnostic():
    facts = [FileFacts("a.c", functions=(_def("run", "a.c"), _def("cb", "a.c")),
                       calls=(_call("run", "a.c", "cb", via="param"), _call("run", "a.c", "s->ops->go", via="field",
                                                                          field="go", receiver="s->ops")))]
    cg = build_graph(facts)
    assert not cg.graph.has_edge("run", "cb")
    assert {(d["kind"], d["callee"]) for d in cg.diagnostics} == {("fnptr", "cb"), ("ops", "s->ops->go")}


def test_unknown_registrar_gives_a_generic_callback():
    ref = FunctionRef("handler", "a.c", 2, 20, "setup", "argument", call="my_register", arg_index=1)
    facts = [FileFacts("a.c", functions=(_def("setup", "a.c"), _def("handler", "a.c", static=True)),
                       calls=(_call("setup", "a.c", "my_register"),), refs=(ref,))]
    data = build_graph(facts).graph.get_edge_data("setup", "a.c::handler", key="callback")
    assert data["detail"] == "unknown registrar"
    assert data["proof"]["registrar"] == "my_register" and data["proof"]["arg_index"] == 1


def test_registrar_table_is_data():
    table = load_registrars()
    assert table["calls"]["qemu_thread_create"] == {2: "thread"}
    assert table["calls"]["qio_channel_socket_connect_async"][2] == "QIO"
    assert table["fields"]["notify"] == "notifier"
    custom = load_registrars('[[registrar]]\nname = "spawn"\nkind = "thread"\nargs = [0]\n')
    assert custom["calls"] == {"spawn": {0: "thread"}}


def test_library_idioms_are_data_and_name_known_registrars():
    # glib's GSourceFuncs layout, its dispatch called later with g_source_set_callback's callback, loading macros
    table = load_registrars()
    library = table["library"]
    assert library.layouts["GSourceFuncs"][:4] == ("prepare", "check", "dispatch", "finalize")
    assert library.later == (("GSourceFuncs", "dispatch", ((1, "g_source_set_callback", 1),)),)
    assert library.loads["qatomic_read"] == 0
    # every registrar argument a later call passes on is a registrar's argument the table knows
    for registrar, arg in library.registrars_later():
        assert arg in table["calls"][registrar], (registrar, arg)
    custom = load_registrars('[[later]]\nmember = "Ops.run"\nargs = [{param = 0, registrar = "keep", arg = 2}]\n')
    assert custom["library"].later == (("Ops", "run", ((0, "keep", 2),)),) and not custom["library"].layouts


# -- rows -------------------------------------------------------------------------
def test_rows_round_trip_and_are_plain_json(graph_of):
    cg = graph_of("mini_qemu")
    nodes, edges = graph_rows(cg)
    json.dumps([nodes, edges])  # plain rows
    back = graph_from_rows(nodes, edges, cg.diagnostics)
    assert graph_rows(back) == (nodes, edges)
    assert back.diagnostics == cg.diagnostics


def test_rows_of_a_chop_load_alone(graph_of):
    cg = graph_of("mini_qemu")
    _, edges = graph_rows(cg)
    part = [row for row in edges if row[0] == "qmp_migrate"]
    small = graph_from_rows([], part)
    assert small.node("qmp_migrate")["name"] == "qmp_migrate"
    assert small.node("migration/migration.c::migrate_prepare")["name"] == "migrate_prepare"


@pytest.mark.parametrize("name", FIXTURES)
def test_indirect_edges_agree_with_gcc(name: str) -> None:
    # gcc's -fdump-ipa-cgraph and -fcallgraph-info as the oracle for every expected non-direct edge:
    # an ops/fnptr/dispatch edge sits at an indirect call of its caller and reaches an address-taken
    # function; a thread/callback edge's source takes the address of its target (tests/helpers/gcc_ipa.py).
    from helpers.gcc_ipa import ipa_facts

    gcc = ipa_facts(fixtures_dir(name))
    wrong = []
    for edge in expected_graph(fixtures_dir(name))["edges"]:
        kind, source, target = edge["kind"], edge["from"], edge["to"]
        if kind in ("ops", "fnptr", "dispatch"):
            if (source, edge["file"], edge["line"]) not in gcc.indirect_sites or target not in gcc.address_taken:
                wrong.append(edge)
        elif kind in ("thread", "callback") and target not in gcc.takes_address.get(source, set()):
            wrong.append(edge)
    assert not wrong, describe("expected edges gcc does not back", {(e["from"], e["to"], e["kind"], e["line"]) for e in wrong})


def test_add_site_is_linear_and_keeps_the_first_seen_order() -> None:
    """One caller calling one callee 60,000 times (a 5 MB generated line): once a list scan per site, quadratic."""
    import time

    from chaintrace.graph.model import CallGraph

    cg = CallGraph()
    started = time.process_time()
    for col in range(60_000):
        cg.add_site("f", "g", "direct", {"file": "a.c", "line": 1, "col": col, "conditions": [], "loops": []})
    for col in range(0, 60_000, 7):  # the same sites again: kept once
        cg.add_site("f", "g", "direct", {"file": "a.c", "line": 1, "col": col, "conditions": [], "loops": []})
    assert time.process_time() - started < 10  # quadratic took minutes
    sites = cg.graph.get_edge_data("f", "g", key="direct")["sites"]
    assert [site["col"] for site in sites] == list(range(60_000))
    # same position, other data: a second site; proofs are kept once each, in order
    cg.add_site("f", "g", "direct", {"file": "a.c", "line": 1, "col": 0, "conditions": ["X"], "loops": []},
                proof={"file": "b.c", "line": 2, "col": 1})
    cg.add_site("f", "g", "direct", {"file": "a.c", "line": 1, "col": 0, "conditions": [], "loops": []},
                proof={"file": "b.c", "line": 2, "col": 1})
    data = cg.graph.get_edge_data("f", "g", key="direct")
    assert len(data["sites"]) == 60_001 and data["sites"][-1]["conditions"] == ["X"]
    assert data["proofs"] == [{"file": "b.c", "line": 2, "col": 1}]
