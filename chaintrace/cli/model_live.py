"""`chaintrace model migration --from-qmp SOCKET [--watch]`: the model's inputs from a running QEMU.

Loaded only when `--from-qmp` is given. It reads what QEMU can tell
(`chaintrace.model.live`), prints the prediction before the user runs
`migrate`, and with `--watch` follows `query-migrate` every 100 ms, a line
a second, until the migration ends (or the model's time limit passes, or
Ctrl-C), then prints model against QEMU (`chaintrace.model.compare`).
Exit status: 0 after a prediction (and a watch), 2 when the socket is not a
QMP monitor or a value is bad, 1 when QEMU stops answering or refuses a
command.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from chaintrace.cli.model_output import EXIT_BAD_VALUE, error, finish, print_run
from chaintrace.model.anchors import AnchorResult
from chaintrace.model.compare import DONE, compare, format_comparison, format_watch_line
from chaintrace.model.live import LiveInputs, Poll, poll, read_inputs, scenario_from_live
from chaintrace.model.migration import ModelError, Result, Scenario, simulate
from chaintrace.model.qmp import QmpClient, QmpError
from chaintrace.model.rules import Rules
from chaintrace.model.units import format_duration, format_rate, format_size

EXIT_QMP = 1
POLL_INTERVAL = 0.1
LINE_EVERY = 10  # polls: one line a second


def describe(live: LiveInputs) -> str:
    """Return the one line saying what QEMU told."""
    parts = [f"QEMU {live.qemu_version}", f"ram {format_size(live.ram)}",
             f"dirty rate {format_rate(live.dirty_rate)} ({live.dirty_rate_mode} over {live.calc_time:g} s)"]
    if live.max_bandwidth:
        parts.append(f"max-bandwidth {format_size(live.max_bandwidth)}/s")
    if live.downtime_limit:
        parts.append(f"downtime-limit {format_duration(live.downtime_limit)}")
    if live.nonzero is not None:
        parts.append(f"non-zero pages {format_size(live.nonzero)}")
    parts.append("capabilities " + (", ".join(live.capabilities) or "none"))
    return "from QMP: " + ", ".join(parts)


def watch(client: QmpClient, result: Result, quiet: bool) -> list[Poll]:
    """Poll query-migrate until the migration ends, the model's time limit passes or Ctrl-C; return the polls."""
    polls: list[Poll] = []
    waiting_said = False
    try:
        while True:
            now = poll(client)
            if now.status in ("none", "setup") and not polls:
                if not waiting_said and not quiet:
                    print(f"watch: waiting for the migration to start on {client.path} (run migrate)", flush=True)
                    waiting_said = True
                time.sleep(POLL_INTERVAL)
                continue
            polls.append(now)
            if not quiet and (len(polls) % LINE_EVERY == 1 or now.status in DONE):
                print(format_watch_line(result, now), flush=True)
            if now.status in DONE or now.time > result.scenario.time_limit:
                return polls
            time.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        if not quiet:
            print("watch: interrupted; comparing what was seen", flush=True)
        return polls


def run_live(args: argparse.Namespace, rules: Rules, anchors: list[AnchorResult], stated: Scenario) -> int:
    """Read the inputs over QMP, predict, optionally watch; return the exit status."""
    try:
        client = QmpClient(args.from_qmp, timeout=args.qmp_timeout)
    except QmpError as problem:
        return error(str(problem), EXIT_BAD_VALUE)
    with client:
        try:
            live = read_inputs(client, calc_time=args.calc_time, with_nonzero=args.count_nonzero,
                               mode=args.dirty_rate_mode, repeat=args.calc_repeat)
            scenario = scenario_from_live(live, stated)
            result = simulate(scenario, rules)
            if not args.json:
                print(describe(live))
                if live.nonzero is None and stated.nonzero is None and not stated.zero_fraction:
                    print("note: all RAM outside the working set is taken as non-zero; --count-nonzero asks QEMU, "
                          "--nonzero states it", file=sys.stderr)
                for name in live.unmodelled():
                    print(f"note: capability {name} is on; the model does not simulate it", file=sys.stderr)
                print_run(result, rules, anchors, args)
                sys.stdout.flush()
            extra: dict = {"live": dataclasses.asdict(live)}
            measured = None
            if args.watch:
                polls = watch(client, result, quiet=args.json)
                if polls:
                    comparison = compare(result, polls)
                    extra["polls"] = [dataclasses.asdict(p) for p in polls]
                    extra["comparison"] = dataclasses.asdict(comparison)
                    measured = [(p.time, float(p.remaining)) for p in polls if p.dirty_sync_count]
                    if not args.json:
                        print()
                        print(format_comparison(comparison))
        except ModelError as problem:
            return error(str(problem), EXIT_BAD_VALUE)
        except QmpError as problem:
            return error(str(problem), EXIT_QMP)
    return finish(args, result, rules, anchors, extra, measured)
