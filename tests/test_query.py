"""Queries: targets, paths on the mini_qemu fixture, filters, path counts with cycles, callers and callees."""

from __future__ import annotations

import networkx as nx
import pytest
from helpers.toy import toy

from chaintrace.query.entries import entry_node
from chaintrace.graph.model import CallGraph
from chaintrace.query.chop import ComponentChop
from chaintrace.query.lookup import UnknownFunction
from chaintrace.query.neighbours import callees, callers
from chaintrace.query.paths import Distances, count_paths, every_path, iter_paths
from chaintrace.query.results import PathCount
from chaintrace.query.targets import find_targets
from chaintrace.query.trace import trace

MIG = "migration/migration.c"
CHAIN = ["qmp_migrate", "socket_start_outgoing_migration", "migration/socket.c::socket_outgoing_migration",
         "migration_channel_connect", "migrate_fd_connect", f"{MIG}::migration_thread"]


@pytest.fixture(scope="module")
def mini(fixture_trees) -> tuple[CallGraph, list]:
    """The graph of mini_qemu as indexed, and its field writes."""
    return fixture_trees.graph("mini_qemu"), fixture_trees.writes("mini_qemu")


def chop(cg: CallGraph, source: str, target: str) -> dict[str, list[str]]:
    """Return the chop from networkx, the oracle: nodes reachable from `source` that reach `target`,
    each with its successors among them (once each, no self-loops) in the order of their ids."""
    inside = (nx.descendants(cg.graph, source) | {source}) & (nx.ancestors(cg.graph, target) | {target})
    return {node: sorted(set(cg.graph.successors(node)) & inside - {node}) for node in sorted(inside)}


# -- targets ----------------------------------------------------------------------
def test_assign_field_matches_every_write_with_its_statement(mini):
    cg, writes = mini
    sites = find_targets(cg, "assign:threshold_size", writes)
    assert [(s.function, s.line, s.statement) for s in sites] == [
        ("migrate_init", 56, "s->threshold_size = 0;"),
        (f"{MIG}::migration_update_counters", 121, "s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();"),
    ]
    guard = sites[1].context["guards"][0]
    assert guard["line"] == 112 and "BUFFER_DELAY" in guard["condition"]


def test_assign_expression_ignores_white_space(mini):
    cg, writes = mini
    assert len(find_targets(cg, "assign:s -> threshold_size", writes)) == 2
    assert find_targets(cg, "assign:t->threshold_size", writes) == []


def test_call_line_and_function_targets(mini):
    cg, _ = mini
    calls = find_targets(cg, "call:migration_rate_exceeded")
    assert {s.function for s in calls} >= {f"{MIG}::migration_thread", "migration/ram.c::ram_save_iterate"}
    line = find_targets(cg, f"{MIG}:121", read_line=lambda f, n: "  s->threshold_size = x;  ")
    assert [(s.kind, s.function, s.statement) for s in line] == [
        ("line", f"{MIG}::migration_update_counters", "s->threshold_size = x;")]
    (function,) = find_targets(cg, "migrate_init")
    assert function.kind == "function" and function.function == "migrate_init"
    with pytest.raises(UnknownFunction, match="migrate_init"):
        find_targets(cg, "migrate_int")


# -- paths on mini_qemu ---------------------------------------------------------------
def test_qmp_migrate_to_threshold_size_exact_paths(mini, fixture_trees):
    cg, writes = mini
    entry = entry_node(cg, "qmp:migrate", fixture_trees.tree("mini_qemu"))
    result = trace(cg, entry, find_targets(cg, "assign:threshold_size", writes))
    init, counters = result.targets
    assert init.paths == [["qmp_migrate", f"{MIG}::migrate_prepare", "migrate_init"]]
    assert counters.paths == [[*CHAIN, f"{MIG}::migration_update_counters"]]
    assert (counters.count.total, counters.count.exact, counters.omitted) == (1, True, 0)
    kinds = [[k for k, _ in cg.edges_between(a, b)] for a, b in zip(counters.paths[0], counters.paths[0][1:])]
    assert kinds == [["direct"], ["callback"], ["direct"], ["direct"], ["thread"], ["direct"]]


def test_path_through_the_ops_hop(mini):
    cg, _ = mini
    targets = [s for s in find_targets(cg, "call:migration_rate_exceeded") if s.function.endswith("ram_save_iterate")]
    (result,) = trace(cg, "qmp_migrate", targets).targets
    assert result.paths == [[*CHAIN, f"{MIG}::migration_iteration_run", "qemu_savevm_state_iterate",
                             "migration/ram.c::ram_save_iterate"]]
    assert cg.edges_between("qemu_savevm_state_iterate", "migration/ram.c::ram_save_iterate")[0][0] == "ops"


def test_edge_kind_filter_cuts_indirect_hops(mini):
    cg, writes = mini
    targets = find_targets(cg, "assign:threshold_size", writes)
    result = trace(cg, "qmp_migrate", targets, edge_kinds=["direct", "thread"])
    assert result.targets[0].count.total == 1
    assert result.targets[1].paths == [] and result.targets[1].count.total == 0


def test_avoid_via_and_max_depth(mini):
    cg, writes = mini
    targets = find_targets(cg, "assign:threshold_size", writes)
    avoided = trace(cg, "qmp_migrate", targets, avoid=["migrate_fd_connect"])
    assert avoided.targets[1].paths == [] and avoided.targets[0].count.total == 1
    via = trace(cg, "qmp_migrate", targets, via=["migration_thread"])
    assert via.targets[0].paths == [] and via.targets[1].paths == [[*CHAIN, f"{MIG}::migration_update_counters"]]
    assert via.targets[1].count.total == 1
    shallow = trace(cg, "qmp_migrate", targets, max_depth=5)
    assert shallow.targets[0].count.total == 1 and shallow.targets[1].count.total == 0
    assert trace(cg, "qmp_migrate", targets, max_depth=6).targets[1].count.total == 1


def test_entry_is_target(mini):
    cg, _ = mini
    (result,) = trace(cg, "migrate_init", find_targets(cg, "migrate_init")).targets
    assert result.paths == [["migrate_init"]] and result.count.total == 1


# -- counting -------------------------------------------------------------------------
def diamonds(k: int) -> CallGraph:
    edges = []
    for i in range(k):
        edges += [(f"n{i}", f"a{i}"), (f"n{i}", f"b{i}"), (f"a{i}", f"n{i + 1}"), (f"b{i}", f"n{i + 1}")]
    return toy(edges)


def test_count_on_a_dag_is_exact_and_enumeration_is_shortest_first():
    cg = diamonds(20)
    sub = chop(cg, "n0", "n20")
    assert count_paths(sub, "n0", "n20").total == 2 ** 20
    cg = toy([("s", "a"), ("a", "b"), ("b", "t"), ("s", "t"), ("s", "c"), ("c", "t")])
    sub = chop(cg, "s", "t")
    assert [len(p) for p in iter_paths(sub, "s", "t")] == [2, 3, 4]
    result = trace(cg, "s", find_targets(cg, "t"), max_paths=2).targets[0]
    assert len(result.paths) == 2 and result.omitted == 1 and result.count.method == "dag"


CYCLIC = [("s", "a"), ("s", "b"), ("a", "b"), ("b", "a"), ("a", "c"), ("b", "c"), ("c", "t"), ("a", "t"),
          ("c", "d"), ("d", "c"), ("d", "t"), ("t", "a")]


def test_count_with_cycles_is_exact_simple_paths():
    cg = toy(CYCLIC)
    sub = chop(cg, "s", "t")
    brute = list(nx.all_simple_paths(nx.DiGraph(sub), "s", "t"))
    count = count_paths(sub, "s", "t")
    assert (count.total, count.exact, count.method) == (len(brute), True, "scc")
    # shortest first, then in the order of node ids
    assert list(iter_paths(sub, "s", "t")) == sorted(brute, key=lambda path: (len(path), path))
    bounded = count_paths(sub, "s", "t", max_depth=3)
    assert bounded.total == sum(1 for p in brute if len(p) <= 4) and bounded.exact


def test_every_path_lists_what_iter_paths_lists_in_its_order_or_gives_up():
    sub = chop(toy(CYCLIC), "s", "t")
    brute = sorted(nx.all_simple_paths(nx.DiGraph(sub), "s", "t"), key=lambda path: (len(path), path))
    assert every_path(sub, "s", "t") == list(iter_paths(sub, "s", "t")) == brute
    assert every_path(sub, "s", "t", max_depth=3) == [p for p in brute if len(p) <= 4]
    no_b = every_path(sub, "s", "t", hop_ok=lambda path, node: node != "b")  # a hop check prunes like iter_paths'
    assert no_b == list(iter_paths(sub, "s", "t", hop_ok=lambda path, node: node != "b")) == [p for p in brute if "b" not in p]
    assert every_path(sub, "s", "t", limit=len(brute) - 1) is None  # more than asked for: iter_paths lists the shortest
    assert every_path(sub, "s", "t", budget=5) is None
    assert every_path(sub, "s", "s") == [["s"]] and every_path(sub, "s", "nowhere") == []


def test_count_past_the_budget_is_a_lower_bound():
    edges = [(f"v{i}", f"v{j}") for i in range(7) for j in range(7) if i != j] + [("s", "v0"), ("v6", "t")]
    sub = chop(toy(edges), "s", "t")
    exact = count_paths(sub, "s", "t")
    assert exact.exact and exact.total == 1 + 5 + 20 + 60 + 120 + 120  # v0 to v6 through 0..5 of the other 5
    count = count_paths(sub, "s", "t", budget=50)
    assert not count.exact and count.method == "scc lower bound"
    assert count.total == 1  # the component holds no target: one path per exit, and it has one (v6 -> t)


def test_lower_bound_counts_every_exit_and_is_one_inside_the_target_component():
    ring = [(f"v{i}", f"v{j}") for i in range(5) for j in range(5) if i != j]
    exits = [("v1", "x"), ("v2", "y"), ("x", "t"), ("y", "t"), ("x", "y")]
    sub = chop(toy(ring + exits + [("s", "v0")]), "s", "t")
    assert count_paths(sub, "s", "t", budget=10) == PathCount(3, False, "scc lower bound")  # v1-x-t, v1-x-y-t, v2-y-t
    inside = chop(toy(ring + [("s", "v0"), ("v3", "t"), ("t", "v4")]), "s", "t")
    assert count_paths(inside, "s", "t", budget=10) == PathCount(1, False, "scc lower bound")


def test_given_components_give_the_same_counts_as_searched_ones():
    cg = toy(CYCLIC + [("t", "u"), ("s", "u"), ("u", "t")])
    adj = cg.adjacency()
    sub = {adj.index(node): [adj.index(other) for other in nodes] for node, nodes in chop(cg, "s", "t").items()}
    known = count_paths(sub, adj.index("s"), adj.index("t"), component_of=adj.components.__getitem__)
    assert known == count_paths(sub, adj.index("s"), adj.index("t"))
    assert known.total == len(list(nx.all_simple_paths(nx.DiGraph(sub), adj.index("s"), adj.index("t"))))


def component_chop(cg: CallGraph, source: str, target: str) -> tuple[ComponentChop, int, int]:
    adj = cg.adjacency()
    s, t = adj.index(source), adj.index(target)
    return ComponentChop(adj, adj.chop_components(s, t), s), s, t


@pytest.mark.parametrize("edges", [CYCLIC, CYCLIC + [("t", "u"), ("s", "u"), ("u", "t"), ("a", "z")],
                                   [(f"v{i}", f"v{j}") for i in range(5) for j in range(5) if i != j]
                                   + [("v1", "x"), ("v2", "y"), ("x", "t"), ("y", "t"), ("x", "y"), ("s", "v0")]])
@pytest.mark.parametrize("budget", [10, 200_000])
def test_a_component_chop_counts_and_lists_as_the_chop_of_its_nodes(edges, budget):
    cg = toy(edges)
    whole, s, t = component_chop(cg, "s", "t")
    adj = cg.adjacency()
    plain = {adj.index(node): [adj.index(other) for other in nodes] for node, nodes in chop(cg, "s", "t").items()}
    assert dict(whole.items()) == plain
    fresh, _, _ = component_chop(cg, "s", "t")
    assert count_paths(fresh, s, t, budget=budget, component_of=adj.components.__getitem__,
                       shape=fresh.count_shape()) == count_paths(plain, s, t, budget=budget)
    assert list(iter_paths(fresh, s, t, distance=Distances(t, fresh.predecessors))) == list(iter_paths(plain, s, t))


def test_a_component_chop_reads_only_the_successor_lists_a_search_needs():
    # a 300-node cycle through the target, entered at r0, which calls the target
    ring = [(f"r{i}", f"r{(i + 1) % 300}") for i in range(300)]
    cg = toy(ring + [("s", "r0"), ("r0", "t"), ("t", "r1")])
    whole, s, t = component_chop(cg, "s", "t")
    assert len(whole) == 302
    r0 = cg.adjacency().index("r0")
    shape = whole.count_shape()  # only s leaves its component: the ring's 301 lists are not read for counting
    assert whole.lists == {s: [r0]} and shape["entered"] == {s, r0} and sorted(map(len, shape["components"])) == [1, 301]
    ranks = cg.adjacency().components.__getitem__
    assert count_paths(whole, s, t, budget=100, component_of=ranks, shape=shape) == PathCount(1, False, "scc lower bound")
    assert len(whole.lists) == 1  # the ring's walk would not fit the budget: not taken, nothing read
    assert count_paths(whole, s, t, component_of=ranks, shape=shape) == PathCount(1, True, "scc")
    whole, _, _ = component_chop(cg, "s", "t")
    distance = Distances(t, whole.predecessors)
    paths = iter_paths(whole, s, t, distance=distance)
    assert [cg.adjacency().ids[node] for node in next(paths)] == ["s", "r0", "t"]
    assert len(whole.lists) <= 3 and distance.depth <= 2  # s, r0 and t (and their predecessors) are read
    assert list(paths) == [] and len(distance.known) == 302  # the long way round ends at r0 again: walked to the end


def test_distances_walk_as_deep_as_asked():
    pred = {"t": ["a"], "a": ["b"], "b": ["c"], "c": []}
    distance = Distances("t", pred.__getitem__)
    distance.walk(1)
    assert distance.known == {"t": 0, "a": 1}
    assert distance.find("c") == 3 and distance.find("elsewhere") is None
    assert Distances.finished({"t": 0}).find("a") is None


# -- neighbourhoods -------------------------------------------------------------------
def test_callers_and_callees(mini):
    cg, _ = mini
    assert dict(callers(cg, "migration_thread")) == {"migrate_fd_connect": 1}
    near = dict(callees(cg, "migrate_fd_connect", depth=2))
    assert near[f"{MIG}::migration_thread"] == 1 and near[f"{MIG}::migration_update_counters"] == 2
    assert f"{MIG}::migration_thread" not in dict(callees(cg, "migrate_fd_connect", edge_kinds=["direct"]))
    with pytest.raises(UnknownFunction):
        list(callers(cg, "no_such_function"))


def test_via_counts_cycles_in_both_legs_exactly():
    edges = [("s", "a"), ("a", "b"), ("b", "a"), ("a", "v"), ("b", "v"), ("v", "c"), ("c", "d"), ("d", "c"),
             ("c", "t"), ("d", "t"), ("s", "t")]
    cg = toy(edges)
    (result,) = trace(cg, "s", find_targets(cg, "t"), via=["v"]).targets
    brute = [p for p in nx.all_simple_paths(nx.DiGraph(edges), "s", "t") if "v" in p]
    assert len(brute) == 4 and sorted(result.paths) == sorted(brute)
    assert (result.count.total, result.count.exact, result.count.method) == (4, True, "scc")


def test_overlapping_via_legs_are_counted_exactly_by_the_walk_that_lists_them():
    # the legs' combinations that repeat a function are not simple paths: the default trace walks every path
    # (each hop checked) and counts what it keeps, so the count is exact where the graph's is an upper bound
    cg = toy(CYCLIC)
    (result,) = trace(cg, "s", find_targets(cg, "t"), via=["c"]).targets
    brute = [p for p in nx.all_simple_paths(nx.DiGraph(CYCLIC), "s", "t") if "c" in p]
    assert sorted(result.paths) == sorted(brute)
    assert (result.count.total, result.count.exact, result.count.method) == (len(brute), True, "enumerated")


def test_with_undecided_overlapping_via_legs_count_an_upper_bound():
    cg = toy(CYCLIC)
    (result,) = trace(cg, "s", find_targets(cg, "t"), via=["c"], undecided=True).targets
    brute = [p for p in nx.all_simple_paths(nx.DiGraph(CYCLIC), "s", "t") if "c" in p]
    assert sorted(result.paths) == sorted(brute)
    assert result.count.method == "scc, via legs overlap: upper bound" and not result.count.exact
    assert result.count.total >= len(brute)


def test_targets_of_one_component_share_their_chop_but_not_their_counts():
    edges = [("s", "a"), ("a", "t1"), ("t1", "t2"), ("t2", "a"), ("s", "t2"), ("t1", "b"), ("b", "t2")]
    cg = toy(edges)
    first, second = trace(cg, "s", find_targets(cg, "t1") + find_targets(cg, "t2")).targets
    for result, target in ((first, "t1"), (second, "t2")):
        brute = list(nx.all_simple_paths(nx.DiGraph(edges), "s", target))
        assert (result.count.total, result.count.exact) == (len(brute), True)
        assert sorted(result.paths) == sorted(brute)


def test_a_lower_bound_is_never_below_the_paths_listed():
    from chaintrace.query.results import PathCount
    from chaintrace.query.trace import at_least_listed

    assert at_least_listed(PathCount(4655, False, "scc lower bound"), 11761) == \
        PathCount(11761, False, "scc lower bound, raised to the paths enumerated")
    assert at_least_listed(PathCount(4655, False, "scc lower bound"), 12) == PathCount(4655, False, "scc lower bound")
    assert at_least_listed(PathCount(7, True, "dag"), 7) == PathCount(7, True, "dag")
    # an upper bound (via legs overlap) is never raised: it may exceed the paths, not fall below them
    assert at_least_listed(PathCount(3, False, "dag, via legs overlap: upper bound"), 3).total == 3
