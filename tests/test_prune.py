"""Graphs no tree reads any more are dropped from the cache (`store.prune`): a tree keeps its last graph and the
one before it, another tree's graphs are never touched, and graphs of other resolver versions go.

Each test indexes a copy of a fixture tree into a fresh cache through `api.tree_graph`, edits it so the graph is
resolved again, and reads which graph states the store still holds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from chaintrace import api
from chaintrace.graph.kinds import RESOLVER_VERSION
from helpers.fixture_trees import complete_tree, FIXTURES

# edits of mini_qemu that each resolve the graph in full (tests/test_incremental.py checks they are not patched)
BODY_EDITS = [
    lambda t: t.replace("    migrate_init(s);", "    migrate_init(s); migration_is_active();"),
    lambda t: t.replace("migration_is_active();", "migration_is_active(); migration_is_active();"),
    lambda t: t.replace("migration_is_active(); migration_is_active();", "migration_is_active();"),
]


def edit(path: Path, change) -> None:
    text = change(path.read_text())
    assert text != path.read_text()
    path.unlink()  # a new file: a hard-linked copy keeps its original untouched
    path.write_text(text)
    os.utime(path.parent)


def stored_graphs(store) -> set[str]:
    """Return the graph states whose rows the store holds, and the aliases it keeps."""
    states = {state for (state,) in store.db.execute("SELECT state FROM g_states")}
    return states | {state for (state,) in store.db.execute("SELECT state FROM g_alias")}


def resolved(store, tree: Path) -> str:
    tg = api.tree_graph(store, tree)
    assert tg.made == "resolved"
    return tg.tables.state


def graphs_after_edits(store, tree: Path, edits: int) -> list[str]:
    """Return the graph state of `tree` resolved, then resolved again after each of the first `edits` BODY_EDITS."""
    states = [resolved(store, tree)]
    for change in BODY_EDITS[:edits]:
        edit(tree / "migration" / "migration.c", change)
        states.append(resolved(store, tree))
    return states


def test_a_tree_keeps_its_last_two_graphs(tmp_path, capsys):
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "tree")
    ram = tree / "migration" / "migration.c"
    with api.open_store(tmp_path / "cache") as store:
        first, second = graphs_after_edits(store, tree, 1)
        assert stored_graphs(store) == {first, second}
        edit(ram, BODY_EDITS[1])
        tg = api.tree_graph(store, tree, progress=True)
        assert tg.made == "resolved"
        assert stored_graphs(store) == {second, tg.tables.state}
        assert "dropped 1 call graph no indexed tree reads any more" in capsys.readouterr().err
        assert store.db.execute("SELECT count(*) FROM derived WHERE state = ?", (first,)).fetchone() == (0,)
        assert store.db.execute("SELECT count(*) FROM g_edges WHERE state = ?", (first,)).fetchone() == (0,)
        assert store.db.execute("SELECT count(*) FROM g_edges WHERE state = ?", (second,)).fetchone()[0] > 0


def test_a_checkout_back_one_step_is_answered_from_the_store(tmp_path):
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "tree")
    ram = tree / "migration" / "migration.c"
    with api.open_store(tmp_path / "cache") as store:
        first, second, third = graphs_after_edits(store, tree, 2)
        assert stored_graphs(store) == {second, third}
        edit(ram, BODY_EDITS[2])  # the text of the second state again
        back = api.tree_graph(store, tree)
        assert (back.made, back.tables.state) == ("stored", second)
        assert stored_graphs(store) == {second, third}
        assert first not in stored_graphs(store)


def test_a_graph_another_tree_keeps_is_not_dropped(tmp_path):
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "tree")
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy, copy_function=os.link)
    with api.open_store(tmp_path / "cache") as store:
        first = resolved(store, tree)
        assert api.tree_graph(store, copy).tables.state == first  # the same content: the same graph, stored
        states = [first]
        for change in BODY_EDITS[:2]:
            edit(tree / "migration" / "migration.c", change)
            states.append(resolved(store, tree))
        assert stored_graphs(store) == set(states)  # `copy` still reads the first
        copy_graph = api.tree_graph(store, copy)
        assert (copy_graph.made, copy_graph.tables.state) == ("stored", first)


def test_graphs_of_other_resolver_versions_are_dropped(tmp_path):
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "tree")
    old = f"{'ab' * 32}:r{RESOLVER_VERSION - 1}:system:precise"
    foreign = "a key of its own"  # a caller's own graph tables: never touched
    with api.open_store(tmp_path / "cache") as store:
        first = resolved(store, tree)
        with store.transaction():
            for key in (old, foreign):
                store.db.execute("INSERT INTO g_states VALUES (?)", (key,))
                store.db.execute("INSERT INTO g_adjacency VALUES (?, ?)", (key, b"blob"))
            store.db.execute("INSERT INTO derived VALUES (?, ?, ?)",
                             (str(tree.resolve()), f"last-graph:r{RESOLVER_VERSION - 1}:system:precise", old.encode()))
        edit(tree / "migration" / "migration.c", BODY_EDITS[0])
        second = resolved(store, tree)
        assert stored_graphs(store) == {first, second, foreign}
        assert store.db.execute("SELECT state FROM g_adjacency WHERE state IN (?, ?)", (old, foreign)).fetchall() == \
            [(foreign,)]
        assert store.db.execute("SELECT count(*) FROM derived WHERE name LIKE 'last-graph:r%' AND name != ?",
                                (f"last-graph:r{RESOLVER_VERSION}:system:precise",)).fetchone() == (0,)


def test_aliases_of_a_dropped_graph_go_with_it(tmp_path):
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "tree")
    ram = tree / "migration" / "migration.c"
    with api.open_store(tmp_path / "cache") as store:
        first = resolved(store, tree)
        edit(ram, lambda t: t + "/* a comment */\n")
        alias = api.tree_graph(store, tree)
        assert alias.made == "patched" and alias.tables.state == first
        edit(ram, BODY_EDITS[0])
        second = resolved(store, tree)
        assert stored_graphs(store) == {first, alias.tables.requested, second}  # the alias is the one before
        edit(ram, BODY_EDITS[1])
        third = resolved(store, tree)
        assert stored_graphs(store) == {second, third}
