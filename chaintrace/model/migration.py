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
from dataclasses import dataclass, field, replace

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


@dataclass(slots=True)
class _Run:
    """The state migration_thread() carries from pass to pass: the clock, the window, the bitmap, the record.

    Each method is one step of the loop and mirrors the QEMU function its
    comment names; `simulate` only calls them in QEMU's order.  Times are in
    seconds, sizes in bytes (`memory` in dirty bytes, the `*_sent` totals in
    wire bytes).
    """

    sc: Scenario
    rules: Rules
    memory: _Memory
    window: float
    max_wait: float
    budget_per_window: float
    speed: float
    expected_downtime: float
    dirty_last_sync: float
    budget: float
    t: float = 0.0
    window_start: float = 0.0
    window_sent: float = 0.0
    threshold: float = 0.0
    measured: float = 0.0
    last_sync: float = 0.0
    rate_period_start: float = 0.0
    dirtied_in_period: float = 0.0
    dirty_rate_known: bool = False
    syncs: int = 1
    round_sent: float = 0.0
    total_sent: float = 0.0
    rounds: list[Round] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    @classmethod
    def start(cls, sc: Scenario, rules: Rules) -> _Run:
        """Return the state right after the setup sync, for a resolved scenario.

        The setup sync marks all RAM dirty, so the first round starts with
        everything pending; expected_downtime starts at the limit, as
        migration_thread() sets it, and no bandwidth is measured yet.
        """
        window = rules.buffer_delay_ms / 1000
        # Per-window budget: a thread may send its budget at link speed and then sleeps.
        budget_per_window = sc.max_bandwidth * window if rules.rate_limit_per_window else math.inf
        speed = sc.bandwidth if rules.rate_limit_per_window else min(sc.bandwidth, sc.max_bandwidth)
        zero = sc.zero_fraction * sc.ram
        memory = _Memory(zero=zero, outside=sc.ram - sc.wss - zero, inside=float(sc.wss))
        run = cls(sc=sc, rules=rules, memory=memory, window=window, max_wait=rules.max_wait_ms / 1000,
                  budget_per_window=budget_per_window, speed=speed, expected_downtime=sc.downtime_limit,
                  dirty_last_sync=float(sc.ram), budget=budget_per_window)
        run.samples.append(Sample(0.0, memory.total(), 0.0, 0.0))
        return run

    def _sample(self) -> None:
        """Record the loop's state now: pending bytes, threshold_size and the measured bandwidth."""
        self.samples.append(Sample(self.t, self.memory.total(), self.threshold, self.measured))

    def _dirtied_since_sync(self) -> float:
        """Return the bytes the guest has written since the last sync (it sweeps its working set)."""
        return min(float(self.sc.wss), self.sc.dirty_rate * (self.t - self.last_sync))

    def sync(self) -> None:
        """Sync the dirty bitmap now, as migration_bitmap_sync() does, and end the round.

        The pages written since the last sync join the bitmap, the dirty rate
        is updated at most once a second, and the round is recorded with the
        expected downtime of what the sync left pending.
        """
        self._sample()
        written = self._dirtied_since_sync()
        # Pages written since the last sync join those still dirty; the share
        # already dirty in the bitmap is not new (independent placement).
        new = written * (1 - self.memory.inside / self.sc.wss) if self.sc.wss else 0.0
        self.memory.inside += new
        self.syncs += 1
        self.last_sync, self.dirty_last_sync = self.t, self.memory.total()
        self.dirtied_in_period += new
        if self.t > self.rate_period_start + 1.0:  # migration_update_rates() runs at most once a second
            self.dirty_rate_known = self.dirtied_in_period > 0
            self.rate_period_start, self.dirtied_in_period = self.t, 0.0
        bw = self.rules.downtime_bandwidth(self.measured, self.sc.switchover_bandwidth)
        self.rounds.append(Round(len(self.rounds), self.t, self.round_sent, self.memory.total(), self.measured,
                                 self.threshold, self.dirty_last_sync / bw if bw > 0 else self.expected_downtime))
        self.round_sent = 0.0
        self._sample()

    def send(self) -> None:
        """Send one pass of dirty pages, as ram_save_iterate() does, and advance the clock.

        A pass stops when the window's budget is spent, nothing is dirty,
        MAX_WAIT has passed or the time limit is reached; pages go at the
        link's speed (or max-bandwidth where QEMU caps the rate, not a budget).
        """
        # ram_save_iterate(): until the budget is spent, nothing is dirty, or MAX_WAIT passed.
        cost = _wire_cost(self.memory, self.rules)
        rate = self.speed / cost  # dirty bytes per second
        amount = min(self.memory.total(), self.budget / cost, rate * self.max_wait,
                     rate * (self.sc.time_limit - self.t))
        self.memory.send(amount)
        # The last pass may end a hair short of the limit: land on it.
        self.t = self.sc.time_limit if amount == rate * (self.sc.time_limit - self.t) else self.t + amount / rate
        self.window_sent += amount * cost
        self.round_sent += amount * cost
        self.total_sent += amount * cost
        self.budget -= amount * cost

    def rate_limit(self) -> None:
        """Sleep out a spent budget and close the window once it is over, as migration_rate_limit() does.

        Closing a BUFFER_DELAY window measures the bandwidth over it, which
        sets threshold_size and (once a dirty rate is known and enough was
        sent) expected_downtime, and gives the next window a fresh budget.
        """
        # migration_rate_limit(): over budget, sleep to the end of the window.
        if math.isfinite(self.budget) and self.budget <= 1e-9 * self.budget_per_window:
            self.t = max(self.t, self.window_start + self.window)
        if self.t >= self.window_start + self.window - 1e-12:
            # migration_update_counters(): bandwidth over the window sets threshold_size.
            self.measured = self.window_sent / (self.t - self.window_start)
            self.threshold = (self.rules.threshold_bandwidth(self.measured, self.sc.switchover_bandwidth)
                              * self.sc.downtime_limit)
            if self.dirty_rate_known and self.window_sent > 10000:
                bw = self.rules.downtime_bandwidth(self.measured, self.sc.switchover_bandwidth)
                self.expected_downtime = self.dirty_last_sync / bw
            self._sample()
            self.window_start, self.window_sent, self.budget = self.t, 0.0, self.budget_per_window

    def finish(self) -> Result:
        """Return the run's Result, completing the migration first if the loop stopped before the time limit.

        On completion, as migration_completion() does, the VM is stopped, the
        bitmap synced a last time and the rest sent at the final-stage rate:
        that transfer is the downtime.
        """
        converged = self.t < self.sc.time_limit
        stop_time = downtime = None
        final_bytes = 0.0
        if converged:
            # migration_completion(): VM stopped, last sync, the rest goes out at the final-stage rate.
            sc, memory = self.sc, self.memory
            stop_time = self.t
            memory.inside += self._dirtied_since_sync() * (1 - memory.inside / sc.wss) if sc.wss else 0.0
            self.syncs += 1
            final_bytes = memory.total() * _wire_cost(memory, self.rules)
            final_rate = sc.bandwidth if self.rules.final_stage_rate_limit == FINAL_UNLIMITED else min(
                sc.bandwidth, sc.max_bandwidth)
            downtime = final_bytes / final_rate
            self._sample()
            self.samples.append(Sample(self.t + downtime, 0.0, self.threshold, final_rate))
            self.t += downtime
        return Result(
            scenario=self.sc, rules=self.rules, converged=converged, rounds=tuple(self.rounds),
            samples=tuple(self.samples), stop_time=stop_time, downtime=downtime, total_time=self.t,
            total_bytes=self.total_sent + final_bytes, final_bytes=final_bytes,
            expected_downtime=self.expected_downtime, dirty_sync_count=self.syncs,
        )


def simulate(scenario: Scenario, rules: Rules) -> Result:
    """Return the outcome of migrating `scenario` by `rules`: rounds, window samples, times and bytes."""
    run = _Run.start(resolve(scenario, rules), rules)
    while run.t < run.sc.time_limit:
        # migration_iteration_run(): sync when below threshold, then the completion test.
        if rules.sync_when_below_threshold and run.memory.total() < run.threshold:
            run.sync()
        if rules.completes(run.memory.total(), run.threshold):
            break
        run.send()
        run.rate_limit()
    return run.finish()
