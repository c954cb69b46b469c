"""Calls whose receiver picks the callee (query/decided.py), through the real pipeline: fixtures/ops_choice.

savevm_iterate calls every registered handler in a loop (choice `each`): traces take every callee.
channel_close calls `klass->io_close(ioc)` once (choice `receiver`): no path from migrate_cleanup says
which class `ioc` has, so a default trace takes neither callee and names the call; `--undecided` and
`--sound` take both. channel_flush's member holds one function (choice `one`): traces take it.
tran_commit walks a list its caller filled (choice `built`): only the actions the path added run.
"""

from __future__ import annotations

import json

import pytest

from helpers.cli import REPO_ROOT, run_captured, trace_json

TREE = REPO_ROOT / "fixtures" / "ops_choice"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def trace(cache, source: str, target: str, *options: str) -> tuple[int, dict]:
    return trace_json(TREE, cache, source, target, *options)


def nodes(document: dict) -> list[list[str]]:
    return [path["nodes"] for path in document["paths"]]


@pytest.mark.parametrize("target", ["migration/ram.c::ram_save_iterate", "migration/dirty.c::dirty_save_iterate"])
def test_a_call_in_a_loop_over_its_receivers_reaches_every_registered_function(cache, target):
    code, document = trace(cache, "savevm_iterate", target)
    assert code == 0 and nodes(document) == [["savevm_iterate", target]]
    assert document["undecided"] == {"total": 0, "nearest": []}


@pytest.mark.parametrize("target", ["migration/ram.c::ram_save_complete", "migration/dirty.c::dirty_save_complete"])
def test_a_receiver_passed_from_a_loop_in_the_caller_reaches_every_registered_function(cache, target):
    code, document = trace(cache, "savevm_complete", target)
    assert code == 0 and nodes(document) == [["savevm_complete", "migration/savevm.c::savevm_complete_one", target]]
    assert [site["choice"] for edge in document["edges"] if edge["kind"] == "ops" for site in edge["sites"]] == ["each"]


def test_a_member_with_one_function_is_followed(cache):
    code, document = trace(cache, "migrate_cleanup", "io/channel-socket.c::socket_flush")
    assert code == 0 and nodes(document) == [["migrate_cleanup", "channel_flush", "io/channel-socket.c::socket_flush"]]


def test_a_call_the_receiver_decides_is_not_followed_and_is_named(cache):
    code, document = trace(cache, "migrate_cleanup", "socket_close")
    assert code == 1 and document["paths"] == []
    assert document["targets"][0]["counts"]["paths_total"] == 0 and document["targets"][0]["counts"]["exact"]
    assert document["undecided"]["total"] == 1
    door = document["undecided"]["nearest"][0]
    assert (door["caller"], door["file"], door["line"], door["callee"], door["member"], door["targets"], door["distance"]) \
        == ("channel_close", "io/channel.c", 12, "klass->io_close", "ChannelClass.io_close", 1, 1)


@pytest.mark.parametrize("option", ["--undecided", "--sound"])
def test_undecided_and_sound_follow_it(cache, option):
    code, document = trace(cache, "migrate_cleanup", "socket_close", option)
    assert code == 0 and nodes(document) == [["migrate_cleanup", "channel_close", "socket_close"]]
    assert document["undecided"] == {"total": 0, "nearest": []}


def test_the_text_names_the_call_left_out(cache):
    run = run_captured(["trace", TREE, "--cache", cache, "--from", "migrate_cleanup", "--to", "socket_close"])
    assert run.code == 1
    assert ("1 call(s) on the way were not followed: the receiver picks the callee at run time and nothing on the "
            "path decides which (--undecided follows them); nearest:\n"
            "  io/channel.c:12 klass->io_close in channel_close: 1 callee(s) lead to the target") in run.out


@pytest.mark.parametrize("entry, reached, other", [("qmp_backup", "backup_commit", "snapshot_commit"),
                                                   ("qmp_snapshot", "snapshot_commit", "backup_commit")])
def test_a_loop_over_a_list_the_path_filled_runs_only_what_the_path_added(cache, entry, reached, other):
    code, document = trace(cache, entry, f"util/actions.c::{reached}")
    assert code == 0 and nodes(document) == [[entry, "tran_commit", f"util/actions.c::{reached}"]]
    assert [site["choice"] for edge in document["edges"] if edge["kind"] == "ops" for site in edge["sites"]] == ["built"]
    code, document = trace(cache, entry, f"util/actions.c::{other}")
    assert code == 1 and document["paths"] == []
    code, document = trace(cache, entry, f"util/actions.c::{other}", "--undecided")
    assert code == 1 and document["targets"][0]["counts"]["method"].startswith("dag, after dropping 1")


def test_the_hmp_table_of_the_hx_file_gives_the_command_dispatch_its_targets(tmp_path):
    # fixtures/hmp_table: the .hx initializers fill HMPCommand.cmd (registrars.toml [[table]]); the command line
    # picks the one that runs, so only --undecided follows the call
    tree = REPO_ROOT / "fixtures" / "hmp_table"
    argv = ["trace", tree, "--cache", tmp_path, "--from", "handle_hmp_command", "--to", "hmp_migrate", "--json"]
    run = run_captured(argv)
    document = json.loads(run.out)
    assert run.code == 1 and [(d["caller"], d["callee"], d["member"]) for d in document["undecided"]["nearest"]] \
        == [("handle_hmp_command", "cmd->cmd", "HMPCommand.cmd")]
    run = run_captured([*argv, "--undecided"])
    document = json.loads(run.out)
    assert run.code == 0 and nodes(document) == [["handle_hmp_command", "hmp_migrate"]]
    (edge,) = [edge for edge in document["edges"] if edge["kind"] == "ops"]
    assert (edge["proof"]["file"], edge["proof"]["line"], edge["proof"]["struct_type"]) == ("hmp-commands.hx", 3, "HMPCommand")
