"""`chaintrace check`, `snapshot` and `diff`: pin call chains across versions (docs/checks.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from chaintrace import api
from chaintrace.cli import options
from chaintrace.errors import UsageError
from chaintrace.regress import check, diff
from chaintrace.regress.junit import write_junit
from chaintrace.regress.snapshot import is_snapshot_file, read_snapshot, run_query, snapshot_document, write_snapshot
from chaintrace.regress.spec import Spec, load_spec, spec_files
from chaintrace.cli.options import tree_path

HELP = {
    "check": "check trace specs and snapshots on one or more trees (exit 1 on a failure)",
    "snapshot": "write the canonical JSON of a trace, for check --snapshot and diff",
    "diff": "how a chain differs between two trees (or snapshot files)",
}


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `check`, `snapshot` or `diff` subcommand (`name`) to `subparsers`."""
    p = subparsers.add_parser(name, help=HELP[name])
    if name == "check":
        p.add_argument("specs", nargs="*", type=Path, metavar="SPEC", help="spec files or folders of them (*.toml)")
        p.add_argument("--tree", action="append", type=tree_path, required=True, metavar="TREE",
                       help="a source tree (repeatable)")
        p.add_argument("--snapshot", action="append", default=[], type=Path, metavar="FILE",
                       help="fail when the tree's chain differs from this snapshot (repeatable)")
        p.add_argument("--update", action="store_true", help="write the current chain into the --snapshot files instead")
        p.add_argument("--lines", action="store_true", help="compare line numbers with snapshots too")
        p.add_argument("--junit", type=Path, metavar="FILE", help="also write the results as JUnit XML")
        p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    elif name == "snapshot":
        p.add_argument("tree", type=tree_path)
        _add_query_arguments(p)
        p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the snapshot file to write")
    else:
        p.add_argument("a", type=Path, metavar="A", help="a source tree or a snapshot file")
        p.add_argument("b", type=Path, metavar="B", help="a source tree or a snapshot file")
        _add_query_arguments(p)
        p.add_argument("--lines", action="store_true", help="report line-number changes too")
        p.add_argument("--exit-code", action="store_true", help="exit 1 when the chains differ")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
    options.add_store_arguments(p)


def _add_query_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_entry_arguments(parser, "query")
    parser.add_argument("--spec", type=Path, metavar="SPEC", help="take the query from a spec file (its version tables apply)")
    options.add_trace_arguments(parser, "query")


def run(args: argparse.Namespace) -> int:
    """Run `check`, `snapshot` or `diff`; return the exit code."""
    return {"check": run_check, "snapshot": run_snapshot, "diff": run_diff}[args.command](args)


# -- check ------------------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    """Run every spec and snapshot on every tree; print the table (or JSON), write JUnit; 1 on any failure."""
    specs, skipped = spec_files(args.specs)
    for note in skipped:
        options.warn(note)
    if not specs and not args.snapshot:
        raise UsageError("nothing to check: give spec files or --snapshot FILE")
    if args.update and (not args.snapshot or len(args.tree) != 1):
        raise UsageError("--update needs --snapshot FILE and exactly one --tree")
    for path in args.snapshot:
        if not args.update or path.exists():
            read_snapshot(path)  # a bad snapshot is a usage error before any work
    start = time.perf_counter()
    results: list[check.CheckResult] = []
    with api.open_store(args.cache, warn=options.warn) as store:
        for tree in args.tree:
            tg = options.tree_graph(store, args, tree)
            results += [check.check_spec(tg, spec) for spec in specs]
            results += [_check_snapshot(tg, path, specs, args) for path in args.snapshot]
    seconds = time.perf_counter() - start
    if args.junit:
        write_junit(args.junit, results, seconds)
    if args.json:
        print(json.dumps(check.check_document(results, seconds), indent=2, ensure_ascii=False))
    else:
        print(check.render_table(results))
    return 1 if check.failed(results) else 0


def _check_snapshot(tg: api.TreeGraph, path: Path, specs: list[Spec], args: argparse.Namespace) -> check.CheckResult:
    """Return the result of a snapshot on a tree; with --update, a missing snapshot is made from the one spec."""
    if not (args.update and not path.exists()):
        return check.check_snapshot(tg, path, update=args.update, lines=args.lines)
    if len(specs) != 1:
        raise UsageError(f"{path} does not exist: to create it with --update, give exactly one spec for its query")
    write_snapshot(path, snapshot_document(run_query(tg, specs[0].resolve(tg.version).query)))
    return check.CheckResult(f"snapshot {path.name}", str(path), str(tg.root), tg.version, "pass", notes=[f"wrote {path}"])


# -- snapshot and diff -------------------------------------------------------------------------------------


class QueryOf:
    """The query `snapshot` and `diff` run on a tree of a given version, checked before any tree is read.

    It is `--spec`'s (its version tables applied), or `--from`/`--to`, else
    `base` (a snapshot's), with the other trace options of the command line.
    """

    def __init__(self, args: argparse.Namespace, base: api.TraceQuery | None = None) -> None:
        if args.spec and (args.source or args.target):
            raise UsageError("give either --spec or --from/--to, not both")
        self.changes = options.query_changes(args)
        self.spec = load_spec(args.spec) if args.spec else None
        if self.spec is None and args.source and args.target:
            base = api.TraceQuery(args.source, args.target)
        elif self.spec is None and (base is None or args.source or args.target):
            raise UsageError("give --from ENTRY and --to TARGET, or --spec FILE")
        self.base = base

    def __call__(self, version: str) -> api.TraceQuery:
        """Return the query for a tree of `version`."""
        query = self.spec.resolve(version).query if self.spec is not None else self.base
        return dataclasses.replace(query, **self.changes)


def _snapshot_of(store: api.Store, path: Path, args: argparse.Namespace, query_of: QueryOf) -> dict:
    if is_snapshot_file(path):
        return read_snapshot(path)
    tg = options.tree_graph(store, args, path)
    return snapshot_document(run_query(tg, query_of(tg.version)))


def run_snapshot(args: argparse.Namespace) -> int:
    """Write the snapshot of a trace; print one summary line. Exit 1 when the trace could not run."""
    query_of = QueryOf(args)
    with api.open_store(args.cache, warn=options.warn) as store:
        snapshot = _snapshot_of(store, args.tree, args, query_of)
    write_snapshot(args.output, snapshot)
    if snapshot["error"]:
        options.warn(f"{args.output}: {snapshot['error']}")
        return 1
    print(f"wrote {args.output}: {snapshot['counts']['paths_total']} path(s), {len(snapshot['paths'])} kept, "
          f"{len(snapshot['functions'])} functions, {len(snapshot['edges'])} edges")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    """Print how the chain differs from A to B (text or JSON); 0, or 1 with --exit-code when it differs."""
    base = None  # a snapshot side's query is the other side's default
    for side in (args.a, args.b):
        if is_snapshot_file(side):
            base = api.TraceQuery.from_dict(read_snapshot(side)["query"])
            break
    query_of = QueryOf(args, base)
    with api.open_store(args.cache, warn=options.warn) as store:
        a = _snapshot_of(store, args.a, args, query_of)
        b = _snapshot_of(store, args.b, args, query_of)
    if a["query"] != b["query"]:
        options.warn(f"the two sides answer different queries: {a['query']} and {b['query']}")
    result = diff.diff_snapshots(a, b, lines=args.lines)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(diff.render_text(result))
    return 1 if args.exit_code and result["changed"] else 0
