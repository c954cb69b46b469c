"""`chaintrace why-not`: where a chain breaks, through the real pipeline (fixtures/broken_chain indexed into a tmp cache)."""

from __future__ import annotations

import json

import pytest

from helpers.cli import MINI_QEMU, REPO_ROOT, run_captured

TREE = REPO_ROOT / "fixtures" / "broken_chain"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_a_chain_cut_by_a_function_pointer_names_the_call_through_it(cache):
    run = run_captured(["why-not", TREE, "--cache", cache, "--from", "start", "--to", "apply_limit"])
    assert run.code == 1 and run.err == ""
    assert run.out == """\
no path from start to apply_limit (chain.c:11)
start reaches 4 function(s); 2 function(s) reach the target.
closest to the target among the functions start reaches:
  job_run  chain.c:26  (no calls between them: near by source file)
  pick_handler  chain.c:21  (no calls between them: near by source file)
  start  chain.c:31  (no calls between them: near by source file)
closest to start among the functions that reach the target:
  apply_limit  chain.c:11  (no calls between them: near by source file)
  job_handler  chain.c:16  (no calls between them: near by source file)
unresolved indirect calls in the functions start reaches, closest to the target first (1); any could be the missing call:
  chain.c:28  job_run calls fallback: parameter: no caller passes it a function
"""


def test_why_not_json_and_a_path_that_exists(cache):
    run = run_captured(["why-not", TREE, "--cache", cache, "--from", "start", "--to", "apply_limit", "--json",
                        "--limit", "1"])
    document = json.loads(run.out)
    assert run.code == 1 and document["path_exists"] is False
    assert (document["reached"], document["reaching"], document["joins_total"]) == (4, 2, 1)  # start, job_run, pick_handler and lookup_symbol (outside the tree)
    assert document["filters_cut"] is False
    assert [f["id"] for f in document["near_target"]] == ["job_run"]
    assert [(j["file"], j["line"], j["callee"]) for j in document["joins"]] == [("chain.c", 28, "fallback")]
    run = run_captured(["why-not", TREE, "--cache", cache, "--from", "start", "--to", "job_run"])
    assert run.code == 0 and run.out == "a path exists from start to job_run (chain.c:26): `chaintrace trace` lists it\n"


def test_functions_connected_by_calls_come_with_their_distance(cache):
    # without the thread edge, the function starting the thread and one the thread also calls are one call away
    run = run_captured(["why-not", MINI_QEMU, "--cache", cache, "--from", "qmp:migrate", "--to", "migration_thread",
                        "--edges", "direct,callback", "--limit", "2", "--json"])
    document = json.loads(run.out)
    assert run.code == 1
    assert [(f["name"], f["distance"]) for f in document["near_target"]] == [("migrate_fd_connect", 1), ("migrate_set_state", 1)]
    assert document["filters_cut"] is True


def test_trace_without_a_path_points_to_why_not(cache):
    run = run_captured(["trace", TREE, "--cache", cache, "--from", "start", "--to", "apply_limit"])
    assert run.code == 1 and run.err == (
        f"chaintrace: no path; `chaintrace why-not {TREE} --from start --to apply_limit` names where the chain breaks\n")
