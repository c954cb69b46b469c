"""`chaintrace doc`: a walkthrough of a traced chain as Markdown and self-contained HTML, with its diagram.

    chaintrace doc TREE --from qmp:migrate --to assign:threshold_size -o DIR
        -> DIR/index.md, DIR/index.html, DIR/chain.svg, DIR/chain.mmd
    chaintrace doc --spec queries/qemu/*.toml --tree TREE -o DIR
        -> DIR/<spec name>/... per trace spec, and DIR/index.md, DIR/index.html listing them

`register(subparsers)` adds the subcommand (its `func` is `run`).  The output
is deterministic: no time stamps, and the tree is named by its folder name.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from chaintrace import api

from chaintrace.render.page import walkthrough as doc
from chaintrace.errors import ChaintraceError, UsageError
from chaintrace.render.diagram import layout as diagram
from chaintrace.render.page import html
from chaintrace.render.page import markdown

OUTPUTS = ("index.md", "index.html", "chain.svg", "chain.mmd")


@dataclass
class Query:
    """One page to make: a name (its folder in batch mode), the trace query and its options."""

    name: str
    source: str
    target: str
    description: str = ""
    options: dict = field(default_factory=dict)   # max_paths, max_depth, via, avoid, edges, sites
    skip: str = ""


@dataclass
class Made:
    """What became of one query: the page folder (relative), paths found, or the error or skip reason."""

    query: Query
    folder: str
    paths: str = ""
    error: str = ""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `doc` subcommand to `subparsers`; return its parser (its `func` default is `run`)."""
    p = subparsers.add_parser("doc", help="write a walkthrough of a traced chain: Markdown, self-contained HTML, diagram")
    p.add_argument("tree", nargs="?", type=Path, help="root of the source tree (or --tree)")
    p.add_argument("--tree", dest="tree_option", type=Path, metavar="TREE", help="root of the source tree")
    p.add_argument("--from", dest="source", metavar="ENTRY", help="FUNC, qmp:COMMAND or hmp:COMMAND")
    p.add_argument("--to", dest="target", metavar="TARGET", help="FUNC, assign:FIELD, call:FUNC or FILE:LINE")
    p.add_argument("--spec", nargs="+", type=Path, metavar="SPEC",
                   help="trace spec files (TOML with name, from, to, [options]): a page per spec and an index page")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder to write the pages to")
    p.add_argument("--max-paths", type=int, default=50, metavar="N", help="paths to enumerate per target, shortest first (default 50)")
    p.add_argument("--max-depth", type=int, metavar="N", help="longest path, in hops")
    p.add_argument("--via", action="append", default=[], metavar="FUNC", help="paths must pass through FUNC (repeatable)")
    p.add_argument("--avoid", action="append", default=[], metavar="FUNC", help="paths must not pass through FUNC (repeatable)")
    p.add_argument("--edges", metavar="KINDS", help="edge kinds to follow, comma-separated (default: all)")
    p.add_argument("--sites", default="", metavar="REGEX", help="only the target sites whose statement matches REGEX")
    p.add_argument("--context", type=int, default=3, metavar="N", help="source lines shown around each call (default 3)")
    p.add_argument("--cache", type=Path, help="cache folder (default: $XDG_CACHE_HOME/chaintrace)")
    p.add_argument("-j", "--jobs", type=int, default=0, help="worker processes when indexing (default: all cores)")
    p.set_defaults(func=run)
    return p


def _edge_kinds(text: str | list | None) -> list[str] | None:
    from chaintrace.graph.kinds import EDGE_KINDS

    kinds = [k.strip() for k in (text.split(",") if isinstance(text, str) else text or []) if k.strip()]
    unknown = [kind for kind in kinds if kind not in EDGE_KINDS]
    if unknown:
        raise UsageError(f"unknown edge kind {unknown[0]!r} (known: {', '.join(EDGE_KINDS)})")
    return kinds or None


def read_spec(path: Path, version: str) -> Query | None:
    """Return the query of a trace spec file for a tree of `version`, or None when the file holds no spec.

    Tolerant: unknown keys are ignored.  `[versions."SELECTOR"]` tables (see
    `chaintrace.regress.check`) apply in file order when they match `version`.
    """
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a spec file (with --spec, give the tree as --tree TREE)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read spec {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: {error}") from None
    if not isinstance(data.get("from"), str) or not isinstance(data.get("to"), str):
        return None
    query = Query(str(data.get("name") or path.stem), data["from"], data["to"], str(data.get("description", "")),
                  dict(data.get("options") or {}))
    versions = data.get("versions") or {}
    if versions:
        from chaintrace.regress.check import version_matches

        for selector, table in versions.items():
            if isinstance(table, dict) and version_matches(selector, version):
                query.source, query.target = table.get("from", query.source), table.get("to", query.target)
                query.options.update(table.get("options") or {})
                if table.get("skip"):
                    query.skip = table["skip"] if isinstance(table["skip"], str) else f"not for QEMU {version} ({selector})"
    return query


def command_line(tree: Path, query: Query, context: int) -> str:
    """Return the `chaintrace doc` command that makes the page of `query` (the tree by its folder name)."""
    words = ["chaintrace", "doc", tree.name, "--from", query.source, "--to", query.target,
             "--max-paths", str(query.options.get("max_paths", 50))]
    if query.options.get("max_depth"):
        words += ["--max-depth", str(query.options["max_depth"])]
    for key in ("via", "avoid"):
        for name in query.options.get(key) or ():
            words += [f"--{key}", name]
    if query.options.get("edges"):
        words += ["--edges", ",".join(query.options["edges"])]
    if query.options.get("sites"):
        words += ["--sites", query.options["sites"]]
    return shlex.join(words + ["--context", str(context), "-o", "DIR"])


def write_page(tg: api.TreeGraph, store, query: Query, folder: Path, context: int,
               facts: doc.SourceFacts | None = None) -> dict:
    """Trace `query` on `tg` and write the page files (OUTPUTS) into `folder`; return the trace document."""
    from chaintrace.render.document import trace_document

    options = query.options
    result, graph = api.trace_with_graph(
        tg, query.source, query.target, max_paths=int(options.get("max_paths", 50)), max_depth=options.get("max_depth"),
        via=list(options.get("via") or ()), avoid=list(options.get("avoid") or ()), edge_kinds=_edge_kinds(options.get("edges")))
    document = trace_document(graph, result, query={"from": query.source, "to": query.target},
                              tree=tg.root.name, version=tg.version)
    if options.get("sites"):
        from chaintrace.regress.snapshot import only_sites

        try:
            document = only_sites(document, str(options["sites"]))
        except re.error as error:
            raise UsageError(f"bad --sites regular expression {options['sites']!r}: {error}") from None
    page = doc.gather(document, tg.root, store, context, command_line(tg.root, query, context), facts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        diagram.write(document, folder / "chain.svg")
        diagram.write(document, folder / "chain.mmd")
        svg = (folder / "chain.svg").read_text(encoding="utf-8")
        (folder / "index.md").write_text(markdown.render(page), encoding="utf-8")
        (folder / "index.html").write_text(html.render(page, svg), encoding="utf-8")
    except OSError as error:
        raise ChaintraceError(f"cannot write {folder}: {error.strerror or error}") from None
    return document


def _paths(document: dict) -> str:
    counts = document.get("counts", {})
    bound = "" if counts.get("exact", True) else "≥ "
    return f"{bound}{counts.get('paths_total', 0)}"


def _queries(args: argparse.Namespace, version: str) -> list[Query]:
    if args.spec:
        if args.source or args.target:
            raise UsageError("give either --spec or --from/--to, not both")
        queries = []
        for path in args.spec:
            query = read_spec(path, version)
            if query is None:
                print(f"chaintrace: {path}: not a trace spec (no from/to), skipped", file=sys.stderr)
            else:
                queries.append(query)
        names = [query.name for query in queries]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise UsageError(f"two specs are named {twice[0]!r}: give each spec file its own `name`")
        if not queries:
            raise UsageError("no trace spec among the --spec files")
        return queries
    if not args.source or not args.target:
        raise UsageError("give --from ENTRY and --to TARGET (or --spec FILES)")
    options = {"max_paths": args.max_paths, "max_depth": args.max_depth, "via": args.via, "avoid": args.avoid,
               "edges": _edge_kinds(args.edges) or [], "sites": args.sites}
    return [Query("", args.source, args.target, options=options)]


def run(args: argparse.Namespace) -> int:
    """Write the doc page (or, with --spec, a page per spec and an index page); return 0, or 1 when a spec failed."""
    tree = args.tree or args.tree_option
    if tree is None:
        raise UsageError("give the source tree: chaintrace doc TREE ... (or --tree TREE)")
    if args.tree and args.tree_option and args.tree != args.tree_option:
        raise UsageError("give the tree once (TREE or --tree)")
    if args.context < 0 or args.max_paths < 1:
        raise UsageError("--context must be 0 or more and --max-paths 1 or more")
    with api.open_store(args.cache, warn=lambda message: print(f"chaintrace: {message}", file=sys.stderr)) as store:
        tg = api.tree_graph(store, tree, jobs=args.jobs, progress=sys.stderr.isatty())
        queries = _queries(args, tg.version)
        if not args.spec:
            started = time.monotonic()
            document = write_page(tg, store, queries[0], args.output, args.context)
            print(f"wrote {args.output}/index.html and index.md ({_paths(document)} paths, "
                  f"{time.monotonic() - started:.1f} s)", file=sys.stderr)
            return 0 if any(target["paths"] for target in document["targets"]) else 1
        facts = doc.SourceFacts(tg.root, store)
        made = []
        for query in queries:
            entry = Made(query, query.name)
            if query.skip:
                entry.error = f"skipped: {query.skip}"
            else:
                try:
                    entry.paths = _paths(write_page(tg, store, query, args.output / query.name, args.context, facts))
                except ChaintraceError as error:
                    entry.error = str(error)
            print(f"{query.name}: {entry.error or entry.paths + ' path' + 's' * (entry.paths != '1')}", file=sys.stderr)
            made.append(entry)
    rows = [(m.query.name, m.query.description, m.query.source, m.query.target, m.paths, m.error,
             "" if m.error else m.folder) for m in made]
    title = f"chaintrace docs: {tg.root.name}" + (f" (QEMU {tg.version})" if tg.version else "")
    try:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "index.md").write_text(markdown.render_index(title, rows), encoding="utf-8")
        (args.output / "index.html").write_text(html.render_index(title, rows), encoding="utf-8")
    except OSError as error:
        raise ChaintraceError(f"cannot write {args.output}: {error.strerror or error}") from None
    return 1 if any(m.error and not m.query.skip for m in made) else 0
