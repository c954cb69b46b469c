"""What a person reads of a model run: the rules used, a per-round table, the outcome; and its JSON form."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from chaintrace.model.anchors import AnchorResult
from chaintrace.model.migration import Result
from chaintrace.model.rules import Rules
from chaintrace.model.units import format_bitrate, format_duration, format_rate, format_size

_COLUMNS = ("round", "time", "sent", "pending", "bandwidth", "threshold_size", "expected downtime")


def format_rules(rules: Rules, anchors: list[AnchorResult]) -> str:
    """Return a few lines naming where the rules come from and, per anchor, the `file:line` it stands at."""
    lines = [f"rules: {rules.origin}"]
    for anchor in anchors:
        lines.append(f"  {anchor.name:24} {anchor.where:34} {anchor.found_text}")
    return "\n".join(lines)


def format_scenario(result: Result) -> str:
    """Return one line with the scenario as run, defaults filled in."""
    sc = result.scenario
    parts = [
        f"ram {format_size(sc.ram)}",
        f"dirty rate {format_rate(sc.dirty_rate)}",
        f"wss {format_size(sc.wss)}",
        f"bandwidth {format_bitrate(sc.bandwidth)}",
        f"max-bandwidth {format_size(sc.max_bandwidth)}/s",
        f"downtime-limit {format_duration(sc.downtime_limit)}",
    ]
    if sc.switchover_bandwidth:
        parts.append(f"switchover-bandwidth {format_bitrate(sc.switchover_bandwidth)}")
    if sc.throttled_bandwidth:
        parts.append(f"throttled windows measure {format_rate(sc.throttled_bandwidth)}")
    if sc.stopped_bandwidth != sc.bandwidth:
        parts.append(f"stopped copy {format_bitrate(sc.stopped_bandwidth)}")
    if sc.stop_cost:
        parts.append(f"stop cost {format_duration(sc.stop_cost)}")
    if sc.stopped_buffer:
        parts.append(f"socket buffers {format_size(sc.stopped_buffer)}")
    if sc.zero_scan:
        parts.append(f"zero pages read at {format_rate(sc.zero_scan)}")
    parts.append(f"writes: {sc.write_pattern}")
    if sc.sweep_start is not None and not result.starts:
        parts.append(f"sweep starting at {sc.sweep_start:.0%} of the working set")
    if sc.nonzero:
        parts.append(f"non-zero outside wss {format_size(sc.nonzero)}")
    if sc.zero_fraction:
        parts.append(f"zero pages {sc.zero_fraction:.0%}")
    return "scenario: " + ", ".join(parts)


def format_table(result: Result, limit: int = 40) -> str:
    """Return the per-round table as aligned text; past `limit` rounds the middle ones are elided."""
    rows = [
        (str(r.number), format_duration(r.time), format_size(r.bytes_sent), format_size(r.pending),
         format_rate(r.bandwidth), format_size(r.threshold), format_duration(r.expected_downtime))
        for r in result.rounds
    ]
    if len(rows) > limit:
        head, tail = limit // 2, limit - limit // 2
        skipped = len(rows) - limit
        rows = rows[:head] + [("...", f"({skipped} rounds)", "", "", "", "", "")] + rows[-tail:]
    widths = [max(len(cell) for cell in column) for column in zip(_COLUMNS, *rows)]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in (_COLUMNS, *rows)]
    return "\n".join(lines)


def format_outcome(result: Result) -> str:
    """Return the outcome lines: converged at t or not, rounds, bytes, downtime against the limit."""
    sc = result.scenario
    rounds = len(result.rounds)
    if result.converged:
        verdict = "within" if result.downtime <= sc.downtime_limit else "OVER"
        lines = [
            f"converged: VM stopped at {format_duration(result.stop_time)}, "
            f"migration done at {format_duration(result.total_time)}",
            f"rounds: {rounds} (dirty-sync-count {result.dirty_sync_count}); "
            f"total sent {format_size(result.total_bytes)}",
            f"downtime: {format_duration(result.downtime)} for the final {format_size(result.final_bytes)} "
            f"({verdict} the {format_duration(sc.downtime_limit)} limit); "
            f"QEMU's expected_downtime said {format_duration(result.expected_downtime)}",
        ]
    else:
        lines = [
            f"not converged within {format_duration(sc.time_limit)}",
            f"rounds: {rounds} (dirty-sync-count {result.dirty_sync_count}); "
            f"total sent {format_size(result.total_bytes)}",
            f"pending at the end {format_size(result.samples[-1].pending)} against threshold_size "
            f"{format_size(result.samples[-1].threshold)}; QEMU's expected_downtime "
            f"{format_duration(result.expected_downtime)} (limit {format_duration(sc.downtime_limit)})",
        ]
    return "\n".join(lines + _starts(result))


def _starts(result: Result) -> list[str]:
    """Return the line saying how the sweep's unknown start moves the run, when the model tried several."""
    if not result.starts:
        return []
    times = [total for _, converged, total, _ in result.starts if converged]
    syncs = [count for *_, count in result.starts]
    done = f"{len(times)} of {len(result.starts)} converge" if len(times) < len(result.starts) else "all converge"
    span = f", in {format_duration(min(times))}-{format_duration(max(times))}" if times else ""
    return [f"the sweep's start is unknown: this is the median of {len(result.starts)} starts ({done}{span}, "
            f"dirty-sync-count {min(syncs)}-{max(syncs)}); --sweep-start picks one"]


def _plain(value: Any) -> Any:
    """Return `value` with infinities and NaN as None, so json.dumps gives strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def result_to_dict(result: Result, anchors: list[AnchorResult] | None = None) -> dict[str, Any]:
    """Return the run as plain JSON-able data: scenario, rules, anchors, outcome, rounds, samples.

    Sizes are bytes, rates bytes/s, times seconds.
    """
    data = {
        "scenario": dataclasses.asdict(result.scenario),
        "rules": dataclasses.asdict(result.rules),
        "anchors": [dataclasses.asdict(anchor) for anchor in anchors or []],
        "outcome": {
            "converged": result.converged,
            "stop_time": result.stop_time,
            "total_time": result.total_time,
            "downtime": result.downtime,
            "downtime_limit": result.scenario.downtime_limit,
            "expected_downtime": result.expected_downtime,
            "rounds": len(result.rounds),
            "dirty_sync_count": result.dirty_sync_count,
            "total_bytes": result.total_bytes,
            "final_bytes": result.final_bytes,
        },
        "starts": [{"sweep_start": start, "converged": converged, "total_time": total, "dirty_sync_count": syncs}
                   for start, converged, total, syncs in result.starts],
        "rounds": [dataclasses.asdict(r) for r in result.rounds],
        "samples": [dataclasses.asdict(s) for s in result.samples],
    }
    return _plain(data)
