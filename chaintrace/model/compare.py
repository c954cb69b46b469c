"""A model run beside what QEMU reported while it migrated: the live line of `--watch` and the final errors.

QEMU's `query-migrate` gives `ram.remaining`, `dirty-sync-count`, `mbps`
and, at the end, `total-time` and `downtime`. Its `mbps` is the bandwidth
`migration_update_counters()` measured over the last window, the same one
`threshold_size` is computed from, so QEMU's threshold_size is
mbps / 8 * 10^6 * downtime-limit (without a switchover bandwidth).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from chaintrace.model.live import Poll
from chaintrace.model.migration import Result
from chaintrace.model.units import format_duration, format_size

DONE = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Comparison:
    """Model against QEMU for one migration (or the medians of repeated ones); None where a side has no value."""

    model_converged: bool
    qemu_converged: bool
    model_time: float | None
    qemu_time: float | None
    model_syncs: float
    qemu_syncs: float
    model_downtime: float | None
    qemu_downtime: float | None
    model_bytes: float
    qemu_bytes: float
    threshold_error: float | None
    model_final: float | None = None
    qemu_final: float | None = None

    @property
    def outcome_right(self) -> bool:
        """Return whether the model said converged exactly when QEMU did."""
        return self.model_converged == self.qemu_converged


def relative_error(model: float | None, measured: float | None) -> float | None:
    """Return (model - measured) / measured, or None when either is missing or measured is 0."""
    if model is None or measured is None or measured == 0:
        return None
    return (model - measured) / measured


def model_at(result: Result, t: float) -> tuple[float, float, int]:
    """Return the model's (pending bytes, threshold_size, dirty-sync-count) at time `t`."""
    times = [sample.time for sample in result.samples]
    index = max(0, bisect.bisect_right(times, t) - 1)
    sample = result.samples[index]
    syncs = 1 + sum(1 for round_ in result.rounds if round_.time <= t)
    return sample.pending, sample.threshold, syncs


def qemu_threshold(poll: Poll, downtime_limit: float) -> float:
    """Return QEMU's threshold_size at a poll, from its measured bandwidth (mbps) and the downtime limit."""
    return poll.mbps * 1e6 / 8 * downtime_limit


def threshold_error(result: Result, polls: list[Poll]) -> float | None:
    """Return the median relative error of the model's threshold_size against QEMU's over the active polls."""
    errors = []
    for poll in polls:
        if poll.status != "active" or poll.mbps <= 0:
            continue
        _, model, _ = model_at(result, poll.time)
        error = relative_error(model, qemu_threshold(poll, result.scenario.downtime_limit))
        if error is not None and model > 0:
            errors.append(abs(error))
    return statistics.median(errors) if errors else None


def compare(result: Result, polls: list[Poll]) -> Comparison:
    """Return the model's run against QEMU's polls, the last of which is the migration's end."""
    last = polls[-1]
    done = last.status == "completed"
    with_ram = [poll for poll in polls if poll.dirty_sync_count]
    return Comparison(
        model_converged=result.converged, qemu_converged=done,
        model_time=result.total_time if result.converged else None, qemu_time=last.time if done else None,
        model_syncs=result.dirty_sync_count, qemu_syncs=with_ram[-1].dirty_sync_count if with_ram else 0,
        model_downtime=result.downtime, qemu_downtime=last.downtime if done else None,
        model_bytes=result.total_bytes, qemu_bytes=with_ram[-1].transferred if with_ram else 0,
        threshold_error=threshold_error(result, polls),
        model_final=result.final_bytes if result.converged else None,
        qemu_final=last.downtime_bytes if done else None,
    )


def _median(values: list) -> float | None:
    """Return the median of the values that are not None, or None when there are none."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def median_comparison(comparisons: Sequence[Comparison]) -> Comparison:
    """Return one Comparison for repeated runs of a case: each side's figures are its medians over the runs.

    A side's outcome is that of most of its runs (converged on a tie: that
    side then has figures to show); its time, downtime and final copy are the
    medians over its converged runs, its syncs and bytes over the runs of that
    outcome, and the threshold error is the median of the runs' errors. So one
    run that a loaded host made slow, or a dirty rate measured high once,
    moves nothing.
    """
    if not comparisons:
        raise ValueError("no runs to take the median of")
    model_done = 2 * sum(c.model_converged for c in comparisons) >= len(comparisons)
    qemu_done = 2 * sum(c.qemu_converged for c in comparisons) >= len(comparisons)
    model = [c for c in comparisons if c.model_converged == model_done]
    qemu = [c for c in comparisons if c.qemu_converged == qemu_done]
    return Comparison(
        model_converged=model_done, qemu_converged=qemu_done,
        model_time=_median([c.model_time for c in model]), qemu_time=_median([c.qemu_time for c in qemu]),
        model_syncs=_median([c.model_syncs for c in model]), qemu_syncs=_median([c.qemu_syncs for c in qemu]),
        model_downtime=_median([c.model_downtime for c in model]),
        qemu_downtime=_median([c.qemu_downtime for c in qemu]),
        model_bytes=_median([c.model_bytes for c in model]), qemu_bytes=_median([c.qemu_bytes for c in qemu]),
        threshold_error=_median([c.threshold_error for c in comparisons]),
        model_final=_median([c.model_final for c in model]), qemu_final=_median([c.qemu_final for c in qemu]),
    )


def spread(values: Sequence[float | None]) -> float | None:
    """Return half the range of the values over their median ((max - min) / 2 / median), None with fewer than two."""
    present = [value for value in values if value is not None]
    if len(present) < 2 or statistics.median(present) == 0:
        return None
    return (max(present) - min(present)) / 2 / statistics.median(present)


def format_watch_line(result: Result, poll: Poll) -> str:
    """Return one line of `--watch`: QEMU's remaining, syncs and threshold_size beside the model's at that time."""
    pending, threshold, syncs = model_at(result, poll.time)
    measured = qemu_threshold(poll, result.scenario.downtime_limit)
    return (f"{format_duration(poll.time):>8}  {poll.status:9}  remaining {format_size(poll.remaining):>9} / "
            f"model {format_size(pending):>9}  syncs {poll.dirty_sync_count:3} / {syncs:3}  "
            f"threshold_size {format_size(measured):>9} / {format_size(threshold):>9}")


def _pair(model: float | None, qemu: float | None, show) -> str:
    error = relative_error(model, qemu)
    text = f"{show(model) if model is not None else '-'} / {show(qemu) if qemu is not None else '-'}"
    return text + (f" ({error:+.0%})" if error is not None else "")


def format_comparison(comparison: Comparison) -> str:
    """Return the end-of-migration lines: outcome, time, syncs, downtime, bytes and threshold_size, model / QEMU."""
    c = comparison
    word = {True: "converged", False: "not converged"}
    lines = [
        f"outcome    model {word[c.model_converged]} / QEMU {word[c.qemu_converged]}"
        f" ({'right' if c.outcome_right else 'WRONG'})",
        "time       " + _pair(c.model_time, c.qemu_time, format_duration),
        "syncs      " + _pair(c.model_syncs, c.qemu_syncs, str),
        "downtime   " + _pair(c.model_downtime, c.qemu_downtime, format_duration),
        "sent       " + _pair(c.model_bytes, c.qemu_bytes, format_size),
        "final copy " + _pair(c.model_final, c.qemu_final, format_size),
    ]
    if c.threshold_error is not None:
        lines.append(f"threshold_size median error over the polls {c.threshold_error:.1%}")
    return "\n".join(lines)
