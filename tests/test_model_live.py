"""`model migration --from-qmp` against a fake QMP monitor replaying a transcript recorded from QEMU 7.2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.fake_qmp import FakeQmp, load_transcript

from chaintrace.cli import model_live
from chaintrace.model.live import write_rate
from chaintrace.model.qmp import QmpClient

MiB = 2**20
STATED = ["--wss", "4MiB", "--bandwidth", "100MB/s"]


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "qmp.sock"


def _run(socket_path: Path, *argv: str) -> int:
    return run_cli(["model", "migration", "--from-qmp", socket_path, *STATED, *argv])


def test_inputs_come_from_qemu(socket_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transcript = load_transcript()
    with FakeQmp(socket_path, transcript) as fake:
        assert _run(socket_path, "--count-nonzero", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    scenario, live = data["scenario"], data["live"]
    assert live["qemu_version"] == "7.2.22"
    assert scenario["ram"] == live["ram"] == 64 * MiB
    assert scenario["max_bandwidth"] == 8 * MiB  # migrate-set-parameters before the recording
    assert scenario["downtime_limit"] == pytest.approx(0.3)
    # QEMU said 1 MiB/s, truncated: the model takes the middle of [1, 2) MiB/s.
    assert live["dirty_rate"] == 1.5 * MiB and scenario["dirty_rate"] == pytest.approx(1.5 * MiB)
    assert scenario["nonzero"] == transcript["nonzero"] - 4 * MiB
    assert fake.received[:2] == ["qmp_capabilities", "query-memory-size-summary"]
    assert "calc-dirty-rate" in fake.received and "pmemsave" in fake.received


def test_calc_repeat_averages_measurements(socket_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeQmp(socket_path, load_transcript()) as fake:
        assert _run(socket_path, "--calc-repeat", "3", "--json") == 0
    assert fake.received.count("calc-dirty-rate") == 3
    assert json.loads(capsys.readouterr().out)["live"]["dirty_rate"] == 1.5 * MiB


def test_values_given_on_the_command_line_win(socket_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeQmp(socket_path, load_transcript()):
        assert _run(socket_path, "--ram", "128MiB", "--max-bandwidth", "32MiB/s", "--json") == 0
    scenario = json.loads(capsys.readouterr().out)["scenario"]
    assert scenario["ram"] == 128 * MiB and scenario["max_bandwidth"] == 32 * MiB


def test_prediction_is_printed_with_what_qemu_told(socket_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeQmp(socket_path, load_transcript()):
        assert _run(socket_path) == 0
    out, err = capsys.readouterr()
    assert "note: all RAM outside the working set is taken as non-zero" in err
    assert out.startswith("from QMP: QEMU 7.2.22, ram 64 MiB, dirty rate 1.57 MB/s (page-sampling over 1 s)")
    assert "converged: VM stopped at" in out


def test_watch_compares_the_model_with_query_migrate(socket_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setattr(model_live, "POLL_INTERVAL", 0.0)
    with FakeQmp(socket_path, load_transcript()):
        assert _run(socket_path, "--watch", "--count-nonzero", "--plot", str(tmp_path / "watch.png")) == 0
    out = capsys.readouterr().out
    assert "watch: waiting for the migration to start" in out
    assert "remaining" in out and "threshold_size" in out
    assert "outcome    model converged / QEMU converged (right)" in out
    assert re.search(r"^syncs +\d+ / 3 ", out, re.M)  # QEMU's dirty-sync-count at the end
    assert (tmp_path / "watch.png").stat().st_size > 1000
    assert re.search(r"^final copy .* / 1.76 MiB", out, re.M)  # QEMU's ram.downtime-bytes


def test_watch_json_has_the_polls_and_the_comparison(socket_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(model_live, "POLL_INTERVAL", 0.0)
    with FakeQmp(socket_path, load_transcript()):
        assert _run(socket_path, "--watch", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["polls"][-1]["status"] == "completed"
    assert data["comparison"]["qemu_converged"] is True and data["comparison"]["qemu_syncs"] == 3


@pytest.mark.parametrize(
    ("mode", "argv", "status", "says"),
    [
        ("garbage", [], 2, "is not a QMP monitor"),
        ("silent", ["--qmp-timeout", "0.3"], 2, "no answer to the greeting within 0.3 s"),
        ("mute", ["--qmp-timeout", "0.3"], 1, "no answer to query-memory-size-summary within 0.3 s"),
    ],
)
def test_a_socket_that_is_not_a_working_qmp_monitor_is_one_line(socket_path: Path, mode: str, argv: list[str],
                                                                 status: int, says: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with FakeQmp(socket_path, load_transcript(), mode=mode):
        assert _run(socket_path, *argv) == status
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_no_socket_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path / "nowhere.sock") == 2
    err = capsys.readouterr().err
    assert "no QMP socket at" in err and err.count("\n") == 1


def test_a_socket_nobody_listens_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: connect is refused
    assert _run(path) == 2
    assert "nothing listens on" in capsys.readouterr().err


def test_qemu_refusing_a_command_says_which(socket_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeQmp(socket_path, load_transcript(), mode="qmp", refuse="calc-dirty-rate"):
        assert _run(socket_path) == 1
    err = capsys.readouterr().err
    assert "QEMU refused calc-dirty-rate: calc-dirty-rate is not allowed now" in err


def test_watch_needs_from_qmp(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["model", "migration", "--ram", "1GiB", "--dirty-rate", "1MB/s", *STATED, "--watch"]
    assert run_cli(argv) == 2
    assert "--watch needs --from-qmp" in capsys.readouterr().err


def test_ram_is_required_without_from_qmp(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["model", "migration", "--dirty-rate", "1MB/s", *STATED]) == 2
    assert "--ram is required (or --from-qmp SOCKET" in capsys.readouterr().err


def test_the_client_skips_events(socket_path: Path) -> None:
    with FakeQmp(socket_path, load_transcript()), QmpClient(socket_path) as client:
        # The fake sends an event before its first answer (to qmp_capabilities) and answers in order.
        assert client.execute("query-memory-size-summary") == {"base-memory": 64 * MiB, "plugged-memory": 0}


@pytest.mark.parametrize("pattern", ["sweep", "random", "hot-cold"])
def test_write_rate_matches_qemus_distinct_page_count(pattern: str) -> None:
    # QEMU counts distinct pages over calc-time; the model's rate must dirty as many.
    from chaintrace.model.writes import Writer

    rate = write_rate(pattern, 8 * MiB, 32 * MiB, 1.0)
    distinct = Writer(pattern, rate / 4096, 32 * MiB / 4096, 64).written(1.0).mean() * 32 * MiB
    assert distinct == pytest.approx(8 * MiB, rel=1e-6)
    assert (rate == pytest.approx(8 * MiB)) if pattern == "sweep" else rate > 8 * MiB
