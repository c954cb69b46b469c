"""What is migrated and over what: the `Scenario` a run starts from, and how QEMU's defaults and the inputs fill it.

`resolve` fills in what the user left to QEMU (max-bandwidth and
downtime-limit from the `Rules`), derives `nonzero` and `zero_fraction`
from each other and the stopped copy's speed from the link's, and refuses,
one line each, the values the model cannot run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from chaintrace.model.rules import Rules
from chaintrace.model.writes import PATTERNS


class ModelError(ValueError):
    """A scenario the model cannot run; the message is one line saying what to change."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """What is migrated and over what: sizes in bytes, rates in bytes/s, times in seconds.

    `max_bandwidth` and `downtime_limit` left as None take QEMU's defaults
    from the Rules; `switchover_bandwidth` 0 means not set. `nonzero` (bytes
    of written RAM outside the working set) left as None follows from
    `zero_fraction`; `stopped_bandwidth` left as None is `bandwidth`;
    `throttled_bandwidth`, what a window that spent its max-bandwidth budget
    measures (QEMU's mbps), left as None means such a window lasts exactly
    BUFFER_DELAY; `stop_cost` is the downtime besides the final copy
    (stopping the guest, device state); the first `stopped_buffer` bytes of
    the final copy land in the socket buffers at once, the rest goes at
    `stopped_bandwidth`. `zero_scan` is how fast precopy reads through zero
    pages (bytes of RAM per second: each is read whole to find it zero);
    None means they cost only their wire bytes. `sweep_start` is where a sweeping
    guest stands in its working set when the migration starts (a share of
    it, 0 = its first page); None means unknown: `simulate` then runs
    SWEEP_STARTS evenly spaced starts and gives the median run.
    """

    ram: int
    dirty_rate: float
    wss: int
    bandwidth: float
    max_bandwidth: float | None = None
    downtime_limit: float | None = None
    switchover_bandwidth: float = 0.0
    time_limit: float = 600.0
    zero_fraction: float = 0.0
    nonzero: int | None = None
    write_pattern: str = "sweep"
    throttled_bandwidth: float | None = None
    stopped_bandwidth: float | None = None
    stop_cost: float = 0.0
    sweep_start: float | None = None
    stopped_buffer: float = 0.0
    zero_scan: float | None = None


# The loop steps at least once per rate-limit window (100 ms): a day is 864,000 steps, seconds of CPU.
MAX_TIME_LIMIT = 86400.0


def resolve(scenario: Scenario, rules: Rules) -> Scenario:
    """Return `scenario` with QEMU's defaults filled in; raise ModelError for values it cannot run."""
    if scenario.max_bandwidth is None:
        scenario = replace(scenario, max_bandwidth=float(rules.default_max_bandwidth))
    if scenario.downtime_limit is None:
        scenario = replace(scenario, downtime_limit=rules.default_downtime_limit_ms / 1000)
    if not scenario.ram >= rules.page_size:  # before the checks below divide by it
        raise ModelError(f"--ram must be at least one page ({rules.page_size} B)")
    scenario = _resolve_inputs(scenario)
    checks = (
        (0 <= scenario.wss <= scenario.ram, "--wss must be between 0 and --ram"),
        (scenario.dirty_rate >= 0 and math.isfinite(scenario.dirty_rate), "--dirty-rate must be 0 or more"),
        (scenario.bandwidth > 0 and math.isfinite(scenario.bandwidth), "--bandwidth must be more than 0"),
        (scenario.max_bandwidth > 0 and math.isfinite(scenario.max_bandwidth),
         "--max-bandwidth must be more than 0"),
        (scenario.downtime_limit > 0, "--downtime-limit must be more than 0"),
        (scenario.switchover_bandwidth >= 0, "--switchover-bandwidth must be 0 or more"),
        (0 < scenario.time_limit <= MAX_TIME_LIMIT,
         f"--time-limit must be more than 0 and at most {MAX_TIME_LIMIT:.0f}s (a day: the model steps every window)"),
        (0 <= scenario.zero_fraction <= 1 - scenario.wss / scenario.ram,
         "--zero-fraction must leave room for the working set: at most 1 - wss/ram "
         f"= {1 - scenario.wss / scenario.ram:.3g} (the guest writes its working set)"),
        (0 <= scenario.nonzero <= scenario.ram - scenario.wss,
         "--nonzero must be between 0 and --ram minus --wss (the working set is written, and is not counted)"),
        (scenario.write_pattern in PATTERNS, f"--write-pattern must be one of {', '.join(PATTERNS)}"),
        (scenario.sweep_start is None or 0 <= scenario.sweep_start < 1, "--sweep-start must be at least 0 and below 1"),
        ((scenario.throttled_bandwidth is None or scenario.throttled_bandwidth > 0)
         and scenario.stopped_bandwidth > 0 and scenario.stop_cost >= 0 and scenario.stopped_buffer >= 0,
         "--throttled-bandwidth and --stopped-bandwidth must be more than 0, --stop-cost and --stopped-buffer "
         "0 or more"),
        (scenario.zero_scan is None or scenario.zero_scan > 0, "--zero-scan must be more than 0"),
        (scenario.switchover_bandwidth == 0 or rules.has_switchover_bandwidth,
         f"QEMU {rules.version} has no avail-switchover-bandwidth parameter; drop --switchover-bandwidth"),
    )
    for ok, message in checks:
        if not ok:
            raise ModelError(message)
    return scenario


def _resolve_inputs(scenario: Scenario) -> Scenario:
    """Return `scenario` with `nonzero`, `zero_fraction` and the phase bandwidths filled in from each other."""
    if scenario.nonzero is not None and scenario.zero_fraction:
        # A resolved scenario carries both; they must say the same.
        implied = scenario.ram * (1 - scenario.zero_fraction) - scenario.wss
        if abs(implied - scenario.nonzero) > 4096:
            raise ModelError("give --nonzero or --zero-fraction, not both")
    elif scenario.nonzero is None:
        nonzero = max(0, round(scenario.ram * (1 - scenario.zero_fraction)) - scenario.wss)
        scenario = replace(scenario, nonzero=nonzero)
    elif 0 <= scenario.nonzero <= scenario.ram - scenario.wss:
        zero = (scenario.ram - scenario.wss - scenario.nonzero) / scenario.ram
        scenario = replace(scenario, zero_fraction=zero)
    return replace(
        scenario,
        stopped_bandwidth=scenario.bandwidth if scenario.stopped_bandwidth is None else scenario.stopped_bandwidth,
    )
