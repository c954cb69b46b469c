"""`chaintrace export`: the whole resolved graph as JSON Lines (validated by docs/graph-schema.json) and GraphML."""

from __future__ import annotations

import json

import jsonschema
import networkx as nx
import pytest

from chaintrace import api
from helpers.cli import MINI_QEMU, REPO_ROOT, run_captured

SCHEMA = json.loads((REPO_ROOT / "docs" / "graph-schema.json").read_text())


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def graph_sizes(cache):
    with api.open_store(cache) as store:
        return api.tree_graph(store, MINI_QEMU).tables.sizes()


def test_json_lines_validate_and_hold_the_whole_graph(cache, tmp_path, graph_sizes):
    out = tmp_path / "graph.jsonl"
    run = run_captured(["export", MINI_QEMU, "--cache", cache, "-o", out])
    nodes, edges, diagnostics = graph_sizes
    assert run.code == 0 and run.out == f"{out}: {nodes} nodes, {edges} edges, {diagnostics} diagnostics\n"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = [f"line {n}: {error.message}" for n, line in enumerate(lines, 1) for error in validator.iter_errors(line)]
    assert not problems, "\n".join(problems[:10])
    assert lines[0]["type"] == "header" and lines[0]["schema"] == "chaintrace.graph/1"
    assert [sum(line["type"] == kind for line in lines) for kind in ("node", "edge", "diagnostic")] == [nodes, edges,
                                                                                                         diagnostics]
    thread = [line for line in lines if line["type"] == "edge" and line["kind"] == "thread"]
    assert ("migrate_fd_connect", "migration/migration.c::migration_thread") in {(e["src"], e["dst"]) for e in thread}
    assert all(e["sites"] and e["proof"]["registrar"] == "qemu_thread_create" for e in thread)


def test_graphml_reads_back_with_the_same_counts(cache, tmp_path, graph_sizes):
    out = tmp_path / "graph.graphml"
    run = run_captured(["export", MINI_QEMU, "--cache", cache, "-o", out, "--json"])
    assert run.code == 0 and json.loads(run.out)["edges"] == graph_sizes[1]
    graph = nx.read_graphml(out, force_multigraph=True)
    assert (graph.number_of_nodes(), graph.number_of_edges()) == graph_sizes[:2]
    edges = graph.get_edge_data("migrate_fd_connect", "migration/migration.c::migration_thread")
    (thread,) = edges.values()
    assert thread["kind"] == "thread" and json.loads(thread["sites"])[0]["registrar"] == "qemu_thread_create"
    assert graph.nodes["qmp_migrate"]["file"] == "migration/migration.c"


def test_an_unknown_format_is_a_usage_error_before_indexing(tmp_path):
    run = run_captured(["export", MINI_QEMU, "--cache", tmp_path / "cache", "-o", tmp_path / "graph.csv"])
    assert run.code == 2 and run.err == (
        "chaintrace: error: cannot export to graph.csv: give a file ending in .jsonl or .graphml\n")
    assert not (tmp_path / "cache").exists()
