"""The `chaintrace` command line: one module per command, listed once in COMMANDS, each a thin layer over `api`.

A command's module has `add_parser(subparsers, name)`, which adds the
command `name` (a module may hold a few: index and stats, callers and
callees, check, snapshot and diff), and `run(args) -> int`, the exit code.
A module is imported only when its command is wired in: `chaintrace trace`
builds the parser of `trace` alone, so it pays no import of docs, checks
or models.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from chaintrace import __version__
from chaintrace.errors import ChaintraceError, DamagedCache

# Each command and the module of chaintrace.cli that holds it, in the order `chaintrace --help` lists them.
COMMANDS = {
    "index": "index", "stats": "index", "trace": "trace", "why-not": "whynot", "callers": "neighbours",
    "callees": "neighbours", "render": "render", "check": "check", "snapshot": "check", "diff": "check", "doc": "doc",
    "export": "export", "model": "model",
}
DESCRIPTION = ("Static call-chain tracer for large C code bases (QEMU first): direct calls, threads, callbacks "
               "and ops tables, each edge with the file:line that proves it.")


def _module(command: str):
    return importlib.import_module(f"chaintrace.cli.{COMMANDS[command]}")


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in one line (the usage itself is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser of every command, or of `command` alone when it is one."""
    parser = _Parser(prog="chaintrace", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"chaintrace {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [command] if command in COMMANDS else COMMANDS:
        _module(name).add_parser(subparsers, name)
    return parser


class _Printable:
    """A text stream that shows control characters as `\\u001b` (a terminal would obey them: a file name or a
    line of source holding `ESC ]0;...` could retitle it, clear it or fake output). Line ends, tabs and the
    progress line's carriage return pass. In JSON (`--json`), where only DEL and C1 characters can be left
    raw, `\\u009b` is the same string."""

    _VISIBLE = {code: f"\\u{code:04x}" for code in (*range(9), 11, 12, *range(14, 32), 127, *range(0x80, 0xA0))}

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(text.translate(self._VISIBLE))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Printable(sys.stdout), _Printable(sys.stderr)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = streams


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The command is the first word that is not an option (the top level has no option with a value).
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        try:
            return _module(args.command).run(args)
        except DamagedCache:  # dropped and said already: the command runs once more, on what is made again
            return _module(args.command).run(args)
    except ChaintraceError as error:
        print(f"chaintrace: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("chaintrace: interrupted; everything stored so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except RecursionError:
        print("chaintrace: error: the input is nested too deeply to read", file=sys.stderr)
        return 2
    except MemoryError:
        print("chaintrace: error: out of memory", file=sys.stderr)
        return 1
    except Exception as error:  # a bug of ours: one line, never a traceback (CHAINTRACE_DEBUG=1 shows it)
        if os.environ.get("CHAINTRACE_DEBUG"):
            raise
        print(f"chaintrace: internal error: {type(error).__name__}: {error} "
              "(a bug: please report it with the command; CHAINTRACE_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
