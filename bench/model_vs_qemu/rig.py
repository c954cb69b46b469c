"""The bench's rig: build the guest, start a source and a destination QEMU, migrate over 127.0.0.1, poll.

The guest (`guest/`) is a freestanding 32-bit multiboot kernel that QEMU's
`-kernel` boots in well under a second: it writes `nonzero` bytes once,
writes its working set, prints "guest: ready" on COM1, then dirties the
working set at `rate` bytes/s in a pattern (sweep, random, hot-cold). Both
sides run Debian's qemu-system-x86_64 under TCG with the same command line;
the source also logs the `migrate_pending` and `migration_bitmap_sync_end`
trace events.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaintrace.model.live import Poll, poll
from chaintrace.model.qmp import QmpClient

HERE = Path(__file__).resolve().parent
READY = "guest: ready"
GCC_FLAGS = ["-m32", "-march=i686", "-ffreestanding", "-fno-pic", "-fno-pie", "-no-pie", "-fno-stack-protector",
             "-nostdlib", "-static", "-O2", "-Wall", "-Wl,--build-id=none", "-Wl,-Ttext=0x100000"]
TRACE_EVENTS = ("migrate_pending", "migration_bitmap_sync_end")
# How the bench raises its QEMUs and itself over the machine's other load (see `priority_prefix`).
PRIORITIES = ("nice", "rr", "none")
NICE = -15
VCPU_NICE = 0  # the source's spinning vCPU, below the migration's threads (see lower_vcpus)
RR_PRIORITY = 10


class RigError(RuntimeError):
    """Something the bench needs is missing or a QEMU did not come up; the message says what."""


def qemu_binary() -> str:
    """Return the path of qemu-system-x86_64."""
    binary = shutil.which("qemu-system-x86_64")
    if binary is None:
        raise RigError("qemu-system-x86_64 not found: apt-get install --no-install-recommends qemu-system-x86")
    return binary


def build_guest(work: Path) -> Path:
    """Compile the guest (guest/boot.S, guest/main.c) into `work` and return the multiboot ELF."""
    if shutil.which("gcc") is None:
        raise RigError("gcc not found: apt-get install gcc")
    image = work / "guest.elf"
    subprocess.run(["gcc", *GCC_FLAGS, "-o", str(image), str(HERE / "guest" / "boot.S"),
                    str(HERE / "guest" / "main.c")], check=True)
    return image


@dataclass(frozen=True, slots=True)
class Guest:
    """What the guest does: sizes in bytes, rate in bytes/s."""

    ram_mib: int
    wss: int
    rate: float
    pattern: str = "sweep"
    nonzero: int = 0

    def append(self) -> str:
        """Return the guest's command line."""
        return f"wss={self.wss} rate={int(self.rate)} nonzero={self.nonzero} pattern={self.pattern}"


def priority_prefix(priority: str) -> list[str]:
    """Return the command prefix that starts a QEMU at `priority`: `nice -n -15`, `chrt --rr 10`, or nothing.

    A migration's figures are times: a rate-limited window that wakes late,
    a vCPU descheduled while it should dirty, a stopped copy that waits for
    the CPU all move them, and on a shared machine other processes take the
    CPU at random. `nice -15` (the default) weighs each QEMU thread about 28
    times a nice-0 process and 265 times a `nice` (10) one, so the others
    get little of the CPU while ours wants it and none is starved (where
    autogroups are on, `start_pair` also raises each QEMU's session: see
    `raise_autogroup`; and it lowers the spinning vCPU: `lower_vcpus`). `rr`
    (real-time round robin) preempts everything, but the guest's vCPU spins
    and a migration is three busy threads on two cores: the kernel's
    real-time throttling (95 % of each second) then stalls them 50 ms at a
    time, itself a noise, and the machine's other users wait for minutes.
    A prefix rather than a renice after the start, so that every thread
    QEMU creates inherits it. Both need root (or CAP_SYS_NICE).
    """
    if priority == "nice":
        # nice(1) adds to the caller's niceness (the poller's own, once raised): land on NICE itself.
        return ["nice", "-n", str(NICE - os.getpriority(os.PRIO_PROCESS, 0))]
    if priority == "rr":
        return ["chrt", "--rr", str(RR_PRIORITY)]
    return []


def raise_autogroup(pid: int, niceness: int = NICE) -> None:
    """Give the scheduling autogroup of `pid` (a session of its own) the niceness `niceness`.

    With autogroups on (/proc/sys/kernel/sched_autogroup_enabled), the CPU is
    shared between sessions first and a thread's own niceness only counts
    within its session: QEMU at nice -15 in a session of its own gets that
    session's share, no more. So each QEMU starts a session and the
    session's group gets the niceness too. Without autogroups there is no
    file to write and the threads' niceness is all there is.
    """
    path = Path(f"/proc/{pid}/autogroup")
    if path.exists():
        path.write_text(str(niceness))


def raise_own_priority(priority: str) -> None:
    """Run this process (the poller) at `priority` too, so its polls and QMP commands are not the late ones."""
    if priority == "nice":
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    elif priority == "rr":
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RR_PRIORITY))


def lower_vcpus(process: subprocess.Popen, niceness: int = VCPU_NICE) -> list[int]:
    """Set the niceness of `process`'s vCPU threads (named "CPU n/TCG" with debug-threads=on); return their ids.

    The guest's vCPU spins (it times its writes by polling the HPET), so on
    two cores it would take one of them from the migration thread and the
    destination's receiving one whenever the scheduler likes: the unthrottled
    precopy speed then varied 56-310 MB/s between runs of the same guest.
    Below them, it runs when they wait; the guest's writes are due by the
    HPET's clock, so a vCPU held back catches up and its rate holds.
    """
    lowered = []
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
        except OSError:
            continue  # the thread ended
        if name.startswith("CPU ") and name.endswith("/TCG"):
            os.sched_setscheduler(int(task.name), os.SCHED_OTHER, os.sched_param(0))  # out of rr, if there
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)
            lowered.append(int(task.name))
    return lowered


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Pair:
    """A source and a destination QEMU of the same guest; `close()` ends both (only these two processes)."""

    work: Path
    port: int
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def source_qmp(self) -> Path:
        """Return the source's QMP socket."""
        return self.work / "source.qmp"

    def close(self) -> None:
        """Kill both QEMUs this pair started and wait for them."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()


def _command(binary: str, image: Path, guest: Guest, work: Path, role: str, priority: str = "none") -> list[str]:
    command = [*priority_prefix(priority), binary, "-machine", "pc", "-accel", "tcg", "-m", str(guest.ram_mib),
               "-smp", "1", "-nodefaults", "-name", f"{role},debug-threads=on", "-display", "none", "-no-reboot", "-serial", f"file:{work / (role + '.log')}",
               "-qmp", f"unix:{work / (role + '.qmp')},server=on,wait=off",
               "-kernel", str(image), "-append", guest.append()]
    if role == "source":
        # A second monitor, for whoever needs QEMU while the first is busy.
        command += ["-qmp", f"unix:{work / 'source2.qmp'},server=on,wait=off"]
        command += ["-msg", "timestamp=on", "-D", str(work / "trace.log")]
        command += [arg for event in TRACE_EVENTS for arg in ("-trace", event)]
    return command


def start_pair(binary: str, image: Path, guest: Guest, work: Path, timeout: float = 60.0,
               priority: str = "none") -> Pair:
    """Start the destination (-incoming) and the source at `priority`; return once the source's guest is ready."""
    work.mkdir(parents=True, exist_ok=True)
    pair = Pair(work, free_port())
    destination = (_command(binary, image, guest, work, "destination", priority)
                   + ["-incoming", f"tcp:127.0.0.1:{pair.port}"])
    source = _command(binary, image, guest, work, "source", priority)
    try:
        for role, command in (("destination", destination), ("source", source)):
            with open(work / f"{role}.stderr", "wb") as stderr:
                pair.processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                       stderr=stderr, start_new_session=priority == "nice"))
            if priority == "nice":
                raise_autogroup(pair.processes[-1].pid)
        log = work / "source.log"
        deadline = time.monotonic() + timeout
        while not (log.is_file() and READY in log.read_text(errors="replace")):
            if time.monotonic() > deadline or pair.processes[1].poll() is not None:
                raise RigError(f"the guest did not print {READY!r} within {timeout:.0f} s (see {work})")
            time.sleep(0.1)
        if priority != "none" and not lower_vcpus(pair.processes[1]):
            raise RigError(f"no vCPU thread found in the source QEMU (pid {pair.processes[1].pid}) to lower")
    except BaseException:
        pair.close()
        raise
    return pair


def migrate(pair: Pair, time_limit: float, interval: float = 0.1) -> list[Poll]:
    """Run `migrate` to the destination, poll query-migrate every `interval` s, and return the polls.

    A migration still active `time_limit` s after it left setup is cancelled;
    the last poll is then the last one with RAM counters, marked "not converged".
    """
    with QmpClient(pair.source_qmp) as client:
        client.execute("migrate", uri=f"tcp:127.0.0.1:{pair.port}")
        polls: list[Poll] = []
        while True:
            now = poll(client)
            polls.append(now)
            if now.status in ("completed", "failed", "cancelled"):
                return polls
            if now.time > time_limit:
                client.execute("migrate_cancel")
                last = max((p for p in polls if p.dirty_sync_count), key=lambda p: p.time)
                polls.append(Poll(last.time, "not converged", last.remaining, last.transferred,
                                  last.dirty_sync_count, last.expected_downtime, last.mbps))
                return polls
            time.sleep(interval)


def switch_downtime_limit_later(pair: Pair, after: float, limit_ms: int) -> threading.Thread:
    """Set the source's downtime-limit to `limit_ms` `after` seconds from now, over its second monitor."""

    def switch() -> None:
        time.sleep(after)
        with QmpClient(pair.work / "source2.qmp") as client:
            client.execute("migrate-set-parameters", **{"downtime-limit": limit_ms})

    thread = threading.Thread(target=switch, daemon=True)
    thread.start()
    return thread
