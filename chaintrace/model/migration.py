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
from chaintrace.model.scenario import ModelError, Scenario, resolve  # noqa: F401  (ModelError: re-exported)
from chaintrace.model.stop import stopped_copy
from chaintrace.model.writes import Writer


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
        # A zero page is read whole to be found zero (buffer_is_zero), then costs its few wire bytes.
        zero_seconds = rules.zero_page_bytes / speed + (page / sc.zero_scan if sc.zero_scan else 0.0)
        bitmap = Bitmap.layout(sc.ram / page, sc.wss / page, sc.nonzero / page, rules.page_wire_bytes,
                               rules.zero_page_bytes, page_seconds=rules.page_wire_bytes / speed,
                               zero_seconds=zero_seconds)
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
        precopy speed (zero pages at the speed they are read, `zero_scan`),
        in address order from where the last pass stopped.
        """
        to_limit = self.sc.time_limit - self.t
        limit = min(self.max_wait, to_limit)
        _, wire, seconds = self.bitmap.send(self.budget, limit)
        # The last pass may end a hair short of the limit: land on it.
        self.t = self.sc.time_limit if limit == to_limit and seconds >= limit else self.t + seconds
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
