"""`chaintrace export TREE -o FILE`: the whole resolved call graph as JSON Lines or GraphML, for other tools."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chaintrace import api
from chaintrace.cli import options
from chaintrace.errors import ChaintraceError, UsageError
from chaintrace.cli.options import tree_path


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `export` subcommand to `subparsers`."""
    parser = subparsers.add_parser(name, help="write the whole resolved call graph as JSON Lines (.jsonl) or GraphML "
                                              "(.graphml)")
    parser.add_argument("tree", type=tree_path)
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                        help="FILE.jsonl (schema chaintrace.graph/1, docs/graph-schema.md) or FILE.graphml")
    options.add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Write the tree's graph to the output file; print how many nodes, edges and diagnostics it holds; return 0."""
    from chaintrace.render import export

    suffix = args.output.suffix.lower()
    if suffix not in export.FORMATS:
        raise UsageError(f"cannot export to {args.output.name}: give a file ending in {' or '.join(export.FORMATS)}")
    with api.open_store(args.cache, warn=options.warn) as store:
        tg = options.tree_graph(store, args)
        header = {"tree": str(tg.root), "version": tg.version, "state": tg.state}
        nodes, edges, diagnostics = tg.tables.rows()
        try:
            if suffix == ".jsonl":
                counts = export.write_jsonl(args.output, header, nodes, edges, diagnostics)
            else:
                counts = (*export.write_graphml(args.output, header, nodes, edges), len(list(diagnostics)))
        except OSError as error:
            raise ChaintraceError(f"cannot write {args.output}: {error.strerror}") from None
    summary = {"output": str(args.output), "nodes": counts[0], "edges": counts[1], "diagnostics": counts[2]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.output}: {counts[0]} nodes, {counts[1]} edges, {counts[2]} diagnostics")
    return 0
