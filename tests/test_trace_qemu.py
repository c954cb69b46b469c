"""The headline trace through the public API on a whole real QEMU tree (indexed once per session)."""

from __future__ import annotations

import json

import pytest
from helpers.cli import run_captured

from chaintrace import api


def _paths(document: dict, function: str) -> list[list[str]]:
    """Return the enumerated paths of the target sites inside `function`."""
    paths = []
    for target in document["targets"]:
        if target["function"] == function:
            paths += [document["paths"][i]["nodes"] for i in target["paths"]]
    return paths


def test_hmp_migrate_reaches_the_threshold_assignment_through_the_migration_thread(indexed_qemu, index_cache) -> None:
    tree = indexed_qemu("10.2")
    with api.open_store(index_cache) as store:
        tg = api.tree_graph(store, tree.path)
        document = api.trace_document(tg, "hmp:migrate", "assign:threshold_size",
                                      via=["migration_thread"], max_paths=5)
    paths = _paths(document, "migration/migration.c::migration_update_counters")
    assert paths, "hmp:migrate must reach s->threshold_size in migration_update_counters"
    shortest = paths[0]
    assert shortest[0] == "hmp_migrate" and "qmp_migrate" in shortest
    names = [node.rsplit("::", 1)[-1] for node in shortest]
    assert names[-3:] == ["migration_thread", "migration_rate_limit", "migration_update_counters"]
    kinds = {(edge["src"], edge["dst"]): edge["kind"] for edge in document["edges"]}
    assert kinds[("migration_connect", "migration/migration.c::migration_thread")] == "thread"


def test_qmp_migrate_via_the_socket_callback_gives_the_issue_s_chain(indexed_qemu, index_cache) -> None:
    tree = indexed_qemu("10.2")
    with api.open_store(index_cache) as store:
        tg = api.tree_graph(store, tree.path)
        document = api.trace_document(tg, "qmp:migrate", "assign:threshold_size",
                                      via=["migration/socket.c::socket_outgoing_migration", "migration_thread"],
                                      max_paths=1)
    [path] = _paths(document, "migration/migration.c::migration_update_counters")
    assert [node.rsplit("::", 1)[-1] for node in path] == [
        "qmp_migrate", "qmp_migrate_finish", "socket_start_outgoing_migration", "socket_outgoing_migration",
        "migration_channel_connect", "migration_connect", "migration_thread", "migration_rate_limit",
        "migration_update_counters",
    ]
    kinds = {(edge["src"], edge["dst"]): edge["kind"] for edge in document["edges"]}
    assert kinds[("socket_start_outgoing_migration", "migration/socket.c::socket_outgoing_migration")] == "callback"


# The reads of MigrationState.threshold_size in each family: (function, line, access); each reached from qmp:migrate.
THRESHOLD_READS = {
    "7.2": [("migration_update_counters", 3740, "argument"), ("migration_iteration_run", 3759, "argument"),
            ("migration_iteration_run", 3763, "argument"), ("migration_iteration_run", 3766, "condition"),
            ("migration_iteration_run", 3768, "condition")],
    "10.0": [("migration_update_counters", 3385, "argument"), ("migration_iteration_run", 3424, "condition"),
             ("migration_iteration_run", 3430, "condition"), ("migration_iteration_run", 3437, "condition")],
    "10.2": [("migration_update_counters", 3445, "argument"), ("migration_iteration_run", 3513, "condition"),
             ("migration_iteration_run", 3521, "condition"), ("migration_iteration_run", 3537, "rhs")],
}
THRESHOLD_FORMULA_LINE = {"7.2": 3717, "10.0": 3358, "10.2": 3418}


def _targets(tree, cache, target: str) -> list[dict]:
    run = run_captured(["trace", tree.path, "--cache", cache, "--from", "qmp:migrate", "--to", target,
                        "--max-paths", "1", "--json"])
    assert run.code == 0, run.err
    return json.loads(run.out)["targets"]


@pytest.mark.parametrize("family", sorted(THRESHOLD_READS))
def test_read_targets_list_every_read_of_threshold_size_with_its_paths(family, indexed_qemu, index_cache) -> None:
    tree = indexed_qemu(family)
    for target, match in (("read:threshold_size", "name"), ("read:MigrationState.threshold_size", "type")):
        found = _targets(tree, index_cache, target)
        assert [(t["function"].rpartition("::")[2], t["line"], t["access"]) for t in found] == THRESHOLD_READS[family]
        assert all(t["receiver_type"] == "MigrationState" and t["match"] == match for t in found)
        assert all(t["counts"]["paths_total"] > 0 for t in found)
    [formula] = _targets(tree, index_cache, "assign:threshold_size@migration_update_counters")
    assert (formula["line"], formula["access"]) == (THRESHOLD_FORMULA_LINE[family], "=")
    assert " * " in formula["statement"] and formula["counts"]["paths_total"] > 0
