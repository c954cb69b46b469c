"""tree-sitter set-up: the C language, a parser, and the extraction queries shipped as package data."""

from __future__ import annotations

from functools import cache
from importlib import resources

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree, TreeCursor

# The query files extraction runs, in this order; all are compiled into one
# query so that each tree is walked once.
QUERY_FILES = ("definitions.scm", "declarations.scm", "calls.scm", "references.scm", "writes.scm", "reads.scm",
               "context.scm")


# tree-sitter's query cursor keeps where a match starts in 16 bits: past 65,535 levels of nesting it loses
# matches and slows down without bound. A file nested deeper than MAX_DEPTH (ten times the deepest file of
# QEMU 10.2 and its ROMs, 1,026 levels) is not read, and says so.
MAX_DEPTH = 10_000
# Deeper than this, one walk maps the deep constructs' nodes to their parents (`deep_parents`): cheaper than
# tree-sitter's walk from the root for every lookup, up to PARENTS_BUDGET nodes (about 75 MB).
DEEP = 256
PARENTS_BUDGET = 500_000


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


def depth(root: Node, floor: int, stop: int) -> int:
    """Return how many levels below `root` its deepest node lies, when that is more than `floor` (up to `stop`: the
    walk ends as soon as it is passed); else a number no larger than `floor`.

    A node at depth d with k nodes below it reaches at most d + k, so only nodes whose subtree could pass the
    deepest level seen (or `floor`) are opened: in a file as people write it, a few hundred nodes, not its million.
    """
    deepest = 0
    stack = [(root, 0)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > stop:
                return deepest
        if level + node.descendant_count - 1 > max(deepest, floor):
            stack.extend((child, level + 1) for child in node.children)
    return deepest


def deep_parents(tree: Tree, floor: int, budget: int) -> dict[int, Node] | None:
    """Return node id -> parent of every node inside the top-level constructs that nest deeper than `floor`,
    from one walk of each; None when there are none, or when they hold more than `budget` nodes.

    tree-sitter finds `node.parent` by walking down from the root, a cost that grows with the depth: in a
    deep tree, lookups by every level make extraction quadratic, and this map makes each one constant. It
    costs about 150 bytes a node, hence the budget (a larger deep tree keeps tree-sitter's slower walk).
    """
    root = tree.root_node
    deep = [child for child in root.children if depth(child, floor - 1, floor - 1) > floor - 1]
    if not deep or sum(child.descendant_count for child in deep) > budget:
        return None
    parents: dict[int, Node] = {}
    for child in deep:
        parents[child.id] = root
        _add_parents(child.walk(), parents)
    return parents


def _add_parents(cursor: TreeCursor, parents: dict[int, Node]) -> None:
    """Map every node below the cursor's to its parent."""
    stack = [cursor.node]
    while True:
        if cursor.goto_first_child():
            node = cursor.node
            parents[node.id] = stack[-1]
            stack.append(node)
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return
            stack.pop()
        stack.pop()
        node = cursor.node
        parents[node.id] = stack[-1]
        stack.append(node)


def matches(tree: Tree, query: Query | None = None) -> list[tuple[int, dict]]:
    """Return the query's matches over the whole tree: (pattern index, {capture: [nodes]})."""
    return QueryCursor(query or extraction_query()).matches(tree.root_node)
