"""What `chaintrace model migration` prints and writes: the run as text or JSON, the plot, one-line errors.

Shared by the plain command (`cli/model.py`) and its `--from-qmp` form
(`cli/model_live.py`).
"""

from __future__ import annotations

import argparse
import json
import sys

from chaintrace.model.anchors import AnchorResult
from chaintrace.model.migration import Result
from chaintrace.model.report import format_outcome, format_rules, format_scenario, format_table, result_to_dict
from chaintrace.model.rules import Rules

PROG = "chaintrace model migration"
EXIT_DRIFT = 1
EXIT_BAD_VALUE = 2


def error(message: str, status: int) -> int:
    """Print `message` as the command's one error line on stderr and return `status`."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def print_run(result: Result, rules: Rules, anchors: list[AnchorResult], args: argparse.Namespace) -> None:
    """Print the rules, the scenario, the per-round table and the outcome (nothing under --json)."""
    if args.json:
        return
    print(format_rules(rules, anchors))
    print(format_scenario(result))
    print()
    print(format_table(result))
    print()
    print(format_outcome(result))


def finish(args: argparse.Namespace, result: Result, rules: Rules, anchors: list[AnchorResult],
           extra: dict | None = None, measured: list[tuple[float, float]] | None = None) -> int:
    """Write the plot, print the run (table or JSON, with `extra` keys in JSON); return the exit status."""
    if args.plot is not None:
        from chaintrace.model.plot import plot_result  # matplotlib only when a plot is asked for

        try:
            plot_result(result, args.plot, measured)
        except (OSError, ValueError) as problem:
            return error(f"cannot write plot {args.plot}: {problem}", EXIT_BAD_VALUE)
    if args.json:
        print(json.dumps({**result_to_dict(result, anchors), **(extra or {})}, indent=2))
    elif extra is None:
        print_run(result, rules, anchors, args)
    if args.plot is not None and not args.json:
        print(f"plot: {args.plot}")
    return 0
