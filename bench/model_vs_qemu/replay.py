"""Replay a recorded sweep: the model's side recomputed from each run's recorded inputs, QEMU's side as recorded.

`run.py --replay DIR/results.json` reads what a sweep kept per run (the case,
what QEMU told over QMP before `migrate`, the calibrated loopback, every
poll of query-migrate) and runs today's model on those inputs, so a change
of the model is judged against the same QEMU runs without new ones (a sweep
is minutes and its figures move with the machine's load). The recorded
scenario and comparison are not read: both are recomputed. The rules are the
ones the sweep recorded (read from the QEMU tree then), `--tree` reads them
afresh; a file without them (older sweeps) takes the fetched 7.2 tree's.
The file is JSON, read as data only.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from cases import QEMU_TREE, Case, Loopback, model_run, tree_rules
from table import report

from chaintrace.errors import ChaintraceError
from chaintrace.model.anchors import AnchorDrift
from chaintrace.model.compare import Comparison, compare
from chaintrace.model.live import LiveInputs, Poll
from chaintrace.model.migration import ModelError
from chaintrace.model.rules import Rules


class ReplayError(ValueError):
    """A results file this replay cannot read; the message says which and why."""


def load(path: Path) -> dict:
    """Return the results file's data, or raise ReplayError when it is missing or not a results file's JSON."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReplayError(f"{path}: cannot read it ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReplayError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or not isinstance(data.get("loopback"), dict):
        raise ReplayError(f"{path}: not a results.json of this bench (it needs 'loopback' and 'runs')")
    return data


def recorded_rules(data: dict) -> tuple[Rules, list[str]] | None:
    """Return the rules the sweep recorded and the Rules fields it did not record (those take their defaults)."""
    recorded = data.get("rules")
    if not isinstance(recorded, dict):
        return None
    names = [f.name for f in dataclasses.fields(Rules)]
    try:
        rules = Rules(**{name: recorded[name] for name in names if name in recorded})
    except TypeError as error:
        raise ReplayError(f"the recorded rules are not this model's Rules ({error})") from None
    return rules, [name for name in names if name not in recorded]


def choose_rules(data: dict, tree: Path | None) -> tuple[Rules, str]:
    """Return the rules to replay with and a line saying where they come from."""
    if tree is not None:
        if not tree.is_dir():
            raise ReplayError(f"--tree {tree}: no such folder")
        try:
            rules = tree_rules(tree)
        except (AnchorDrift, ChaintraceError) as error:
            raise ReplayError(f"--tree {tree}: {error}") from None
        return rules, f"rules: {rules.origin}"
    recorded = recorded_rules(data)
    if recorded is not None:
        rules, missing = recorded
        note = f" (not recorded, so defaults: {', '.join(missing)})" if missing else ""
        return rules, f"rules: as recorded, {rules.origin}{note}"
    rules = tree_rules(QEMU_TREE)
    if rules is None:
        raise ReplayError(f"the file records no rules and {QEMU_TREE} is not fetched: give --tree QEMU")
    return rules, f"rules: the file records none; {rules.origin}"


def replay_run(record: dict, loopback: Loopback, rules: Rules) -> tuple[str, Comparison]:
    """Return one recorded run's case name and today's model against its recorded polls."""
    case = Case(**record["case"])
    live = LiveInputs(**{**record["live"], "capabilities": tuple(record["live"]["capabilities"])})
    polls = [Poll(**poll) for poll in record["polls"]]
    if not polls:
        raise ReplayError(f"case {case.name}: a run without polls")
    return case.name, compare(model_run(case, live, loopback, rules), polls)


def comparisons(data: dict, rules: Rules, names: list[str] | None,
                loopback: Loopback | None = None, zero_scan: float | None = None) -> dict[str, list[Comparison]]:
    """Return, per case name in the file's order, today's model against each recorded run of it.

    `loopback` stands in for the recorded calibration when given, `zero_scan`
    for its zero-page speed (files written before it was calibrated have none).
    """
    loopback = loopback or Loopback(**data["loopback"])
    if zero_scan is not None:
        loopback = dataclasses.replace(loopback, zero_scan=zero_scan)
    by_case: dict[str, list[Comparison]] = {}
    for index, record in enumerate(data["runs"]):
        try:
            name, comparison = replay_run(record, loopback, rules)
        except (KeyError, TypeError, AttributeError) as error:
            raise ReplayError(f"run {index}: not a recorded run of this bench ({type(error).__name__}: {error})") from None
        if names is None or name in names:
            by_case.setdefault(name, []).append(comparison)
    return by_case


def main(path: Path, tree: Path | None, names: list[str] | None, loopback: Loopback | None = None,
         zero_scan: float | None = None) -> int:
    """Print the replayed table and acceptance figures of `path` (with `loopback` instead of the recorded
    calibration and `zero_scan` instead of its zero-page speed when given); return 0, or 2 for a file it
    cannot replay."""
    try:
        data = load(path)
        rules, origin = choose_rules(data, tree)
        by_case = comparisons(data, rules, names, loopback, zero_scan)
    except (ReplayError, ModelError) as error:
        print(f"model_vs_qemu: {error}", file=sys.stderr)
        return 2
    if not by_case:
        print(f"model_vs_qemu: {path}: no runs" + (f" of {', '.join(names)}" if names else ""), file=sys.stderr)
        return 2
    print(f"replay of {path} ({sum(map(len, by_case.values()))} runs)\n{origin}"
          + ("\nloopback: as given, not as recorded" if loopback else "")
          + (f"\nzero pages read at {zero_scan / 1e9:.2f} GB/s, as given" if zero_scan is not None else ""))
    print(report(list(by_case), by_case))
    return 0
