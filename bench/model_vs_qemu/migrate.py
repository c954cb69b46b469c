"""One real precopy migration on loopback: a source and a destination QEMU under TCG, driven over QMP."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmp import Qmp

GUEST_RAM_MIB = 512
READY_MARK = "dirtier: ready"


@dataclass(frozen=True, slots=True)
class Poll:
    """One `query-migrate` seen while the migration ran (times in s since `migrate`)."""

    time: float
    status: str
    remaining: int
    transferred: int
    dirty_sync_count: int
    expected_downtime_ms: int
    mbps: float


@dataclass(frozen=True, slots=True)
class Measured:
    """What QEMU reported: the last `query-migrate` and the polls before it."""

    status: str
    info: dict[str, Any]
    polls: tuple[Poll, ...]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _qemu(binary: str, kernel: Path, initrd: Path, work: Path, role: str, wss: int, rate: float) -> list[str]:
    """Return the command line of one side; both sides must describe the same machine."""
    append = f"console=ttyS0 panic=-1 dirtier.wss={wss} dirtier.rate={int(rate)}"
    return [
        binary, "-machine", "pc", "-accel", "tcg", "-m", str(GUEST_RAM_MIB), "-smp", "1",
        "-nodefaults", "-vga", "none", "-display", "none", "-no-reboot",
        "-serial", f"file:{work / (role + '.log')}",
        "-qmp", f"unix:{work / (role + '.qmp')},server=on,wait=off",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", append,
    ]


def _wait_for_guest(log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and READY_MARK in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"guest did not print {READY_MARK!r} within {timeout:.0f} s (see {log})")


def _poll(info: dict[str, Any], elapsed: float) -> Poll:
    ram = info.get("ram", {})
    return Poll(elapsed, info.get("status", "?"), ram.get("remaining", 0), ram.get("transferred", 0),
                ram.get("dirty-sync-count", 0), info.get("expected-downtime", 0), ram.get("mbps", 0.0))


def migrate(binary: str, kernel: Path, initrd: Path, work: Path, *, wss: int, dirty_rate: float,
            max_bandwidth: int, downtime_limit_ms: int, time_limit: float, warmup: float = 3.0) -> Measured:
    """Boot the guest, migrate it to a second QEMU over 127.0.0.1, and return what QEMU reported.

    A migration still running after `time_limit` seconds is cancelled.
    Both QEMU processes are ended before returning.
    """
    work.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    destination_cmd = _qemu(binary, kernel, initrd, work, "destination", wss, dirty_rate)
    destination_cmd += ["-incoming", f"tcp:127.0.0.1:{port}"]
    source_cmd = _qemu(binary, kernel, initrd, work, "source", wss, dirty_rate)
    processes = []
    for role, command in (("destination", destination_cmd), ("source", source_cmd)):
        # QEMU's own messages (a cancelled incoming migration complains) go to a file.
        with open(work / f"{role}.stderr", "wb") as stderr:
            processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=stderr))
    try:
        _wait_for_guest(work / "source.log", timeout=120)
        time.sleep(warmup)  # let the working set be swept at its rate once
        monitor = Qmp(work / "source.qmp")
        monitor.command("migrate-set-parameters", **{"max-bandwidth": max_bandwidth,
                                                      "downtime-limit": downtime_limit_ms})
        start = time.monotonic()
        monitor.command("migrate", uri=f"tcp:127.0.0.1:{port}")
        polls: list[Poll] = []
        cancelled = False
        last_with_ram: dict[str, Any] = {}
        while True:
            info = monitor.command("query-migrate")
            elapsed = time.monotonic() - start
            polls.append(_poll(info, elapsed))
            if "ram" in info:
                last_with_ram = info
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            if elapsed > time_limit and not cancelled:
                monitor.command("migrate_cancel")
                cancelled = True
            time.sleep(0.1)
        monitor.close()
        # A cancelled migration reports no RAM counters: keep the last that did.
        status = "not converged" if cancelled else info["status"]
        return Measured(status, info if "ram" in info else last_with_ram, tuple(polls))
    finally:
        for process in processes:
            process.kill()
            process.wait()
