"""The model's mechanisms beyond the closed form: the bitmap by address, write patterns, phase bandwidths."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from chaintrace.model.memory import Bitmap
from chaintrace.model.migration import SWEEP_STARTS, ModelError, Scenario, simulate
from chaintrace.model.rules import Rules
from chaintrace.model.writes import Writer, distinct_share, writes_for_distinct

GiB = 2**30
MiB = 2**20
NEWEST = Rules.newest()


def test_the_scan_takes_pages_in_address_order_so_zero_pages_go_together() -> None:
    # 10 pages: 2 non-zero outside the working set, 4 in it, 4 zero pages at the top.
    bitmap = Bitmap.layout(10, 4, 2, page_wire=4104, zero_wire=9, chunks=10)
    assert list(bitmap.wire) == [4104] * 6 + [9] * 4
    pages, wire, _ = bitmap.send(3 * 4104)
    assert (pages, wire) == (3, 3 * 4104)
    assert list(bitmap.dirty) == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert bitmap.cursor == 3
    # The rest: three normal pages, then the four zero pages for 36 bytes.
    assert bitmap.send(1e9)[:2] == (7, 3 * 4104 + 4 * 9)
    assert bitmap.pending_pages() == 0


def test_a_sync_adds_only_pages_not_already_dirty() -> None:
    bitmap = Bitmap.layout(8, 8, 0, page_wire=4104, zero_wire=9, chunks=8)
    bitmap.send(4 * 4104)  # pages 0-3 sent, 4-7 still dirty
    new = bitmap.mark(np.ones(8))  # the guest wrote every page
    assert new == 4  # only 0-3 are new: 4-7 were still in the bitmap
    assert bitmap.pending_pages() == 8


def test_the_scan_wraps_and_resumes_where_it_stopped() -> None:
    bitmap = Bitmap.layout(8, 8, 0, page_wire=1, zero_wire=1, chunks=8)
    bitmap.send(6)
    bitmap.mark(np.array([1.0, 0, 0, 0, 0, 0, 0, 0]))
    # From page 6 on: 6, 7, then page 0 again.
    assert bitmap.send(3)[:2] == (3, 3)
    assert bitmap.pending_pages() == 0


def test_a_sweep_writes_the_arc_after_where_it_stopped() -> None:
    writer = Writer("sweep", rate=2.0, pages=8, chunks=8)
    assert list(writer.written(1.5)) == [1, 1, 1, 0, 0, 0, 0, 0]
    # Six more pages from page 3: 3-7, then the sweep wraps to page 0.
    assert list(writer.written(3.0)) == [1, 0, 0, 1, 1, 1, 1, 1] and writer.position == pytest.approx(1)
    assert list(writer.written(100)) == [1] * 8


def test_random_and_hot_cold_writes_dirty_fewer_distinct_pages_than_a_sweep() -> None:
    sweep, random, hot = (Writer(p, rate=50.0, pages=100, chunks=10) for p in ("sweep", "random", "hot-cold"))
    swept, scattered, skewed = (w.written(1.0).mean() for w in (sweep, random, hot))
    assert swept == pytest.approx(0.5)
    assert scattered == pytest.approx(1 - math.exp(-0.5))
    assert skewed < scattered < swept
    assert writes_for_distinct(100 * distinct_share(42, 100), 100) == pytest.approx(42)


def test_nonzero_ram_outside_the_working_set_is_sent_in_the_first_pass() -> None:
    base = Scenario(ram=512 * MiB, dirty_rate=0, wss=64 * MiB, bandwidth=100e6, max_bandwidth=1e12)
    lean = simulate(dataclasses.replace(base, nonzero=0), NEWEST)
    fat = simulate(dataclasses.replace(base, nonzero=190 * MiB), NEWEST)
    extra = 190 * MiB / 4096 * (NEWEST.page_wire_bytes - NEWEST.zero_page_bytes)
    assert fat.total_bytes - lean.total_bytes == pytest.approx(extra, rel=1e-6)
    assert fat.stop_time - lean.stop_time == pytest.approx(extra / 100e6, rel=0.02)


def test_nonzero_and_zero_fraction_are_one_input() -> None:
    both = Scenario(ram=GiB, dirty_rate=0, wss=0, bandwidth=1e8, nonzero=MiB, zero_fraction=0.5)
    with pytest.raises(ModelError, match="--nonzero or --zero-fraction"):
        simulate(both, NEWEST)
    with pytest.raises(ModelError, match="--nonzero"):
        simulate(dataclasses.replace(both, zero_fraction=0.0, nonzero=2 * GiB), NEWEST)
    same = simulate(Scenario(ram=GiB, dirty_rate=1e6, wss=MiB, bandwidth=1e8, zero_fraction=0.5), NEWEST)
    assert same.scenario.nonzero == GiB // 2 - MiB


def test_a_sweep_behind_the_scan_needs_more_rounds_than_random_writes() -> None:
    # Issue 15: near the bandwidth, a sweeping guest re-dirties what the scan just sent.
    base = Scenario(ram=512 * MiB, dirty_rate=26e6, wss=128 * MiB, bandwidth=57e6, max_bandwidth=32 * MiB,
                    nonzero=60 * MiB, time_limit=120)
    sweep = simulate(base, NEWEST)
    random = simulate(dataclasses.replace(base, write_pattern="random"), NEWEST)
    assert sweep.converged and random.converged
    assert sweep.dirty_sync_count > random.dirty_sync_count


def test_the_stopped_copy_runs_at_its_own_speed() -> None:
    scenario = Scenario(ram=GiB, dirty_rate=20e6, wss=128 * MiB, bandwidth=100e6, max_bandwidth=32 * MiB,
                        stopped_bandwidth=2e9)
    result = simulate(scenario, NEWEST)
    assert result.converged
    assert result.downtime == pytest.approx(result.final_bytes / 2e9)
    costly = simulate(dataclasses.replace(scenario, stop_cost=0.005), NEWEST)
    assert costly.downtime == pytest.approx(0.005 + result.final_bytes / 2e9)


def test_what_the_socket_buffers_take_of_the_stopped_copy_costs_no_time() -> None:
    scenario = Scenario(ram=GiB, dirty_rate=20e6, wss=128 * MiB, bandwidth=100e6, max_bandwidth=32 * MiB,
                        stopped_bandwidth=400e6, stop_cost=0.002)
    plain = simulate(scenario, NEWEST)
    assert plain.final_bytes > 4 * MiB
    buffered = simulate(dataclasses.replace(scenario, stopped_buffer=4 * MiB), NEWEST)
    assert buffered.final_bytes == plain.final_bytes  # the same run up to the stop
    assert buffered.downtime == pytest.approx(0.002 + (plain.final_bytes - 4 * MiB) / 400e6)
    # A final copy smaller than the buffers costs only the stop.
    whole = simulate(dataclasses.replace(scenario, stopped_buffer=plain.final_bytes * 2), NEWEST)
    assert whole.downtime == pytest.approx(0.002)
    with pytest.raises(ModelError, match="--stopped-buffer"):
        simulate(dataclasses.replace(scenario, stopped_buffer=-1), NEWEST)


def test_an_unthrottled_migration_stops_at_no_more_than_its_precopy_speed() -> None:
    # Unthrottled, the receiver is what limits precopy (bench case `unthrottled`: 25-28 MB
    # stopped in 83-101 ms on a loopback whose throttled runs stopped at 1.1 GB/s): at the
    # stop it is behind with the socket buffers full, so they take nothing at once and the
    # final copy goes at the precopy speed.
    scenario = Scenario(ram=128 * MiB, dirty_rate=40e6, wss=48 * MiB, bandwidth=500e6, max_bandwidth=4 * GiB,
                        nonzero=16 * MiB, stopped_bandwidth=1.1e9, stopped_buffer=4 * MiB, sweep_start=0.0)
    unthrottled = simulate(scenario, NEWEST)
    assert unthrottled.converged and unthrottled.final_bytes > 4 * MiB
    assert unthrottled.downtime == pytest.approx(unthrottled.final_bytes / 500e6)
    # Rate-limited, the receiver keeps up while the thread sleeps: the stopped copy's own speed and buffers.
    throttled = simulate(dataclasses.replace(scenario, max_bandwidth=32 * MiB, dirty_rate=20e6), NEWEST)
    assert throttled.converged and throttled.final_bytes > 4 * MiB
    assert throttled.downtime == pytest.approx((throttled.final_bytes - 4 * MiB) / 1.1e9)
    # A stopped copy slower than precopy stays as slow.
    slow = simulate(dataclasses.replace(scenario, stopped_bandwidth=300e6), NEWEST)
    assert slow.downtime == pytest.approx(slow.final_bytes / 300e6)


def test_throttled_windows_last_as_long_as_the_host_makes_them() -> None:
    # A loaded host wakes the migration thread late: the window that spent its budget lasts
    # longer than BUFFER_DELAY, and what it measures (QEMU's mbps) is the throttled bandwidth.
    scenario = Scenario(ram=GiB, dirty_rate=0, wss=GiB, bandwidth=1e9, max_bandwidth=128 * MiB,
                        throttled_bandwidth=50e6, time_limit=30)
    result = simulate(scenario, NEWEST)
    assert result.converged
    measured = [s.bandwidth for s in result.samples if s.bandwidth and s.time < result.stop_time]
    assert max(measured) == pytest.approx(50e6, rel=0.01)
    assert result.stop_time == pytest.approx(GiB * 4104 / 4096 / 50e6, rel=0.01)


def test_write_pattern_must_be_known() -> None:
    with pytest.raises(ModelError, match="--write-pattern"):
        simulate(Scenario(ram=GiB, dirty_rate=1e6, wss=MiB, bandwidth=1e8, write_pattern="bursty"), NEWEST)


def test_an_unknown_sweep_start_gives_the_median_of_evenly_spaced_starts() -> None:
    # Near the convergence edge, where the sweep stands when migration starts moves the run by rounds.
    base = Scenario(ram=128 * MiB, dirty_rate=26e6, wss=48 * MiB, bandwidth=300e6, max_bandwidth=32 * MiB,
                    nonzero=8 * MiB, time_limit=40)
    result = simulate(base, NEWEST)
    each = [simulate(dataclasses.replace(base, sweep_start=k / SWEEP_STARTS), NEWEST)
            for k in range(SWEEP_STARTS)]
    assert [(start, total, syncs) for start, _, total, syncs in result.starts] == [
        (r.scenario.sweep_start, r.total_time, r.dirty_sync_count) for r in each]
    times = sorted(r.total_time for r in each)
    assert max(r.dirty_sync_count for r in each) > min(r.dirty_sync_count for r in each)
    assert result.total_time == times[SWEEP_STARTS // 2]
    assert result.scenario.sweep_start in [k / SWEEP_STARTS for k in range(SWEEP_STARTS)]
    # Random writes have no start: one run.
    assert simulate(dataclasses.replace(base, write_pattern="random"), NEWEST).starts == ()
    with pytest.raises(ModelError, match="--sweep-start"):
        simulate(dataclasses.replace(base, sweep_start=1.0), NEWEST)


def test_zero_pages_take_the_time_to_read_them_whole() -> None:
    # save_zero_page reads a page whole (buffer_is_zero over TARGET_PAGE_SIZE) before it knows
    # it is zero: a pass through 120 MiB of zero pages takes 120 MiB / the scan's speed.
    base = Scenario(ram=128 * MiB, dirty_rate=0, wss=0, nonzero=8 * MiB, bandwidth=1e9, max_bandwidth=1e12)
    free = simulate(base, NEWEST)
    read = simulate(dataclasses.replace(base, zero_scan=4e9), NEWEST)
    assert free.converged and read.converged
    assert read.stop_time - free.stop_time == pytest.approx(120 * MiB / 4e9, rel=1e-6)
    assert read.total_bytes == pytest.approx(free.total_bytes)
    with pytest.raises(ModelError, match="--zero-scan"):
        simulate(dataclasses.replace(base, zero_scan=0.0), NEWEST)


def test_a_cpu_bound_window_through_zero_pages_measures_less_than_the_precopy_speed() -> None:
    # QEMU's window bandwidth is bytes over time (migration_update_counters): a window that
    # spends time reading zero pages sends 9 bytes for each, so it measures less.
    base = Scenario(ram=GiB, dirty_rate=0, wss=0, nonzero=256 * MiB, bandwidth=1e9, max_bandwidth=1e12)

    def windows(scenario: Scenario, closes: tuple[float, ...]) -> list[float]:
        """Return what the windows closing at `closes` measured."""
        result = simulate(scenario, NEWEST)
        return [next(s.bandwidth for s in result.samples if s.time == pytest.approx(close)) for close in closes]

    assert windows(base, (0.1, 0.2)) == pytest.approx([1e9] * 2)
    first, second, third, fourth = windows(dataclasses.replace(base, zero_scan=2e9), (0.1, 0.2, 0.3, 0.4))
    assert first == pytest.approx(1e9) and second == pytest.approx(1e9)
    # The third window: the last 68 ms of normal pages, then 32 ms of zero pages, each read
    # at 2 GB/s and sent (9 bytes) at 1 GB/s.
    normal_left = 256 * MiB * 4104 / 4096 - 0.2e9
    zero_page = 4096 / 2e9 + 9 / 1e9
    assert third == pytest.approx((normal_left + (0.1 - normal_left / 1e9) / zero_page * 9) / 0.1, rel=1e-6)
    assert third < 0.75e9
    # The fourth has zero pages only: 9 wire bytes for each.
    assert fourth == pytest.approx(9 / zero_page, rel=1e-6)
