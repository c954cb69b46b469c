"""The model's inputs read from a running QEMU over QMP, and what QEMU reports while it migrates.

`read_inputs` asks QEMU what it can tell before `migrate`: RAM
(`query-memory-size-summary`), the dirty rate it measures
(`calc-dirty-rate`, then `query-dirty-rate` until measured), the migration
parameters and capabilities, and, when asked, the non-zero footprint (a
`pmemsave` of guest RAM to a scratch file, counted page by page).
`scenario_from_live` turns them, with what the user states (working set,
write pattern, link), into a `Scenario`. `poll` reads one `query-migrate`.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from chaintrace.model.migration import Scenario
from chaintrace.model.qmp import QmpClient, QmpCommandError, QmpError
from chaintrace.model.writes import Writer

MiB = 2**20
PAGE = 4096
SAMPLE_PAGES = 16384  # pages per GiB, QEMU's MAX_SAMPLE_PAGE_COUNT
# Capabilities that change what precopy sends or when it stops; the model simulates none of them.
UNMODELLED = ("xbzrle", "compress", "multifd", "postcopy-ram", "auto-converge", "dirty-limit", "rdma-pin-all",
              "zero-copy-send", "mapped-ram", "background-snapshot", "x-colo")


@dataclass(frozen=True, slots=True)
class LiveInputs:
    """What a running QEMU told: sizes in bytes, rates in bytes/s, times in seconds.

    `dirty_rate` is QEMU's measured rate of distinct pages dirtied over
    `calc_time` (its integer MiB/s plus half a MiB/s, the mean of what the
    truncation dropped); `nonzero` is the non-zero bytes of all guest RAM,
    None when not counted.
    """

    qemu_version: str
    ram: int
    dirty_rate: float
    dirty_rate_mode: str
    calc_time: float
    max_bandwidth: float | None
    downtime_limit: float | None
    switchover_bandwidth: float
    capabilities: tuple[str, ...]
    nonzero: int | None = None

    def unmodelled(self) -> list[str]:
        """Return the enabled capabilities the model does not simulate."""
        return [name for name in self.capabilities if name in UNMODELLED]


def measure_dirty_rate(client: QmpClient, calc_time: int = 1, mode: str = "page-sampling",
                       timeout: float = 30.0, repeat: int = 1) -> tuple[float, str]:
    """Return (bytes/s, mode): QEMU's rate of distinct pages dirtied over `calc_time` seconds.

    Page sampling (QEMU's default) hashes SAMPLE_PAGES pages per GiB before
    and after; we ask for QEMU's most (16384), since a small guest has few,
    and average `repeat` measurements (QEMU draws new samples each time).
    The exact `dirty-bitmap` mode is left to the user: Debian's QEMU 7.2.22
    under TCG dies of a segmentation fault when asked for it.
    """
    arguments: dict[str, Any] = {"calc-time": calc_time, "mode": mode}
    if mode == "page-sampling":
        arguments["sample-pages"] = SAMPLE_PAGES
    rates = []
    for _ in range(max(1, repeat)):
        client.execute("calc-dirty-rate", **arguments)
        rates.append(_measured(client, calc_time, timeout))
    # QEMU truncates to whole MiB/s: the true rate lies in [r, r + 1).
    return (sum(rates) / len(rates) + 0.5) * MiB, mode


def _measured(client: QmpClient, calc_time: int, timeout: float) -> int:
    """Return the MiB/s of the calc-dirty-rate under way, once query-dirty-rate says it is measured."""
    deadline = time.monotonic() + calc_time + timeout
    while time.monotonic() < deadline:
        time.sleep(min(0.25, calc_time / 4))
        info = client.execute("query-dirty-rate")
        if info.get("status") == "measured" and "dirty-rate" in info:
            return max(0, int(info["dirty-rate"]))
    raise QmpError(f"{client.path}: query-dirty-rate still not measured {timeout:g} s after calc-time")


def count_nonzero(client: QmpClient, ram: int, scratch: Path | None = None) -> int:
    """Return the bytes of the guest's non-zero pages: a pmemsave of guest-physical [0, ram) counted by page.

    QEMU writes the file itself, so this works only for a QEMU on this
    machine. Guest RAM above the 32-bit PCI hole is not at [0, ram), so
    larger guests are refused.
    """
    if ram > 2 * 2**30:
        raise QmpError("counting non-zero pages reads guest-physical [0, ram): give --nonzero for guests over 2 GiB")
    with tempfile.TemporaryDirectory(prefix="chaintrace-pmem-", dir=scratch) as folder:
        dump = Path(folder) / "ram"
        client.execute("pmemsave", val=0, size=ram, filename=str(dump))
        nonzero = 0
        with dump.open("rb") as file:
            while block := file.read(1024 * PAGE):
                pages = np.frombuffer(block[:len(block) - len(block) % PAGE], dtype=np.uint64).reshape(-1, PAGE // 8)
                nonzero += int(pages.any(axis=1).sum())
        return nonzero * PAGE


def read_inputs(client: QmpClient, calc_time: int = 1, with_nonzero: bool = False,
                mode: str = "page-sampling", repeat: int = 1) -> LiveInputs:
    """Return what `client`'s QEMU tells before migrating (see LiveInputs); the dirty rate takes `calc_time` s."""
    memory = client.execute("query-memory-size-summary")
    ram = int(memory.get("base-memory", 0)) + int(memory.get("plugged-memory", 0))
    parameters = client.execute("query-migrate-parameters")
    capabilities = client.execute("query-migrate-capabilities")
    rate, mode = measure_dirty_rate(client, calc_time, mode, repeat=repeat)
    version = client.version
    limit = parameters.get("downtime-limit")
    return LiveInputs(
        qemu_version=f"{version.get('major', '?')}.{version.get('minor', '?')}.{version.get('micro', '?')}",
        ram=ram, dirty_rate=rate, dirty_rate_mode=mode, calc_time=float(calc_time),
        max_bandwidth=float(parameters["max-bandwidth"]) if parameters.get("max-bandwidth") else None,
        downtime_limit=limit / 1000 if limit else None,
        switchover_bandwidth=float(parameters.get("avail-switchover-bandwidth", 0) or 0),
        capabilities=tuple(sorted(c["capability"] for c in capabilities if c.get("state"))),
        nonzero=count_nonzero(client, ram) if with_nonzero else None,
    )


def write_rate(pattern: str, distinct_rate: float, wss: int, calc_time: float) -> float:
    """Return the write rate (bytes/s) whose distinct pages over `calc_time` match QEMU's measured rate.

    QEMU counts a page once however often it was written; a sweep dirties as
    many pages as it writes (until it wraps), random writes fewer.
    """
    pages, target = wss / PAGE, distinct_rate * calc_time / PAGE
    if pages <= 0 or target <= 0:
        return 0.0
    if target >= pages:
        return distinct_rate  # saturated: the measurement cannot tell more
    low, high = 0.0, target / calc_time
    distinct = lambda rate: Writer(pattern, rate, pages, 64).written(calc_time).mean() * pages  # noqa: E731
    while distinct(high) < target and math.isfinite(high):
        low, high = high, high * 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if distinct(middle) < target else (low, middle)
    return high * PAGE


def scenario_from_live(live: LiveInputs, base: Scenario) -> Scenario:
    """Return `base` (what the user stated: wss, pattern, link ...) with what QEMU told filled in.

    Values the user gave on the command line win; `base.ram` or
    `base.dirty_rate` of 0 mean "from QEMU".
    """
    scenario = base
    if not scenario.ram:
        scenario = replace(scenario, ram=live.ram)
    if not scenario.dirty_rate:
        scenario = replace(scenario, dirty_rate=write_rate(scenario.write_pattern, live.dirty_rate, scenario.wss,
                                                           live.calc_time))
    if scenario.max_bandwidth is None and live.max_bandwidth:
        scenario = replace(scenario, max_bandwidth=live.max_bandwidth)
    if scenario.downtime_limit is None and live.downtime_limit:
        scenario = replace(scenario, downtime_limit=live.downtime_limit)
    if not scenario.switchover_bandwidth and live.switchover_bandwidth:
        scenario = replace(scenario, switchover_bandwidth=live.switchover_bandwidth)
    if scenario.nonzero is None and not scenario.zero_fraction and live.nonzero is not None:
        outside = max(0, min(live.nonzero - scenario.wss, scenario.ram - scenario.wss))
        scenario = replace(scenario, nonzero=outside)
    return scenario


@dataclass(frozen=True, slots=True)
class Poll:
    """One `query-migrate`: `time` is seconds since the migration left setup (QEMU's total-time less setup-time)."""

    time: float
    status: str
    remaining: int
    transferred: int
    dirty_sync_count: int
    expected_downtime: float
    mbps: float
    downtime: float | None = None
    downtime_bytes: int | None = None


def poll(client: QmpClient) -> Poll:
    """Return what `query-migrate` says now (zeros before the migration has RAM counters)."""
    info = client.execute("query-migrate")
    ram = info.get("ram", {})
    setup = info.get("setup-time", 0) / 1000
    total = info.get("total-time", 0) / 1000
    return Poll(
        time=max(0.0, total - setup), status=str(info.get("status", "none")),
        remaining=int(ram.get("remaining", 0)), transferred=int(ram.get("transferred", 0)),
        dirty_sync_count=int(ram.get("dirty-sync-count", 0)),
        expected_downtime=info.get("expected-downtime", 0) / 1000, mbps=float(ram.get("mbps", 0.0)),
        downtime=info["downtime"] / 1000 if "downtime" in info else None,
        downtime_bytes=int(ram["downtime-bytes"]) if "downtime-bytes" in ram else None,
    )
