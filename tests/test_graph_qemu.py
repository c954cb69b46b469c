"""The call graph of real QEMU (migration/, io/, util/, include/): the edges of the migration chain."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from test_graph_facts import qemu_facts

from chaintrace.graph.build import build_graph
from chaintrace.graph.model import CallGraph


@functools.cache
def qemu_graph(root: Path) -> CallGraph:
    return build_graph(qemu_facts(root))


def edge(cg: CallGraph, src: str, dst: str, kind: str) -> dict:
    data = cg.graph.get_edge_data(src, dst, key=kind)
    assert data is not None, f"no {kind} edge {src} -> {dst}; edges: {cg.graph.get_edge_data(src, dst)}"
    return data


@pytest.fixture
def graph_10_2(qemu_tree) -> CallGraph:
    return qemu_graph(qemu_tree("10.2").path)


def test_migration_chain_edges_10_2(graph_10_2):
    cg = graph_10_2
    edge(cg, "qmp_migrate", "migration/migration.c::qmp_migrate_finish", "direct")
    edge(cg, "migration/migration.c::qmp_migrate_finish", "socket_start_outgoing_migration", "direct")
    callback = edge(cg, "socket_start_outgoing_migration", "migration/socket.c::socket_outgoing_migration", "callback")
    assert callback["detail"] == "QIO"
    assert callback["proof"]["registrar"] == "qio_channel_socket_connect_async" and callback["proof"]["arg_index"] == 2
    edge(cg, "migration/socket.c::socket_outgoing_migration", "migration_channel_connect", "direct")
    edge(cg, "migration_channel_connect", "migration_connect", "direct")
    thread = edge(cg, "migration_connect", "migration/migration.c::migration_thread", "thread")
    assert thread["proof"]["registrar"] == "qemu_thread_create"
    edge(cg, "migration_connect", "migration/migration.c::bg_migration_thread", "thread")
    edge(cg, "migration/migration.c::migration_thread", "migration_rate_limit", "direct")
    edge(cg, "migration_rate_limit", "migration/migration.c::migration_update_counters", "direct")
    edge(cg, "migration/migration.c::bg_migration_thread", "migration/migration.c::migration_update_counters", "direct")


def test_ops_edge_through_save_live_iterate_10_2(graph_10_2):
    data = edge(graph_10_2, "qemu_savevm_state_iterate", "migration/ram.c::ram_save_iterate", "ops")
    assert data["confidence"] == "high"
    assert data["receiver_type"] == "SaveVMHandlers"
    assert data["sites"][0]["callee"] == "se->ops->save_live_iterate"
    assert data["proof"]["file"] == "migration/ram.c" and data["proof"]["field"] == "save_live_iterate"


def test_migration_loop_context_10_2(graph_10_2):
    site = edge(graph_10_2, "migration/migration.c::migration_thread", "migration_rate_limit", "direct")["sites"][0]
    assert [loop["condition"] for loop in site["loops"]] == ["while (migration_is_active())"]


def test_migration_chain_edges_7_2(qemu_tree):
    cg = qemu_graph(qemu_tree("7.2").path)
    edge(cg, "qmp_migrate", "socket_start_outgoing_migration", "direct")
    # 7.2 registers the callback one call further down
    internal = "migration/socket.c::socket_start_outgoing_migration_internal"
    edge(cg, "socket_start_outgoing_migration", internal, "direct")
    edge(cg, internal, "migration/socket.c::socket_outgoing_migration", "callback")
    edge(cg, "migration/socket.c::socket_outgoing_migration", "migration_channel_connect", "direct")
    edge(cg, "migration_channel_connect", "migrate_fd_connect", "direct")
    edge(cg, "migrate_fd_connect", "migration/migration.c::migration_thread", "thread")
    edge(cg, "migration_rate_limit", "migration/migration.c::migration_update_counters", "direct")
