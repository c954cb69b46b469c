"""The call graph of real QEMU, indexed whole (as `chaintrace trace` sees it): the edges of the migration chain."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaintrace import api


@pytest.fixture(scope="module")
def graph_of(indexed_qemu, index_cache: Path) -> Iterator[Callable[[str], api.TreeGraph]]:
    """Return a function: the resolved graph of a QEMU family, indexed into the session's cache (store kept open)."""
    with api.open_store(index_cache) as store:
        graphs: dict[str, api.TreeGraph] = {}

        def get(family: str) -> api.TreeGraph:
            if family not in graphs:
                graphs[family] = api.tree_graph(store, indexed_qemu(family).path)
            return graphs[family]

        yield get


def edge(tg: api.TreeGraph, src: str, dst: str, kind: str) -> dict:
    """Return the data of the `kind` edge from `src` to `dst`; fail naming the edges there are."""
    found = dict(tg.tables.edges_between(src, dst))
    assert kind in found, f"no {kind} edge {src} -> {dst}; edges: {found}"
    return found[kind]


def test_migration_chain_edges_10_2(graph_of):
    tg = graph_of("10.2")
    edge(tg, "qmp_migrate", "migration/migration.c::qmp_migrate_finish", "direct")
    edge(tg, "migration/migration.c::qmp_migrate_finish", "socket_start_outgoing_migration", "direct")
    callback = edge(tg, "socket_start_outgoing_migration", "migration/socket.c::socket_outgoing_migration", "callback")
    assert callback["detail"] == "QIO"
    assert callback["proof"]["registrar"] == "qio_channel_socket_connect_async" and callback["proof"]["arg_index"] == 2
    edge(tg, "migration/socket.c::socket_outgoing_migration", "migration_channel_connect", "direct")
    edge(tg, "migration_channel_connect", "migration_connect", "direct")
    thread = edge(tg, "migration_connect", "migration/migration.c::migration_thread", "thread")
    assert thread["proof"]["registrar"] == "qemu_thread_create"
    edge(tg, "migration_connect", "migration/migration.c::bg_migration_thread", "thread")
    edge(tg, "migration/migration.c::migration_thread", "migration_rate_limit", "direct")
    edge(tg, "migration_rate_limit", "migration/migration.c::migration_update_counters", "direct")
    edge(tg, "migration/migration.c::bg_migration_thread", "migration/migration.c::migration_update_counters", "direct")


def test_ops_edge_through_save_live_iterate_10_2(graph_of):
    data = edge(graph_of("10.2"), "qemu_savevm_state_iterate", "migration/ram.c::ram_save_iterate", "ops")
    assert data["confidence"] == "high"
    assert data["receiver_type"] == "SaveVMHandlers"
    assert data["sites"][0]["callee"] == "se->ops->save_live_iterate"
    assert data["proof"]["file"] == "migration/ram.c" and data["proof"]["field"] == "save_live_iterate"


def test_migration_loop_context_10_2(graph_of):
    site = edge(graph_of("10.2"), "migration/migration.c::migration_thread", "migration_rate_limit", "direct")["sites"][0]
    assert [loop["condition"] for loop in site["loops"]] == ["while (migration_is_active())"]


def test_migration_chain_edges_7_2(graph_of):
    tg = graph_of("7.2")
    edge(tg, "qmp_migrate", "socket_start_outgoing_migration", "direct")
    # 7.2 registers the callback one call further down
    internal = "migration/socket.c::socket_start_outgoing_migration_internal"
    edge(tg, "socket_start_outgoing_migration", internal, "direct")
    edge(tg, internal, "migration/socket.c::socket_outgoing_migration", "callback")
    edge(tg, "migration/socket.c::socket_outgoing_migration", "migration_channel_connect", "direct")
    edge(tg, "migration_channel_connect", "migrate_fd_connect", "direct")
    edge(tg, "migrate_fd_connect", "migration/migration.c::migration_thread", "thread")
    edge(tg, "migration_rate_limit", "migration/migration.c::migration_update_counters", "direct")


# A node id is a C identifier, or `path::identifier` for a static (issue 13: parser mistakes such as
# `nd_event(struct ` from bytes moved by a rewrite, or `MINMAX_2` read as a K&R definition, never reach it).
_NODE_ID = re.compile(r"(?:[\w.+/-]+::)?[A-Za-z_]\w*")


@pytest.mark.parametrize("family", ["7.2", "10.0", "10.2"])
def test_every_node_id_is_a_c_identifier(graph_of, family):
    bad = sorted(n for n in graph_of(family).graph.graph.nodes if not _NODE_ID.fullmatch(n))
    assert not bad, f"{len(bad)} node ids are not C identifiers: {bad[:20]}"


def test_a_standalone_macro_use_is_no_function_10_2(graph_of):
    tg = graph_of("10.2")
    assert "MINMAX_2" not in tg.graph.graph and "fpu/softfloat.c::MINMAX_2" not in tg.graph.graph
    assert "fpu/softfloat.c::float16_max" not in tg.graph.graph  # non-static: the name alone
    assert "float16_max" in tg.graph.graph
