"""`chaintrace model migration` on the command line: output, JSON, plots and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import run_cli

BASE = ["--ram", "4GiB", "--dirty-rate", "50MB/s", "--wss", "512MiB", "--bandwidth", "1Gbit/s"]


def _run(argv: list[str]) -> int:
    """Run `chaintrace model migration ARGV`; return the exit code."""
    return run_cli(["model", "migration", *argv])


def test_prints_rules_table_and_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(BASE) == 0
    out = capsys.readouterr().out
    assert "built-in defaults of QEMU 10.2 (no --tree given)" in out
    assert "threshold_size" in out and "expected downtime" in out
    assert "converged: VM stopped at" in out
    assert "max-bandwidth 128 MiB/s" in out


def test_json_is_plain_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(BASE + ["--json", "--time-limit", "120s"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scenario"]["ram"] == 4 * 2**30
    assert data["rules"]["version"] == "10.2"
    assert data["outcome"]["converged"] is True
    assert data["outcome"]["rounds"] == len(data["rounds"])
    assert {"time", "bytes_sent", "pending", "bandwidth", "threshold", "expected_downtime"} <= set(data["rounds"][0])


def test_not_converging_is_a_result_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--ram", "4GiB", "--dirty-rate", "200MB/s", "--wss", "1GiB", "--bandwidth", "1Gbit/s",
            "--time-limit", "60s"]
    assert _run(argv) == 0
    assert "not converged within 60 s" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_plot_is_written(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / f"run{suffix}"
    assert _run(BASE + ["--plot", str(target)]) == 0
    assert target.stat().st_size > 1000
    assert f"plot: {target}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (["--ram", "4 elephants"], "bad size '4 elephants'"),
        (["--bandwidth", "1Gbit"], "bad rate '1Gbit'"),
        (["--downtime-limit", "300"], "bad duration '300'"),
        (["--wss", "8GiB"], "--wss must be between 0 and --ram"),
        (["--zero-fraction", "2"], "bad fraction '2'"),
    ],
)
def test_bad_values_exit_2_with_one_line(change: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(BASE + change) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and says in captured.err


def test_switchover_bandwidth_on_a_7_2_tree_exits_2(indexed_qemu, index_cache: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    tree = indexed_qemu("7.2")
    argv = ["--tree", str(tree.path), "--cache", str(index_cache), "--switchover-bandwidth", "10Gbit/s"]
    assert _run(BASE + argv) == 2
    assert "no avail-switchover-bandwidth" in capsys.readouterr().err


def test_missing_tree_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(BASE + ["--tree", str(tmp_path / "none")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_drift_exits_1_naming_the_fact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "tree"
    (tree / "migration").mkdir(parents=True)
    (tree / "migration" / "migration.c").write_text("#define BUFFER_DELAY sizeof(x)\n")
    assert _run(BASE + ["--tree", str(tree), "--cache", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'buffer-delay' drifted" in err and "migration/migration.c:1" in err


def test_a_real_tree_runs_its_own_rules(indexed_qemu, index_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = indexed_qemu("7.2")
    assert _run(BASE + ["--tree", str(tree.path), "--cache", str(index_cache), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rules"]["completion_compare"] == "<"
    assert any(anchor["name"] == "threshold-formula" for anchor in data["anchors"])
