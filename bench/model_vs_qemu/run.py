"""Bench: the migration model against real QEMU migrations on loopback, inputs read over QMP.

`.venv/bin/python bench/model_vs_qemu/run.py [--cases a,b] [--out DIR] [--link RATE --stopped RATE]`

Needs qemu-system-x86_64 (Debian's qemu-system-x86) and gcc. It measures
the loopback's precopy and stopped-copy speeds first (two calibration
migrations), then per case: starts the guest, sets max-bandwidth and
downtime-limit, takes the model's inputs from QEMU exactly as
`chaintrace model migration --from-qmp` does (RAM, the dirty rate QEMU
measures, parameters, the non-zero pages), predicts, migrates, polls
query-migrate every 100 ms, and prints model against QEMU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rig  # noqa: E402

from chaintrace.model.compare import Comparison, compare, relative_error  # noqa: E402
from chaintrace.model.live import read_inputs, scenario_from_live  # noqa: E402
from chaintrace.model.migration import Result, Scenario, simulate  # noqa: E402
from chaintrace.model.qmp import QmpClient  # noqa: E402
from chaintrace.model.rules import Rules  # noqa: E402
from chaintrace.model.tree import read_rules  # noqa: E402
from chaintrace.model.units import format_duration, parse_duration, parse_rate  # noqa: E402

MiB = 2**20
RAM_MIB = 128
CALC_REPEAT = 3  # dirty-rate measurements averaged per run: page sampling is noisy on a small guest
QEMU_TREE = Path.home() / ".cache" / "chaintrace" / "qemu" / "7.2.0"


@dataclass(frozen=True, slots=True)
class Case:
    """One migration: the guest (working set, write rate, pattern, non-zero RAM) and QEMU's two parameters."""

    name: str
    wss_mib: int
    rate_mb: float
    max_bandwidth_mib: int
    downtime_limit_ms: int
    pattern: str = "sweep"
    nonzero_mib: int = 8
    time_limit: float = 40.0

    def guest(self) -> rig.Guest:
        """Return the guest this case runs."""
        return rig.Guest(RAM_MIB, self.wss_mib * MiB, self.rate_mb * 1e6, self.pattern, self.nonzero_mib * MiB)


CASES = (
    Case("calm", 16, 4, 32, 300),
    Case("busy", 32, 12, 32, 300, nonzero_mib=16),
    Case("hot", 32, 22, 32, 300, nonzero_mib=16),
    Case("hotter", 48, 26, 32, 300),
    Case("big-wss", 64, 16, 64, 300, nonzero_mib=0),
    Case("slow-limit", 32, 8, 16, 300),
    Case("tight-limit", 16, 8, 64, 50),
    Case("loose-limit", 32, 20, 32, 1000),
    Case("random", 32, 16, 32, 300, pattern="random"),
    Case("hot-cold", 32, 20, 32, 300, pattern="hot-cold"),
    Case("unthrottled", 48, 40, 4096, 300, nonzero_mib=16),
    Case("too-hot", 48, 40, 32, 300, time_limit=20.0),
    Case("too-hot-random", 64, 30, 16, 300, pattern="random", time_limit=20.0),
)


def _rules() -> Rules:
    """Return the rules of the QEMU that runs (Debian bookworm's 7.2), read from its tree when fetched."""
    if QEMU_TREE.is_dir():
        return read_rules(QEMU_TREE)[0]
    print(f"note: {QEMU_TREE} not fetched (scripts/fetch-qemu bookworm); using the built-in 10.2 rules",
          file=sys.stderr)
    return Rules.newest()


def _set_parameters(pair: rig.Pair, max_bandwidth: int, downtime_limit_ms: int) -> None:
    with QmpClient(pair.source_qmp) as client:
        client.execute("migrate-set-parameters", **{"max-bandwidth": max_bandwidth, "downtime-limit": downtime_limit_ms})


@dataclass(frozen=True, slots=True)
class Loopback:
    """What this host's loopback does: speeds in bytes/s, the throttled window's lateness and the stop's cost in s."""

    precopy: float
    stopped: float
    lateness: float
    stop_cost: float

    def throttled(self, max_bandwidth: float) -> float | None:
        """Return what a window that spent its budget measures here: the budget over 100 ms plus the lateness."""
        if max_bandwidth >= self.precopy:
            return None
        return max_bandwidth * 0.1 / (0.1 + self.lateness)


def _calibration(binary: str, image: Path, work: Path, guest: rig.Guest, max_bandwidth: int,
                 switch_limit_after: float | None = None) -> tuple[list, dict]:
    """Migrate `guest` at `max_bandwidth` (downtime-limit 300 ms); return the polls and the last query-migrate.

    With `switch_limit_after`, the downtime-limit becomes 60 s that many
    seconds into the migration: the next window's threshold_size is then
    above anything pending, and QEMU stops the guest and copies what is dirty.
    """
    pair = rig.start_pair(binary, image, guest, work / f"calibrate-{len(list(work.glob('calibrate-*')))}")
    try:
        _set_parameters(pair, max_bandwidth, 300)
        if switch_limit_after is not None:
            rig.switch_downtime_limit_later(pair, switch_limit_after, 60_000)
        polls = rig.migrate(pair, time_limit=60)
        with QmpClient(pair.source_qmp) as client:
            return polls, client.execute("query-migrate")
    finally:
        pair.close()


def calibrate(binary: str, image: Path, work: Path) -> Loopback:
    """Return this loopback's speeds, from three migrations of the bench guest.

    Precopy: the median `mbps` migrating 96 MiB of non-zero pages unthrottled.
    Stopped copy: a guest that re-dirties its 12 MiB working set faster than
    max-bandwidth 32 MiB/s can send it never converges; 3 s in, the
    downtime-limit becomes 60 s and QEMU stops it and copies the working set,
    the size and kind (non-zero pages, the zero pages long sent) of the
    cases' final copies; downtime-bytes over downtime is the speed.
    The idle guest's own stop, with almost nothing left to copy, gives the
    stop's fixed cost (stopping the TCG vCPU, device state, the last sync):
    the two stops fit cost + bytes / speed. Lateness: at max-bandwidth
    32 MiB/s a window should last 100 ms; the mean over the polls of budget /
    measured bandwidth says how much longer the host makes it.
    """
    idle = rig.Guest(RAM_MIB, 4 * MiB, 0, nonzero=96 * MiB)
    polls, quiet = _calibration(binary, image, work, idle, 100 * 2**30)
    precopy = statistics.median(p.mbps for p in polls if p.mbps > 0) * 1e6 / 8
    busy = rig.Guest(RAM_MIB, 12 * MiB, 200e6)
    _, loaded = _calibration(binary, image, work, busy, 32 * MiB, switch_limit_after=3.0)
    # Two stops: the idle guest's (almost nothing left) and the busy one's (12 MiB): cost and speed.
    (bytes0, time0), (bytes1, time1) = ((info["ram"]["downtime-bytes"], info["downtime"] / 1000)
                                        for info in (quiet, loaded))
    if time1 > time0 and bytes1 > bytes0:
        stopped = (bytes1 - bytes0) / (time1 - time0)
        stop_cost = max(0.0, time0 - bytes0 / stopped)
    else:
        stopped, stop_cost = bytes1 / time1, 0.0
    polls, _ = _calibration(binary, image, work, idle, 32 * MiB)
    windows = [32 * MiB * 0.1 / (p.mbps * 1e6 / 8) for p in polls if p.status == "active" and p.mbps > 0]
    return Loopback(precopy, stopped, max(0.0, statistics.fmean(windows) - 0.1), stop_cost)


def predict(pair: rig.Pair, case: Case, loopback: Loopback, rules: Rules) -> tuple[Result, dict]:
    """Return the model's run from what QEMU tells over QMP (as --from-qmp reads it), and those inputs."""
    with QmpClient(pair.source_qmp) as client:
        live = read_inputs(client, calc_time=1, with_nonzero=True, repeat=CALC_REPEAT)
    stated = Scenario(ram=0, dirty_rate=0.0, wss=case.wss_mib * MiB, bandwidth=loopback.precopy,
                      stopped_bandwidth=loopback.stopped, stop_cost=loopback.stop_cost,
                      throttled_bandwidth=loopback.throttled(case.max_bandwidth_mib * MiB),
                      write_pattern=case.pattern, time_limit=case.time_limit)
    return simulate(scenario_from_live(live, stated), rules), dataclasses.asdict(live)


def _pair(model: float | None, qemu: float | None, show) -> str:
    error = relative_error(model, qemu)
    text = f"{show(model) if model is not None else '-'}/{show(qemu) if qemu is not None else '-'}"
    return text + (f" {error:+.0%}" if error is not None else "")


def row(case: Case, c: Comparison) -> dict[str, str]:
    """Return one line of the error table."""
    word = {True: "done", False: "no"}
    return {
        "case": case.name,
        "outcome m/q": f"{word[c.model_converged]}/{word[c.qemu_converged]}{'' if c.outcome_right else ' WRONG'}",
        "time m/q": _pair(c.model_time, c.qemu_time, lambda v: f"{v:.2f}s"),
        "syncs m/q": _pair(c.model_syncs, c.qemu_syncs, str),
        "downtime m/q": _pair(c.model_downtime, c.qemu_downtime, format_duration),
        "final m/q": _pair(c.model_final / MiB if c.model_final is not None else None,
                           c.qemu_final / MiB if c.qemu_final is not None else None, lambda v: f"{v:.1f}M"),
        "sent m/q": _pair(c.model_bytes / MiB, c.qemu_bytes / MiB, lambda v: f"{v:.0f}M"),
        "threshold err": f"{c.threshold_error:.1%}" if c.threshold_error is not None else "-",
    }


def table(rows: list[dict[str, str]]) -> str:
    """Return rows as an aligned text table."""
    columns = list(rows[0])
    widths = [max(len(column), *(len(r[column]) for r in rows)) for column in columns]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(r[column].ljust(width) for column, width in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def summary(comparisons: list[Comparison]) -> str:
    """Return the acceptance figures: outcomes right, time and syncs within 10 %, threshold within 5 %, downtime."""
    done = [c for c in comparisons if c.model_converged and c.qemu_converged]
    within = lambda values, bound: sum(1 for v in values if v is not None and abs(v) <= bound)  # noqa: E731
    times = [relative_error(c.model_time, c.qemu_time) for c in done]
    syncs = [relative_error(c.model_syncs, c.qemu_syncs) for c in done]
    downtime = sum(1 for c in done if abs(c.model_downtime - c.qemu_downtime) <= max(0.005, 0.5 * c.qemu_downtime))
    thresholds = [c.threshold_error for c in comparisons if c.threshold_error is not None]
    return "\n".join([
        f"runs {len(comparisons)}; outcome right {sum(c.outcome_right for c in comparisons)}/{len(comparisons)}; "
        f"converged on both sides {len(done)}",
        f"time within 10 %: {within(times, 0.10)}/{len(done)}; syncs within 10 %: {within(syncs, 0.10)}/{len(done)}",
        f"downtime within 50 % or 5 ms: {downtime}/{len(done)}; threshold_size median error within 5 %: "
        f"{within(thresholds, 0.05)}/{len(thresholds)}",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the bench, print the per-run error table; return 0, or 1 when QEMU or gcc is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache" / "chaintrace" / "bench" / "model-vs-qemu")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--loopback", nargs=4, metavar=("PRECOPY", "STOPPED", "LATENESS", "STOP_COST"),
                        help="skip the calibration: e.g. 103MB/s 1.3GB/s 3ms 5ms")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.cases or c.name in args.cases.split(",")]
    try:
        binary = rig.qemu_binary()
    except rig.RigError as error:
        print(f"model_vs_qemu: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    rules = _rules()
    with tempfile.TemporaryDirectory(prefix="model-vs-qemu-") as scratch:
        work = Path(scratch)
        image = rig.build_guest(work)
        if args.loopback:
            loopback = Loopback(parse_rate(args.loopback[0]), parse_rate(args.loopback[1]),
                                parse_duration(args.loopback[2]), parse_duration(args.loopback[3]))
        else:
            loopback = calibrate(binary, image, work)
        print(f"rules: {rules.origin}\nloopback: precopy {loopback.precopy / 1e6:.0f} MB/s, stopped copy "
              f"{loopback.stopped / 1e6:.0f} MB/s after a {loopback.stop_cost * 1000:.1f} ms stop, a throttled window "
              f"{loopback.lateness * 1000:.1f} ms late",
              flush=True)
        rows, records, comparisons = [], [], []
        for case in cases:
            pair = rig.start_pair(binary, image, case.guest(), work / case.name)
            try:
                _set_parameters(pair, case.max_bandwidth_mib * MiB, case.downtime_limit_ms)
                result, live = predict(pair, case, loopback, rules)
                polls = rig.migrate(pair, case.time_limit)
            finally:
                pair.close()
            comparison = compare(result, polls)
            comparisons.append(comparison)
            rows.append(row(case, comparison))
            print(table(rows[-1:]), flush=True)
            records.append({"case": dataclasses.asdict(case), "live": live,
                            "scenario": dataclasses.asdict(result.scenario),
                            "comparison": dataclasses.asdict(comparison),
                            "polls": [dataclasses.asdict(p) for p in polls],
                            "trace": (work / case.name / "trace.log").read_text(errors="replace")})
    (args.out / "results.json").write_text(json.dumps({"loopback": dataclasses.asdict(loopback), "runs": records},
                                                      indent=1))
    print()
    print(table(rows))
    print()
    print(summary(comparisons))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
