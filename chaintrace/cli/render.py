"""Command-line pieces of diagrams: the diagram options, and `chaintrace render trace.json -o FILE`.

`add_diagram_arguments` adds the options to any subparser (`trace`, `render`);
`options_from_args` turns them into `DiagramOptions`; `add_parser` adds the
`render` subcommand, which draws a saved trace document without the tree.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chaintrace.cli.options import count
from chaintrace.errors import ChaintraceError, UsageError
from chaintrace.render.diagram.options import CLUSTERS, FORMATS, RANKDIRS, DiagramOptions


def add_diagram_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--cluster`, `--max-nodes`, `--collapse-file`, `--rankdir`, `--link-template` to `parser`."""
    defaults = DiagramOptions()
    group = parser.add_argument_group("diagram options (-o FILE.svg, .png, .pdf, .dot, .mmd)")
    group.add_argument("--cluster", choices=CLUSTERS, default=defaults.cluster,
                       help=f"group functions per source file, per directory, or not (default {defaults.cluster})")
    group.add_argument("--max-nodes", type=count, default=defaults.max_nodes, metavar="N",
                       help=f"functions drawn one by one; the others fold into '+N more' boxes, one per file "
                            f"where it fits (default {defaults.max_nodes})")
    group.add_argument("--collapse-file", action="append", default=[], metavar="GLOB",
                       help="draw the functions of matching files as one box per file (repeatable; e.g. 'util/*')")
    group.add_argument("--rankdir", choices=RANKDIRS, default=defaults.rankdir,
                       help="calls go left to right (LR, default) or top to bottom (TB)")
    group.add_argument("--link-template", default="", metavar="URL",
                       help="link boxes and arrows of an SVG to URL with {file} and {line}, e.g. "
                            "https://gitlab.com/qemu-project/qemu/-/blob/master/{file}#L{line}")


def options_from_args(args: argparse.Namespace) -> DiagramOptions:
    """Return the `DiagramOptions` the parsed arguments ask for (raises UsageError for a bad value)."""
    return DiagramOptions(cluster=args.cluster, max_nodes=args.max_nodes, collapse_file=tuple(args.collapse_file),
                          rankdir=args.rankdir, link_template=args.link_template)


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the `render` subcommand to `subparsers`."""
    parser = subparsers.add_parser(name, help="draw a saved trace (trace.json) as SVG, PNG, PDF, DOT or Mermaid")
    parser.add_argument("document", type=Path, metavar="TRACE.json", help="written by `chaintrace trace ... -o trace.json`")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                        help=f"the diagram to write; its extension names the format ({', '.join(FORMATS)})")
    add_diagram_arguments(parser)


def load_document(path: Path) -> dict:
    """Return the trace document saved at `path`; raise UsageError (one line) when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    except RecursionError:
        raise UsageError(f"{path} is not a trace document: nested too deeply") from None
    from chaintrace.render.document import check_document

    try:
        return check_document(document)
    except UsageError as error:
        raise UsageError(f"{path}: {error}") from None


def run(args: argparse.Namespace) -> int:
    """Draw the trace document `args.document` to `args.output`; return 0."""
    from chaintrace.render.diagram.output import write

    options = options_from_args(args)
    document = load_document(args.document)
    try:
        write(document, args.output, options)
    except OSError as error:
        raise ChaintraceError(f"cannot write {args.output}: {error.strerror or error}") from None
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        # a document with the right schema but edited by hand or cut short
        raise UsageError(f"{args.document}: malformed trace document ({type(error).__name__}: {error})") from None
    return 0
