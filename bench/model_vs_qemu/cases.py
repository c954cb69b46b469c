"""The bench's cases, the loopback it calibrates, and the model's run of a case from what QEMU told.

Shared by the sweep (`run.py`) and the replay (`replay.py`), which recomputes
the model's side of a recorded sweep without running QEMU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import rig

from chaintrace.model.live import LiveInputs, scenario_from_live
from chaintrace.model.migration import Result, Scenario, simulate
from chaintrace.model.rules import Rules
from chaintrace.model.tree import read_rules

MiB = 2**20
RAM_MIB = 128
QEMU_TREE = Path.home() / ".cache" / "chaintrace" / "qemu" / "7.2.0"


@dataclass(frozen=True, slots=True)
class Case:
    """One migration: the guest (working set, write rate, pattern, non-zero RAM) and QEMU's two parameters."""

    name: str
    wss_mib: int
    rate_mb: float
    max_bandwidth_mib: int
    downtime_limit_ms: int
    pattern: str = "sweep"
    nonzero_mib: int = 8
    time_limit: float = 40.0

    def guest(self) -> rig.Guest:
        """Return the guest this case runs."""
        return rig.Guest(RAM_MIB, self.wss_mib * MiB, self.rate_mb * 1e6, self.pattern, self.nonzero_mib * MiB)


CASES = (
    Case("calm", 16, 4, 32, 300),
    Case("busy", 32, 12, 32, 300, nonzero_mib=16),
    Case("hot", 32, 22, 32, 300, nonzero_mib=16),
    Case("hotter", 48, 26, 32, 300),
    Case("big-wss", 64, 16, 64, 300, nonzero_mib=0),
    Case("slow-limit", 32, 8, 16, 300),
    Case("tight-limit", 16, 8, 64, 50),
    Case("loose-limit", 32, 20, 32, 1000),
    Case("random", 32, 16, 32, 300, pattern="random"),
    Case("hot-cold", 32, 20, 32, 300, pattern="hot-cold"),
    Case("unthrottled", 48, 40, 4096, 300, nonzero_mib=16),
    Case("too-hot", 48, 40, 32, 300, time_limit=20.0),
    Case("too-hot-random", 64, 30, 16, 300, pattern="random", time_limit=20.0),
)


@dataclass(frozen=True, slots=True)
class Loopback:
    """What this host's loopback does: speeds in bytes/s, the throttled window's lateness and the stop's cost in s.

    `buffer` is what the socket buffers take of a stopped copy at once, in
    bytes (0 in results files written before it was calibrated); `zero_scan`
    how fast precopy reads through zero pages, in bytes of RAM per second (0:
    not measured, as in results files written before it was calibrated).
    """

    precopy: float
    stopped: float
    lateness: float
    stop_cost: float
    buffer: float = 0.0
    zero_scan: float = 0.0

    def throttled(self, max_bandwidth: float) -> float | None:
        """Return what a window that spent its budget measures here: the budget over 100 ms plus the lateness."""
        if max_bandwidth >= self.precopy:
            return None
        return max_bandwidth * 0.1 / (0.1 + self.lateness)


def model_run(case: Case, live: LiveInputs, loopback: Loopback, rules: Rules) -> Result:
    """Return the model's run of `case` from what QEMU told (`live`), the stated working set and pattern, the loopback."""
    stated = Scenario(ram=0, dirty_rate=0.0, wss=case.wss_mib * MiB, bandwidth=loopback.precopy,
                      stopped_bandwidth=loopback.stopped, stop_cost=loopback.stop_cost,
                      stopped_buffer=loopback.buffer, throttled_bandwidth=loopback.throttled(case.max_bandwidth_mib * MiB),
                      write_pattern=case.pattern, time_limit=case.time_limit, zero_scan=loopback.zero_scan or None)
    return simulate(scenario_from_live(live, stated), rules)


def tree_rules(tree: Path = QEMU_TREE) -> Rules | None:
    """Return the rules read from `tree` (Debian bookworm's 7.2, the QEMU that runs), or None when not fetched."""
    return read_rules(tree)[0] if tree.is_dir() else None
