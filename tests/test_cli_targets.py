"""Field targets (`read:`, `use:`, `assign:`) and site pickers (`@FUNC`, `~TEXT`) through the real pipeline.

`fixtures/field_access/` is indexed into a temporary cache and traced with
`chaintrace.cli.main`, as a user would.
"""

from __future__ import annotations

import json

import pytest

from helpers.cli import REPO_ROOT, run_captured

TREE = REPO_ROOT / "fixtures" / "field_access"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def trace(cache, target: str, *more: str):
    return run_captured(["trace", TREE, "--cache", cache, "--from", "run", "--to", target, *more])


def sites(cache, target: str) -> list[tuple]:
    """Return (kind, function name, line, access, receiver type, match) of each target site, from --json."""
    run = trace(cache, target, "--json")
    assert run.code == 0, run.err
    document = json.loads(run.out)
    return [(t["kind"], t["function"].rpartition("::")[2], t["line"], t.get("access"), t.get("receiver_type"),
             t.get("match")) for t in document["targets"]]


def test_the_extractor_tells_each_place_of_a_member_access(fixture_trees):
    (facts,) = [f for f in fixture_trees.facts("field_access") if f.path == "limits.c"]
    reads = [(r.line, r.expr, r.how, r.base_type) for r in facts.reads if r.field == "threshold_size"]
    assert reads == [
        (16, "s->threshold_size", "condition", "Limits"),
        (25, "s->threshold_size", "compound", "Limits"),
        (30, "s->threshold_size", "initializer", "Limits"),
        (31, "s->threshold_size", "argument", "Limits"),
        (32, "s->threshold_size", "address", "Limits"),
        (38, "o->threshold_size", "return", "Other"),
        (38, "((Limits *)opaque)->threshold_size", "return", ""),
    ]
    assert [(w.line, w.operator) for w in facts.writes if w.field == "threshold_size"] == [(24, "="), (25, "+=")]


def test_read_targets_every_read_but_not_the_address_or_the_plain_write(cache):
    assert sites(cache, "read:threshold_size") == [
        ("read", "check", 16, "condition", "Limits", "name"),
        ("read", "update", 25, "compound", "Limits", "name"),
        ("read", "limit", 30, "initializer", "Limits", "name"),
        ("read", "limit", 31, "argument", "Limits", "name"),
        ("read", "other", 38, "return", "Other", "name"),
        ("read", "other", 38, "return", "", "name"),
    ]


def test_a_struct_type_keeps_its_receivers_and_the_unknown_ones_said_so(cache):
    found = sites(cache, "read:Limits.threshold_size")
    assert [(name, line, match) for _, name, line, _, _, match in found] == [
        ("check", 16, "type"), ("update", 25, "type"), ("limit", 30, "type"), ("limit", 31, "type"), ("other", 38, "name"),
    ]
    run = trace(cache, "read:Limits.threshold_size@other")
    assert run.code == 0 and run.out == (
        "[1/1] read target in other (limits.c:38): 1 path (dag), 1 shown\n"
        "  run  limits.c:41\n"
        "  └─ other  at limits.c:47:12\n"
        "        ◆ return o->threshold_size + ((Limits *)opaque)->threshold_size;  limits.c:38  "
        "[read (return) of ?.threshold_size, matched by field name (receiver type unknown)]\n\n"
    )


def test_use_targets_reads_writes_and_the_address_once_each(cache):
    assert [(kind, line, access) for kind, _, line, access, _, _ in sites(cache, "use:threshold_size")] == [
        ("read", 16, "condition"), ("assign", 24, "="), ("assign", 25, "+="), ("read", 30, "initializer"),
        ("read", 31, "argument"), ("use", 32, "address"), ("read", 38, "return"), ("read", 38, "return"),
    ]


def test_site_pickers_keep_one_site_by_function_and_text(cache):
    run = trace(cache, "assign:threshold_size@update~+=")
    assert run.code == 0 and run.out == (
        "[1/1] assign target in update (limits.c:25): 1 path (dag), 1 shown\n"
        "  run  limits.c:41\n"
        "  └─ update  at limits.c:43:5\n"
        "        ◆ s->threshold_size += 1;  limits.c:25  [write (+=) of Limits.threshold_size]\n\n"
    )
    assert [line for _, _, line, *_ in sites(cache, "read:threshold_size~report(")] == [31]
    assert [line for _, _, line, *_ in sites(cache, "read:s->threshold_size@limits.c::limit")] == [30, 31]


def test_a_picker_that_keeps_nothing_names_the_sites_there_were(cache):
    run = trace(cache, "assign:threshold_size@check")
    assert run.code == 2 and run.out == "" and run.err == (
        "chaintrace: error: 'assign:threshold_size@check': none of the 2 site(s) of the target is picked; "
        "they are in update (s->threshold_size += 1;), update (s->threshold_size = bandwidth * 300;)\n"
    )


def test_several_targets_each_with_its_count_first(cache):
    run = run_captured(["trace", TREE, "--cache", cache, "--from", "run", "--to", "read:Limits.threshold_size@limit",
                        "--to", "assign:threshold_size~+=", "--max-paths", "0"])
    assert run.code == 0 and run.out == (
        "read:Limits.threshold_size@limit: 2 sites, 1 path\n"
        "assign:threshold_size~+=: 1 site, 1 path\n"
        "\n"
        "[1/3] read target in limit (limits.c:30) for read:Limits.threshold_size@limit: 1 path (dag), 0 shown, "
        "1 more not shown\n"
        "\n"
        "[2/3] read target in limit (limits.c:31) for read:Limits.threshold_size@limit: 1 path (dag), 0 shown, "
        "1 more not shown\n"
        "\n"
        "[3/3] assign target in update (limits.c:25) for assign:threshold_size~+=: 1 path (dag), 0 shown, "
        "1 more not shown\n"
        "\n"
    )


def test_several_targets_in_json(cache):
    run = trace(cache, "read:Limits.threshold_size@limit", "--to", "check", "--json")
    document = json.loads(run.out)
    assert run.code == 0 and document["query"]["to"] == ["read:Limits.threshold_size@limit", "check"]
    assert [(t["to"], t["line"]) for t in document["targets"]] == [
        ("read:Limits.threshold_size@limit", 30), ("read:Limits.threshold_size@limit", 31), ("check", 14)]
    assert document["counts"]["by_target"] == [
        {"to": "read:Limits.threshold_size@limit", "sites": 2, "paths_total": 1, "exact": True, "method": "dag"},
        {"to": "check", "sites": 1, "paths_total": 1, "exact": True, "method": "dag"},
    ]
    assert document["counts"]["paths_total"] == 2
