"""An edit that only moves lines, or changes prototypes no other fact reads, patches the stored graph
(`store.graphs`, `graph.shift`, `graph.delta`) instead of resolving it again, and the patched graph is exactly
the graph a full resolve of the edited tree gives; every other edit (a body, a function added or removed, a
macro, a stored function pointer) is resolved in full.

Each edit is applied to a copy of a fixture tree (and to a copy of QEMU 10.2), then the graph the cache
makes ready (`api.tree_graph`: "patched" or "resolved") is compared, row by row and in order, with
`build_graph` of the edited tree's facts: nodes, edges with their sites and proofs, diagnostics, field
writes and reads, constant objects.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from chaintrace import api
from chaintrace.extract.facts import CallSite, Context, Define, FileFacts, Loop, Prototype
from chaintrace.graph.build import build_graph
from chaintrace.graph.delta import Edit, unread_edit
from chaintrace.graph.model import graph_rows
from chaintrace.graph.programs import program_filter
from chaintrace.graph.shift import compose, line_shift, shift_json
from helpers.fixture_trees import complete_tree, FIXTURES

HEADLINE = api.TraceQuery("qmp:migrate", "assign:threshold_size")


def _call(line: int, col: int = 5, callee: str = "f", loop_line: int = 0) -> CallSite:
    context = Context((Loop("for", "i < n", loop_line),)) if loop_line else Context()
    return CallSite("g", "a.c", line, col, callee, "name", (), context)


def test_a_shift_maps_old_lines_to_new_ones_in_order():
    old = (_call(3), _call(7, loop_line=6))
    assert line_shift(old, (_call(4), _call(8, loop_line=7))) == {3: 4, 6: 7, 7: 8}
    assert line_shift(old, old) == {}


def test_anything_but_lines_is_not_a_shift():
    assert line_shift((_call(3),), (_call(3, col=6),)) is None
    assert line_shift((_call(3),), (_call(3, callee="h"),)) is None
    assert line_shift((_call(3), _call(7)), (_call(9), _call(8))) is None  # reordered
    assert line_shift((_call(3), _call(3)), (_call(3), _call(4))) is None  # one line to two


def test_shifts_compose_and_move_json_rows():
    assert compose({"a.c": {3: 4}}, {"a.c": {4: 6, 9: 10}, "b.h": {1: 2}}) == {"a.c": {3: 6, 9: 10}, "b.h": {1: 2}}
    site = {"sites": [{"file": "a.c", "line": 3, "loops": [{"line": 3}]}, {"file": "b.c", "line": 3}]}
    assert shift_json(site, {"a.c": {3: 5}}) == {"sites": [{"file": "a.c", "line": 5, "loops": [{"line": 5}]},
                                                           {"file": "b.c", "line": 3}]}


def graph_of(tables) -> dict:
    """Return everything a stored graph answers with, in the order it answers."""
    nodes, edges, diagnostics = tables.rows()
    writes, reads = tables.writes(None), tables.reads(None)
    return {"nodes": [tuple(row[:5]) + tuple(map(bool, row[5:])) for row in nodes], "edges": list(edges),
            "diagnostics": list(diagnostics), "writes": writes, "reads": reads,
            "objects": tables.whole().objects}


def resolved_in_full(store, tree: Path) -> dict:
    """Return `graph_of` a graph resolved from the facts of `tree` as indexed now, saved under a key of its own."""
    facts = api.load_facts(store, tree, paths=program_filter("system"))
    tables = store.graph_tables(f"full-resolve-for-test:{tree}")
    try:
        tables.save(build_graph(facts), (w for f in facts for w in f.writes), (r for f in facts for r in f.reads))
        return graph_of(tables)
    finally:  # a lasting test cache (CHAINTRACE_TEST_CACHE) would keep a graph of QEMU a run otherwise
        tables.drop()


def edit(path: Path, change: Callable[[str], str]) -> None:
    """Rewrite a file of a copied tree (a new file: a hard-linked copy keeps its original untouched)."""
    text = change(path.read_text())
    path.unlink()
    path.write_text(text)
    os.utime(path.parent)  # the folder's mtime tells the indexer to look again, even within one clock tick


def _after_line(text: str, number: int, added: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:number] + [added] + lines[number:])


def _without_cleanup(text: str) -> str:
    """Return ram.c without its static ram_save_cleanup (and the initializer that stores it)."""
    start = text.index("static void ram_save_cleanup(")
    end = text.index("}\n", start) + 2
    return (text[:start] + text[end:]).replace("    .save_cleanup = ram_save_cleanup,\n", "")


FIXTURE_EDITS = [
    ("comment at the end", "migration/migration.c", lambda t: t + "/* appended */\n", "patched"),
    ("lines inserted at the top", "migration/migration.c", lambda t: "/* one */\n/* two */\n" + t, "patched"),
    ("a line in a header", "migration/migration.h", lambda t: _after_line(t, 3, "\n"), "patched"),
    ("a call added", "migration/migration.c", lambda t: t.replace("    migrate_init(s);", "    migrate_init(s); migration_is_active();"), "resolved"),
    # a prototype no other fact names gives the resolver nothing to read: patched, lines moved below it
    ("an unused prototype added to a header", "migration/options.h",
     lambda t: t.replace("uint64_t migrate_downtime_limit(void);", "void migrate_unused_knob(int level);\nuint64_t migrate_downtime_limit(void);"), "patched"),
    ("a prototype removed from a header", "migration/options.h",
     lambda t: t.replace("uint64_t migrate_max_bandwidth(void);\n", ""), "resolved"),
    ("a body edited", "migration/ram.c", lambda t: t.replace("    rs->pages_sent = 0;\n}", "    rs->pages_sent = 1;\n}"), "resolved"),
    ("a function added", "migration/migration.c",
     lambda t: t + "\nvoid migration_added(void)\n{\n    migrate_init(migrate_get_current());\n}\n", "resolved"),
    ("a function removed", "migration/ram.c", lambda t: _without_cleanup(t), "resolved"),
    # BUFFER_DELAY is only a number in an expression: no resolution asks about it
    ("a macro no resolution reads changed", "migration/migration.c",
     lambda t: t.replace("#define BUFFER_DELAY 100", "#define BUFFER_DELAY 50"), "patched"),
    ("a macro added", "migration/migration.h", lambda t: _after_line(t, 2, "#define MIGRATION_SPARE(x) spare_call(x)\n"),
     "patched"),
    ("a stored function pointer added", "migration/ram.c",
     lambda t: t.replace('    register_savevm_live("ram"', '    savevm_ram_handlers.save_cleanup = ram_save_cleanup;\n    register_savevm_live("ram"'), "resolved"),
    ("a stored function pointer removed", "migration/ram.c",
     lambda t: t.replace("    .save_cleanup = ram_save_cleanup,\n", "").replace("static void ram_save_cleanup", "void ram_save_cleanup"),
     "resolved"),
]


@pytest.mark.parametrize("name, file, change, made", FIXTURE_EDITS, ids=[e[0] for e in FIXTURE_EDITS])
def test_an_edit_gives_the_graph_a_full_resolve_gives(tmp_path, name, file, change, made):
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "tree")
    with api.open_store(tmp_path / "cache") as store:
        assert api.tree_graph(store, tree).made == "resolved"
        edit(tree / file, change)
        tg = api.tree_graph(store, tree)
        assert tg.made == made
        assert graph_of(tg.tables) == resolved_in_full(store, tree)
        edit(tree / file, lambda t: "/* and again */\n" + t)  # an alias of an alias: its moves compose
        again = api.tree_graph(store, tree)
        assert again.made == "patched"
        assert graph_of(again.tables) == resolved_in_full(store, tree)
        assert json.dumps(api.trace_document(again, "qmp:migrate", "assign:threshold_size"))


def test_a_file_outside_the_program_changes_nothing(tmp_path):
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "tree")
    (tree / "tests").mkdir()
    (tree / "tests" / "t.c").write_text("int t(void) { return 0; }\n")
    with api.open_store(tmp_path / "cache") as store:
        before = api.tree_graph(store, tree)
        edit(tree / "tests" / "t.c", lambda t: t.replace("return 0", "return 1"))
        after = api.tree_graph(store, tree)
        assert after.state != before.state and after.made == "patched"
        assert after.tables.state == before.tables.state  # the same rows, read again


def test_a_real_qemu_edit_is_patched_to_the_full_graph(indexed_qemu, index_cache, tmp_path):
    tree = indexed_qemu("10.2").path
    copy = tmp_path / "qemu"
    shutil.copytree(tree, copy, copy_function=os.link)  # hard links: seconds, and the edit rewrites its file
    with api.open_store(index_cache) as store:
        api.tree_graph(store, copy)
        # an edit no earlier run made: a lasting test cache (CHAINTRACE_TEST_CACHE) would hold its graph already
        edit(copy / "migration" / "ram.c", lambda t: _after_line(t, 40, f"/* an edit {uuid.uuid4().hex} */\n"))
        tg = api.tree_graph(store, copy)
        assert tg.made == "patched"
        assert graph_of(tg.tables) == resolved_in_full(store, copy)
        # a prototype (bench/phases.py's edit) and a macro added to a header ~590 files include: no other fact
        # names the one (a macro body naming it would: the test would then see "resolved"), no resolve reads the other
        name = f"chaintrace_test_edit_{uuid.uuid4().hex}"
        added = f"void {name}(void);\n#define {name.upper()}(x) ((x) + 1)\n"
        edit(copy / "include" / "qemu" / "log.h", lambda t: t[:t.rindex("#endif")] + added + t[t.rindex("#endif"):])
        tg = api.tree_graph(store, copy)
        assert tg.made == "patched"
        assert graph_of(tg.tables) == resolved_in_full(store, copy)


CLASS_EDITS = [
    ("a body edited", lambda t: t.replace("    migrate_init(s);", "    migrate_init(s); migration_is_active();")),
    ("a macro defined", lambda t: "#define MIGRATION_FOREACH(s) for (;;)\n" + t),
]


@pytest.mark.parametrize("name, change", CLASS_EDITS, ids=[e[0] for e in CLASS_EDITS])
def test_an_edit_indexes_as_a_fresh_cache_would(tmp_path, name, change):
    # the macro classes are reused when no #define changed, derived again otherwise: the fact keys say which
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "tree")
    with api.open_store(tmp_path / "cache") as store:
        api.index(tree, store)
        edit(tree / "migration" / "migration.c", change)
        summary = api.index(tree, store)  # its totals: the last state's, less the old file, plus the new one
        edited = store.indexed_keys(str(tree.resolve()))
    with api.open_store(tmp_path / "fresh") as store:
        fresh = api.index(tree, store)
        assert store.indexed_keys(str(tree.resolve())) == edited
    assert (summary.functions, summary.calls, summary.refs, summary.errors) == \
        (fresh.functions, fresh.calls, fresh.refs, fresh.errors)


def _ops_targets(tables, caller: str) -> list[str]:
    return sorted(dst for _, dst, kind, _ in tables.whole().graph.out_edges(caller, keys=True, data=True) if kind == "ops")


def test_a_prototype_is_patched_only_when_no_other_fact_reads_it(tmp_path):
    # fixtures/return_type: `lookup_hooks()->run()` picks Hooks.run by the prototype's return type alone
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "return_type", tree)
    header = tree / "hooks.h"
    with api.open_store(tmp_path / "cache") as store:
        assert _ops_targets(api.tree_graph(store, tree).tables, "hooks_start") == ["hooks.c::hook_a"]
        edit(header, lambda t: t.replace("void hooks_start(void);", "void hooks_start(void);\nvoid hooks_reset(int);"))
        tg = api.tree_graph(store, tree)
        assert tg.made == "patched"
        assert graph_of(tg.tables) == resolved_in_full(store, tree)
        # the return type another fact reads: the call now goes to Other.run, which no patch would have found
        edit(header, lambda t: t.replace("Hooks *lookup_hooks(void);", "Other *lookup_hooks(void);"))
        tg = api.tree_graph(store, tree)
        assert tg.made == "resolved"
        assert _ops_targets(tg.tables, "hooks_start") == ["hooks.c::hook_b"]
        assert graph_of(tg.tables) == resolved_in_full(store, tree)
        edit(header, lambda t: "/* moved */\n" + t.replace("void hooks_reset(int);\n", ""))  # removed, lines moved
        tg = api.tree_graph(store, tree)
        assert tg.made == "patched"
        assert graph_of(tg.tables) == resolved_in_full(store, tree)


def _prototype(name: str, line: int, return_type: str = "void") -> Prototype:
    return Prototype(name, "a.h", line, False, return_type, ())


def test_an_unread_edit_names_the_prototypes_and_macros_that_changed():
    old = FileFacts("a.h", prototypes=(_prototype("f", 3), _prototype("g", 4)), calls=(_call(9),),
                    defines=(Define("M", None, "1", "a.h", 1),))
    added = FileFacts("a.h", prototypes=(_prototype("f", 3), _prototype("new", 4), _prototype("g", 5)),
                      calls=(_call(10),), defines=(Define("M", None, "1", "a.h", 1), Define("N", ("x",), "x", "a.h", 2)))
    assert unread_edit(old, added) == Edit({9: 10}, frozenset({"new"}), frozenset({"N"}))
    assert unread_edit(added, old) == Edit({10: 9}, frozenset({"new"}), frozenset({"N"}))
    retyped = FileFacts("a.h", prototypes=(_prototype("f", 3, "int"), _prototype("g", 4)), calls=(_call(9),),
                        defines=(Define("M", None, "2", "a.h", 1),))
    assert unread_edit(old, retyped) == Edit({}, frozenset({"f"}), frozenset({"M"}))
    assert unread_edit(old, dataclasses.replace(old, calls=(_call(9, callee="h"),))) is None
    # two prototypes (or macros) of one name swapped: the first, which the resolver may keep, is another
    two = FileFacts("a.h", prototypes=(_prototype("f", 3, "int"), _prototype("f", 4, "long")))
    assert unread_edit(two, FileFacts("a.h", prototypes=(_prototype("f", 3, "long"), _prototype("f", 4, "int")))) is None
    # a macro left alone moves with the rest: moved past a call, the lines would reorder (a rename reads them)
    assert unread_edit(old, dataclasses.replace(old, defines=(Define("M", None, "1", "a.h", 10),))) is None
    two = FileFacts("a.h", defines=(Define("M", None, "1", "a.h", 1), Define("M", None, "2", "a.h", 3)))
    assert unread_edit(two, FileFacts("a.h", defines=(Define("M", None, "2", "a.h", 1), Define("M", None, "1", "a.h", 3)))) is None


def test_a_macro_is_patched_only_when_no_resolution_read_it(tmp_path):
    # fixtures/macro_scope: dev.c calls qemu_mutex_lock(), a macro of include/qemu/thread.h
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "macro_scope", tree)
    header = tree / "include" / "qemu" / "thread.h"
    with api.open_store(tmp_path / "cache") as store:
        before = api.tree_graph(store, tree)
        assert "qemu_mutex_lock_impl" in _direct_targets(before.tables, "dev.c")
        edit(header, lambda t: t.replace("#endif", "#define qemu_mutex_spin(mutex) qemu_mutex_lock_impl(mutex, 0, 0)\n#endif"))
        tg = api.tree_graph(store, tree)
        assert tg.made == "patched"
        assert graph_of(tg.tables) == resolved_in_full(store, tree)
        # a macro a call expands: its call now goes to the unlock, which no patch would have found
        edit(header, lambda t: t.replace("#define qemu_mutex_lock(mutex) qemu_mutex_lock_impl(",
                                         "#define qemu_mutex_lock(mutex) qemu_mutex_unlock_impl("))
        tg = api.tree_graph(store, tree)
        assert tg.made == "resolved"
        assert "qemu_mutex_lock_impl" not in _direct_targets(tg.tables, "dev.c")
        assert graph_of(tg.tables) == resolved_in_full(store, tree)
        edit(header, lambda t: "/* moved */\n" + t.replace("qemu_mutex_lock_impl(mutex, 0, 0)", "qemu_mutex_unlock_impl(mutex, 0, 0)"))
        tg = api.tree_graph(store, tree)
        assert tg.made == "patched"
        assert graph_of(tg.tables) == resolved_in_full(store, tree)


def _direct_targets(tables, file: str) -> set[str]:
    whole = tables.whole()
    return {dst for src, dst, kind in whole.graph.edges(keys=True) if kind == "direct" and whole.node(src)["file"] == file}
