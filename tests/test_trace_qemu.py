"""The headline trace through the public API on a whole real QEMU tree (indexed once per session)."""

from __future__ import annotations

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
