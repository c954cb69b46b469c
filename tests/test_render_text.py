"""Rendering traces: the text tree, and the `chaintrace.trace/1` JSON document."""

from __future__ import annotations

import json
import re

import pytest
from helpers.toy import toy

from chaintrace.query.targets import find_targets
from chaintrace.query.trace import trace
from chaintrace.render.document import SCHEMA, trace_document
from chaintrace.render.text import render_trace, render_tree

EXPECTED_COUNTERS = """\
[2/3] assign target in migration_update_counters (migration/migration.c:121): 1 path (dag), 1 shown
  qmp_migrate  migration/migration.c:81
  └─ socket_start_outgoing_migration  at migration/migration.c:94:9
     └─ socket_outgoing_migration  ⇒ callback (QIO) via qio_channel_socket_connect_async(arg 2) at migration/socket.c:46:5
        └─ migration_channel_connect  at migration/socket.c:28:5
           └─ migrate_fd_connect  at migration/channel.c:12:5
              └─ migration_thread  ⇒ thread via qemu_thread_create(arg 2) at migration/migration.c:206:5
                 └─ migration_update_counters  at migration/migration.c:190:9  in while (migration_is_active())
                       ◆ s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();  migration/migration.c:121  \
[write (=) of MigrationState.threshold_size]  after early return if (current_time < s->iteration_start_time + BUFFER_DELAY)
"""

OPS_HOP = ("└─ ram_save_iterate  ⇒ ops via se->ops->save_live_iterate at migration/savevm.c:74:15; "
           "SaveVMHandlers.save_live_iterate stored at migration/ram.c:76:26  "
           "in QTAILQ_FOREACH(se, &savevm_state.handlers, entry)")


@pytest.fixture(scope="module")
def mini(fixture_trees):
    """The graph of mini_qemu as indexed, and its trace to the threshold_size writes and the ram.c rate check."""
    facts = fixture_trees.facts("mini_qemu")
    cg = fixture_trees.graph("mini_qemu")
    writes = fixture_trees.writes("mini_qemu")
    calls = [c for f in facts for c in f.calls]
    targets = find_targets(cg, "assign:threshold_size", writes)
    targets += [s for s in find_targets(cg, "call:migration_rate_exceeded", calls=calls) if s.file == "migration/ram.c"]
    return cg, trace(cg, "qmp_migrate", targets)


def test_text_tree_of_the_headline_trace(mini):
    cg, result = mini
    blocks = render_trace(cg, result).split("\n\n")
    assert blocks[1] + "\n" == EXPECTED_COUNTERS


def test_text_shows_the_ops_hop_and_the_call_statement(mini):
    cg, result = mini
    text = render_trace(cg, result)
    assert OPS_HOP in text
    assert "◆ migration_rate_exceeded(f)  migration/ram.c:37  in while (!migration_rate_exceeded(f))" in text


def test_tree_merges_common_prefixes():
    cg = toy([("s", "a"), ("a", "b"), ("a", "c"), ("b", "t"), ("c", "t")])
    lines = render_tree(cg, [["s", "a", "b", "t"], ["s", "a", "c", "t"]], leaf_note="◆ x")
    names = [re.sub(r"^[\s│├└─]+", "", line).split("  ")[0] for line in lines]
    assert names == ["s", "a", "b", "t", "◆ x", "c", "t", "◆ x"]
    assert lines[2].startswith("   ├─ b") and lines[5].startswith("   └─ c")


def test_text_without_paths_says_so():
    cg = toy([("s", "a"), ("t", "a")])
    text = render_trace(cg, trace(cg, "s", find_targets(cg, "t")))
    assert "0 paths" in text and "no path from s" in text


def test_json_document_follows_the_schema(mini):
    cg, result = mini
    document = json.loads(json.dumps(trace_document(cg, result, query={"from": "qmp:migrate", "to": "assign:threshold_size"},
                                                    tree="fixtures/mini_qemu", version="mini")))
    assert document["schema"] == SCHEMA == "chaintrace.trace/1"
    assert set(document) == {"schema", "query", "tree", "version", "targets", "nodes", "edges", "paths", "counts",
                             "diagnostics", "undecided"}
    assert document["undecided"] == {"total": 0, "nearest": []} and document["query"]["undecided"] is False
    assert document["query"]["from"] == "qmp:migrate" and document["query"]["entry"] == "qmp_migrate"
    target = document["targets"][1]
    assert {k: target[k] for k in ("kind", "function", "file", "line")} == {
        "kind": "assign", "function": "migration/migration.c::migration_update_counters",
        "file": "migration/migration.c", "line": 121}
    assert target["counts"]["paths_total"] == 1 and target["counts"]["method"] == "dag"
    path = document["paths"][target["paths"][0]]
    assert path["nodes"][-1] == target["function"] and path["targets"] == [1]
    assert path["kinds"] == [["direct"], ["callback"], ["direct"], ["direct"], ["thread"], ["direct"]]
    node_ids = {node["id"] for node in document["nodes"]}
    assert {n for p in document["paths"] for n in p["nodes"]} <= node_ids
    for edge in document["edges"]:
        assert {"src", "dst", "kind", "sites", "proof", "confidence"} <= set(edge)
        assert edge["src"] in node_ids and edge["dst"] in node_ids
        if edge["kind"] != "direct":
            assert edge["proof"]["file"] and edge["proof"]["line"]
    counts = document["counts"]
    assert (counts["paths_total"], counts["enumerated"], counts["omitted"], counts["exact"]) == (3, 3, 0, True)
    assert counts["by_edge_kind"] == {"callback": 2, "direct": 3, "ops": 1, "thread": 2}
    assert counts["edges_by_kind"]["ops"] == 1


def test_json_lists_a_shared_path_once():
    cg = toy([("s", "t")])
    targets = find_targets(cg, "t") * 2
    document = trace_document(cg, trace(cg, "s", targets))
    assert len(document["paths"]) == 1 and document["paths"][0]["targets"] == [0, 1]
    assert document["counts"]["paths_total"] == 1


@pytest.mark.parametrize("exact, method, words", [
    (True, "dag", ""), (False, "scc lower bound", "at least "),
    (False, "dag, via legs overlap: upper bound", "at most "),
    (False, "scc lower bound, via legs overlap: an estimate", "about "),
])
def test_count_words_follow_the_method(exact, method, words):
    from chaintrace.render.wording import bound_words

    assert bound_words(exact, method) == words
