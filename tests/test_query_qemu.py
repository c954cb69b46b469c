"""Traces on real QEMU (facts of migration/, io/, util/, include/): qmp_migrate to the threshold_size writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_graph_qemu import qemu_graph
from test_graph_facts import qemu_facts

from chaintrace.query.entries import entry_node
from chaintrace.query.results import Trace
from chaintrace.query.targets import find_targets
from chaintrace.query.trace import trace
from chaintrace.render.document import trace_document
from chaintrace.render.text import render_trace

MIG = "migration/migration.c"
CHAIN_10_2 = ["qmp_migrate", f"{MIG}::qmp_migrate_finish", "socket_start_outgoing_migration",
              "migration/socket.c::socket_outgoing_migration", "migration_channel_connect", "migration_connect",
              f"{MIG}::migration_thread", "migration_rate_limit", f"{MIG}::migration_update_counters"]
CHAIN_7_2 = ["qmp_migrate", "socket_start_outgoing_migration",
             "migration/socket.c::socket_start_outgoing_migration_internal",
             "migration/socket.c::socket_outgoing_migration", "migration_channel_connect", "migrate_fd_connect",
             f"{MIG}::migration_thread", "migration_rate_limit", f"{MIG}::migration_update_counters"]


def threshold_trace(root: Path, **options) -> Trace:
    cg = qemu_graph(root)
    writes = [w for f in qemu_facts(root) for w in f.writes]
    return trace(cg, entry_node(cg, "qmp:migrate", root), find_targets(cg, "assign:threshold_size", writes), **options)


def by_function(result: Trace) -> dict:
    return {t.site.function: t for t in result.targets}


def test_qmp_migrate_to_threshold_size_10_2(qemu_tree):
    root = qemu_tree("10.2").path
    result = threshold_trace(root)
    statements = {(t.site.function, t.site.statement) for t in result.targets}
    assert ("migrate_init", "s->threshold_size = 0;") in statements
    counters = by_function(result)[f"{MIG}::migration_update_counters"]
    assert CHAIN_10_2 in counters.paths
    assert counters.count.exact and counters.count.total >= len(counters.paths) > 10
    kinds = [[k for k, _ in qemu_graph(root).edges_between(a, b)] for a, b in zip(CHAIN_10_2, CHAIN_10_2[1:])]
    assert kinds == [["direct"], ["direct"], ["callback"], ["direct"], ["direct"], ["thread"], ["direct"], ["direct"]]


def test_paths_through_bg_migration_thread_10_2(qemu_tree):
    result = threshold_trace(qemu_tree("10.2").path, via=["bg_migration_thread"])
    counters = by_function(result)[f"{MIG}::migration_update_counters"]
    assert counters.paths and all(f"{MIG}::bg_migration_thread" in path for path in counters.paths)
    assert [*CHAIN_10_2[:6], f"{MIG}::bg_migration_thread", f"{MIG}::migration_update_counters"] in counters.paths
    assert counters.count.total >= len(counters.paths)


def test_paths_through_the_ops_hop_10_2(qemu_tree):
    root = qemu_tree("10.2").path
    result = threshold_trace(root, via=["ram_save_iterate"], max_paths=5)
    counters = by_function(result)[f"{MIG}::migration_update_counters"]
    hop = ("qemu_savevm_state_iterate", "migration/ram.c::ram_save_iterate")
    assert counters.paths and all(hop in zip(path, path[1:]) for path in counters.paths)
    document = trace_document(qemu_graph(root), result)
    ops = [e for e in document["edges"] if (e["src"], e["dst"]) == hop]
    assert ops[0]["kind"] == "ops" and ops[0]["sites"][0]["callee"] == "se->ops->save_live_iterate"


def test_text_of_the_headline_trace_10_2(qemu_tree):
    root = qemu_tree("10.2").path
    result = threshold_trace(root, via=["migration/socket.c::socket_outgoing_migration", "migration_thread"],
                             max_paths=1)
    text = render_trace(qemu_graph(root), result)
    assert "⇒ callback (QIO) via qio_channel_socket_connect_async(arg 2) at migration/socket.c:103" in text
    assert "⇒ thread via qemu_thread_create(arg 2) at migration/migration.c:4122" in text
    assert "in while (migration_is_active())" in text
    assert "◆ s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();  migration/migration.c:3418" in text


def test_qmp_migrate_to_threshold_size_7_2(qemu_tree):
    result = threshold_trace(qemu_tree("7.2").path)
    counters = by_function(result)[f"{MIG}::migration_update_counters"]
    assert CHAIN_7_2 in counters.paths
    assert all("migrate_fd_connect" in path for path in counters.paths)


@pytest.mark.parametrize("family", ["7.2", "10.0", "10.2"])
def test_every_family_reaches_both_writes(qemu_tree, family):
    result = threshold_trace(qemu_tree(family).path)
    functions = {t.site.function for t in result.targets if t.paths}
    assert {"migrate_init", f"{MIG}::migration_update_counters"} <= functions
