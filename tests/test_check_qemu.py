"""The shipped QEMU specs hold on every fetched QEMU tree, and `diff` sees what QEMU changed between 7.2 and 10.x.

`chaintrace check queries/qemu/*.toml --tree TREE` runs once per release
family (7.2, 10.0, 10.2); a family not fetched is skipped (a failure under
CI=true, see conftest.py).  Every tree is indexed into the session-wide
`index_cache`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.cli import run_captured

from chaintrace.regress.spec import spec_files

REPO = Path(__file__).resolve().parent.parent
SPEC_FILES = sorted((REPO / "queries" / "qemu").glob("*.toml"))  # macros.toml, registrars.toml are skipped
SPECS = {spec.name: spec for spec in spec_files(SPEC_FILES)[0]}
FAMILIES = ("7.2", "10.0", "10.2")


def run_cli(argv: list[str]) -> tuple[int, str]:
    """Run a check/snapshot/diff command line as `chaintrace` does; return (exit code, stdout)."""
    run = run_captured(argv)
    return run.code, run.out


def test_the_four_migration_specs_are_shipped():
    assert set(SPECS) >= {"migrate-threshold-size", "migrate-expected-downtime", "migrate-incoming-coroutine",
                          "migrate-set-downtime-limit"}


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_specs_hold(family, indexed_qemu, index_cache, tmp_path):
    tree = indexed_qemu(family)
    junit = tmp_path / "junit.xml"
    code, out = run_cli(["check", *map(str, SPEC_FILES), "--tree", str(tree.path), "--json", "--junit", str(junit),
                         "--cache", str(index_cache)])
    document = json.loads(out)
    broken = [f"{r['name']}: {f['expectation']}: {f['message']}" for r in document["results"] for f in r["failures"]]
    assert code == 0, "\n".join(broken)
    assert {r["name"]: r["status"] for r in document["results"]} == dict.fromkeys(SPECS, "pass")
    assert document["trees"] == [{"path": str(tree.path), "version": tree.version}]
    results = {r["name"]: r for r in document["results"]}
    assert results["migrate-set-downtime-limit"]["summary"]["paths_total"] == 1
    if tree.at_least("10.0"):
        assert any("migration_connect" in note for note in results["migrate-threshold-size"]["notes"])
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (str(len(SPECS)), "0", "0")


@pytest.fixture(scope="module")
def old_and_new(indexed_qemu) -> tuple:
    """Return the 7.2 tree and the newest of 10.2, 10.0 that is fetched (skip when either is missing)."""
    old = indexed_qemu("7.2")
    for family in ("10.2", "10.0"):
        try:
            return old, indexed_qemu(family)
        except pytest.skip.Exception:
            continue
    pytest.skip("no QEMU 10.x tree fetched")


def test_diff_sees_the_parameter_code_move(old_and_new, index_cache):
    old, new = old_and_new
    code, out = run_cli(["diff", str(old.path), str(new.path), "--spec", str(SPECS["migrate-set-downtime-limit"].path),
                         "--json", "--cache", str(index_cache)])
    assert code == 0  # diff reports changes; only --exit-code makes them a failure
    d = json.loads(out)
    assert {(m["function"], m["from_file"], m["to_file"]) for m in d["functions"]["moved"]} == {
        ("migrate_params_apply", "migration/migration.c", "migration/options.c"),
        ("qmp_migrate_set_parameters", "migration/migration.c", "migration/options.c")}
    assert d["functions"]["renamed"] == [] and d["targets"]["changed"] == []
    assert d["edges"] == {"added": [], "removed": []}  # the same chain, moved


def test_diff_sees_the_rename_and_the_new_formula(old_and_new, index_cache):
    old, new = old_and_new
    code, out = run_cli(["diff", str(old.path), str(new.path), "--spec", str(SPECS["migrate-threshold-size"].path),
                         "--json", "--cache", str(index_cache)])
    assert code == 0  # diff reports changes; only --exit-code makes them a failure
    d = json.loads(out)
    assert ("migrate_fd_connect", "migration_connect") in {(r["from"], r["to"]) for r in d["functions"]["renamed"]}
    [changed] = d["targets"]["changed"]
    assert changed["from"] == "s->threshold_size = bandwidth * s->parameters.downtime_limit;"
    assert changed["to"] == "s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();"
