"""`chaintrace model migration`: the command-line face of the migration model.

`add_parser` adds `model` and its models (`migration`, whose options
`add_arguments` adds); `run` returns exit status 0 on a run (converged or
not), 2 for values the model cannot take, 1 when an anchored source fact
has drifted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chaintrace.errors import ChaintraceError
from chaintrace.model.anchors import AnchorDrift, AnchorResult
from chaintrace.model.tree import read_rules
from chaintrace.model.migration import ModelError, Scenario, simulate
from chaintrace.model.report import format_outcome, format_rules, format_scenario, format_table, result_to_dict
from chaintrace.model.rules import Rules
from chaintrace.model.units import UnitError, parse_duration, parse_fraction, parse_rate, parse_size
from chaintrace.cli.options import tree_path

PROG = "chaintrace model migration"
EXIT_DRIFT = 1
EXIT_BAD_VALUE = 2


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
    parser.add_argument("--ram", required=True, metavar="SIZE", help="guest RAM, e.g. 4GiB")
    parser.add_argument("--dirty-rate", required=True, metavar="RATE", help="guest write rate, e.g. 200MB/s")
    parser.add_argument("--wss", required=True, metavar="SIZE", help="writable working set, e.g. 512MiB")
    parser.add_argument("--bandwidth", required=True, metavar="RATE", help="link bandwidth, e.g. 1Gbit/s")
    parser.add_argument("--max-bandwidth", metavar="RATE",
                        help="QEMU max-bandwidth (default: QEMU's MAX_THROTTLE, 128MiB/s)")
    parser.add_argument("--downtime-limit", metavar="TIME", help="QEMU downtime-limit (default: QEMU's, 300ms)")
    parser.add_argument("--switchover-bandwidth", metavar="RATE",
                        help="QEMU avail-switchover-bandwidth (8.2 and later)")
    parser.add_argument("--time-limit", default="600s", metavar="TIME",
                        help="give up after this long (default: 600s)")
    parser.add_argument("--zero-fraction", default="0", metavar="FRACTION",
                        help="share of RAM never written, sent as zero pages, e.g. 0.5 or 50%% (default: 0)")
    parser.add_argument("--json", action="store_true", help="print the run as JSON instead of the table")
    parser.add_argument("--plot", metavar="FILE", type=Path,
                        help="write pending bytes and threshold_size over time to FILE (.svg or .png)")


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """Return the Scenario the options describe; raise UnitError for a value that does not parse."""
    return Scenario(
        ram=parse_size(args.ram),
        dirty_rate=parse_rate(args.dirty_rate),
        wss=parse_size(args.wss),
        bandwidth=parse_rate(args.bandwidth),
        max_bandwidth=parse_rate(args.max_bandwidth) if args.max_bandwidth else None,
        downtime_limit=parse_duration(args.downtime_limit) if args.downtime_limit else None,
        switchover_bandwidth=parse_rate(args.switchover_bandwidth) if args.switchover_bandwidth else 0.0,
        time_limit=parse_duration(args.time_limit),
        zero_fraction=parse_fraction(args.zero_fraction),
    )


def load_rules(tree: Path | None, cache: Path | None = None) -> tuple[Rules, list[AnchorResult]]:
    """Return the rules of `tree` (indexed into `cache` first) with their anchors, or the newest built-in rules."""
    if tree is None:
        return Rules.newest(), []
    return read_rules(tree, cache, progress=sys.stderr.isatty())


def _error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    """Run the model as the options say, print the table (or JSON), write the plot; return the exit status."""
    try:
        scenario = scenario_from_args(args)
        rules, anchors = load_rules(args.tree, getattr(args, "cache", None))
        result = simulate(scenario, rules)
    except (UnitError, ModelError, FileNotFoundError, ChaintraceError) as error:
        return _error(str(error), EXIT_BAD_VALUE)
    except AnchorDrift as drift:
        return _error(str(drift), EXIT_DRIFT)

    if args.plot is not None:
        from chaintrace.model.plot import plot_result  # matplotlib only when a plot is asked for

        try:
            plot_result(result, args.plot)
        except (OSError, ValueError) as error:
            return _error(f"cannot write plot {args.plot}: {error}", EXIT_BAD_VALUE)

    if args.json:
        print(json.dumps(result_to_dict(result, anchors), indent=2))
    else:
        print(format_rules(rules, anchors))
        print(format_scenario(result))
        print()
        print(format_table(result))
        print()
        print(format_outcome(result))
        if args.plot is not None:
            print(f"plot: {args.plot}")
    return 0
