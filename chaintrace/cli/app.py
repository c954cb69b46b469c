"""The `chaintrace` command line: argparse subcommands -> api calls -> print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chaintrace import __version__, api
from chaintrace.errors import ChaintraceError, UsageError
from chaintrace.cli import render as diagram_command


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, help="cache folder (default: $XDG_CACHE_HOME/chaintrace)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-j", "--jobs", type=int, default=0, help="worker processes (default: all cores)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave out matching paths (repeatable)")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB", help="index matching paths even when excluded")


EXTRA_COMMANDS: dict = {}


# Subcommands whose modules load only when they run: `trace` pays no import of docs, checks or models.
CORE_COMMANDS = frozenset({"index", "stats", "trace", "callers", "callees", "render"})


def build_parser(everything: bool = True) -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand (of the core ones only when `everything` is False)."""
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

    p = sub.add_parser("trace", help="every call path from an entry to a target")
    p.add_argument("tree", type=Path)
    p.add_argument("--from", dest="source", required=True, metavar="ENTRY", help="FUNC, qmp:COMMAND or hmp:COMMAND")
    p.add_argument("--to", dest="target", required=True, metavar="TARGET",
                   help="FUNC, assign:FIELD, assign:EXPR (s->threshold_size), call:FUNC or FILE:LINE")
    p.add_argument("--max-paths", type=int, default=50, help="paths to enumerate per target, shortest first (default 50)")
    p.add_argument("--max-depth", type=int, help="longest path, in hops")
    p.add_argument("--via", action="append", default=[], metavar="FUNC", help="paths must pass through FUNC (repeatable, in order)")
    p.add_argument("--avoid", action="append", default=[], metavar="FUNC", help="paths must not pass through FUNC (repeatable)")
    p.add_argument("--edges", metavar="KINDS", help="edge kinds to follow, comma-separated (default: direct,thread,callback,ops,fnptr)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="write the trace to FILE: .json, .txt, or a diagram (.dot, .svg, .png, .pdf, .mmd)")
    diagram_command.add_diagram_arguments(p)
    _index_options(p)
    _common(p)

    for name, what in (("callers", "functions that reach FUNC"), ("callees", "functions FUNC reaches")):
        p = sub.add_parser(name, help=what)
        p.add_argument("tree", type=Path)
        p.add_argument("function", metavar="FUNC")
        p.add_argument("--depth", type=int, default=1, help="hops (default 1)")
        p.add_argument("--edges", metavar="KINDS", help="edge kinds to follow, comma-separated")
        _index_options(p)
        _common(p)

    diagram_command.register(sub)
    if not everything:
        return parser
    # Subcommands that live with their own modules register themselves.
    from chaintrace.cli import check as check_command
    from chaintrace.cli import doc as doc_command

    EXTRA_COMMANDS.update(check_command.register(sub))
    doc_command.register(sub)
    EXTRA_COMMANDS["doc"] = doc_command.run

    p = sub.add_parser("model", help="run a bundled executable model of a traced loop")
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    from chaintrace.cli import model as model_command

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


def _edge_kinds(text: str | None) -> list[str] | None:
    from chaintrace.graph.kinds import EDGE_KINDS

    if not text:
        return None
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in EDGE_KINDS]
    if unknown:
        raise UsageError(f"unknown edge kind {unknown[0]!r} (known: {', '.join(EDGE_KINDS)})")
    return kinds


def _tree_graph(args: argparse.Namespace, store) -> "api.TreeGraph":
    return api.tree_graph(store, args.tree, jobs=args.jobs, progress=sys.stderr.isatty() and not args.json, warn=_warn)


def cmd_trace(args: argparse.Namespace) -> int:
    """Trace every path from an entry to a target; print text, JSON, or write an output file."""
    from chaintrace.render.text import render_trace

    kinds = _edge_kinds(args.edges)
    with api.open_store(args.cache, warn=_warn) as store:
        tg = _tree_graph(args, store)
        result, graph = api.trace_with_graph(
            tg, args.source, args.target, max_paths=args.max_paths, max_depth=args.max_depth,
            via=args.via, avoid=args.avoid, edge_kinds=kinds,
        )
    if args.output or args.json:
        from chaintrace.render.document import trace_document

        document = trace_document(graph, result, query={"from": args.source, "to": args.target},
                                  tree=str(tg.root), version=tg.version)
        if args.output:
            write_output(args.output, document, render_trace(graph, result), diagram_command.options_from_args(args))
        if args.json:
            print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(render_trace(graph, result))
    # a path exists even when none is listed (--max-paths 0): the count says so
    return 0 if any(target.paths or target.count.total for target in result.targets) else 1


def write_output(path: Path, document: dict, text: str, options: "diagram_command.DiagramOptions | None" = None) -> None:
    """Write a trace to `path` in the format its extension names."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        elif suffix in (".txt", ".text"):
            path.write_text(text + "\n", encoding="utf-8")
        else:
            from chaintrace.render.diagram import layout as diagram

            diagram.write(document, path, options)
    except OSError as error:
        raise ChaintraceError(f"cannot write {path}: {error.strerror}") from None


def cmd_neighbours(args: argparse.Namespace) -> int:
    """List callers or callees of a function with their distance."""
    kinds = _edge_kinds(args.edges)
    with api.open_store(args.cache, warn=_warn) as store:
        tg = _tree_graph(args, store)
        rows = api.neighbours(tg, args.function, callers=args.command == "callers", depth=args.depth, edge_kinds=kinds)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            where = f"{row['file']}:{row['line']}" if row["file"] else "(external)"
            print(f"{row['distance']:3d}  {row['id']}  {where}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """Run a bundled model."""
    from chaintrace.cli import model as model_command

    return model_command.main(args)


COMMANDS = {
    "index": cmd_index,
    "stats": cmd_stats,
    "trace": cmd_trace,
    "callers": cmd_neighbours,
    "callees": cmd_neighbours,
    "model": cmd_model,
    "render": diagram_command.run,
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else argv
    # The subcommand is the first word that is not an option (the top level has no option with a value).
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(everything=command not in CORE_COMMANDS)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return (COMMANDS.get(args.command) or EXTRA_COMMANDS[args.command])(args)
    except ChaintraceError as error:
        print(f"chaintrace: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("chaintrace: interrupted; everything stored so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
