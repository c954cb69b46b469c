"""The `chaintrace` command line: argparse subcommands -> api calls -> print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chaintrace import __version__, api
from chaintrace.errors import ChaintraceError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, help="cache folder (default: $XDG_CACHE_HOME/chaintrace)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-j", "--jobs", type=int, default=0, help="worker processes (default: all cores)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave out matching paths (repeatable)")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB", help="index matching paths even when excluded")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="chaintrace",
        description="Static call-chain tracer for large C code bases (QEMU first): "
        "direct calls, threads, callbacks and ops tables, each edge with the file:line that proves it.",
    )
    parser.add_argument("--version", action="version", version=f"chaintrace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="index a C tree into the fact cache")
    p.add_argument("tree", type=Path, help="root of the source tree")
    _index_options(p)
    _common(p)

    p = sub.add_parser("stats", help="parse-error regions per file, worst files first")
    p.add_argument("tree", type=Path)
    p.add_argument("--worst", type=int, default=20, help="how many files to list (default 20)")
    _index_options(p)
    _common(p)

    p = sub.add_parser("model", help="run a bundled executable model of a traced loop")
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    from chaintrace.model import command as model_command

    model_command.add_arguments(
        models.add_parser("migration", help="QEMU's precopy migration loop, anchored to the source it mirrors")
    )
    return parser


def _warn(message: str) -> None:
    print(f"chaintrace: {message}", file=sys.stderr)


def _index(args: argparse.Namespace, store) -> "api.IndexSummary":
    return api.index(
        args.tree, store, jobs=args.jobs, excludes=args.exclude, includes=args.include,
        progress=sys.stderr.isatty() and not args.json, warn=_warn,
    )


def cmd_index(args: argparse.Namespace) -> int:
    """Index a tree; print the summary line (or JSON)."""
    with api.open_store(args.cache, warn=_warn) as store:
        summary = _index(args, store)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print(
            f"{summary.files} files ({summary.extracted} parsed, {summary.reused} reused, {len(summary.skipped)} skipped), "
            f"{summary.functions} functions, {summary.calls} call sites, {summary.refs} references, "
            f"{summary.errors} error regions, {summary.seconds:.2f} s"
        )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Print parse-error statistics of a tree, indexing it first."""
    with api.open_store(args.cache, warn=_warn) as store:
        _index(args, store)
        stats = api.parse_error_stats(api.load_facts(store, args.tree), args.worst)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(
        f"{stats['files']} files, {stats['functions']} functions; {stats['files_with_errors']} files with "
        f"{stats['error_regions']} ERROR and {stats['missing_regions']} MISSING regions"
    )
    for row in stats["worst"]:
        print(f"  {row['errors']:5d} ERROR {row['missing']:4d} MISSING  {row['path']}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """Run a bundled model."""
    from chaintrace.model import command as model_command

    return model_command.main(args)


COMMANDS = {"index": cmd_index, "stats": cmd_stats, "model": cmd_model}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except ChaintraceError as error:
        print(f"chaintrace: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("chaintrace: interrupted; everything stored so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
