"""Declarations of one file -> facts: function definitions and their parameters, prototypes, variables, typedefs.

`functions` and `variables` also fill the `FileScope`'s locals and globals,
which the call and reference extractors read afterwards.
"""

from __future__ import annotations

from tree_sitter import Node

from chaintrace.extract.facts import FunctionDef, Prototype, StructDef, Typedef, VarDecl
from chaintrace.extract.scope import FileScope
from chaintrace.extract.syntax import (
    comment_above,
    declarator_name,
    full_type,
    is_function_declarator,
    params,
    storage_words,
    type_text,
    typedefs,
)


def functions(file: FileScope, definitions: list[tuple[Node, Node]]) -> tuple[list[FunctionDef], list[VarDecl]]:
    """Return the function definitions and their parameters' declarations."""
    source = file.source
    found = []
    parameters = []
    for node, name_node in definitions:
        name = source.text(name_node)
        declarator = node.child_by_field_name("declarator")
        _, _, depth = declarator_name(declarator, source)
        words = storage_words(source, node)
        found_params, named = params(source, declarator)
        function_locals = file.locals.setdefault(name, {})
        for (param_node, fnptr), param in zip(named, (p for p in found_params if p.name and p.name != "...")):
            decl = VarDecl(name, param.name, param.type, file.path, param_node.start_point[0] + 1, True, fnptr)
            function_locals[param.name] = decl
            parameters.append(decl)
        found.append(FunctionDef(
            name=name,
            file=file.path,
            line=node.start_point[0] + 1,
            end_line=node.end_point[0] + 1,
            is_static="static" in words,
            is_inline="inline" in words or "__inline__" in words,
            return_type=full_type(type_text(source, node, node.child_by_field_name("type")), depth),
            params=found_params,
            comment=comment_above(source, node),
            conditions=file.contexts.at(node.start_byte, node.end_byte, -1).conditions,
        ))
    return found, parameters


def prototypes(file: FileScope, matches: list[dict]) -> tuple[Prototype, ...]:
    """Return the function declarations at file scope (a declaration inside a body is skipped)."""
    found = []
    # per declaration: one declaration may declare thousands of functions (`f(a, g(b), g(b), ...)` at file
    # scope reads as one), and its words and type are read from all its children
    shared: dict[int, tuple[set[str], str]] = {}
    for captures in matches:
        node = captures["definition.prototype"][0]
        if file.enclosing(node.start_byte, node.end_byte)[0]:
            continue  # a declaration inside a body
        name_node = captures["name"][0]
        up = file.source.parent
        declarator = up(name_node)
        depth = 0
        parent = up(declarator) if declarator is not None else None
        while parent is not None and parent.type == "pointer_declarator":
            depth += 1
            parent = up(parent)
        words, base = shared.get(node.id) or shared.setdefault(
            node.id, (storage_words(file.source, node), type_text(file.source, node, node.child_by_field_name("type"))))
        found.append(
            Prototype(
                name=file.source.text(name_node),
                file=file.path,
                line=node.start_point[0] + 1,
                is_static="static" in words,
                return_type=full_type(base, depth),
                params=params(file.source, declarator)[0],
            )
        )
    return tuple(found)


def variables(file: FileScope, declarations: list[dict]) -> list[VarDecl]:
    """Return the variable declarations, local and global, and record each in the file's scope."""
    source = file.source
    found = []
    for captures in declarations:
        node = captures["definition.variable"][0]
        function, _ = file.enclosing(node.start_byte, node.end_byte)
        base = type_text(source, node, captures["type"][0])
        for declarator in node.children_by_field_name("declarator"):
            name, fnptr, depth = declarator_name(declarator, source)
            if not name or (not fnptr and is_function_declarator(declarator)):
                continue  # a prototype, not a variable
            decl = VarDecl(function, name, full_type(base, depth), file.path, declarator.start_point[0] + 1, False, fnptr)
            if function:
                file.locals.setdefault(function, {}).setdefault(name, decl)
            else:
                file.globals[name] = decl
            found.append(decl)
    return found


def all_typedefs(file: FileScope, matches: list[dict]) -> tuple[list[Typedef], list[StructDef]]:
    """Return the typedefs, and the anonymous structs they name (`typedef struct { ... } Name;`)."""
    found: list[Typedef] = []
    anonymous: list[StructDef] = []
    seen: set[int] = set()
    for captures in matches:
        node = captures["definition.typedef"][0]
        if node.id in seen:
            continue  # the query matches a typedef once per declarator; `typedefs` reads them all at once
        seen.add(node.id)
        names, structs = typedefs(file.source, node)
        found += names
        anonymous += structs
    return found, anonymous
