"""`model migration --from-qmp` against a real QEMU the test starts (Debian's qemu-system-x86_64, TCG).

The guest is the BIOS alone (`-machine pc -m 64`, no disk): QEMU runs, the
RAM is 64 MiB, nearly all zero pages. A second monitor lets the test run
`migrate` to a destination QEMU while the command watches on the first.
Skips without qemu-system-x86_64; under CI=true it is installed or the
test fails.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.ci import require_tool
from helpers.cli import run_cli

from chaintrace.model.qmp import QmpClient

MiB = 2**20


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"QEMU did not create {path} within {timeout:.0f} s")
        time.sleep(0.05)


@pytest.fixture
def qemu_pair(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """Start a source QEMU (two QMP monitors) and a destination; yield (monitor, second monitor, port)."""
    binary = require_tool(("qemu-system-x86_64",), "qemu-system-x86", "--from-qmp must be tested on a real QEMU")
    port = _port()
    common = [binary, "-machine", "pc", "-accel", "tcg", "-m", "64", "-nodefaults", "-display", "none"]
    source = [*common, "-qmp", f"unix:{tmp_path / 'a.qmp'},server=on,wait=off",
              "-qmp", f"unix:{tmp_path / 'b.qmp'},server=on,wait=off"]
    destination = [*common, "-incoming", f"tcp:127.0.0.1:{port}"]
    processes = [subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for command in (destination, source)]
    try:
        _wait_for(tmp_path / "a.qmp")
        _wait_for(tmp_path / "b.qmp")
        yield tmp_path / "a.qmp", tmp_path / "b.qmp", port
    finally:
        for process in processes:
            process.kill()
            process.wait()


def _qemu_version(binary_output: str) -> str:
    return binary_output.split("version ", 1)[1].split()[0]


def test_from_qmp_reads_a_real_qemu(qemu_pair, capsys: pytest.CaptureFixture[str]) -> None:
    monitor, _, _ = qemu_pair
    argv = ["model", "migration", "--from-qmp", monitor, "--wss", "1MiB", "--bandwidth", "100MB/s",
            "--count-nonzero", "--json"]
    assert run_cli(argv) == 0
    data = json.loads(capsys.readouterr().out)
    version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout
    assert _qemu_version(version).startswith(data["live"]["qemu_version"].rsplit(".", 1)[0])
    assert data["scenario"]["ram"] == 64 * MiB
    assert data["live"]["max_bandwidth"] > 0 and data["live"]["downtime_limit"] > 0
    assert 0 < data["live"]["nonzero"] < 8 * MiB  # the BIOS and its tables; the rest is zero pages
    assert data["outcome"]["converged"] is True


def test_watch_follows_a_real_migration(qemu_pair, capsys: pytest.CaptureFixture[str]) -> None:
    monitor, second, port = qemu_pair
    argv = ["model", "migration", "--from-qmp", monitor, "--wss", "1MiB", "--bandwidth", "100MB/s",
            "--count-nonzero", "--watch", "--time-limit", "60s"]
    status: list[int] = []
    watcher = threading.Thread(target=lambda: status.append(run_cli(argv)))
    watcher.start()
    time.sleep(3)  # the dirty rate takes a second to measure; then the command waits for migrate
    with QmpClient(second) as client:
        client.execute("migrate", uri=f"tcp:127.0.0.1:{port}")
    watcher.join(timeout=120)
    assert status == [0]
    out = capsys.readouterr().out
    assert "watch: waiting for the migration to start" in out
    assert "outcome    model converged / QEMU converged (right)" in out
    assert "completed" in out


def test_a_real_qemu_refusing_a_command_is_one_line(qemu_pair, capsys: pytest.CaptureFixture[str]) -> None:
    monitor, _, _ = qemu_pair
    argv = ["model", "migration", "--from-qmp", monitor, "--wss", "1MiB", "--bandwidth", "100MB/s",
            "--calc-time", "0"]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert "QEMU refused calc-dirty-rate" in err and err.count("\n") == 1
