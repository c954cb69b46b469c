"""`chaintrace why-not TREE --from ENTRY --to TARGET`: when no path exists, where the chain breaks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chaintrace import api
from chaintrace.cli import options
from chaintrace.errors import UsageError
from chaintrace.cli.options import tree_path


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `why-not` subcommand to `subparsers`."""
    parser = subparsers.add_parser(
        name, help="when no path exists: the functions each side reaches nearest the other, and the unresolved "
                   "indirect calls that could join them")
    parser.add_argument("tree", type=tree_path)
    parser.add_argument("--from", dest="source", required=True, metavar="ENTRY",
                        help="FUNC, qmp:COMMAND or hmp:COMMAND")
    parser.add_argument("--to", dest="target", required=True, metavar="TARGET", help=options.STYLES["query"]["to"])
    parser.add_argument("--avoid", action="append", default=[], metavar="FUNC",
                        help="paths must not pass through FUNC (repeatable)")
    options.add_edges_argument(parser, "query")
    parser.add_argument("--limit", type=options.count, default=5, metavar="N",
                        help="functions of each side, and unresolved calls, to name (default 5)")
    options.add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Say where the chain from ENTRY to TARGET breaks; exit 1 when no path exists, 0 when one does."""
    from chaintrace.render.whynot import render_why_not, why_not_document

    query = api.TraceQuery(args.source, args.target, avoid=tuple(args.avoid), edges=options.edge_kinds(args.edges))
    if args.limit < 1:
        raise UsageError(f"--limit must be 1 or more, not {args.limit}")
    with api.open_store(args.cache, warn=options.warn) as store:
        tg = options.tree_graph(store, args)
        answer = api.why_not(tg, query, limit=args.limit)
        if args.json:
            print(json.dumps(why_not_document(tg.tables, answer), indent=2, ensure_ascii=False))
        else:
            print(render_why_not(tg.tables, answer), end="")
    return 0 if answer.path_exists else 1
