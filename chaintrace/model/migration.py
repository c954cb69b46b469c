"""A deterministic simulation of QEMU's precopy migration loop, run by a `Rules` value.

The loop as traced in migration_thread():

* each pass runs migration_iteration_run(): when the pending estimate is
  below threshold_size the dirty bitmap is synced (one sync ends a round),
  and when pending is at or below threshold_size (7.2: below) the VM is
  stopped and the rest is copied;
* otherwise ram_save_iterate() sends pages at the link's speed until the
  window's rate-limit budget (max-bandwidth / XFER_LIMIT_RATIO) is spent,
  nothing is dirty, or MAX_WAIT has passed;
* migration_rate_limit() closes a BUFFER_DELAY window: the bandwidth measured
  over it sets threshold_size and expected_downtime; a thread over budget
  sleeps until the window ends.

The guest writes `dirty_rate` bytes/s sweeping a writable working set
(`wss`), so the pages dirtied in an interval t are min(rate * t, wss). RAM
outside the working set is written once before migration, except a
`zero_fraction` of RAM that was never written: zero pages cost a header and
one byte on the wire, other pages a header and the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from chaintrace.model.rules import FINAL_UNLIMITED, Rules


class ModelError(ValueError):
    """A scenario the model cannot run; the message is one line saying what to change."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """What is migrated and over what: sizes in bytes, rates in bytes/s, times in seconds.

    `max_bandwidth` and `downtime_limit` left as None take QEMU's defaults
    from the Rules; `switchover_bandwidth` 0 means not set.
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


@dataclass(frozen=True, slots=True)
class Round:
    """One round: the pages sent between two bitmap syncs, as seen at the sync that ends it."""

    number: int
    time: float
    bytes_sent: float
    pending: float
    bandwidth: float
    threshold: float
    expected_downtime: float


@dataclass(frozen=True, slots=True)
class Sample:
    """The loop's state when a BUFFER_DELAY window closes, and on both sides of a sync: what the plot draws."""

    time: float
    pending: float
    threshold: float
    bandwidth: float


@dataclass(frozen=True, slots=True)
class Result:
    """What a run gives: the outcome, the rounds, the window samples, and the scenario as run."""

    scenario: Scenario
    rules: Rules
    converged: bool
    rounds: tuple[Round, ...]
    samples: tuple[Sample, ...]
    stop_time: float | None
    downtime: float | None
    total_time: float
    total_bytes: float
    final_bytes: float
    expected_downtime: float
    dirty_sync_count: int


def resolve(scenario: Scenario, rules: Rules) -> Scenario:
    """Return `scenario` with QEMU's defaults filled in; raise ModelError for values it cannot run."""
    if scenario.max_bandwidth is None:
        scenario = replace(scenario, max_bandwidth=float(rules.default_max_bandwidth))
    if scenario.downtime_limit is None:
        scenario = replace(scenario, downtime_limit=rules.default_downtime_limit_ms / 1000)
    checks = (
        (scenario.ram >= rules.page_size, f"--ram must be at least one page ({rules.page_size} B)"),
        (0 <= scenario.wss <= scenario.ram, "--wss must be between 0 and --ram"),
        (scenario.dirty_rate >= 0 and math.isfinite(scenario.dirty_rate), "--dirty-rate must be 0 or more"),
        (scenario.bandwidth > 0 and math.isfinite(scenario.bandwidth), "--bandwidth must be more than 0"),
        (scenario.max_bandwidth > 0 and math.isfinite(scenario.max_bandwidth),
         "--max-bandwidth must be more than 0"),
        (scenario.downtime_limit > 0, "--downtime-limit must be more than 0"),
        (scenario.switchover_bandwidth >= 0, "--switchover-bandwidth must be 0 or more"),
        (scenario.time_limit > 0, "--time-limit must be more than 0"),
        (0 <= scenario.zero_fraction <= 1 - scenario.wss / scenario.ram,
         "--zero-fraction must leave room for the working set: at most 1 - wss/ram "
         f"= {1 - scenario.wss / scenario.ram:.3g} (the guest writes its working set)"),
        (scenario.switchover_bandwidth == 0 or rules.has_switchover_bandwidth,
         f"QEMU {rules.version} has no avail-switchover-bandwidth parameter; drop --switchover-bandwidth"),
    )
    for ok, message in checks:
        if not ok:
            raise ModelError(message)
    return scenario


@dataclass(slots=True)
class _Memory:
    """The migration bitmap's dirty bytes, split by what they cost and where the guest writes."""

    zero: float
    outside: float
    inside: float

    def total(self) -> float:
        return self.zero + self.outside + self.inside

    def send(self, amount: float) -> None:
        # The scan walks RAM in address order, so every kind of page goes at its share.
        total = self.total()
        keep = (total - amount) / total if total > 0 else 0.0
        self.zero *= keep
        self.outside *= keep
        self.inside *= keep


def _wire_cost(memory: _Memory, rules: Rules) -> float:
    """Return wire bytes per dirty byte sent now (zero pages are a header and one byte)."""
    total = memory.total()
    wire = memory.zero * rules.zero_page_bytes + (memory.outside + memory.inside) * rules.page_wire_bytes
    return wire / (total * rules.page_size) if total > 0 else rules.page_wire_bytes / rules.page_size


def simulate(scenario: Scenario, rules: Rules) -> Result:
    """Return the outcome of migrating `scenario` by `rules`: rounds, window samples, times and bytes."""
    sc = resolve(scenario, rules)
    window = rules.buffer_delay_ms / 1000
    max_wait = rules.max_wait_ms / 1000
    # Per-window budget: a thread may send its budget at link speed and then sleeps.
    budget_per_window = sc.max_bandwidth * window if rules.rate_limit_per_window else math.inf
    speed = sc.bandwidth if rules.rate_limit_per_window else min(sc.bandwidth, sc.max_bandwidth)
    zero = sc.zero_fraction * sc.ram
    memory = _Memory(zero=zero, outside=sc.ram - sc.wss - zero, inside=float(sc.wss))

    t = 0.0
    window_start, window_sent, budget = 0.0, 0.0, budget_per_window
    threshold, measured = 0.0, 0.0
    expected_downtime = sc.downtime_limit  # migration_thread() starts it at the limit
    last_sync, dirty_last_sync = 0.0, float(sc.ram)  # the setup sync marks all RAM dirty
    rate_period_start, dirtied_in_period, dirty_rate_known = 0.0, 0.0, False
    syncs, round_sent, total_sent = 1, 0.0, 0.0
    rounds: list[Round] = []
    samples: list[Sample] = [Sample(0.0, memory.total(), 0.0, 0.0)]

    def dirtied_since_sync(now: float) -> float:
        return min(float(sc.wss), sc.dirty_rate * (now - last_sync))

    def sync(now: float) -> None:
        nonlocal last_sync, dirty_last_sync, syncs, rate_period_start, dirtied_in_period, dirty_rate_known
        nonlocal round_sent
        samples.append(Sample(now, memory.total(), threshold, measured))
        written = dirtied_since_sync(now)
        # Pages written since the last sync join those still dirty; the share
        # already dirty in the bitmap is not new (independent placement).
        new = written * (1 - memory.inside / sc.wss) if sc.wss else 0.0
        memory.inside += new
        syncs += 1
        last_sync, dirty_last_sync = now, memory.total()
        dirtied_in_period += new
        if now > rate_period_start + 1.0:  # migration_update_rates() runs at most once a second
            dirty_rate_known = dirtied_in_period > 0
            rate_period_start, dirtied_in_period = now, 0.0
        bw = rules.downtime_bandwidth(measured, sc.switchover_bandwidth)
        rounds.append(Round(len(rounds), now, round_sent, memory.total(), measured, threshold,
                            dirty_last_sync / bw if bw > 0 else expected_downtime))
        round_sent = 0.0
        samples.append(Sample(now, memory.total(), threshold, measured))

    while t < sc.time_limit:
        # migration_iteration_run(): sync when below threshold, then the completion test.
        if rules.sync_when_below_threshold and memory.total() < threshold:
            sync(t)
        if rules.completes(memory.total(), threshold):
            break
        # ram_save_iterate(): until the budget is spent, nothing is dirty, or MAX_WAIT passed.
        cost = _wire_cost(memory, rules)
        rate = speed / cost  # dirty bytes per second
        amount = min(memory.total(), budget / cost, rate * max_wait, rate * (sc.time_limit - t))
        memory.send(amount)
        # The last pass may end a hair short of the limit: land on it.
        t = sc.time_limit if amount == rate * (sc.time_limit - t) else t + amount / rate
        window_sent += amount * cost
        round_sent += amount * cost
        total_sent += amount * cost
        budget -= amount * cost
        # migration_rate_limit(): over budget, sleep to the end of the window.
        if math.isfinite(budget) and budget <= 1e-9 * budget_per_window:
            t = max(t, window_start + window)
        if t >= window_start + window - 1e-12:
            # migration_update_counters(): bandwidth over the window sets threshold_size.
            measured = window_sent / (t - window_start)
            threshold = rules.threshold_bandwidth(measured, sc.switchover_bandwidth) * sc.downtime_limit
            if dirty_rate_known and window_sent > 10000:
                bw = rules.downtime_bandwidth(measured, sc.switchover_bandwidth)
                expected_downtime = dirty_last_sync / bw
            samples.append(Sample(t, memory.total(), threshold, measured))
            window_start, window_sent, budget = t, 0.0, budget_per_window

    converged = t < sc.time_limit
    stop_time = downtime = None
    final_bytes = 0.0
    if converged:
        # migration_completion(): VM stopped, last sync, the rest goes out at the final-stage rate.
        stop_time = t
        memory.inside += dirtied_since_sync(t) * (1 - memory.inside / sc.wss) if sc.wss else 0.0
        syncs += 1
        final_bytes = memory.total() * _wire_cost(memory, rules)
        final_rate = sc.bandwidth if rules.final_stage_rate_limit == FINAL_UNLIMITED else min(
            sc.bandwidth, sc.max_bandwidth)
        downtime = final_bytes / final_rate
        samples.append(Sample(t, memory.total(), threshold, measured))
        samples.append(Sample(t + downtime, 0.0, threshold, final_rate))
        t += downtime
    return Result(
        scenario=sc, rules=rules, converged=converged, rounds=tuple(rounds), samples=tuple(samples),
        stop_time=stop_time, downtime=downtime, total_time=t, total_bytes=total_sent + final_bytes,
        final_bytes=final_bytes, expected_downtime=expected_downtime, dirty_sync_count=syncs,
    )
