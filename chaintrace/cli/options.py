"""The options commands share, added to their parsers here and read back into one `api.TraceQuery`.

`trace`, `doc`, `snapshot` and `diff` take the same trace options
(`--max-paths`, `--max-depth`, `--via`, `--avoid`, `--edges`, `--sites`, `--undecided`);
`callers`/`callees` take `--edges`.  They are added by `add_trace_arguments`
and read by `trace_query` (or `query_changes`, for the commands whose query
may come from a spec), so a value is checked once, by `TraceQuery`.  The
help wording of each command is kept as it has always read (`STYLES`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaintrace import api

# How each command's --help words the shared options: trace, doc, query (snapshot, diff), neighbours (callers, callees).
_TO = "FUNC, assign:/read:/use: FIELD, TYPE.FIELD or EXPR, call:FUNC or FILE:LINE; @FUNC and ~TEXT pick sites"
_MAX_PATHS = "paths to enumerate per target, shortest first (default 50)"
_EDGES = "edge kinds to follow, comma-separated"
_SITES = "only the target sites whose statement matches REGEX"
STYLES = {
    "trace": {"to": "FUNC; assign: (writes), read: or use: (reads and writes) of a FIELD, TYPE.FIELD "
                    "(MigrationState.threshold_size) or EXPR (s->threshold_size); call:FUNC; FILE:LINE; "
                    "then @FUNC (sites in FUNC) and ~TEXT (statements containing TEXT)",
              "max_paths": _MAX_PATHS, "via": "paths must pass through FUNC (repeatable, in order)",
              "avoid": "paths must not pass through FUNC (repeatable)",
              "edges": f"{_EDGES} (default: direct,thread,callback,ops,fnptr; dispatch too with --sound)"},
    "doc": {"to": _TO, "max_paths": _MAX_PATHS,
            "via": "paths must pass through FUNC (repeatable)", "avoid": "paths must not pass through FUNC (repeatable)",
            "edges": f"{_EDGES} (default: all)", "sites": _SITES},
    "query": {"to": _TO, "max_paths": "paths to enumerate per target (default 50)",
              "via": "paths must pass FUNC (repeatable, in order)", "avoid": "paths must not pass FUNC (repeatable)",
              "edges": f"{_EDGES} (default: all)", "sites": f"keep {_SITES}"},
    "neighbours": {"edges": _EDGES},
}


def add_entry_arguments(parser: argparse.ArgumentParser, style: str) -> None:
    """Add `--from ENTRY` and `--to TARGET` (required by `trace`; the others may take them from a spec)."""
    required = style == "trace"
    parser.add_argument("--from", dest="source", required=required, metavar="ENTRY",
                        help="FUNC, qmp:COMMAND or hmp:COMMAND")
    if style == "trace":  # several targets, traced at once
        parser.add_argument("--to", dest="target", required=True, action="append", metavar="TARGET",
                            help=STYLES[style]["to"] + " (repeatable: each target's count comes first)")
    else:
        parser.add_argument("--to", dest="target", required=required, metavar="TARGET", help=STYLES[style]["to"])


def add_edges_argument(parser: argparse.ArgumentParser, style: str) -> None:
    """Add `--edges KINDS` (comma-separated)."""
    parser.add_argument("--edges", metavar="KINDS", help=STYLES[style]["edges"])


def add_trace_arguments(parser: argparse.ArgumentParser, style: str) -> None:
    """Add the trace options; with style "query" each defaults to None (not given: the spec's or the snapshot's)."""
    words = STYLES[style]
    number = {"metavar": "N"} if style == "doc" else {}
    parser.add_argument("--max-paths", type=int, default=None if style == "query" else 50, help=words["max_paths"],
                        **number)
    parser.add_argument("--max-depth", type=int, help="longest path, in hops", **number)
    parser.add_argument("--via", action="append", default=[], metavar="FUNC", help=words["via"])
    parser.add_argument("--avoid", action="append", default=[], metavar="FUNC", help=words["avoid"])
    add_edges_argument(parser, style)
    if "sites" in words:
        parser.add_argument("--sites", default=None if style == "query" else "", metavar="REGEX", help=words["sites"])
    parser.add_argument("--undecided", action="store_true", default=None if style == "query" else False,
                        help="also follow calls whose receiver picks the callee at run time where nothing on the "
                             "path decides which (`klass->io_close(ioc)`: every class's; default: only where "
                             "the path made the object it calls through)")


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--program NAME` and `--sound`: which graph the command resolves and reads."""
    parser.add_argument("--program", default="system", metavar="NAME",
                        help="the program whose call graph is read (queries/qemu/programs.toml): system (default: "
                        "the system emulators), all (every file, tests and tools included)")
    parser.add_argument("--sound", action="store_true",
                        help="over-approximate: also match struct members by name alone, count a function passed to "
                        "any call as its callback, and follow dispatch edges (default: proven edges only)")


def tree_path(text: str) -> Path:
    """Return a tree's path from the command line; an empty one is refused (Path("") would be the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path (give the root of a source tree)")
    return Path(text)


def count(text: str) -> int:
    """Return a whole number, 0 or more, from the command line (argparse says which option when it is not one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the indexing options of the commands that take one tree: -j, --exclude, --include, --cache, --json."""
    parser.add_argument("-j", "--jobs", type=count, default=0, help="worker processes (default: all cores)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="leave out matching paths (repeatable)")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="index matching paths even when excluded")
    add_follow_argument(parser)
    add_cache_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def add_follow_argument(parser: argparse.ArgumentParser) -> None:
    """Add `--follow-symlinks`."""
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="index the files and folders that symbolic links lead to outside the tree "
                             "(by default they are skipped and named)")


def add_cache_argument(parser: argparse.ArgumentParser) -> None:
    """Add `--cache DIR`."""
    parser.add_argument("--cache", type=Path, help="cache folder (default: $XDG_CACHE_HOME/chaintrace)")


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--cache`, `-j` and `--follow-symlinks` of the commands that index their trees on the way (doc, check,
    snapshot, diff)."""
    add_cache_argument(parser)
    add_follow_argument(parser)
    parser.add_argument("-j", "--jobs", type=count, default=0, help="worker processes when indexing (default: all cores)")


def edge_kinds(text: str | None) -> tuple[str, ...]:
    """Return the kinds of a comma-separated `--edges` value (empty: every kind); `TraceQuery` checks them."""
    return tuple(kind.strip() for kind in (text or "").split(",") if kind.strip())


def trace_query(args: argparse.Namespace) -> api.TraceQuery:
    """Return the query the entry and trace options ask for (raises UsageError for a bad value).

    With several `--to` (`trace`), the query holds the first; `more_targets` gives the others.
    """
    target = args.target[0] if isinstance(args.target, list) else args.target
    return api.TraceQuery(args.source, target, args.max_paths, args.max_depth, tuple(args.via),
                          tuple(args.avoid), edge_kinds(args.edges), getattr(args, "sites", None) or "",
                          bool(args.undecided))


def more_targets(args: argparse.Namespace) -> list[str]:
    """Return the targets after the first of a repeated `--to` (none for the commands that take one)."""
    return list(args.target[1:]) if isinstance(args.target, list) else []


def query_changes(args: argparse.Namespace) -> dict:
    """Return the trace options given on the command line, as `TraceQuery` fields (for `dataclasses.replace`).

    They are checked now, as a `TraceQuery` checks them, though the query they change may come later (from a
    spec, for the tree's version).
    """
    given = {"max_paths": args.max_paths, "max_depth": args.max_depth, "via": tuple(args.via),
             "avoid": tuple(args.avoid), "edges": edge_kinds(args.edges), "sites": args.sites,
             "undecided": args.undecided or None}
    changes = {name: value for name, value in given.items() if value not in (None, (), "")}
    api.TraceQuery("", "", **changes)
    return changes


def warn(message: str) -> None:
    """Print a warning line on stderr."""
    print(f"chaintrace: {message}", file=sys.stderr)


def open_tree(args: argparse.Namespace, tree: Path | None = None) -> api.OpenTree:
    """Return the tree (`args.tree` unless given) opened with the command's --exclude, --include and --follow-symlinks."""
    return api.open_tree(args.tree if tree is None else tree, getattr(args, "exclude", None),
                         getattr(args, "include", None), getattr(args, "follow_symlinks", False))


def tree_graph(store: api.Store, args: argparse.Namespace, tree: Path | None = None) -> api.TreeGraph:
    """Return the call graph of the command's tree (`args.tree` unless given), indexed first."""
    progress = sys.stderr.isatty() and not getattr(args, "json", False)
    return api.tree_graph(store, open_tree(args, tree), jobs=args.jobs, progress=progress, warn=warn,
                          program=getattr(args, "program", "system"), sound=getattr(args, "sound", False))
