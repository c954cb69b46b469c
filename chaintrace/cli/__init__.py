"""The `chaintrace` command line: `main` wires every subcommand (see `app`)."""

from chaintrace.cli.app import main

__all__ = ["main"]
