"""Running the check/snapshot/diff subcommands in tests, errors printed to stdout for capsys."""

from __future__ import annotations

import contextlib
import sys

from chaintrace.cli import main


def run_cli(argv: list[str]) -> int:
    """Run a check/snapshot/diff command line through `chaintrace.cli.main`, its stderr on stdout; return the exit code."""
    with contextlib.redirect_stderr(sys.stdout):
        return main(argv)
