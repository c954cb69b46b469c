"""Traces on real QEMU, indexed whole (as `chaintrace trace` sees it): qmp_migrate to the threshold_size writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaintrace import api
from chaintrace.query.results import ShownGraph, Trace
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


@pytest.fixture(scope="module")
def threshold_trace(indexed_qemu, index_cache: Path) -> Iterator[Callable[..., tuple[Trace, ShownGraph]]]:
    """Return a function: the trace of qmp:migrate to assign:threshold_size on a QEMU family, and the graph it shows."""
    with api.open_store(index_cache) as store:
        graphs: dict[str, api.TreeGraph] = {}

        def run(family: str, **options) -> tuple[Trace, ShownGraph]:
            if family not in graphs:
                graphs[family] = api.tree_graph(store, indexed_qemu(family).path)
            return api.trace_with_graph(graphs[family], "qmp:migrate", "assign:threshold_size", **options)

        yield run


def by_function(result: Trace) -> dict:
    return {t.site.function: t for t in result.targets}


def test_qmp_migrate_to_threshold_size_10_2(threshold_trace):
    result, shown = threshold_trace("10.2")
    statements = {(t.site.function, t.site.statement) for t in result.targets}
    assert ("migrate_init", "s->threshold_size = 0;") in statements
    counters = by_function(result)[f"{MIG}::migration_update_counters"]
    assert CHAIN_10_2 in counters.paths
    # The whole tree's chop (some 12,000 functions) is cyclic beyond what can be counted: a lower bound, said so
    assert counters.count.total >= len(counters.paths) > 10
    assert counters.count.exact or counters.count.method == "scc lower bound"
    kinds = [[k for k, _ in shown.edges_between(a, b)] for a, b in zip(CHAIN_10_2, CHAIN_10_2[1:])]
    assert kinds == [["direct"], ["direct"], ["callback"], ["direct"], ["direct"], ["thread"], ["direct"], ["direct"]]


def test_paths_through_bg_migration_thread_10_2(threshold_trace):
    result, _ = threshold_trace("10.2", via=["bg_migration_thread"])
    counters = by_function(result)[f"{MIG}::migration_update_counters"]
    assert counters.paths and all(f"{MIG}::bg_migration_thread" in path for path in counters.paths)
    assert [*CHAIN_10_2[:6], f"{MIG}::bg_migration_thread", f"{MIG}::migration_update_counters"] in counters.paths
    assert counters.count.total >= len(counters.paths)


def test_paths_through_the_ops_hop_10_2(threshold_trace):
    result, shown = threshold_trace("10.2", via=["ram_save_iterate"], max_paths=5)
    counters = by_function(result)[f"{MIG}::migration_update_counters"]
    hop = ("qemu_savevm_state_iterate", "migration/ram.c::ram_save_iterate")
    assert counters.paths and all(hop in zip(path, path[1:]) for path in counters.paths)
    document = trace_document(shown, result)
    ops = [e for e in document["edges"] if (e["src"], e["dst"]) == hop]
    assert ops[0]["kind"] == "ops" and ops[0]["sites"][0]["callee"] == "se->ops->save_live_iterate"


def test_text_of_the_headline_trace_10_2(threshold_trace):
    result, shown = threshold_trace("10.2", via=["migration/socket.c::socket_outgoing_migration", "migration_thread"],
                                    max_paths=1)
    text = render_trace(shown, result)
    assert "⇒ callback (QIO) via qio_channel_socket_connect_async(arg 2) at migration/socket.c:103" in text
    assert "⇒ thread via qemu_thread_create(arg 2) at migration/migration.c:4122" in text
    assert "in while (migration_is_active())" in text
    assert "◆ s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();  migration/migration.c:3418" in text


def test_qmp_migrate_to_threshold_size_7_2(threshold_trace):
    result, _ = threshold_trace("7.2")
    counters = by_function(result)[f"{MIG}::migration_update_counters"]
    assert CHAIN_7_2 in counters.paths
    assert all("migrate_fd_connect" in path for path in counters.paths)


@pytest.mark.parametrize("family", ["7.2", "10.0", "10.2"])
def test_every_family_reaches_both_writes(threshold_trace, family):
    result, _ = threshold_trace(family)
    functions = {t.site.function for t in result.targets if t.paths}
    assert {"migrate_init", f"{MIG}::migration_update_counters"} <= functions
