"""The `check`, `snapshot` and `diff` subcommands: `register(subparsers)` adds them and returns their handlers."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from chaintrace import api
from chaintrace.regress.check import CheckResult, check_snapshot, check_spec, spec_files
from chaintrace.errors import ChaintraceError, UsageError
from chaintrace.regress.snapshot import TraceQuery, is_snapshot_file, read_snapshot, run_query, snapshot_document, write_snapshot


def _warn(message: str) -> None:
    print(f"chaintrace: {message}", file=sys.stderr)


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, help="cache folder (default: $XDG_CACHE_HOME/chaintrace)")
    parser.add_argument("-j", "--jobs", type=int, default=0, help="worker processes when indexing (default: all cores)")


def _query_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", metavar="ENTRY", help="FUNC, qmp:COMMAND or hmp:COMMAND")
    parser.add_argument("--to", dest="target", metavar="TARGET", help="FUNC, assign:FIELD, assign:EXPR, call:FUNC or FILE:LINE")
    parser.add_argument("--spec", type=Path, metavar="SPEC", help="take the query from a spec file (its version tables apply)")
    parser.add_argument("--max-paths", type=int, help="paths to enumerate per target (default 50)")
    parser.add_argument("--max-depth", type=int, help="longest path, in hops")
    parser.add_argument("--via", action="append", default=[], metavar="FUNC", help="paths must pass FUNC (repeatable, in order)")
    parser.add_argument("--avoid", action="append", default=[], metavar="FUNC", help="paths must not pass FUNC (repeatable)")
    parser.add_argument("--edges", metavar="KINDS", help="edge kinds to follow, comma-separated (default: all)")
    parser.add_argument("--sites", metavar="REGEX", help="keep only the target sites whose statement matches REGEX")


def register(subparsers: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add the `check`, `snapshot` and `diff` subparsers; return {command name: handler returning the exit code}."""
    p = subparsers.add_parser("check", help="check trace specs and snapshots on one or more trees (exit 1 on a failure)")
    p.add_argument("specs", nargs="*", type=Path, metavar="SPEC", help="spec files or folders of them (*.toml)")
    p.add_argument("--tree", action="append", type=Path, required=True, metavar="TREE", help="a source tree (repeatable)")
    p.add_argument("--snapshot", action="append", default=[], type=Path, metavar="FILE",
                   help="fail when the tree's chain differs from this snapshot (repeatable)")
    p.add_argument("--update", action="store_true", help="write the current chain into the --snapshot files instead")
    p.add_argument("--lines", action="store_true", help="compare line numbers with snapshots too")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write the results as JUnit XML")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    _store_options(p)

    p = subparsers.add_parser("snapshot", help="write the canonical JSON of a trace, for check --snapshot and diff")
    p.add_argument("tree", type=Path)
    _query_options(p)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the snapshot file to write")
    _store_options(p)

    p = subparsers.add_parser("diff", help="how a chain differs between two trees (or snapshot files)")
    p.add_argument("a", type=Path, metavar="A", help="a source tree or a snapshot file")
    p.add_argument("b", type=Path, metavar="B", help="a source tree or a snapshot file")
    _query_options(p)
    p.add_argument("--lines", action="store_true", help="report line-number changes too")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when the chains differ")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    _store_options(p)
    return {"check": cmd_check, "snapshot": cmd_snapshot, "diff": cmd_diff}


def _tree_graph(store, tree: Path, args: argparse.Namespace) -> "api.TreeGraph":
    progress = sys.stderr.isatty() and not getattr(args, "json", False)
    return api.tree_graph(store, tree, jobs=args.jobs, progress=progress, warn=_warn)


# -- check ------------------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """Run every spec and snapshot on every tree; print the table (or JSON), write JUnit; 1 on any failure."""
    specs, skipped = spec_files(args.specs)
    for note in skipped:
        _warn(note)
    if not specs and not args.snapshot:
        raise UsageError("nothing to check: give spec files or --snapshot FILE")
    if args.update and (not args.snapshot or len(args.tree) != 1):
        raise UsageError("--update needs --snapshot FILE and exactly one --tree")
    for path in args.snapshot:
        if not args.update or path.exists():
            read_snapshot(path)  # a bad snapshot is a usage error before any work
    start = time.perf_counter()
    results: list[CheckResult] = []
    with api.open_store(args.cache, warn=_warn) as store:
        for tree in args.tree:
            tg = _tree_graph(store, tree, args)
            for spec in specs:
                results.append(check_spec(tg, spec))
            for path in args.snapshot:
                if args.update and not path.exists():
                    write_snapshot(path, snapshot_document(run_query(tg, _snapshot_query(path, specs, tg.version))))
                    results.append(CheckResult(f"snapshot {path.name}", str(path), str(tg.root), tg.version, "pass",
                                               notes=[f"wrote {path}"]))
                else:
                    results.append(check_snapshot(tg, path, update=args.update, lines=args.lines))
    seconds = time.perf_counter() - start
    if args.junit:
        write_junit(args.junit, results, seconds)
    if args.json:
        print(json.dumps(check_document(results, seconds), indent=2, ensure_ascii=False))
    else:
        print(render_table(results))
    return 1 if any(r.status in ("fail", "error") for r in results) else 0


def _snapshot_query(path: Path, specs: list, version: str) -> TraceQuery:
    if len(specs) != 1:
        raise UsageError(f"{path} does not exist: to create it with --update, give exactly one spec for its query")
    return specs[0].resolve(version).query


def _columns(results: list[CheckResult]) -> dict[str, str]:
    """Return {tree: column label}: the version, or the folder name when versions are missing or repeated."""
    trees = list(dict.fromkeys(r.tree for r in results))
    versions = {r.tree: r.version for r in results}
    labels = {}
    for tree in trees:
        label = versions[tree]
        if not label or sum(versions[t] == label for t in trees) > 1:
            label = f"{label} {Path(tree).name}".strip()
        labels[tree] = label
    return labels


def render_table(results: list[CheckResult]) -> str:
    """Return the spec x tree table, then each failure's reasons and the notes."""
    columns = _columns(results)
    names = list(dict.fromkeys(r.name for r in results))
    cell = {(r.name, r.tree): r for r in results}
    width = max([len("spec"), *map(len, names)])
    widths = {tree: max(5, len(label)) for tree, label in columns.items()}
    lines = ["  ".join(["spec".ljust(width), *(label.ljust(widths[t]) for t, label in columns.items())]).rstrip()]
    for name in names:
        row = [name.ljust(width)]
        for tree in columns:
            result = cell.get((name, tree))
            status = "-" if result is None else result.status.upper() if result.status != "pass" else "pass"
            row.append(status.ljust(widths[tree]))
        lines.append("  ".join(row).rstrip())
    for result in results:
        if result.failures:
            lines.append("")
            lines.append(f"{result.status.upper()} {result.name} on {columns[result.tree]} ({result.tree}), {result.source}:")
            lines += [f"  {f.expectation}: {f.message}" for f in result.failures]
    notes = [(r, note) for r in results for note in r.notes]
    if notes:
        lines.append("")
        lines += [f"note: {r.name} on {columns[r.tree]}: {note}" for r, note in notes]
    counts = {status: sum(r.status == status for r in results) for status in ("pass", "fail", "error", "skip")}
    lines.append("")
    lines.append(f"{len(results)} checks: {counts['pass']} passed, {counts['fail']} failed, "
                 f"{counts['error']} errors, {counts['skip']} skipped")
    return "\n".join(lines)


def check_document(results: list[CheckResult], seconds: float) -> dict:
    """Return the results as the JSON document of `check --json` (schema `chaintrace.regress.check/1`)."""
    trees = list(dict.fromkeys((r.tree, r.version) for r in results))
    return {
        "schema": "chaintrace.regress.check/1",
        "trees": [{"path": tree, "version": version} for tree, version in trees],
        "results": [r.as_dict() for r in results],
        "counts": {status: sum(r.status == status for r in results) for status in ("pass", "fail", "error", "skip")},
        "ok": not any(r.status in ("fail", "error") for r in results),
        "seconds": round(seconds, 3),
    }


def junit_tree(results: list[CheckResult], seconds: float = 0.0) -> ET.ElementTree:
    """Return the results as JUnit XML: one <testsuite> per tree, one <testcase> per spec or snapshot."""
    def counts(items: list[CheckResult]) -> dict[str, str]:
        return {"tests": str(len(items)), "failures": str(sum(r.status == "fail" for r in items)),
                "errors": str(sum(r.status == "error" for r in items)),
                "skipped": str(sum(r.status == "skip" for r in items))}

    root = ET.Element("testsuites", {"name": "chaintrace check", **counts(results), "time": f"{seconds:.3f}"})
    columns = _columns(results)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for index, tree in enumerate(columns):
        items = [r for r in results if r.tree == tree]
        suite = ET.SubElement(root, "testsuite", {
            "name": f"chaintrace check {columns[tree]}", **counts(items), "id": str(index),
            "time": f"{sum(r.seconds for r in items):.3f}", "timestamp": stamp, "hostname": socket.gethostname()})
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", {"name": "tree", "value": tree})
        ET.SubElement(properties, "property", {"name": "version", "value": items[0].version})
        classname = "chaintrace.regress.check." + (columns[tree].replace(".", "_").replace(" ", "_") or "tree")
        for result in items:
            case = ET.SubElement(suite, "testcase", {"name": result.name, "classname": classname,
                                                     "time": f"{result.seconds:.3f}", "file": result.source})
            if result.status in ("fail", "error"):
                first = result.failures[0]
                element = ET.SubElement(case, "failure" if result.status == "fail" else "error",
                                        {"message": f"{first.expectation}: {first.message}", "type": first.expectation})
                element.text = "\n".join(f"{f.expectation}: {f.message}" for f in result.failures)
            elif result.status == "skip":
                ET.SubElement(case, "skipped", {"message": result.notes[-1] if result.notes else "skipped"})
            out = [f"query: {json.dumps(result.query)}", f"summary: {json.dumps(result.summary)}", *result.notes]
            ET.SubElement(case, "system-out").text = "\n".join(out)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, results: list[CheckResult], seconds: float = 0.0) -> None:
    """Write the JUnit XML of the results to `path`."""
    try:
        junit_tree(results, seconds).write(path, encoding="UTF-8", xml_declaration=True)
    except OSError as error:
        raise ChaintraceError(f"cannot write {path}: {error.strerror}") from None


# -- snapshot and diff -------------------------------------------------------------------------------------


def query_from_args(args: argparse.Namespace, version: str, base: TraceQuery | None = None) -> TraceQuery:
    """Return the query the options give (`--spec`, or `--from`/`--to`, else `base`), the other options applied."""
    from chaintrace.regress.check import load_spec

    if args.spec:
        query = load_spec(args.spec).resolve(version).query
    elif args.source and args.target:
        query = TraceQuery(args.source, args.target)
    elif base is not None and not args.source and not args.target:
        query = base
    else:
        raise UsageError("give --from ENTRY and --to TARGET, or --spec FILE")
    if args.source and args.target and args.spec:
        raise UsageError("give either --spec or --from/--to, not both")
    changes: dict = {}
    if args.max_paths is not None:
        changes["max_paths"] = args.max_paths
    if args.max_depth is not None:
        changes["max_depth"] = args.max_depth
    if args.via:
        changes["via"] = tuple(args.via)
    if args.avoid:
        changes["avoid"] = tuple(args.avoid)
    if args.edges:
        changes["edges"] = tuple(kind.strip() for kind in args.edges.split(",") if kind.strip())
    if args.sites:
        changes["sites"] = args.sites
    if not changes:
        return query
    return TraceQuery(**{**query.__dict__, **changes})


def _snapshot_of(store, path: Path, args: argparse.Namespace, base: TraceQuery | None = None) -> dict:
    if is_snapshot_file(path):
        return read_snapshot(path)
    tg = _tree_graph(store, path, args)
    return snapshot_document(run_query(tg, query_from_args(args, tg.version, base)))


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Write the snapshot of a trace; print one summary line. Exit 1 when the trace could not run."""
    with api.open_store(args.cache, warn=_warn) as store:
        snapshot = _snapshot_of(store, args.tree, args)
    write_snapshot(args.output, snapshot)
    if snapshot["error"]:
        _warn(f"{args.output}: {snapshot['error']}")
        return 1
    print(f"wrote {args.output}: {snapshot['counts']['paths_total']} path(s), {len(snapshot['paths'])} kept, "
          f"{len(snapshot['functions'])} functions, {len(snapshot['edges'])} edges")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Print how the chain differs from A to B (text or JSON); 0, or 1 with --exit-code when it differs."""
    from chaintrace.regress import diff

    base = None  # a snapshot side's query is the other side's default
    for side in (args.a, args.b):
        if is_snapshot_file(side):
            base = TraceQuery.from_dict(read_snapshot(side)["query"])
            break
    with api.open_store(args.cache, warn=_warn) as store:
        a = _snapshot_of(store, args.a, args, base)
        b = _snapshot_of(store, args.b, args, base)
    if a["query"] != b["query"]:
        _warn(f"the two sides answer different queries: {a['query']} and {b['query']}")
    result = diff.diff_snapshots(a, b, lines=args.lines)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(diff.render_text(result))
    return 1 if args.exit_code and result["changed"] else 0
