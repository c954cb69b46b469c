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

Walking up costs a tree walk per level in tree-sitter, so each access walks
once, to its statement, and the statements' texts are shared.
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


def field_reads(file: FileScope, matches: list[dict]) -> list[FieldRead]:
    """Return the member reads and address-takings of a file's functions (plain writes are `FieldWrite`s)."""
    source = file.source
    statements: dict = {}  # statement node id -> its text, and each step of `_position`'s walks -> its answer
    reads = []
    for captures in matches:
        node = captures["reference.field_access"][0]
        function, function_start = file.enclosing(node.start_byte, node.end_byte)
        if not function:
            continue
        how, parent = _role(source, node)
        if how is None:
            continue
        found = _position(source, node, parent, statements)
        if found is None:
            continue
        position, statement = found
        base, base_type = file.receiver(function, node.child_by_field_name("argument"))
        point = node.start_point
        reads.append(FieldRead(
            function, file.path, point[0] + 1, point[1] + 1, source.folded(node),
            source.text(captures["name"][0]), base, base_type, how or position, statement,
            file.contexts.at(node.start_byte, node.end_byte, function_start),
        ))
    return reads


def _role(source: Source, node: Node) -> tuple[str | None, Node | None]:
    """Return (the access's own role, or "" when its position decides; its parent); None for a plain write.

    `s->a.b` and `s->arr[i]` take the role of the whole expression ("member" when that is a plain write).
    """
    member = False  # `s->a.b`, `s->arr[i]`: as the whole expression goes (a loop: chains can be any length)
    parent = node.parent
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
                member, node, parent = True, parent, parent.parent
                continue
        elif kind == "subscript_expression" and parent.child_by_field_name("argument") == node:
            member, node, parent = True, parent, parent.parent
            continue
        return ("member" if member and how is None else how), parent
    return "", None


def _position(source: Source, node: Node, parent: Node | None, statements: dict) -> tuple[str, str] | None:
    """Return (position, statement text) of an access; None inside `sizeof` and the like.

    The walk up is shared: every step (child, parent) taken before a position
    is found ends the same way, so its answer is kept in `statements` and a
    chain of accesses `s->a->b->...` costs one walk, not one per access.
    """
    passed: list[tuple] = []
    result = _walk(source, node, parent, statements, passed)
    for step in passed:
        statements[step] = result
    return result


def _walk(source: Source, child: Node, parent: Node | None, statements: dict,
          passed: list[tuple]) -> tuple[str, str] | None:
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
        child, parent = parent, parent.parent
    return position or "other", fold(source.text(child))[:_STATEMENT_LIMIT]


def _text(source: Source, statement: Node, statements: dict[int, str]) -> str:
    text = statements.get(statement.id)
    if text is None:
        text = statements[statement.id] = fold(source.text(statement))[:_STATEMENT_LIMIT]
    return text


def _header(source: Source, statement: Node, statements: dict[int, str]) -> str:
    """Return an `if`/loop/`switch` statement's header: `if (s->n > 0)`, `for (i = 0; i < s->n; i++)`."""
    text = statements.get(statement.id)
    if text is None:
        body = statement.child_by_field_name("body") or statement.child_by_field_name("consequence")
        if statement.type == "do_statement":
            condition = statement.child_by_field_name("condition")
            text = "do ... while " + fold(source.text(condition))
        else:
            end = body.start_byte if body is not None else statement.end_byte
            text = fold(source.slice(statement.start_byte, end))
        text = statements[statement.id] = text[:_STATEMENT_LIMIT]
    return text
