"""`chaintrace doc`: a walkthrough of a traced chain as Markdown and self-contained HTML, with its diagram.

    chaintrace doc TREE --from qmp:migrate --to assign:threshold_size -o DIR
        -> DIR/index.md, DIR/index.html, DIR/chain.svg, DIR/chain.mmd
    chaintrace doc --spec queries/qemu/*.toml --tree TREE -o DIR
        -> DIR/<spec name>/... per trace spec, and DIR/index.md, DIR/index.html listing them

Spec files are read as `check` reads them (`regress.spec`), their version
tables applied for the tree.  The output is deterministic: no time stamps,
and the tree is named by its folder name.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chaintrace import api
from chaintrace.cli import options
from chaintrace.errors import ChaintraceError, UsageError
from chaintrace.regress.snapshot import only_sites
from chaintrace.regress.spec import Resolved, Spec, spec_files
from chaintrace.render.diagram import output as diagram
from chaintrace.render.document import trace_document
from chaintrace.render.page import html, markdown
from chaintrace.render.page import walkthrough as doc
from chaintrace.cli.options import tree_path

OUTPUTS = ("index.md", "index.html", "chain.svg", "chain.mmd")


@dataclass
class Made:
    """What became of one spec: the paths found, or the error or skip reason."""

    spec: Resolved
    paths: str = ""
    error: str = ""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `doc` subcommand to `subparsers`."""
    p = subparsers.add_parser(name, help="write a walkthrough of a traced chain: Markdown, self-contained HTML, diagram")
    p.add_argument("tree", nargs="?", type=tree_path, help="root of the source tree (or --tree)")
    p.add_argument("--tree", dest="tree_option", type=tree_path, metavar="TREE", help="root of the source tree")
    options.add_entry_arguments(p, "doc")
    p.add_argument("--spec", nargs="+", type=Path, metavar="SPEC",
                   help="trace spec files (TOML with name, from, to, [options]): a page per spec and an index page")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder to write the pages to")
    options.add_trace_arguments(p, "doc")
    p.add_argument("--context", type=int, default=3, metavar="N", help="source lines shown around each call (default 3)")
    options.add_store_arguments(p)


def command_line(tree: Path, query: api.TraceQuery, context: int) -> str:
    """Return the `chaintrace doc` command that makes the page of `query` (the tree by its folder name)."""
    words = ["chaintrace", "doc", tree.name, "--from", query.source, "--to", query.target,
             "--max-paths", str(query.max_paths)]
    if query.max_depth:
        words += ["--max-depth", str(query.max_depth)]
    for key in ("via", "avoid"):
        for name in getattr(query, key):
            words += [f"--{key}", name]
    if query.edges:
        words += ["--edges", ",".join(query.edges)]
    if query.sites:
        words += ["--sites", query.sites]
    return shlex.join(words + ["--context", str(context), "-o", "DIR"])


def write_page(tg: api.TreeGraph, store: api.Store, query: api.TraceQuery, folder: Path, context: int,
               facts: doc.SourceFacts | None = None) -> dict:
    """Trace `query` on `tg` and write the page files (OUTPUTS) into `folder`; return the trace document."""
    result, graph = api.trace_query(tg, query)
    document = trace_document(graph, result, query={"from": query.source, "to": query.target},
                              tree=tg.root.name, version=tg.version)
    if query.sites:
        document = only_sites(document, query.sites)
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


def _tree(args: argparse.Namespace) -> Path:
    """Return the tree the command names (TREE or --tree), or raise UsageError saying how to name it."""
    tree = args.tree or args.tree_option
    if tree is None:
        folder = next((path for path in args.spec or () if path.is_dir()), None)
        if folder is not None:  # `--spec FILES TREE`: the spec list took the tree
            raise UsageError(f"{folder} is a folder, not a spec file (with --spec, give the tree as --tree TREE)")
        raise UsageError("give the source tree: chaintrace doc TREE ... (or --tree TREE)")
    if args.tree and args.tree_option and args.tree != args.tree_option:
        raise UsageError("give the tree once (TREE or --tree)")
    return tree


def _specs(args: argparse.Namespace) -> list[Spec]:
    """Return the specs of --spec (read before any tree is), or [] without --spec; UsageError for a mix-up."""
    if not args.spec:
        if not args.source or not args.target:
            raise UsageError("give --from ENTRY and --to TARGET (or --spec FILES)")
        return []
    if args.source or args.target:
        raise UsageError("give either --spec or --from/--to, not both")
    specs, skipped = spec_files(args.spec)
    for note in skipped:
        options.warn(note)
    if not specs:
        raise UsageError("no trace spec among the --spec files")
    return specs


def run(args: argparse.Namespace) -> int:
    """Write the doc page (or, with --spec, a page per spec and an index page); return 0, or 1 when a spec failed."""
    tree = _tree(args)
    if args.context < 0 or args.max_paths < 1:
        raise UsageError("--context must be 0 or more and --max-paths 1 or more")
    specs = _specs(args)
    query = None if specs else options.trace_query(args)
    with api.open_store(args.cache, warn=options.warn) as store:
        tg = options.tree_graph(store, args, tree)
        if query is not None:
            started = time.monotonic()
            document = write_page(tg, store, query, args.output, args.context)
            print(f"wrote {args.output}/index.html and index.md ({_paths(document)} paths, "
                  f"{time.monotonic() - started:.1f} s)", file=sys.stderr)
            return 0 if any(target["paths"] for target in document["targets"]) else 1
        made = _write_pages(tg, store, specs, args.output, args.context)
    _write_index(tg, made, args.output)
    return 1 if any(m.error and not m.spec.skip for m in made) else 0


def _write_pages(tg: api.TreeGraph, store: api.Store, specs: list[Spec], output: Path, context: int) -> list[Made]:
    """Write a page per spec into `output`/NAME, as its version tables say for the tree; return what became of each."""
    facts = doc.SourceFacts(tg.root, store, follow=tg.tree.options.follow_symlinks)
    made = []
    for spec in specs:
        entry = Made(spec.resolve(tg.version))
        if entry.spec.skip:
            entry.error = f"skipped: {entry.spec.skip}"
        else:
            try:
                entry.paths = _paths(write_page(tg, store, entry.spec.query, output / spec.name, context, facts))
            except ChaintraceError as error:
                entry.error = str(error)
        print(f"{spec.name}: {entry.error or entry.paths + ' path' + 's' * (entry.paths != '1')}", file=sys.stderr)
        made.append(entry)
    return made


def _write_index(tg: api.TreeGraph, made: list[Made], output: Path) -> None:
    """Write the index pages (Markdown and HTML) listing every spec's page, or why it has none."""
    rows = [(m.spec.spec.name, m.spec.spec.description, m.spec.query.source, m.spec.query.target, m.paths, m.error,
             "" if m.error else m.spec.spec.name) for m in made]
    title = f"chaintrace docs: {tg.root.name}" + (f" (QEMU {tg.version})" if tg.version else "")
    try:
        output.mkdir(parents=True, exist_ok=True)
        (output / "index.md").write_text(markdown.render_index(title, rows), encoding="utf-8")
        (output / "index.html").write_text(html.render_index(title, rows), encoding="utf-8")
    except OSError as error:
        raise ChaintraceError(f"cannot write {output}: {error.strerror or error}") from None
