"""Bench: the migration model against real QEMU migrations on loopback, inputs read over QMP.

`.venv/bin/python bench/model_vs_qemu/run.py [--cases a,b] [--repeat N] [--out DIR] [--loopback ...]`
`.venv/bin/python bench/model_vs_qemu/run.py --replay DIR/results.json [--tree QEMU]`

Needs qemu-system-x86_64 (Debian's qemu-system-x86) and gcc. It measures
the loopback's precopy and stopped-copy speeds first (three calibration
migrations), then per case and repeat: starts the guest, sets max-bandwidth
and downtime-limit, takes the model's inputs from QEMU exactly as
`chaintrace model migration --from-qmp` does (RAM, the dirty rate QEMU
measures, parameters, the non-zero pages), predicts, migrates, polls
query-migrate every 100 ms, and prints model against QEMU: per case the
medians of its runs and QEMU's spread over them. `--replay` recomputes the
model's side from a results file's recorded inputs, without QEMU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay  # noqa: E402
import rig  # noqa: E402
from cases import CASES, QEMU_TREE, MiB, RAM_MIB, Case, Loopback, model_run, tree_rules  # noqa: E402
from table import report, row, table  # noqa: E402

from chaintrace.model.compare import Comparison, compare  # noqa: E402
from chaintrace.model.live import LiveInputs, read_inputs  # noqa: E402
from chaintrace.model.migration import Result  # noqa: E402
from chaintrace.model.qmp import QmpClient  # noqa: E402
from chaintrace.model.rules import Rules  # noqa: E402
from chaintrace.model.units import UnitError, parse_duration, parse_rate  # noqa: E402

CALC_REPEAT = 6  # dirty-rate measurements averaged per run: page sampling of a small guest is ±7 % each


def _rules() -> Rules:
    """Return the rules of the QEMU that runs, read from its tree when fetched, else the built-in 10.2 ones."""
    rules = tree_rules()
    if rules is None:
        print(f"note: {QEMU_TREE} not fetched (scripts/fetch-qemu bookworm); using the built-in 10.2 rules",
              file=sys.stderr)
        return Rules.newest()
    return rules


def _set_parameters(pair: rig.Pair, max_bandwidth: int, downtime_limit_ms: int) -> None:
    with QmpClient(pair.source_qmp) as client:
        client.execute("migrate-set-parameters", **{"max-bandwidth": max_bandwidth, "downtime-limit": downtime_limit_ms})


def _calibration(binary: str, image: Path, work: Path, guest: rig.Guest, max_bandwidth: int,
                 switch_limit_after: float | None = None) -> tuple[list, dict]:
    """Migrate `guest` at `max_bandwidth` (downtime-limit 300 ms); return the polls and the last query-migrate.

    With `switch_limit_after`, the downtime-limit becomes 60 s that many
    seconds into the migration: the next window's threshold_size is then
    above anything pending, and QEMU stops the guest and copies what is dirty.
    """
    pair = rig.start_pair(binary, image, guest, work / f"calibrate-{len(list(work.glob('calibrate-*')))}",
                          priority=PRIORITY[0])
    try:
        _set_parameters(pair, max_bandwidth, 300)
        if switch_limit_after is not None:
            rig.switch_downtime_limit_later(pair, switch_limit_after, 60_000)
        polls = rig.migrate(pair, time_limit=60)
        with QmpClient(pair.source_qmp) as client:
            return polls, client.execute("query-migrate")
    finally:
        pair.close()


def _precopy(info: dict) -> float:
    """Return the precopy speed of a finished unthrottled migration: bytes sent before the stop over its time."""
    ram = info["ram"]
    return (ram["transferred"] - ram["downtime-bytes"]) / ((info["total-time"] - info["setup-time"] - info["downtime"])
                                                           / 1000)


def _stops(binary: str, image: Path, work: Path, wss_mib: int, tries: int = 3) -> list[tuple[float, float]]:
    """Return (bytes, seconds) of `tries` stopped copies of a working set of `wss_mib` MiB.

    The guest re-dirties it faster than max-bandwidth 32 MiB/s can send it,
    so it never converges; 3 s in, the downtime-limit becomes 60 s and QEMU
    stops it and copies the working set: non-zero pages, as the cases' final
    copies are, from a guest as busy as theirs.
    """
    busy = rig.Guest(RAM_MIB, wss_mib * MiB, 200e6)
    stops = []
    for _ in range(tries):
        _, info = _calibration(binary, image, work, busy, 32 * MiB, switch_limit_after=3.0)
        stops.append((info["ram"]["downtime-bytes"], info["downtime"] / 1000))
    return stops


def _stopped_copy(stops: list[tuple[float, float]]) -> float:
    """Return the stopped copy's speed: the median over `stops` ((bytes, seconds) each) of bytes over seconds.

    A speed through zero, no fixed cost and no socket buffers: the cases'
    own downtimes (five sweeps, 150 runs, final copies of 2.5-25 MB) are
    proportional to their final copies (a line's intercept came out between
    -1.8 and +3.7 ms from sweep to sweep, no sign kept), while the line
    through the medians of two stop sizes moved between 1.1 and 5.9 GB/s and
    read a stall of a few ms as 4 MB of socket buffers (or as a 6 ms cost),
    which zeroed the downtime of every small final copy. The median of the
    ratios ignores a stall of the host in one stop or two.
    """
    speeds = [size / seconds for size, seconds in stops if size > 0 and seconds > 0]
    if not speeds:  # every stop under QEMU's millisecond: at least a byte per nanosecond
        return max((size for size, _ in stops), default=1.0) / 1e-3
    return statistics.median(speeds)


def _zero_scans(binary: str, image: Path, work: Path, tries: int = 3) -> list[tuple[int, int, float, float]]:
    """Return (zero pages, normal bytes, seconds of precopy, downtime) of `tries` unthrottled migrations of
    a guest that wrote nothing: its first pass is all but a few hundred KiB (the kernel, the BIOS) zero
    pages, and sends everything before its first window closes, so the migration stops right after it
    (with nothing left to copy: the downtime is kept as a record of what a stop costs by itself)."""
    empty = rig.Guest(RAM_MIB, 4096, 0, nonzero=0)
    scans = []
    for _ in range(tries):
        _, info = _calibration(binary, image, work, empty, 100 * 2**30)
        ram = info["ram"]
        seconds = (info["total-time"] - info["setup-time"] - info["downtime"]) / 1000
        scans.append((ram["duplicate"], ram["normal-bytes"], seconds, info["downtime"] / 1000))
    return scans


def _zero_scan(scans: list[tuple[float, ...]], precopy: float) -> float:
    """Return how fast precopy reads zero pages (bytes of RAM per second): the median over `scans` of their
    zero pages over the pass's time less its normal bytes at the `precopy` speed (at least QEMU's ms)."""
    return statistics.median(scan[0] * 4096 / max(1e-3, scan[2] - scan[1] / precopy) for scan in scans)


def _lateness(windows: list[float]) -> float:
    """Return how late the host makes a throttled window: the median of the windows' lengths (s) less 100 ms.

    QEMU times a window by its millisecond clock and wakes the thread at the
    window's end (`qemu_sem_timedwait` for the rest of BUFFER_DELAY), so most
    windows measure exactly 100 ms and a few, where the host was busy, 5-11 ms
    more. The model gives every window the same length: the median is what
    QEMU's threshold_size shows in most windows (the mean, 1.6 ms, had put
    the model's threshold 1.6 % below QEMU's in every throttled case).
    """
    return max(0.0, statistics.median(windows) - 0.1) if windows else 0.0


def calibrate(binary: str, image: Path, work: Path) -> tuple[Loopback, dict]:
    """Return this loopback's speeds and the throttled window's lateness, from thirteen migrations of the bench
    guest, and what they were computed from (precopy speeds, zero-page passes, stops as (bytes, seconds), window
    lengths).

    Precopy: the median over three unthrottled migrations of 96 MiB of
    non-zero pages of the bytes sent before the stop over the time before
    it. Zero pages (`_zero_scan`): three unthrottled migrations of a guest
    that wrote nothing. Stopped copy (`_stopped_copy`): three stops each of 12 and 40 MiB
    working sets (`_stops`, the cases' final copies are 3-30 MB) give its
    speed, the median of their bytes over their downtimes. Lateness: at max-bandwidth 32 MiB/s a window
    should last 100 ms; budget / measured bandwidth over the polls gives
    the windows' lengths (`_lateness`).
    """
    idle = rig.Guest(RAM_MIB, 4 * MiB, 0, nonzero=96 * MiB)
    precopies = [_precopy(_calibration(binary, image, work, idle, 100 * 2**30)[1]) for _ in range(3)]
    scans = _zero_scans(binary, image, work)
    stops = _stops(binary, image, work, 12) + _stops(binary, image, work, 40)
    polls, _ = _calibration(binary, image, work, idle, 32 * MiB)
    windows = [32 * MiB * 0.1 / (p.mbps * 1e6 / 8) for p in polls if p.status == "active" and p.mbps > 0]
    precopy = statistics.median(precopies)
    loopback = Loopback(precopy, _stopped_copy(stops), _lateness(windows), 0.0, 0.0,
                        zero_scan=_zero_scan(scans, precopy))
    return loopback, {"precopy": precopies, "zero_scans": scans, "stops": stops, "windows": windows}


def predict(pair: rig.Pair, case: Case, loopback: Loopback, rules: Rules) -> tuple[Result, LiveInputs]:
    """Return the model's run from what QEMU tells over QMP (as --from-qmp reads it), and those inputs."""
    with QmpClient(pair.source_qmp) as client:
        live = read_inputs(client, calc_time=1, with_nonzero=True, repeat=CALC_REPEAT)
    return model_run(case, live, loopback, rules), live


def run_case(binary: str, image: Path, work: Path, case: Case, loopback: Loopback, rules: Rules) -> dict:
    """Run one migration of `case`; return its record (case, live inputs, scenario, comparison, polls, trace)."""
    pair = rig.start_pair(binary, image, case.guest(), work, priority=PRIORITY[0])
    try:
        _set_parameters(pair, case.max_bandwidth_mib * MiB, case.downtime_limit_ms)
        result, live = predict(pair, case, loopback, rules)
        polls = rig.migrate(pair, case.time_limit)
    finally:
        pair.close()
    return {"case": dataclasses.asdict(case), "live": dataclasses.asdict(live),
            "scenario": dataclasses.asdict(result.scenario),
            "comparison": dataclasses.asdict(compare(result, polls)),
            "polls": [dataclasses.asdict(p) for p in polls],
            "trace": (work / "trace.log").read_text(errors="replace")}


# The priority QEMU and the poller run at (rig.priority_prefix); main() sets it from --priority.
PRIORITY = ["nice"]


def sweep(args: argparse.Namespace, cases: list[Case], loopback: Loopback | None) -> int:
    """Calibrate (unless `loopback` is given), run every case `args.repeat` times (the cases in turn, so a change of load hits them alike),
    write results.json and print the report; return 0, or 1 when QEMU or gcc is missing."""
    try:
        binary = rig.qemu_binary()
    except rig.RigError as error:
        print(f"model_vs_qemu: {error}", file=sys.stderr)
        return 1
    PRIORITY[0] = args.priority
    # A sweep killed (SIGTERM; in the background SIGINT is ignored) still ends the two QEMUs it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rig.raise_own_priority(args.priority)
    args.out.mkdir(parents=True, exist_ok=True)
    rules = _rules()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="model-vs-qemu-") as scratch:
        work = Path(scratch)
        image = rig.build_guest(work)
        measured: dict = {}
        if loopback is None:
            loopback, measured = calibrate(binary, image, work)
        print(f"rules: {rules.origin}\nloopback: precopy {loopback.precopy / 1e6:.0f} MB/s, zero pages read at "
              f"{loopback.zero_scan / 1e9:.2f} GB/s, stopped copy "
              f"{loopback.stopped / 1e6:.0f} MB/s past {loopback.buffer / 1e6:.1f} MB of socket buffers after a "
              f"{loopback.stop_cost * 1000:.1f} ms stop, a throttled window "
              f"{loopback.lateness * 1000:.1f} ms late; priority {args.priority}, {args.repeat} runs a case",
              flush=True)
        records: list[dict] = []
        for repeat in range(args.repeat):
            for case in cases:
                record = run_case(binary, image, work / f"{case.name}-{repeat}", case, loopback, rules)
                records.append({"repeat": repeat, **record})
                load.append(os.getloadavg()[0])
                print("  ".join(row(f"{case.name} #{repeat + 1}", Comparison(**record["comparison"])).values()),
                      flush=True)
    (args.out / "results.json").write_text(json.dumps(
        {"loopback": dataclasses.asdict(loopback), "calibration": measured, "rules": dataclasses.asdict(rules), "priority": args.priority,
         "repeat": args.repeat, "load": load, "runs": records}, indent=1))
    by_case: dict[str, list[Comparison]] = {}
    for record in records:
        by_case.setdefault(record["case"]["name"], []).append(Comparison(**record["comparison"]))
    print(f"\n{report([c.name for c in cases], by_case)}\nload (1-minute average) during the sweep: "
          f"median {statistics.median(load):.1f}, {min(load):.1f}-{max(load):.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the bench (or replay a results file) and print the error table; return 0, 1 (no QEMU/gcc) or 2 (bad file)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache" / "chaintrace" / "bench" / "model-vs-qemu")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case; the table shows their medians")
    parser.add_argument("--priority", choices=rig.PRIORITIES, default="nice",
                        help="QEMU's and the poller's priority: nice -15 (default), real-time round robin, none")
    parser.add_argument("--loopback", nargs=4, metavar=("PRECOPY", "STOPPED", "LATENESS", "STOP_COST"),
                        help="skip the calibration (with --replay: instead of the recorded one): e.g. 103MB/s 1.3GB/s 3ms 5ms")
    parser.add_argument("--replay", type=Path, metavar="RESULTS",
                        help="recompute the model's predictions from a results.json's recorded inputs; no QEMU runs")
    parser.add_argument("--tree", type=Path, help="with --replay: read the rules from this QEMU tree, not the file")
    parser.add_argument("--zero-scan", metavar="RATE",
                        help="with --loopback or --replay: how fast precopy reads zero pages, e.g. 5GB/s "
                             "(instead of the calibration's; without it, --loopback's zero pages cost no time)")
    args = parser.parse_args(argv)
    names = args.cases.split(",") if args.cases else None
    loopback = None
    try:
        zero_scan = parse_rate(args.zero_scan) if args.zero_scan else None
        if args.loopback:
            loopback = Loopback(parse_rate(args.loopback[0]), parse_rate(args.loopback[1]),
                                parse_duration(args.loopback[2]), parse_duration(args.loopback[3]),
                                zero_scan=zero_scan or 0.0)
    except UnitError as error:
        parser.error(str(error))
    if zero_scan is not None and zero_scan <= 0:
        parser.error("--zero-scan must be more than 0")
    if args.replay:
        return replay.main(args.replay, args.tree, names, loopback, zero_scan)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    return sweep(args, [c for c in CASES if names is None or c.name in names], loopback)


if __name__ == "__main__":
    raise SystemExit(main())
