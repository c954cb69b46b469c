"""The facts the call graph is resolved from (`load_facts(graph=True)`) leave out only what it never reads.

The resolve reads its facts without functions' comments, the guards of
sites other than field accesses and the field reads other than
declarations' initializers (`store.codec.decode_facts`), to hold less
memory; the graph must be the one the full facts give, and the saved field
reads must still be every read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaintrace import api
from chaintrace.extract.copies import returned_whole, variable_assigned
from chaintrace.graph.build import build_graph
from chaintrace.graph.model import graph_rows
from chaintrace.store.access_rows import access_row
from helpers.fixture_trees import FIXTURES, complete_tree

FIXTURE_NAMES = ["mini_qemu", "field_access", "param_store", "local_fnptr", "macro_scope", "job_driver",
                 "coroutine_bh_timer", "class_init"]


def _dump(facts) -> list[str]:
    cg = build_graph(facts)
    nodes, edges = graph_rows(cg)
    return sorted([json.dumps(["node", *row]) for row in nodes]
                  + [json.dumps(["edge", *row], sort_keys=True) for row in edges]
                  + [json.dumps(["diagnostic", d], sort_keys=True) for d in cg.diagnostics]
                  + [json.dumps(["objects", cg.objects, cg.passes], sort_keys=True)])


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_the_graph_of_the_graph_facts_is_the_graph_of_all_facts(tmp_path: Path, name: str) -> None:
    tree = complete_tree(FIXTURES / name, tmp_path / name)
    with api.open_store(tmp_path / "cache") as store:
        api.index(tree, store, jobs=1, warn=lambda message: None)
        full = api.load_facts(store, tree)
        slim = api.load_facts(store, tree, graph=True)
    assert [f.path for f in slim] == [f.path for f in full]
    # the graph facts really are smaller: no comment, only the reads the value flow copies from (initializers, whole
    # assignments to a variable, members returned whole)
    assert all(not function.comment for f in slim for function in f.functions)
    kept = [read for f in full for read in f.reads
            if read.how == "initializer" or variable_assigned(read) or returned_whole(read)]
    assert [read for f in slim for read in f.reads] == kept
    assert _dump(slim) == _dump(full)


def test_a_resolved_graph_saves_every_field_read_and_write(tmp_path: Path) -> None:
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "mini_qemu")
    with api.open_store(tmp_path / "cache") as store:
        graph = api.tree_graph(store, tree, jobs=1, program="all")
        assert graph.made == "resolved"
        full = api.load_facts(store, tree)
        state = graph.tables.state
        for table, accesses in (("g_reads", [r for f in full for r in f.reads]),
                                ("g_writes", [w for f in full for w in f.writes])):
            rows = [row[0] for row in store.db.execute(f"SELECT data FROM {table} WHERE state = ? ORDER BY rowid",
                                                       (state,))]
            expected = [access_row(a) for a in accesses if a.function]
            assert expected and rows == expected, table
