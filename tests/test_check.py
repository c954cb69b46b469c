"""Trace specs and their expectations on the version fixtures (fixtures/versions/v1, v2), and `chaintrace check`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from chaintrace import api
from chaintrace.regress.check import check_spec
from chaintrace.regress.expect import evaluate
from chaintrace.regress.spec import load_spec, spec_files, version_matches
from chaintrace.errors import UsageError

from helpers.cli import run_cli

REPO = Path(__file__).resolve().parent.parent
V1 = REPO / "fixtures" / "versions" / "v1"
V2 = REPO / "fixtures" / "versions" / "v2"


@pytest.fixture(scope="module")
def fixture_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("check-cache")


@pytest.fixture(scope="module")
def graphs(fixture_cache: Path):
    """Yield {"v1": TreeGraph, "v2": TreeGraph} with their store open."""
    with api.open_store(fixture_cache) as store:
        yield {name: api.tree_graph(store, tree) for name, tree in (("v1", V1), ("v2", V2))}


def write_spec(tmp_path: Path, body: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


BASE = """
name = "threshold"
from = "qmp:migrate"
to = "assign:threshold_size"
"""


def failures_on(graphs, tmp_path: Path, expect: str, tree: str = "v2") -> list:
    spec = load_spec(write_spec(tmp_path, BASE + "[expect]\n" + textwrap.dedent(expect)))
    return check_spec(graphs[tree], spec).failures


# -- specs as data -------------------------------------------------------------------------------------------


def test_version_selectors():
    assert version_matches("7.2", "7.2.0")
    assert not version_matches("7.2", "10.2.2")
    assert version_matches(">=10.0", "10.0.13") and version_matches(">=10.0", "10.2.2")
    assert not version_matches(">=10.0", "7.2.0")
    assert version_matches("<10.0", "7.2.0")
    assert version_matches(">7.2,<10.2", "10.0.13") and not version_matches(">7.2,<10.2", "10.2.2")
    assert version_matches("10.0.13", "10.0.13") and not version_matches("10.0.13", "10.0.14")
    assert not version_matches(">=1.0", "")
    with pytest.raises(UsageError):
        version_matches("~1.0", "1.0.0")


def test_version_tables_apply_in_order(tmp_path):
    spec = load_spec(write_spec(tmp_path, BASE + """
        [options]
        max_paths = 10
        [expect]
        statement = "bandwidth"
        min_paths = 3
        [versions.">=2.0"]
        note = "the formula reads migrate_downtime_limit()"
        expect = { statement = "migrate_downtime_limit", min_paths = 2 }
        [versions."2.0.0"]
        options = { max_paths = 5 }
        """))
    old, new = spec.resolve("1.0.0"), spec.resolve("2.0.0")
    assert old.expect == {"statement": "bandwidth", "min_paths": 3} and old.query.max_paths == 10 and not old.notes
    assert new.expect == {"statement": "migrate_downtime_limit", "min_paths": 2} and new.query.max_paths == 5
    assert new.notes == ["[>=2.0] the formula reads migrate_downtime_limit()"]


@pytest.mark.parametrize("body, message", [
    ('from = "a"\nto = "b"\ncolour = 1\n', "unknown key 'colour'"),
    ('to = "b"\n', "`from` is required"),
    ('from = "a"\nto = "b"\n[expect]\nthrough = "f"\n', "through must be list"),
    ('from = "a"\nto = "b"\n[expect]\nmax_length = true\n', "max_length must be int"),
    ('from = "a"\nto = "b"\n[expect]\nstatement = "("\n', "not a regular expression"),
    ('from = "a"\nto = "b"\n[expect]\nthrought = ["f"]\n', "unknown key 'throught'"),
    ('from = "a"\nto = "b"\n[versions."7.2"]\nexpect = { reach = 1 }\n', "reach must be bool"),
    ('from = "a"\nto = "b"\n[versions."next"]\nnote = ""\n', "bad version selector"),
    ('from = "a"\nto = \n', "spec.toml"),
    ('from = "a"\nto = "b"\n[expect]\npaths = ["f", "g"]\n', "paths must be a list of paths"),
])
def test_malformed_specs_are_usage_errors(tmp_path, body, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        load_spec(write_spec(tmp_path, body))


def test_non_spec_toml_files_are_skipped_with_a_note():
    specs, skipped = spec_files([REPO / "queries" / "qemu"])
    assert {spec.path.name for spec in specs} >= {"migrate-threshold-size.toml"}
    assert any("macros.toml" in note for note in skipped) and any("registrars.toml" in note for note in skipped)


# -- expectations, each broken on the version fixtures ----------------------------------------------------------


def test_every_expectation_holds_on_v1(graphs, tmp_path):
    assert failures_on(graphs, tmp_path, """
        reach = true
        through = ["qmp_migrate", "migrate_fd_connect", "migration_thread", "migration_update_counters"]
        through_all = ["socket_outgoing_migration", "migration_thread"]
        edges_allowed = ["direct", "thread", "callback"]
        edges_required = ["thread", "callback"]
        max_length = 7
        min_paths = 3
        max_paths = 3
        statement = 'threshold_size = bandwidth \\* s->parameters\\.downtime_limit'
        target_file = "^migration/migration\\\\.c$"
        """, tree="v1") == []


def test_through_names_the_missing_function_and_where_the_path_broke(graphs, tmp_path):
    [failure] = failures_on(graphs, tmp_path, 'through = ["qmp_migrate", "migrate_fd_connect", "migration_thread"]')
    assert failure.expectation == "through"
    assert failure.message.startswith(
        "no path passes qmp_migrate -> migrate_fd_connect -> migration_thread: migrate_fd_connect is on no path; "
        "closest [path 1: qmp_migrate -> socket_start_outgoing_migration -> ")
    assert "migration_connect -> migration_thread" in failure.message
    [failure] = failures_on(graphs, tmp_path, 'through = ["migration_thread", "migration_connect"]')
    assert failure.message.startswith("no path passes migration_thread -> migration_connect: migration_connect "
                                      "never comes after migration_thread (migration/migration.c:")


def test_paths_pins_the_exact_verified_set(graphs, tmp_path):
    # the mechanism: the set of listed paths must equal the pinned one, order aside; a wrong set names
    # what is missing and what is extra
    listed = [path["nodes"] for path in api.trace_document(graphs["v2"], "qmp:migrate", "assign:threshold_size")["paths"]]
    assert listed
    pinned = "paths = [" + ", ".join("[" + ", ".join(f'"{node}"' for node in path) + "]" for path in reversed(listed)) + "]"
    assert failures_on(graphs, tmp_path, pinned) == []
    [failure] = failures_on(graphs, tmp_path, pinned.replace("paths = [", 'paths = [["qmp_migrate", "nope"], ', 1))
    assert failure.expectation == "paths"
    assert failure.message == "the paths listed are not the verified set: missing qmp_migrate -> nope; extra none"
    [failure] = failures_on(graphs, tmp_path, 'paths = [["qmp_migrate", "nope"]]')
    assert failure.message.startswith("the paths listed are not the verified set: missing qmp_migrate -> nope; "
                                      "extra " + " -> ".join(sorted(tuple(p) for p in listed)[0]))


def test_through_all_names_the_path_that_misses(graphs, tmp_path):
    [failure] = failures_on(graphs, tmp_path, 'through_all = ["migration_iteration_run"]', tree="v1")
    assert failure.expectation == "through_all"
    assert failure.message.startswith("path 2 of 3 does not pass migration_iteration_run [path 2: qmp_migrate")
    assert "migration_thread -> migration_rate_limit -> migration_update_counters" in failure.message


def test_edges_allowed_names_the_hop_and_its_site(graphs, tmp_path):
    [failure] = failures_on(graphs, tmp_path, 'edges_allowed = ["direct", "thread"]')
    assert failure.expectation == "edges_allowed"
    assert "hop socket_start_outgoing_migration -> socket_outgoing_migration at migration/socket.c:17 is callback" in failure.message


def test_edges_required(graphs, tmp_path):
    [failure] = failures_on(graphs, tmp_path, 'edges_required = ["ops"]')
    assert failure.expectation == "edges_required" and "has no ops edge" in failure.message


def test_max_length(graphs, tmp_path):
    [failure] = failures_on(graphs, tmp_path, "max_length = 5")
    assert failure.expectation == "max_length" and "shortest path has 7 hops, more than 5" in failure.message


def test_path_count_bounds(graphs, tmp_path):
    [low] = failures_on(graphs, tmp_path, "min_paths = 3")
    assert low.expectation == "min_paths" and low.message == "2 path(s), fewer than 3"
    [high] = failures_on(graphs, tmp_path, "max_paths = 1")
    assert high.expectation == "max_paths" and high.message == "2 path(s), more than 1"


def test_statement_regex_shows_the_statement_found(graphs, tmp_path):
    [failure] = failures_on(graphs, tmp_path, 'statement = "bandwidth \\\\* s->parameters"')
    assert failure.expectation == "statement"
    assert "s->threshold_size = expected_bw_per_ms * migrate_downtime_limit(); (migration/migration.c:40)" in failure.message


def test_target_file(graphs, tmp_path):
    [failure] = failures_on(graphs, tmp_path, 'target_file = "ram\\\\.c"')
    assert failure.expectation == "target_file" and "migration/migration.c" in failure.message


def test_reach_false_and_unreachable_targets(graphs, tmp_path):
    [failure] = failures_on(graphs, tmp_path, "reach = false")
    assert failure.expectation == "reach" and failure.message.startswith("expected no path, found 2")
    spec = load_spec(write_spec(tmp_path, 'from = "migration_rate_limit"\nto = "qmp_migrate"\n'))
    [failure] = check_spec(graphs["v1"], spec).failures
    assert failure.expectation == "reach" and failure.message.startswith("no path from migration_rate_limit")


def test_unknown_entry_or_via_is_an_error_result(graphs, tmp_path):
    spec = load_spec(write_spec(tmp_path, 'from = "qmp:migrate-nowhere"\nto = "assign:threshold_size"\n'))
    result = check_spec(graphs["v1"], spec)
    assert result.status == "error" and "unknown QMP command 'migrate-nowhere'" in result.failures[0].message
    spec = load_spec(write_spec(tmp_path, BASE + '[options]\nvia = ["migrate_fd_connect"]\n'))
    result = check_spec(graphs["v2"], spec)
    assert result.status == "error" and "migrate_fd_connect" in result.failures[0].message


def test_via_and_edges_options_shape_the_trace(graphs, tmp_path):
    spec = load_spec(write_spec(tmp_path, BASE + """
        [options]
        via = ["migration_iteration_run"]
        [expect]
        min_paths = 2
        max_paths = 2
        """))
    assert check_spec(graphs["v1"], spec).status == "pass"
    spec = load_spec(write_spec(tmp_path, BASE + '[options]\nedges = ["direct", "thread"]\n'))
    assert check_spec(graphs["v1"], spec).failures[0].expectation == "reach"


def test_evaluate_is_pure_on_a_document():
    document = {"query": {"entry": "a"}, "targets": [{"file": "x.c", "line": 3, "statement": "s->t = 1;", "paths": [0]}],
                "nodes": [{"id": n, "name": n, "file": "x.c", "line": i} for i, n in enumerate("abc", 1)],
                "edges": [], "paths": [{"nodes": ["a", "b", "c"], "kinds": [["direct"], ["fnptr"]]}],
                "counts": {"paths_total": 1, "exact": True}}
    assert evaluate({"through": ["a", "c"], "edges_required": ["fnptr"], "statement": r"t = 1"}, document) == []
    assert [f.expectation for f in evaluate({"through": ["c", "a"], "max_length": 1}, document)] == ["through", "max_length"]


# -- the check command ----------------------------------------------------------------------------------------------


def test_check_command_table_and_exit_code(tmp_path, fixture_cache, capsys):
    spec = write_spec(tmp_path, BASE + """
        [expect]
        through = ["migrate_fd_connect", "migration_thread"]
        [versions.">=2.0"]
        note = "migrate_fd_connect is migration_connect from 2.0"
        expect = { through = ["migration_connect", "migration_thread"] }
        """)
    strict = write_spec(tmp_path, BASE.replace('name = "threshold"', 'name = "strict"') + "[expect]\nmin_paths = 3\n", "strict.toml")
    code = run_cli(["check", str(spec), str(strict), "--tree", str(V1), "--tree", str(V2), "--cache", str(fixture_cache)])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["spec", "1.0.0", "2.0.0"]
    assert lines[1].split() == ["threshold", "pass", "pass"]
    assert lines[2].split() == ["strict", "pass", "FAIL"]
    assert "FAIL strict on 2.0.0" in out and "min_paths: 2 path(s), fewer than 3" in out
    assert "note: threshold on 2.0.0: [>=2.0] migrate_fd_connect is migration_connect from 2.0" in out
    assert run_cli(["check", str(spec), "--tree", str(V1), "--tree", str(V2), "--cache", str(fixture_cache)]) == 0


def test_check_json(tmp_path, fixture_cache, capsys):
    spec = write_spec(tmp_path, BASE + "[expect]\nmin_paths = 3\n")
    assert run_cli(["check", str(spec), "--tree", str(V1), "--tree", str(V2), "--json", "--cache", str(fixture_cache)]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "chaintrace.regress.check/1" and document["ok"] is False
    assert [(r["version"], r["status"]) for r in document["results"]] == [("1.0.0", "pass"), ("2.0.0", "fail")]
    assert document["results"][1]["failures"] == [{"expectation": "min_paths", "message": "2 path(s), fewer than 3"}]
    assert document["results"][0]["summary"]["paths_total"] == 3


def test_check_usage_errors(tmp_path, fixture_cache, capsys):
    # errors are one line on stderr, nothing on stdout
    assert run_cli(["check", "--tree", str(V1), "--cache", str(fixture_cache)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "nothing to check" in err
    assert run_cli(["check", str(tmp_path / "missing.toml"), "--tree", str(V1)]) == 2
    assert "missing.toml" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert run_cli(["check", "--snapshot", str(bad), "--tree", str(V1)]) == 2
    assert "not a chaintrace snapshot" in capsys.readouterr().err


def test_sites_option_keeps_only_matching_target_sites(graphs, tmp_path):
    body = 'name = "start"\nfrom = "qmp:migrate"\nto = "assign:iteration_start_time"\n'
    spec = load_spec(write_spec(tmp_path, body + "[expect]\nmax_length = 4\n"))
    result = check_spec(graphs["v1"], spec)
    assert result.status == "pass" and result.summary["shortest"] == 4  # migrate_fd_connect sets it too
    spec = load_spec(write_spec(tmp_path, body + '[options]\nsites = "= current_time"\n[expect]\nmax_length = 4\n'))
    result = check_spec(graphs["v1"], spec)
    assert result.summary["targets"] == ["migration/migration.c:36"] and result.summary["paths_total"] == 3
    assert [f.expectation for f in result.failures] == ["max_length"]
    assert "shortest path has 7 hops" in result.failures[0].message


def test_a_spec_picks_its_site_by_function_and_text_on_both_versions(tmp_path, fixture_cache, capsys):
    spec = write_spec(tmp_path, BASE.replace('"assign:threshold_size"', '"assign:threshold_size@migration_update_counters~downtime"')
                      + "[expect]\nstatement = 'downtime'\nthrough = ['migration_thread']\n")
    code = run_cli(["check", str(spec), "--tree", str(V1), "--tree", str(V2), "--json", "--cache", str(fixture_cache)])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and [(r["version"], r["status"]) for r in document["results"]] == [("1.0.0", "pass"), ("2.0.0", "pass")]
