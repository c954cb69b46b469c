"""The integer form of a call graph: CSR arrays, round trip through bytes, walks, components, and its store."""

from __future__ import annotations

import networkx as nx
import pytest

from chaintrace.errors import DamagedCache
from chaintrace.graph.adjacency import Adjacency
from chaintrace.graph.components import strongly_connected
from chaintrace.graph.model import graph_from_rows
from chaintrace.store.cache import Store

EDGES = [("a", "b", "direct", False), ("a", "b", "ops", True), ("b", "c", "thread", False), ("c", "a", "callback", False),
         ("c", "d", "ops", True), ("d", "d", "direct", False), ("e", "a", "direct", False)]


@pytest.fixture
def adj() -> Adjacency:
    return Adjacency.from_edges(["lonely"], EDGES)


def names(adj: Adjacency, found) -> list[str]:
    return sorted(adj.ids[node] for node in found)


def test_nodes_are_sorted_ids_and_edges_keep_kind_and_confidence(adj):
    assert adj.ids == ["a", "b", "c", "d", "e", "lonely"]
    a, b, d = adj.index("a"), adj.index("b"), adj.index("d")
    assert adj.kinds_by_callee("a") == {"b": ["direct", "ops"]} and adj.kinds_by_callee("nope") == {}
    assert list(adj.neighbours(a, True, adj.allowed(["ops"]))) == [b]
    assert list(adj.neighbours(a, True, adj.allowed(["ops"], "high"))) == []  # a -> b by ops is low confidence
    assert adj.index("nope") is None
    assert list(adj.neighbours(a, True, adj.allowed())) == [b]  # two kinds, one neighbour
    assert list(adj.neighbours(d, False, adj.allowed())) == [adj.index("c"), d]


def test_round_trip_through_bytes(adj):
    back = Adjacency.from_bytes(adj.to_bytes())
    assert back.ids == adj.ids and back.index("e") == 4
    for name in ("out_offsets", "out_nodes", "out_flags", "in_offsets", "in_nodes", "in_flags", "simple_offsets",
                 "simple_nodes", "components", "comp_offsets", "comp_nodes", "comp_in_offsets", "comp_in",
                 "comp_out_offsets", "comp_out", "comp_inner_edges"):
        assert getattr(back, name) == getattr(adj, name), name


def test_the_components_form_a_dag_with_members_neighbours_and_inner_edges(adj):
    rank = {name: adj.components[adj.index(name)] for name in adj.ids}
    cycle = rank["a"]
    assert rank["b"] == rank["c"] == cycle and len({cycle, rank["d"], rank["e"], rank["lonely"]}) == 4
    assert names(adj, adj.members(cycle)) == ["a", "b", "c"] and names(adj, adj.members(rank["d"])) == ["d"]
    assert list(adj.comp_out[adj.comp_out_offsets[cycle]:adj.comp_out_offsets[cycle + 1]]) == [rank["d"]]
    assert list(adj.comp_in[adj.comp_in_offsets[cycle]:adj.comp_in_offsets[cycle + 1]]) == [rank["e"]]
    assert adj.comp_inner_edges[cycle] == 3 and adj.comp_inner_edges[rank["d"]] == 0  # a self-loop is no edge
    assert rank["d"] < cycle < rank["e"]  # sinks first


def test_chop_components_are_those_on_a_path_from_source_to_target(adj):
    rank = {name: adj.components[adj.index(name)] for name in adj.ids}
    assert adj.chop_components(adj.index("e"), adj.index("d")) == sorted([rank["e"], rank["a"], rank["d"]])
    assert adj.chop_components(adj.index("b"), adj.index("a")) == [rank["a"]]
    assert adj.chop_components(adj.index("d"), adj.index("a")) == []  # against the edges
    assert adj.chop_components(adj.index("lonely"), adj.index("d")) == []
    wide = Adjacency.from_edges([], [("s", "x", "direct", False), ("s", "y", "direct", False), ("x", "t", "direct", False),
                                     ("y", "z", "direct", False), ("q", "t", "direct", False)])
    ranks = wide.chop_components(wide.index("s"), wide.index("t"))  # y and z lead elsewhere, q is not reached
    assert names(wide, (node for r in ranks for node in wide.members(r))) == ["s", "t", "x"]


@pytest.mark.parametrize("data", [b"", b"junk", b"\x00" * 10])
def test_bytes_that_are_not_an_adjacency_are_refused(data):
    with pytest.raises(ValueError):
        Adjacency.from_bytes(data)


def test_reach_filters_kinds_confidence_banned_depth_and_within(adj):
    a = adj.index("a")
    assert names(adj, adj.reach([a], True, adj.allowed())) == ["a", "b", "c", "d"]
    assert names(adj, adj.reach([a], True, adj.allowed(["direct", "thread"]))) == ["a", "b", "c"]
    assert names(adj, adj.reach([a], True, adj.allowed(min_confidence="high"))) == ["a", "b", "c"]
    assert names(adj, adj.reach([a], True, adj.allowed(), banned=frozenset({adj.index("c")}))) == ["a", "b"]
    assert adj.reach([a], True, adj.allowed(), depth=1) == {a: 0, adj.index("b"): 1}
    assert names(adj, adj.reach([adj.index("d")], False, adj.allowed())) == ["a", "b", "c", "d", "e"]
    within = {adj.index(n) for n in "bcd"}  # a and e are outside: the walk back stops at b
    assert names(adj, adj.reach([adj.index("d")], False, adj.allowed(), within=within)) == ["b", "c", "d"]


def test_successors_among_drop_self_loops_repeats_and_outsiders(adj):
    members = {adj.index(n) for n in "abcd"}
    succ = adj.successors_among(members, adj.allowed())
    assert {adj.ids[k]: [adj.ids[v] for v in vs] for k, vs in succ.items()} == {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": []}
    high = adj.successors_among(members, adj.allowed(min_confidence="high"))
    assert [adj.ids[v] for v in high[adj.index("c")]] == ["a"]


def test_components_match_networkx_and_come_sinks_first(adj):
    graph = nx.DiGraph((src, dst) for src, dst, _, _ in EDGES)
    graph.add_node("lonely")
    ours = {frozenset(adj.ids[n] for n in range(len(adj)) if adj.components[n] == rank) for rank in set(adj.components)}
    assert ours == {frozenset(c) for c in nx.strongly_connected_components(graph)}
    for src, dst, _, _ in EDGES:  # an edge never goes to a component ranked after its own
        assert adj.components[adj.index(dst)] <= adj.components[adj.index(src)]


def test_strongly_connected_on_a_long_chain_needs_no_recursion():
    succ = {i: [i + 1] for i in range(50_000)} | {50_000: [0]}
    (component,) = strongly_connected(succ, succ)
    assert len(component) == 50_001


def test_graph_store_drops_its_state_when_the_adjacency_is_missing_or_damaged(tmp_path):
    # rebuilding it from the edge rows would trust rows no checksum was checked for: the state is resolved again
    cg = graph_from_rows([], [(src, dst, kind, {"sites": [], "confidence": "low" if low else "high"})
                              for src, dst, kind, low in EDGES])
    with Store(tmp_path) as store:
        db = store.db
        store.graph_tables("s1").save(cg, [])
        saved = store.graph_tables("s1").adjacency()
        assert saved.ids == ["a", "b", "c", "d", "e"]
        good = db.execute("SELECT data FROM g_adjacency").fetchone()[0]
        damages = [b"damaged", None] + [good[:i] + bytes([good[i] ^ 1]) + good[i + 1:] for i in range(0, len(good), 7)]
        for damaged in damages:  # a flipped byte anywhere: the checksum refuses it
            store.graph_tables("s1").save(cg, [])
            if damaged is None:
                db.execute("DELETE FROM g_adjacency")
            else:
                db.execute("UPDATE g_adjacency SET data = ?", (damaged,))
            with pytest.raises(DamagedCache, match="adjacency"):
                store.graph_tables("s1").adjacency()
            assert not store.graph_tables("s1").exists()
            assert db.execute("SELECT count(*) FROM g_edges WHERE state = 's1'").fetchone()[0] == 0


def test_adjacency_bytes_out_of_range_are_refused_even_with_a_good_layout(adj):
    data = bytearray(adj.to_bytes())
    for i in range(12, len(data)):  # past magic and format: any changed byte is a wrong length, id or index
        damaged = bytes(data[:i]) + bytes([data[i] ^ 0x40]) + bytes(data[i + 1:])
        try:
            back = Adjacency.from_bytes(damaged)
        except ValueError:
            continue
        # what still decodes only moved a value within range: it is an adjacency of the same nodes
        assert len(back.ids) == len(adj.ids)


@pytest.mark.parametrize("name", ["out_nodes", "in_nodes", "simple_nodes", "comp_nodes", "components", "comp_in",
                                  "comp_out", "out_flags", "in_flags", "out_offsets"])
@pytest.mark.parametrize("where", ["negative", "one past the end"])
def test_each_index_array_refuses_a_value_out_of_range(adj, name, where):
    """A layout that is right in every length, but one value below zero or one past its limit, is refused."""
    from chaintrace.graph.kinds import EDGE_KINDS

    limits = {"out_nodes": len(adj.ids), "in_nodes": len(adj.ids), "simple_nodes": len(adj.ids),
              "comp_nodes": len(adj.ids), "components": len(adj.comp_offsets) - 1, "comp_in": len(adj.comp_offsets) - 1,
              "comp_out": len(adj.comp_offsets) - 1, "out_flags": 4 * len(EDGE_KINDS), "in_flags": 4 * len(EDGE_KINDS),
              "out_offsets": len(adj.out_nodes) + 1}
    values = getattr(adj, name)
    assert Adjacency.from_bytes(adj.to_bytes()).ids == adj.ids  # untouched, it loads
    kept = values[1]
    values[1] = -1 if where == "negative" else limits[name]
    with pytest.raises(ValueError, match="do not match its nodes"):
        Adjacency.from_bytes(adj.to_bytes())
    values[1] = limits[name] - 1 if name != "out_offsets" else kept  # the largest value allowed loads
    Adjacency.from_bytes(adj.to_bytes())


def test_csr_of_random_edges_with_repeats_matches_the_edge_set_both_ways():
    # the edges are read into packed ints (graph.csr); the oracle here is the plain set of (node, neighbour, flag)
    import random

    from chaintrace.graph.kinds import EDGE_KINDS

    rng = random.Random(7)
    nodes = [f"n{i}" for i in range(40)]
    edges = [(rng.choice(nodes), rng.choice(nodes), rng.choice(EDGE_KINDS), rng.random() < 0.3, rng.random() < 0.2)
             for _ in range(300)]
    edges += edges[:50]  # the same edge twice is one edge
    adj = Adjacency.from_edges(nodes[:10] + ["zz-lonely"], edges)
    assert adj.ids == sorted(set(nodes[:10]) | {"zz-lonely"} | {e[0] for e in edges} | {e[1] for e in edges})
    flag = {(s, d, k, low, und): EDGE_KINDS.index(k) * 4 + und * 2 + low for s, d, k, low, und in edges}
    want = sorted({(adj.index(s), adj.index(d), flag[e]) for e in edges for s, d, *_ in [e]})
    got = [(i, adj.out_nodes[j], adj.out_flags[j]) for i in range(len(adj.ids))
           for j in range(adj.out_offsets[i], adj.out_offsets[i + 1])]
    assert got == want
    back = [(i, adj.in_nodes[j], adj.in_flags[j]) for i in range(len(adj.ids))
            for j in range(adj.in_offsets[i], adj.in_offsets[i + 1])]
    assert back == sorted((d, s, f) for s, d, f in want)  # by callee, then caller, then flag
