"""tree-sitter set-up: the C language, a parser, and the extraction queries shipped as package data."""

from __future__ import annotations

from functools import cache
from importlib import resources

import tree_sitter_c
from tree_sitter import Language, Parser, Query, QueryCursor, Tree

# The query files extraction runs, in this order; all are compiled into one
# query so that each tree is walked once.
QUERY_FILES = ("definitions.scm", "declarations.scm", "calls.scm", "references.scm", "writes.scm", "reads.scm",
               "context.scm")


@cache
def language() -> Language:
    """Return tree-sitter's C language."""
    return Language(tree_sitter_c.language())


@cache
def parser() -> Parser:
    """Return a C parser (one per process)."""
    return Parser(language())


def query_source(name: str) -> str:
    """Return the text of `queries/c/NAME`."""
    return (resources.files("chaintrace.queries") / "c" / name).read_text()


@cache
def extraction_query() -> Query:
    """Return the combined extraction query of every file in QUERY_FILES."""
    return Query(language(), "\n".join(query_source(name) for name in QUERY_FILES))


def parse(source: bytes) -> Tree:
    """Return the syntax tree of C source."""
    return parser().parse(source)


def matches(tree: Tree, query: Query | None = None) -> list[tuple[int, dict]]:
    """Return the query's matches over the whole tree: (pattern index, {capture: [nodes]})."""
    return QueryCursor(query or extraction_query()).matches(tree.root_node)
