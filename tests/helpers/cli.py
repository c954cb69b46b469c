"""The command line as the `chaintrace` script runs it, for tests of CLI behaviour.

Every command goes through `chaintrace.cli.main(argv)`: its parser, its
wiring of subcommands and its translation of errors into one line on stderr
and an exit code (0 ok, 1 failure, 2 usage error).  Tests assert the code.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from chaintrace.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
MINI_QEMU = REPO_ROOT / "fixtures" / "mini_qemu"
# The headline query on mini_qemu: qmp:migrate to the two threshold_size writes.
QUERY = ["--from", "qmp:migrate", "--to", "assign:threshold_size"]


def run_cli(argv: list[object]) -> int:
    """Run `chaintrace ARGV` in this process (output goes where pytest's capsys sees it); return the exit code.

    argparse's own usage errors leave through SystemExit: its code is what the process would exit with.
    """
    try:
        return main([str(arg) for arg in argv])
    except SystemExit as leaving:
        return leaving.code if isinstance(leaving.code, int) else 1


@dataclass(frozen=True)
class CliRun:
    """What one run of the command line printed, and its exit code."""

    code: int
    out: str
    err: str


def run_captured(argv: list[object]) -> CliRun:
    """Run `chaintrace ARGV` in this process; return its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(argv)
    return CliRun(code, out.getvalue(), err.getvalue())


def trace_json(tree: Path, cache: Path, source: str, target: str, *options: str) -> tuple[int, dict]:
    """Return (exit code, trace document) of `chaintrace trace TREE --from SOURCE --to TARGET --json OPTIONS`
    ({} when nothing was printed)."""
    import json

    run = run_captured(["trace", tree, "--cache", cache, "--from", source, "--to", target, "--json", *options])
    return run.code, json.loads(run.out) if run.out else {}
