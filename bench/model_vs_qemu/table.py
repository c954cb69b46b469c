"""The bench's output: one line per case (model/QEMU, the error, QEMU's spread over repeats) and issue 15's figures.

A case run N times is shown as the medians of its runs (`median_comparison`);
the spread column says how far apart QEMU's own runs of it were (half the
range of the total time over its median, and the range of the sync count),
which says whether a 10 % error can be judged at all.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from chaintrace.model.compare import Comparison, median_comparison, relative_error, spread
from chaintrace.model.units import format_duration

MiB = 2**20


def _pair(model: float | None, qemu: float | None, show: Callable[[float], str]) -> str:
    error = relative_error(model, qemu)
    text = f"{show(model) if model is not None else '-'}/{show(qemu) if qemu is not None else '-'}"
    return text + (f" {error:+.0%}" if error is not None else "")


def _count(value: float) -> str:
    return f"{value:g}"


def _spread(runs: Sequence[Comparison]) -> str:
    """Return QEMU's spread over a case's runs: ±half-range of the time, the sync counts' range."""
    if len(runs) < 2:
        return "-"
    time = spread([c.qemu_time for c in runs if c.qemu_converged])
    low, high = min(c.qemu_syncs for c in runs), max(c.qemu_syncs for c in runs)
    return (f"±{time:.0%}" if time is not None else "-") + f" {low:g}" + (f"-{high:g}" if high != low else "")


def row(name: str, c: Comparison, runs: Sequence[Comparison] = ()) -> dict[str, str]:
    """Return one line of the error table for case `name` (its median comparison `c`, its runs for the spread)."""
    word = {True: "done", False: "no"}
    return {
        "case": name,
        "outcome m/q": f"{word[c.model_converged]}/{word[c.qemu_converged]}{'' if c.outcome_right else ' WRONG'}",
        "time m/q": _pair(c.model_time, c.qemu_time, lambda v: f"{v:.2f}s"),
        "syncs m/q": _pair(c.model_syncs, c.qemu_syncs, _count),
        "downtime m/q": _pair(c.model_downtime, c.qemu_downtime, format_duration),
        "final m/q": _pair(c.model_final / MiB if c.model_final is not None else None,
                           c.qemu_final / MiB if c.qemu_final is not None else None, lambda v: f"{v:.1f}M"),
        "sent m/q": _pair(c.model_bytes / MiB, c.qemu_bytes / MiB, lambda v: f"{v:.0f}M"),
        "threshold err": f"{c.threshold_error:.1%}" if c.threshold_error is not None else "-",
        "QEMU spread": _spread(runs),
    }


def table(rows: list[dict[str, str]]) -> str:
    """Return rows as an aligned text table."""
    columns = list(rows[0])
    widths = [max(len(column), *(len(r[column]) for r in rows)) for column in columns]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(r[column].ljust(width) for column, width in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def downtime_right(c: Comparison) -> bool:
    """Return whether the model's downtime is within 50 % or 5 ms of QEMU's (issue 15's bound)."""
    return abs(c.model_downtime - c.qemu_downtime) <= max(0.005, 0.5 * c.qemu_downtime)


def summary(comparisons: list[Comparison], runs: Sequence[Sequence[Comparison]] = ()) -> str:
    """Return the acceptance figures: outcomes right, time and syncs within 10 %, threshold within 5 %, downtime.

    With `runs` (each case's repeated runs) also QEMU's own spread: the
    median and largest half-range of a case's total time over its median.
    """
    done = [c for c in comparisons if c.model_converged and c.qemu_converged]
    within = lambda values, bound: sum(1 for v in values if v is not None and abs(v) <= bound)  # noqa: E731
    times = [relative_error(c.model_time, c.qemu_time) for c in done]
    syncs = [relative_error(c.model_syncs, c.qemu_syncs) for c in done]
    thresholds = [c.threshold_error for c in comparisons if c.threshold_error is not None]
    lines = [
        f"runs {len(comparisons)}; outcome right {sum(c.outcome_right for c in comparisons)}/{len(comparisons)}; "
        f"converged on both sides {len(done)}",
        f"time within 10 %: {within(times, 0.10)}/{len(done)}; syncs within 10 %: {within(syncs, 0.10)}/{len(done)}",
        f"downtime within 50 % or 5 ms: {sum(map(downtime_right, done))}/{len(done)}; "
        f"threshold_size median error within 5 %: {within(thresholds, 0.05)}/{len(thresholds)}",
    ]
    spreads = [s for case in runs if (s := spread([c.qemu_time for c in case if c.qemu_converged])) is not None]
    if spreads:
        lines.append(f"QEMU's time over repeats (half-range / median): median ±{statistics.median(spreads):.1%}, "
                     f"largest ±{max(spreads):.1%} ({len(spreads)} cases, {max(len(case) for case in runs)} runs each)")
    return "\n".join(lines)


def report(names: list[str], by_case: dict[str, list[Comparison]]) -> str:
    """Return the table of the cases' medians with QEMU's spread, and the acceptance figures."""
    medians = [median_comparison(by_case[name]) for name in names]
    rows = [row(name, median, by_case[name]) for name, median in zip(names, medians)]
    return table(rows) + "\n\n" + summary(medians, [by_case[name] for name in names])
