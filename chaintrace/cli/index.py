"""`chaintrace index TREE` (index a tree into the fact cache) and `chaintrace stats TREE` (its parse errors)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from chaintrace import api
from chaintrace.cli import options
from chaintrace.cli.options import tree_path


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `index` or the `stats` subcommand (`name`) to `subparsers`."""
    if name == "index":
        parser = subparsers.add_parser("index", help="index a C tree into the fact cache")
        parser.add_argument("tree", type=tree_path, help="root of the source tree")
    else:
        parser = subparsers.add_parser("stats", help="parse-error regions per file, worst files first")
        parser.add_argument("tree", type=Path)
        parser.add_argument("--worst", type=options.count, default=20, help="how many files to list (default 20)")
    options.add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run `index` or `stats`; return the exit code."""
    return run_index(args) if args.command == "index" else run_stats(args)


def _index(args: argparse.Namespace, store: api.Store, tree: api.OpenTree) -> api.IndexSummary:
    return api.index(tree, store, jobs=args.jobs, progress=sys.stderr.isatty() and not args.json, warn=options.warn)


def run_index(args: argparse.Namespace) -> int:
    """Index a tree and make its call graph ready (the default program's, precise), so that the first
    trace is warm; print the summary line (or JSON)."""
    tree = options.open_tree(args)
    started = time.monotonic()
    with api.open_store(args.cache, warn=options.warn) as store:
        tg = api.tree_graph(store, tree, jobs=args.jobs, progress=sys.stderr.isatty() and not args.json,
                            warn=options.warn)
    summary, seconds = tg.summary, time.monotonic() - started
    assert summary is not None
    graph = {"graph": tg.made, "graph_seconds": round(seconds - summary.seconds, 3)}
    if args.json:
        print(json.dumps({**summary.as_dict(), **graph}, indent=2))
    else:
        print(
            f"{summary.files} files ({summary.extracted} parsed, {summary.reused} reused, {len(summary.skipped)} skipped), "
            f"{summary.functions} functions, {summary.calls} call sites, {summary.refs} references, "
            f"{summary.errors} error regions, {summary.seconds:.2f} s; graph {tg.made} in {graph['graph_seconds']:.2f} s"
        )
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print parse-error statistics of a tree, indexing it first."""
    tree = options.open_tree(args)
    with api.open_store(args.cache, warn=options.warn) as store:
        _index(args, store, tree)
        stats = api.parse_error_stats(api.load_facts(store, tree), args.worst)
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
