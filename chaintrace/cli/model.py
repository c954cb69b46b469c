"""`chaintrace model migration`: the command-line face of the migration model.

`add_parser` adds `model` and its models (`migration`, whose options
`add_arguments` adds); `run` returns exit status 0 on a run (converged or
not), 2 for values the model cannot take, 1 when an anchored source fact
has drifted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaintrace.errors import ChaintraceError
from chaintrace.model.anchors import AnchorDrift, AnchorResult
from chaintrace.model.tree import read_rules
from chaintrace.model.migration import ModelError, Result, Scenario, simulate
from chaintrace.model.rules import Rules
from chaintrace.model.units import UnitError, parse_duration, parse_fraction, parse_rate, parse_size
from chaintrace.cli.model_output import EXIT_BAD_VALUE, EXIT_DRIFT, error, finish
from chaintrace.cli.options import tree_path



def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `model` subcommand, with one subcommand per bundled model, to `subparsers`."""
    parser = subparsers.add_parser(name, help="run a bundled executable model of a traced loop")
    models = parser.add_subparsers(dest="model", metavar="MODEL", required=True)
    add_arguments(models.add_parser("migration", help="QEMU's precopy migration loop, anchored to the source it mirrors"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the model's options to `parser` (values stay text: `main` parses them with clear errors)."""
    parser.add_argument("--tree", metavar="QEMU", type=tree_path,
                        help="QEMU source tree whose rules to run, indexed first "
                             "(default: built-in rules of the newest known QEMU)")
    parser.add_argument("--cache", type=Path,
                        help="cache folder the tree is indexed into (default: $XDG_CACHE_HOME/chaintrace)")
    parser.add_argument("--ram", metavar="SIZE", help="guest RAM, e.g. 4GiB (required, unless --from-qmp)")
    parser.add_argument("--dirty-rate", metavar="RATE",
                        help="guest write rate, e.g. 200MB/s (required, unless --from-qmp measures it)")
    parser.add_argument("--wss", required=True, metavar="SIZE", help="writable working set, e.g. 512MiB")
    parser.add_argument("--bandwidth", required=True, metavar="RATE", help="link bandwidth, e.g. 1Gbit/s")
    _add_live_arguments(parser)
    parser.add_argument("--max-bandwidth", metavar="RATE",
                        help="QEMU max-bandwidth (default: QEMU's MAX_THROTTLE, 128MiB/s)")
    parser.add_argument("--downtime-limit", metavar="TIME", help="QEMU downtime-limit (default: QEMU's, 300ms)")
    parser.add_argument("--switchover-bandwidth", metavar="RATE",
                        help="QEMU avail-switchover-bandwidth (8.2 and later)")
    parser.add_argument("--time-limit", default="600s", metavar="TIME",
                        help="give up after this long (default: 600s)")
    parser.add_argument("--zero-fraction", default="0", metavar="FRACTION",
                        help="share of RAM never written, sent as zero pages, e.g. 0.5 or 50%% (default: 0)")
    parser.add_argument("--nonzero", metavar="SIZE",
                        help="written (non-zero) RAM outside the working set, all sent in the first pass, e.g. 190MiB "
                             "(default: all of it, less --zero-fraction)")
    parser.add_argument("--write-pattern", default="sweep", choices=("sweep", "random", "hot-cold"),
                        help="how the guest writes its working set (default: sweep)")
    parser.add_argument("--sweep-start", metavar="FRACTION",
                        help="with --write-pattern sweep: where the sweep stands in the working set when the "
                             "migration starts, e.g. 0 or 50%% (default: unknown, the median of 9 starts)")
    parser.add_argument("--throttled-bandwidth", metavar="RATE",
                        help="what a window that spent its max-bandwidth budget measures, where the host wakes "
                             "the migration thread late (default: the budget over exactly 100 ms)")
    parser.add_argument("--stopped-bandwidth", metavar="RATE",
                        help="speed of the stopped copy, the downtime's (default and, unthrottled, most: --bandwidth)")
    parser.add_argument("--stopped-buffer", metavar="SIZE",
                        help="what the socket buffers take of the stopped copy at once, unless unthrottled; the "
                             "rest goes at --stopped-bandwidth (default: 0)")
    parser.add_argument("--stop-cost", metavar="TIME",
                        help="downtime besides the final copy: stopping the guest, device state (default: 0)")
    parser.add_argument("--zero-scan", metavar="RATE", help="how fast precopy reads through zero pages, each read "
                        "whole to find it zero, e.g. 5GB/s of RAM (default: they cost only their wire bytes)")
    parser.add_argument("--json", action="store_true", help="print the run as JSON instead of the table")
    parser.add_argument("--plot", metavar="FILE", type=Path,
                        help="write pending bytes and threshold_size over time to FILE (.svg or .png)")


def _add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of reading the inputs from a running QEMU (`--from-qmp` and what goes with it)."""
    parser.add_argument("--from-qmp", metavar="SOCKET", type=Path,
                        help="read RAM, the dirty rate, max-bandwidth, downtime-limit and capabilities from a "
                             "running QEMU's QMP unix socket (options given here win)")
    parser.add_argument("--calc-time", default=1, type=int, metavar="SECONDS",
                        help="with --from-qmp: how long QEMU measures the dirty rate (default: 1)")
    parser.add_argument("--dirty-rate-mode", default="page-sampling",
                        choices=("page-sampling", "dirty-bitmap", "dirty-ring"),
                        help="with --from-qmp: QEMU's calc-dirty-rate mode (default: page-sampling; dirty-bitmap "
                             "crashed Debian's QEMU 7.2 under TCG)")
    parser.add_argument("--count-nonzero", action="store_true",
                        help="with --from-qmp: count the guest's non-zero pages (a pmemsave of its RAM to a "
                             "scratch file) for --nonzero")
    parser.add_argument("--qmp-timeout", default=10.0, type=float, metavar="SECONDS",
                        help="with --from-qmp: give up on an answer after this long (default: 10)")
    parser.add_argument("--watch", action="store_true",
                        help="with --from-qmp: then follow the migration (query-migrate every 100 ms) and compare")
    parser.add_argument("--calc-repeat", default=1, type=int, metavar="N",
                        help="with --from-qmp: average N dirty-rate measurements (default: 1)")


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """Return the Scenario the options describe; raise UnitError for a value that does not parse."""
    live = getattr(args, "from_qmp", None) is not None
    for option, value in (("--ram", args.ram), ("--dirty-rate", args.dirty_rate)):
        if value is None and not live:
            raise UnitError(f"{option} is required (or --from-qmp SOCKET to read it from QEMU)")
    return Scenario(
        ram=parse_size(args.ram) if args.ram else 0,
        dirty_rate=parse_rate(args.dirty_rate) if args.dirty_rate else 0.0,
        wss=parse_size(args.wss),
        bandwidth=parse_rate(args.bandwidth),
        max_bandwidth=parse_rate(args.max_bandwidth) if args.max_bandwidth else None,
        downtime_limit=parse_duration(args.downtime_limit) if args.downtime_limit else None,
        switchover_bandwidth=parse_rate(args.switchover_bandwidth) if args.switchover_bandwidth else 0.0,
        time_limit=parse_duration(args.time_limit),
        zero_fraction=parse_fraction(args.zero_fraction),
        nonzero=parse_size(args.nonzero) if args.nonzero else None,
        write_pattern=args.write_pattern,
        throttled_bandwidth=parse_rate(args.throttled_bandwidth) if args.throttled_bandwidth else None,
        stopped_bandwidth=parse_rate(args.stopped_bandwidth) if args.stopped_bandwidth else None,
        stop_cost=parse_duration(args.stop_cost) if args.stop_cost else 0.0,
        sweep_start=parse_fraction(args.sweep_start) if args.sweep_start else None,
        stopped_buffer=parse_size(args.stopped_buffer) if args.stopped_buffer else 0.0,
        zero_scan=parse_rate(args.zero_scan) if args.zero_scan else None,
    )


def load_rules(tree: Path | None, cache: Path | None = None) -> tuple[Rules, list[AnchorResult]]:
    """Return the rules of `tree` (indexed into `cache` first) with their anchors, or the newest built-in rules."""
    if tree is None:
        return Rules.newest(), []
    return read_rules(tree, cache, progress=sys.stderr.isatty())


def _simulate(args: argparse.Namespace) -> tuple[Rules, list[AnchorResult], Scenario]:
    """Return the rules, their anchors and the scenario the options describe (without live inputs)."""
    if args.watch and args.from_qmp is None:
        raise UnitError("--watch needs --from-qmp SOCKET")
    scenario = scenario_from_args(args)
    rules, anchors = load_rules(args.tree, getattr(args, "cache", None))
    return rules, anchors, scenario


def run(args: argparse.Namespace) -> int:
    """Run the model as the options say, print the table (or JSON), write the plot; return the exit status."""
    try:
        rules, anchors, scenario = _simulate(args)
        if args.from_qmp is not None:
            from chaintrace.cli.model_live import run_live  # the QMP client only when asked for

            return run_live(args, rules, anchors, scenario)
        result = simulate(scenario, rules)
    except (UnitError, ModelError, FileNotFoundError, ChaintraceError) as problem:
        return error(str(problem), EXIT_BAD_VALUE)
    except AnchorDrift as drift:
        return error(str(drift), EXIT_DRIFT)
    return finish(args, result, rules, anchors)
