"""Member accesses that are not plain writes -> `FieldRead` facts: what `read:` and `use:` targets match.

`reads.scm` captures every member access (`s->threshold_size`, `t.n`); the
access's place in the syntax tree says what it does. Its own role first:
the plain left of `=` is a write (a `FieldWrite`, not kept here), the left
of `+=` a read then a write ("compound"), `++`/`--` the same ("update"),
`&s->n` takes the address ("address": a use, not a read), `s->next->n`
reads `s->next` ("base"), `s->ops->f(...)` reads `f` ("call"), and
`s->a.b` or `s->arr[i]` reads `a` or `arr` as the whole expression does.
Otherwise the nearest enclosing argument list, condition, `return`,
right-hand side or declaration value names the read.

Walking up costs a tree walk per level in tree-sitter (a node's parent is
found from the root), so each access walks once, to its statement, the
statements' texts are shared, and the parents of the captured accesses'
own children are read from the captures downwards: in a chain
`x->a->a->...` every step up is then a lookup, and its accesses quote at
most `EXPR_LIMIT` characters each (linear in the chain, not quadratic).
"""

from __future__ import annotations

from tree_sitter import Node

from chaintrace.extract.facts import FieldRead
from chaintrace.extract.scope import FileScope
from chaintrace.extract.syntax import Source, fold

# Statements whose condition is a read's position; the statement shown is their header alone.
_CONDITIONAL = frozenset({"if_statement", "while_statement", "do_statement", "for_statement", "switch_statement"})
# Where the walk up stops: a read outside these is "other".
_STATEMENTS = frozenset({"expression_statement", "return_statement", "declaration", "compound_statement",
                         "function_definition", "translation_unit"})
# Accesses inside these are never evaluated.
_UNEVALUATED = frozenset({"sizeof_expression", "alignof_expression", "offsetof_expression"})
_STATEMENT_LIMIT = 200
# Between an access and an access it is the argument of: `x->arr[i]->n`, `(x->a)->n`, `x->f()->n`.
_THROUGH = frozenset({"subscript_expression", "parenthesized_expression", "call_expression"})


def field_reads(file: FileScope, matches: list[dict]) -> list[FieldRead]:
    """Return the member reads and address-takings of a file's functions (plain writes are `FieldWrite`s)."""
    source = file.source
    statements: dict = {}  # statement node id -> its text, and each step of `_position`'s walks -> its answer
    # in the order of their field names, as a pattern capturing the field gave them: `s->next` before `s->next->n`
    nodes = sorted((captures["reference.field_access"][0] for captures in matches), key=lambda node: node.end_byte)
    parents = _parents(nodes)
    reads = []
    for node in nodes:
        function, function_start = file.enclosing(node.start_byte, node.end_byte)
        if not function:
            continue
        how, parent = _role(source, node, parents)
        if how is None:
            continue
        found = _position(source, node, parent, statements, parents)
        if found is None:
            continue
        position, statement = found
        base, base_type = file.receiver(function, node.child_by_field_name("argument"))
        point = node.start_point
        reads.append(FieldRead(
            function, file.path, point[0] + 1, point[1] + 1, source.folded_head(node),
            source.text(node.child_by_field_name("field")), base, base_type, how or position, statement,
            file.contexts.at(node.start_byte, node.end_byte, function_start),
        ))
    return reads


def _parents(nodes: list[Node]) -> dict[int, Node]:
    """Return node id -> parent of the children (and grandchildren through a subscript, a call or parentheses) of
    the captured accesses `nodes`, read downwards: what `_role` and `_walk` would otherwise walk the tree for."""
    parents: dict[int, Node] = {}
    for node in nodes:
        for child in node.children:
            parents[child.id] = node
            if child.type in _THROUGH:
                for inner in child.children:
                    parents[inner.id] = child
    return parents


def _up(source: Source, node: Node, parents: dict[int, Node]) -> Node | None:
    """Return the parent of `node`: from `parents` when known, else from the source's tree."""
    found = parents.get(node.id)
    return found if found is not None else source.parent(node)


def _role(source: Source, node: Node, parents: dict[int, Node]) -> tuple[str | None, Node | None]:
    """Return (the access's own role, or "" when its position decides; its parent); None for a plain write.

    `s->a.b` and `s->arr[i]` take the role of the whole expression ("member" when that is a plain write).
    """
    member = False  # `s->a.b`, `s->arr[i]`: as the whole expression goes (a loop: chains can be any length)
    parent = _up(source, node, parents)
    while parent is not None:
        kind = parent.type
        how: str | None = ""
        if kind == "assignment_expression" and parent.child_by_field_name("left") == node:
            how = None if source.text(parent.child_by_field_name("operator")) == "=" else "compound"
        elif kind == "update_expression":
            how = "update"
        elif kind == "pointer_expression" and parent.children[0].type == "&":
            how = "address"
        elif kind == "call_expression" and parent.child_by_field_name("function") == node:
            how = "call"
        elif kind == "field_expression" and parent.child_by_field_name("argument") == node:
            if source.text(parent.child_by_field_name("operator")) == "->":
                how = "base"
            else:
                member, node, parent = True, parent, _up(source, parent, parents)
                continue
        elif kind == "subscript_expression" and parent.child_by_field_name("argument") == node:
            member, node, parent = True, parent, _up(source, parent, parents)
            continue
        return ("member" if member and how is None else how), parent
    return "", None


def _position(source: Source, node: Node, parent: Node | None, statements: dict,
              parents: dict[int, Node]) -> tuple[str, str] | None:
    """Return (position, statement text) of an access; None inside `sizeof` and the like.

    The walk up is shared: every step (child, parent) taken before a position
    is found ends the same way, so its answer is kept in `statements` and a
    chain of accesses `s->a->b->...` costs one walk, not one per access.
    """
    passed: list[tuple] = []
    result = _walk(source, node, parent, statements, passed, parents)
    for step in passed:
        statements[step] = result
    return result


def _walk(source: Source, child: Node, parent: Node | None, statements: dict, passed: list[tuple],
          parents: dict[int, Node]) -> tuple[str, str] | None:
    position = ""
    while parent is not None:
        if not position:
            step = ("walk", child.id, parent.id)
            known = statements.get(step, False)
            if known is not False:
                return known
            passed.append(step)
        kind = parent.type
        if kind in _UNEVALUATED:
            return None
        if not position:
            if kind == "argument_list":
                position = "argument"
            elif kind == "return_statement":
                position = "return"
            elif kind == "init_declarator":
                position = "initializer"
            elif kind == "assignment_expression" and parent.child_by_field_name("right") == child:
                position = "rhs"
            elif kind in _CONDITIONAL or kind == "conditional_expression":
                if parent.child_by_field_name("condition") == child:
                    position = "condition"
                    if kind != "conditional_expression":
                        return position, _header(source, parent, statements)
        if kind in _STATEMENTS:
            if kind in ("compound_statement", "function_definition", "translation_unit"):
                return position or "other", _text(source, child, statements)
            return position or "other", _text(source, parent, statements)
        if kind in _CONDITIONAL:  # the access sits in a loop's header: `for (i = 0; i < s->n; i++)`
            return position or "other", _header(source, parent, statements)
        child, parent = parent, _up(source, parent, parents)
    return position or "other", _head(source, child.start_byte, child.end_byte)


def _head(source: Source, start: int, end: int) -> str:
    """Return the folded text between two offsets, cut at _STATEMENT_LIMIT (folding only what can be kept: a
    statement holding n nested ones is not folded whole n times)."""
    return fold(source.slice(start, min(end, start + 4 * _STATEMENT_LIMIT)))[:_STATEMENT_LIMIT]


def _text(source: Source, statement: Node, statements: dict[int, str]) -> str:
    text = statements.get(statement.id)
    if text is None:
        text = statements[statement.id] = _head(source, statement.start_byte, statement.end_byte)
    return text


def _header(source: Source, statement: Node, statements: dict[int, str]) -> str:
    """Return an `if`/loop/`switch` statement's header: `if (s->n > 0)`, `for (i = 0; i < s->n; i++)`."""
    text = statements.get(statement.id)
    if text is None:
        body = statement.child_by_field_name("body") or statement.child_by_field_name("consequence")
        if statement.type == "do_statement":
            condition = statement.child_by_field_name("condition")
            text = "do ... while " + _head(source, condition.start_byte, condition.end_byte)
        else:
            text = _head(source, statement.start_byte, body.start_byte if body is not None else statement.end_byte)
        text = statements[statement.id] = text[:_STATEMENT_LIMIT]
    return text
