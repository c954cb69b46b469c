"""Running the check/snapshot/diff subcommands in tests, errors printed to stdout for capsys."""

from __future__ import annotations

import argparse

from chaintrace.cli import check as check_command
from chaintrace.errors import ChaintraceError


def run_cli(argv: list[str]) -> int:
    """Run a check/snapshot/diff command line the way `chaintrace` does; return the exit code."""
    parser = argparse.ArgumentParser(prog="chaintrace")
    handlers = check_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
    except ChaintraceError as error:
        print(f"chaintrace: error: {error}")
        return error.exit_code
