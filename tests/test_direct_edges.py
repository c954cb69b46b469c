"""Direct edges held as calls (graph.direct_edges) give the rows networkx attribute dicts gave, in the same order.

The oracle is `CallGraph.add_site`, which still builds the other kinds: the
same calls fed to it (direct edges first, then other kinds, as the resolver
adds them) must list the same edges, data and order as `DirectEdges` merged
with those other kinds. Then every fixture, through the real indexer: a
graph built lean (as `index` saves it) lists what the settled graph lists.
"""

from __future__ import annotations

import pytest
from helpers.oracle import fixture_dirs

from chaintrace.extract.facts import CallSite, Context, Loop
from chaintrace.graph.build import build_graph
from chaintrace.graph.direct_edges import DirectEdges, merged
from chaintrace.graph.model import CallGraph, graph_rows
from chaintrace.graph.sites import call_site

LOOP = Context(loops=(Loop("for", "i < n", 3),), conditions=("defined(CONFIG_X)",))


def _call(caller: str, callee: str, line: int, col: int = 5, context: Context = Context()) -> CallSite:
    return CallSite(caller, "a.c", line, col, callee, "name", (), context)


def _calls() -> list[tuple[str, str, CallSite, str, dict | None]]:
    """Return (src, dst, call, macro, data) of direct calls with repeats, a long edge, macros and ambiguity."""
    calls = [("main", "f", _call("main", "f", 10), "", None),
             ("main", "g", _call("main", "g", 11), "", {"ambiguous": ["g", "b.c::g"], "preferred": "non-stub"}),
             ("main", "f", _call("main", "f", 10), "", None),  # the same site again: kept once
             ("main", "f", _call("main", "f", 10), "LOCK", None),  # same position, another macro: a site of its own
             ("main", "g", _call("main", "g", 12), "", {"ambiguous": ["other"], "preferred": "ignored"}),
             ("main", "f", _call("main", "f", 13, context=LOOP), "", None),
             ("main", "f", _call("main", "f", 13, context=LOOP), "", None),
             ("h", "f", _call("h", "f", 20), "", None)]
    for line in range(30, 60):  # past the scanned length: the edge gets a set, repeats still dropped
        calls.append(("h", "g", _call("h", "g", line), "", None))
        calls.append(("h", "g", _call("h", "g", 30 + (line * 7) % 30), "", None))
    return calls


def test_direct_edges_list_what_add_site_lists_in_its_order() -> None:
    oracle, lean = CallGraph(), CallGraph(direct=DirectEdges())
    for cg in (oracle, lean):
        for node in ("main", "f", "g", "h", "cb"):
            cg.add_function(node, node, "a.c", 1, 2, False)
    for src, dst, call, macro, data in _calls():
        oracle.add_site(src, dst, "direct", call_site(call, **({"macro": macro} if macro else {})), **(data or {}))
        lean.direct.add(src, dst, call, macro, data)
    for cg in (oracle, lean):  # other kinds after: to a callee a direct edge reaches, and to one it does not
        cg.add_site("main", "f", "fnptr", call_site(_call("main", "p", 40)), proof={"how": "copy"})
        cg.add_site("main", "cb", "callback", call_site(_call("main", "reg", 41)), proof={"how": "argument"})
        cg.add_site("h", "g", "ops", call_site(_call("h", "o", 42)), proof={"how": "initializer"})
    want = list(oracle.graph.edges(keys=True, data=True))
    assert [edge[:3] for edge in want] == [("main", "f", "direct"), ("main", "f", "fnptr"), ("main", "g", "direct"),
                                           ("main", "cb", "callback"), ("h", "f", "direct"), ("h", "g", "direct"),
                                           ("h", "g", "ops")]
    assert len(want[5][3]["sites"]) == 30 and len(want[0][3]["sites"]) == 3
    assert list(lean.edges()) == want
    # without data (the adjacency's walk): None for every direct edge, even after a callee other kinds reach too
    bare = list(merged(lean.graph.nodes, lean.direct, lean.graph.succ, with_data=False))
    assert [(edge[:3], edge[3] is None) for edge in bare] == [(edge[:3], edge[2] == "direct") for edge in want]
    assert graph_rows(lean) == graph_rows(oracle)
    assert lean.adjacency().to_bytes() == oracle.adjacency().to_bytes()
    assert lean.edges_between("main", "f") == oracle.edges_between("main", "f")  # a lookup settles them
    assert lean.direct is None and list(lean.graph.edges(keys=True, data=True)) == want


@pytest.mark.parametrize("name", [d.name for d in fixture_dirs()])
def test_a_lean_graph_saves_the_rows_of_the_settled_graph(name: str, fixture_trees) -> None:
    facts = fixture_trees.facts(name)
    lean, settled = build_graph(facts, lean=True), build_graph(facts)
    assert lean.direct is not None and settled.direct is None
    assert graph_rows(lean) == graph_rows(settled)
    assert lean.adjacency().to_bytes() == settled.adjacency().to_bytes()


@pytest.mark.parametrize("name", [d.name for d in fixture_dirs()])
def test_a_graph_built_consuming_its_facts_is_the_graph_built_from_a_copy(name: str, fixture_trees) -> None:
    # store.graphs builds with consume=True, so that the facts the build replaces are freed as it goes
    facts = fixture_trees.facts(name)
    given = list(facts)
    consumed = build_graph(given, lean=True, consume=True)
    assert given == []
    kept = list(facts)
    assert graph_rows(consumed) == graph_rows(build_graph(kept, lean=True)) and kept == list(facts)
