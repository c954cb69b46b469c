"""`chaintrace trace TREE --from ENTRY --to TARGET`: every call path, printed as text or JSON, or written to a file.

The headline command: kept fast by loading the JSON document and drawing
code only when the output asks for them.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from chaintrace import api
from chaintrace.cli import options
from chaintrace.cli import render as diagram_command
from chaintrace.errors import ChaintraceError
from chaintrace.cli.options import tree_path


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `trace` subcommand to `subparsers`."""
    parser = subparsers.add_parser(name, help="every call path from an entry to a target")
    parser.add_argument("tree", type=tree_path)
    options.add_entry_arguments(parser, "trace")
    options.add_trace_arguments(parser, "trace")
    options.add_graph_arguments(parser)
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the trace to FILE: .json, .txt, or a diagram (.dot, .svg, .png, .pdf, .mmd)")
    diagram_command.add_diagram_arguments(parser)
    options.add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Trace every path from an entry to a target; print text, JSON, or write an output file.

    Exit 0 when a path exists (even when `--max-paths 0` lists none: the count says so), 1 when none does.
    """
    from chaintrace.render.text import render_trace

    query = options.trace_query(args)
    more = options.more_targets(args)
    with api.open_store(args.cache, warn=options.warn) as store:
        tg = options.tree_graph(store, args)
        result, graph = api.trace_query(tg, query, also=more)
    if args.output or args.json:
        from chaintrace.render.document import trace_document

        to = [query.target, *more] if more else query.target
        document = trace_document(graph, result, query={"from": query.source, "to": to}, tree=str(tg.root),
                                  version=tg.version)
        if args.output:
            write_output(args.output, document, render_trace(graph, result), diagram_command.options_from_args(args))
        if args.json:
            print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(render_trace(graph, result))
    if any(target.paths or target.count.total for target in result.targets):
        return 0  # with several targets, a path to any of them (each target's count says which)
    edges = f" --edges {args.edges}" if args.edges else ""
    edges += "".join(f" --avoid {shlex.quote(name)}" for name in args.avoid)
    options.warn(f"no path; `chaintrace why-not {shlex.quote(str(args.tree))} --from {shlex.quote(query.source)} "
                 f"--to {shlex.quote(query.target)}{edges}` names where the chain breaks")
    return 1


def write_output(path: Path, document: dict, text: str, diagram: diagram_command.DiagramOptions | None = None) -> None:
    """Write a trace to `path` in the format its extension names (.json, .txt, or a diagram)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        elif suffix in (".txt", ".text"):
            path.write_text(text + "\n", encoding="utf-8")
        else:
            from chaintrace.render.diagram import output

            output.write(document, path, diagram)
    except OSError as error:
        raise ChaintraceError(f"cannot write {path}: {error.strerror}") from None
