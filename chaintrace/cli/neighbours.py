"""`chaintrace callers TREE FUNC` and `chaintrace callees TREE FUNC`: the functions within `--depth` hops."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chaintrace import api
from chaintrace.cli import options
from chaintrace.cli.options import tree_path

HELP = {"callers": "functions that reach FUNC", "callees": "functions FUNC reaches"}


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `callers` or the `callees` subcommand (`name`) to `subparsers`."""
    parser = subparsers.add_parser(name, help=HELP[name])
    parser.add_argument("tree", type=tree_path)
    parser.add_argument("function", metavar="FUNC")
    parser.add_argument("--depth", type=options.count, default=1, help="hops (default 1)")
    options.add_edges_argument(parser, "neighbours")
    options.add_graph_arguments(parser)
    options.add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """List the callers or callees of a function with their distance (text or JSON); return 0."""
    kinds = api.check_edge_kinds(options.edge_kinds(args.edges))  # before any indexing
    with api.open_store(args.cache, warn=options.warn) as store:
        tg = options.tree_graph(store, args)
        rows = api.neighbours(tg, args.function, callers=args.command == "callers", depth=args.depth, edge_kinds=kinds)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            where = f"{row['file']}:{row['line']}" if row["file"] else "(external)"
            print(f"{row['distance']:3d}  {row['id']}  {where}")
    return 0
