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

The guest writes `dirty_rate` bytes/s (page writes of 4096 bytes) into a
writable working set (`wss`) in a `write_pattern` (`writes.py`); a sync adds
only the written pages not already dirty. RAM outside the working set holds
`nonzero` bytes of written pages and zero pages beyond them; the bitmap
(`memory.py`) keeps them where they lie, and the scan takes them in address
order. Zero pages cost a header and one byte on the wire, other pages a
header and the page. Precopy sends at `bandwidth`; a window that spent its
max-bandwidth budget lasts BUFFER_DELAY, or longer where the host wakes the
thread late (`throttled_bandwidth`: what such windows measure); the stopped
copy runs at `stopped_bandwidth`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from chaintrace.model.memory import Bitmap
from chaintrace.model.rules import Rules
from chaintrace.model.stop import stopped_copy
from chaintrace.model.writes import PATTERNS, Writer


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
    `stopped_bandwidth`. `sweep_start` is where a sweeping
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
    # With the sweep's start unknown: (start, converged, total time, dirty-sync-count) of every start tried.
    starts: tuple[tuple[float, bool, float, int], ...] = ()


# Starts tried when a sweep's position is unknown: odd, so that one run is the median.
SWEEP_STARTS = 9

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


@dataclass(slots=True)
class _Run:
    """The state migration_thread() carries from pass to pass: the clock, the window, the bitmap, the record.

    Each method is one step of the loop and mirrors the QEMU function its
    comment names; `simulate` only calls them in QEMU's order.  Times are in
    seconds, sizes in bytes (the bitmap in pages, the `*_sent` totals and the
    budget in wire bytes).
    """

    sc: Scenario
    rules: Rules
    bitmap: Bitmap
    writer: Writer
    window: float
    max_wait: float
    budget_per_window: float
    speed: float
    expected_downtime: float
    dirty_last_sync: float
    budget: float = 0.0
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
        page = rules.page_size
        bitmap = Bitmap.layout(sc.ram / page, sc.wss / page, sc.nonzero / page, rules.page_wire_bytes,
                               rules.zero_page_bytes)
        writer = Writer(sc.write_pattern, sc.dirty_rate / page, sc.wss / page, bitmap.wss_end - bitmap.wss_start,
                        position=(sc.sweep_start or 0.0) * sc.wss / page)
        run = cls(sc=sc, rules=rules, bitmap=bitmap, writer=writer, window=window, max_wait=rules.max_wait_ms / 1000,
                  budget_per_window=budget_per_window, speed=speed, expected_downtime=sc.downtime_limit,
                  dirty_last_sync=float(sc.ram))
        run.budget = run._window_budget()
        run.samples.append(Sample(0.0, run.pending(), 0.0, 0.0))
        return run

    def pending(self) -> float:
        """Return the pending bytes: dirty pages times the page size, as ram_bytes_remaining() counts."""
        return self.bitmap.pending_pages() * self.rules.page_size

    def _window_budget(self) -> float:
        """Return the wire bytes a window lets through: the budget, overshot to the limiter's next count.

        migration_rate_exceeded() stops a pass once the bytes it sees exceed the
        budget, and it sees them in steps (a page at put time in 7.2, a whole
        qemu_fflush in 10.x): the window sends the first multiple above it.
        """
        if not math.isfinite(self.budget_per_window):
            return math.inf
        quantum = self.rules.rate_limit_quantum(self.bitmap.normal_share())
        return (math.floor(self.budget_per_window / quantum) + 1) * quantum

    def unthrottled(self) -> bool:
        """Return whether the rate limit never binds: a window's budget is more than the precopy speed sends in it."""
        return self.budget_per_window >= self.speed * self.window

    def _sample(self) -> None:
        """Record the loop's state now: pending bytes, threshold_size and the measured bandwidth."""
        self.samples.append(Sample(self.t, self.pending(), self.threshold, self.measured))

    def _mark_writes(self) -> float:
        """Add the guest's writes since the last sync to the bitmap; return the bytes newly dirty."""
        new = self.bitmap.mark(self.writer.written(self.t - self.last_sync))
        self.last_sync = self.t
        return new * self.rules.page_size

    def sync(self) -> None:
        """Sync the dirty bitmap now, as migration_bitmap_sync() does, and end the round.

        The pages written since the last sync that are not dirty already join
        the bitmap, the dirty rate is updated at most once a second, and the
        round is recorded with the expected downtime of what the sync left pending.
        """
        self._sample()
        new = self._mark_writes()
        self.syncs += 1
        self.dirty_last_sync = self.pending()
        self.dirtied_in_period += new
        if self.t > self.rate_period_start + 1.0:  # migration_update_rates() runs at most once a second
            self.dirty_rate_known = self.dirtied_in_period > 0
            self.rate_period_start, self.dirtied_in_period = self.t, 0.0
        bw = self.rules.downtime_bandwidth(self.measured, self.sc.switchover_bandwidth)
        self.rounds.append(Round(len(self.rounds), self.t, self.round_sent, self.pending(), self.measured,
                                 self.threshold, self.dirty_last_sync / bw if bw > 0 else self.expected_downtime))
        self.round_sent = 0.0
        self._sample()

    def send(self) -> None:
        """Send one pass of dirty pages, as ram_save_iterate() does, and advance the clock.

        A pass stops when the window's budget is spent, nothing is dirty,
        MAX_WAIT has passed or the time limit is reached; pages go at the
        precopy speed, in address order from where the last pass stopped.
        """
        to_limit = self.speed * (self.sc.time_limit - self.t)
        limit = min(self.budget, self.speed * self.max_wait, to_limit)
        _, wire = self.bitmap.send(limit)
        # The last pass may end a hair short of the limit: land on it.
        self.t = self.sc.time_limit if limit == to_limit and wire >= limit else self.t + wire / self.speed
        self.window_sent += wire
        self.round_sent += wire
        self.total_sent += wire
        self.budget -= wire

    def rate_limit(self) -> None:
        """Sleep out a spent budget and close the window once it is over, as migration_rate_limit() does.

        Closing a BUFFER_DELAY window measures the bandwidth over it, which
        sets threshold_size and (once a dirty rate is known and enough was
        sent) expected_downtime, and gives the next window a fresh budget.
        """
        # migration_rate_limit(): over budget, sleep to the end of the window; a
        # loaded host wakes the thread late, which throttled_bandwidth measures.
        if math.isfinite(self.budget) and self.budget <= 1e-9 * self.budget_per_window:
            late = self.window_sent / self.sc.throttled_bandwidth if self.sc.throttled_bandwidth else 0.0
            self.t = max(self.t, self.window_start + max(self.window, late))
        if self.t >= self.window_start + self.window - 1e-12:
            # migration_update_counters(): bandwidth over the window sets threshold_size.
            self.measured = self.window_sent / (self.t - self.window_start)
            self.threshold = (self.rules.threshold_bandwidth(self.measured, self.sc.switchover_bandwidth)
                              * self.sc.downtime_limit)
            if self.dirty_rate_known and self.window_sent > 10000:
                bw = self.rules.downtime_bandwidth(self.measured, self.sc.switchover_bandwidth)
                self.expected_downtime = self.dirty_last_sync / bw
            self._sample()
            self.window_start, self.window_sent = self.t, 0.0
            self.budget = self._window_budget()

    def finish(self) -> Result:
        """Return the run's Result, completing the migration first if the loop stopped before the time limit.

        On completion, as migration_completion() does, the VM is stopped, the
        bitmap synced a last time and the rest sent (`stop.stopped_copy`).
        """
        converged = self.t < self.sc.time_limit
        stop_time = downtime = None
        final_bytes = 0.0
        if converged:
            sc = self.sc
            stop_time = self.t
            self._mark_writes()
            self.syncs += 1
            final_bytes = self.bitmap.final_wire()
            downtime, final_rate = stopped_copy(final_bytes, sc, self.rules, self.unthrottled())
            self._sample()
            self.samples.append(Sample(self.t + downtime, 0.0, self.threshold, final_rate))
            self.t += downtime
        return Result(
            scenario=self.sc, rules=self.rules, converged=converged, rounds=tuple(self.rounds),
            samples=tuple(self.samples), stop_time=stop_time, downtime=downtime, total_time=self.t,
            total_bytes=self.total_sent + final_bytes, final_bytes=final_bytes,
            expected_downtime=self.expected_downtime, dirty_sync_count=self.syncs,
        )


def _run(sc: Scenario, rules: Rules) -> Result:
    """Return the outcome of migrating the resolved scenario `sc` by `rules`, from one start of the guest."""
    run = _Run.start(sc, rules)
    while run.t < run.sc.time_limit:
        # migration_iteration_run(): sync when below threshold, then the completion test.
        if rules.sync_when_below_threshold and run.pending() < run.threshold:
            run.sync()
        if rules.completes(run.pending(), run.threshold):
            break
        run.send()
        run.rate_limit()
    return run.finish()


def simulate(scenario: Scenario, rules: Rules) -> Result:
    """Return the outcome of migrating `scenario` by `rules`: rounds, window samples, times and bytes.

    Where a sweeping guest stands when the migration starts decides which of
    its writes land on pages the scan has sent (new dirty pages) and which on
    pages still dirty (none): near the convergence edge that moves the run by
    rounds (issue 15's hot runs: 3.0-3.7 s, 8-10 syncs, by the start alone).
    Nothing before `migrate` tells it, so with `sweep_start` None the result
    is the median (by outcome, then total time) of SWEEP_STARTS evenly spaced
    starts, and `starts` lists them all.
    """
    sc = resolve(scenario, rules)
    if sc.sweep_start is not None or sc.write_pattern != "sweep" or not sc.dirty_rate or not sc.wss:
        return _run(sc, rules)
    runs = sorted((_run(replace(sc, sweep_start=k / SWEEP_STARTS), rules) for k in range(SWEEP_STARTS)),
                  key=lambda r: (not r.converged, r.total_time, r.dirty_sync_count))
    starts = tuple((r.scenario.sweep_start, r.converged, r.total_time, r.dirty_sync_count)
                   for r in sorted(runs, key=lambda r: r.scenario.sweep_start))
    return replace(runs[len(runs) // 2], starts=starts)
