"""One file's syntax tree -> facts. Pure (no I/O), so it runs in worker processes.

The queries in `queries/c/*.scm` say *what* to capture; this module reads
each capture's surroundings: the enclosing function, declarator names and
types, and (through `extract_context`) loops, `#if` conditions and
early-return guards.

Extraction is the indexer's hot loop (hundreds of thousands of sites in a
tree like QEMU), so it keeps tree-sitter `Node` calls to a minimum: byte
offsets over text, one sweep for all contexts, identifier arguments read
from the call's own argument list rather than from a query capture each.
"""

from __future__ import annotations

import bisect

from tree_sitter import Node

from chaintrace.source import parse
from chaintrace.extract.context import Contexts, conditional, guard, loop
from chaintrace.extract.syntax import (
    Source,
    bare_type,
    comment_above,
    declarator_name,
    define,
    errors,
    fold,
    full_type,
    is_function_declarator,
    params,
    storage_words,
    struct_def,
    type_text,
    typedefs,
)
from chaintrace.extract.facts import CallSite, FieldWrite, FileFacts, FunctionDef, FunctionRef, Prototype, VarDecl

# Expression nodes that may name a function as a value: `fn`, `(GSourceFunc) fn`, `&fn`.
_VALUE_WRAPPERS = ("cast_expression", "pointer_expression")


class _File:
    """One file being extracted: its source, functions by byte range, declarations seen from each function."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.path = source.path
        self.function_starts: list[int] = []
        self.function_ends: list[int] = []
        self.function_names: list[str] = []
        self.locals: dict[str, dict[str, VarDecl]] = {}
        self.globals: dict[str, VarDecl] = {}
        self.contexts = Contexts(source)

    def enclosing(self, start: int, end: int) -> tuple[str, int]:
        """Return (name, start byte) of the function whose span holds the range, or ("", -1)."""
        index = bisect.bisect_right(self.function_starts, start) - 1
        if index >= 0 and end <= self.function_ends[index]:
            return self.function_names[index], self.function_starts[index]
        return "", -1

    def declared(self, function: str, name: str) -> VarDecl | None:
        """Return the local, parameter or file-scope declaration of `name` seen from `function`."""
        return self.locals.get(function, {}).get(name) or self.globals.get(name)


# Pattern index -> its construct capture (`reference.call`, ...): the same for every file.
_KINDS: dict[int, str] = {}


def _group(tree) -> dict[str, list[dict]]:
    """Return the query's matches grouped by their construct capture (`reference.call`, ...)."""
    by_kind: dict[str, list[dict]] = {}
    lists: dict[int, list[dict]] = {}  # pattern index -> its kind's list (a million matches per tree: one lookup each)
    for pattern, captures in parse.matches(tree):
        found = lists.get(pattern)
        if found is None:
            kind = _KINDS.get(pattern)
            if kind is None:
                kind = _KINDS[pattern] = next(name for name in captures if "." in name)
            found = lists[pattern] = by_kind.setdefault(kind, [])
        found.append(captures)
    return by_kind


def extract(path: str, original: bytes, normalized: bytes | None = None) -> FileFacts:
    """Return the facts of one C file; `normalized` is the macro-neutralised text that is parsed."""
    tree = parse.parse(normalized if normalized is not None else original)
    file = _File(Source(path, original))
    by_kind = _group(tree)
    empty: list[dict] = []

    definitions = sorted(
        ((captures["definition.function"][0], captures["name"][0]) for captures in by_kind.get("definition.function", empty)),
        key=lambda pair: pair[0].start_byte,
    )
    for node, name_node in definitions:
        file.function_starts.append(node.start_byte)
        file.function_ends.append(node.end_byte)
        file.function_names.append(file.source.text(name_node))
    _add_context_nodes(file, by_kind)

    functions, parameters = _functions(file, definitions)
    variables = parameters + _variables(file, by_kind.get("definition.variable", empty))
    calls, arg_refs = _calls(file, by_kind.get("reference.call", empty))
    refs = _refs(file, by_kind)
    writes = _writes(file, by_kind.get("reference.field_write", empty))

    structs = [struct_def(file.source, c["definition.struct"][0], c["name"][0]) for c in by_kind.get("definition.struct", empty)]
    typedef_facts = []
    seen_typedefs: set[int] = set()
    for captures in by_kind.get("definition.typedef", empty):
        node = captures["definition.typedef"][0]
        if node.id in seen_typedefs:
            continue  # the query matches a typedef once per declarator; `typedefs` reads them all at once
        seen_typedefs.add(node.id)
        found, anonymous = typedefs(file.source, node)
        typedef_facts += found
        structs += anonymous

    return FileFacts(
        path=path,
        functions=tuple(functions),
        prototypes=_prototypes(file, by_kind.get("definition.prototype", empty)),
        calls=tuple(calls),
        refs=tuple(sorted(arg_refs + refs, key=lambda r: (r.line, r.col))),
        writes=tuple(writes),
        structs=tuple(structs),
        typedefs=tuple(typedef_facts),
        variables=tuple(variables),
        defines=tuple(define(file.source, c["definition.macro"][0], c["name"][0]) for c in by_kind.get("definition.macro", empty)),
        errors=errors(tree.root_node),
    )


def _add_context_nodes(file: _File, by_kind: dict[str, list[dict]]) -> None:
    source = file.source
    contexts = file.contexts
    for captures in by_kind.get("context.loop", ()):
        node = captures["context.loop"][0]
        contexts.loops.append((node.start_byte, node.end_byte, loop(source, node)))
    for captures in by_kind.get("context.conditional", ()):
        contexts.conditionals += conditional(source, captures["context.conditional"][0])
    for captures in by_kind.get("context.guard", ()):
        found = guard(source, captures["context.guard"][0])
        if found is not None:
            contexts.guards.append(found)


def _functions(file: _File, definitions: list[tuple[Node, Node]]) -> tuple[list[FunctionDef], list[VarDecl]]:
    """Return the function definitions and their parameters' declarations."""
    source = file.source
    functions = []
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
        functions.append(FunctionDef(
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
    return functions, parameters


def _prototypes(file: _File, matches: list[dict]) -> tuple[Prototype, ...]:
    prototypes = []
    for captures in matches:
        node = captures["definition.prototype"][0]
        if file.enclosing(node.start_byte, node.end_byte)[0]:
            continue  # a declaration inside a body
        name_node = captures["name"][0]
        declarator = name_node.parent
        depth = 0
        parent = declarator.parent if declarator is not None else None
        while parent is not None and parent.type == "pointer_declarator":
            depth += 1
            parent = parent.parent
        words = storage_words(file.source, node)
        prototypes.append(
            Prototype(
                name=file.source.text(name_node),
                file=file.path,
                line=node.start_point[0] + 1,
                is_static="static" in words,
                return_type=full_type(type_text(file.source, node, node.child_by_field_name("type")), depth),
                params=params(file.source, declarator)[0],
            )
        )
    return tuple(prototypes)


def _variables(file: _File, declarations: list[dict]) -> list[VarDecl]:
    source = file.source
    variables = []
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
            variables.append(decl)
    return variables


def _unwrap_callee(node: Node) -> Node:
    """Return the callee expression inside `(*fp)` / `(fp)` / `*fp`."""
    while True:
        kind = node.type
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            node = node.named_children[0]
        elif kind == "pointer_expression" and node.children[0].type == "*":
            node = node.child_by_field_name("argument")
        else:
            return node


def _value_name(node: Node) -> tuple[Node, Node | None] | None:
    """Return (identifier, cast or `&` wrapper) when an expression is `fn`, `(T) fn` or `&fn`/`*fn`, else None."""
    kind = node.type
    if kind == "identifier":
        return node, None
    if kind == "cast_expression":
        value = node.child_by_field_name("value")
        return (value, node) if value is not None and value.type == "identifier" else None
    if kind == "pointer_expression":
        value = node.child_by_field_name("argument")
        return (value, node) if value is not None and value.type == "identifier" else None
    return None


def _cast(source: Source, wrapper: Node | None) -> str:
    if wrapper is None:
        return ""
    if wrapper.type == "cast_expression":
        return fold(source.text(wrapper.child_by_field_name("type")))
    return "&"


def _calls(file: _File, matches: list[dict]) -> tuple[list[CallSite], list[FunctionRef]]:
    """Return the call sites, and the references of their identifier arguments."""
    # The hottest loop of extraction (one pass per call site): names are bound
    # to locals, and each node attribute is read once.
    source = file.source
    text = source.text
    path = file.path
    enclosing = file.enclosing
    context_at = file.contexts.at
    all_locals = file.locals
    no_locals: dict[str, VarDecl] = {}
    calls = []
    refs = []
    add_call = calls.append
    add_ref = refs.append
    for captures in matches:
        node = captures["reference.call"][0]
        start_byte = node.start_byte
        end_byte = node.end_byte
        function, function_start = enclosing(start_byte, end_byte)
        function_locals = all_locals.get(function, no_locals) if function else no_locals
        callee_node = _unwrap_callee(captures["name"][0])
        kind = callee_node.type
        field = receiver = ""
        if kind == "identifier":
            callee = text(callee_node)
            declaration = function_locals.get(callee)
            via = ("param" if declaration.is_param else "local") if declaration else "name"
        else:
            callee = fold(text(callee_node))
            if kind == "field_expression":
                via = "field"
                field = text(callee_node.child_by_field_name("field"))
                receiver = fold(text(callee_node.child_by_field_name("argument")))
            else:
                via = "expr"
        context = context_at(start_byte, end_byte, function_start)
        args: list[str] = []
        for arg in captures["arguments"][0].named_children:
            arg_kind = arg.type
            if arg_kind == "identifier":
                name = text(arg)
                if name not in function_locals:  # a local or parameter is never a function
                    point = arg.start_point
                    # a bare identifier argument sits where its call does: same context
                    add_ref(FunctionRef(name, path, point[0] + 1, point[1] + 1, function, "argument", callee, len(args), "", "",
                                        "", "", context))
                args.append(name)
                continue
            if arg_kind == "comment":
                continue
            value = _value_name(arg) if arg_kind in _VALUE_WRAPPERS else None
            if arg_kind == "conditional_expression":  # `f(flag ? a : &b)`: either arm may be the function
                for arm in (arg.child_by_field_name("consequence"), arg.child_by_field_name("alternative")):
                    found = _value_name(arm) if arm is not None else None
                    if found is not None and text(found[0]) not in function_locals:
                        point = found[0].start_point
                        add_ref(FunctionRef(
                            text(found[0]), path, point[0] + 1, point[1] + 1, function, "argument", callee,
                            len(args), cast=_cast(source, found[1]), context=context,
                        ))
            if value is not None:
                name_node, wrapper = value
                name = text(name_node)
                if name not in function_locals:
                    point = name_node.start_point
                    add_ref(FunctionRef(
                        name, path, point[0] + 1, point[1] + 1, function, "argument", callee, len(args),
                        cast=_cast(source, wrapper), context=context,
                    ))
            args.append(fold(text(arg)))
        point = node.start_point
        add_call(CallSite(function, path, point[0] + 1, point[1] + 1, callee, via, tuple(args), context, field, receiver))
    return calls, refs


def _refs(file: _File, by_kind: dict[str, list[dict]]) -> list[FunctionRef]:
    """Return FunctionRef rows of identifiers in initializers and on the right of assignments."""
    source = file.source
    refs = []
    positions: dict[int, dict[int, int]] = {}  # initializer list id -> child id -> member index
    for usage in ("initializer", "assignment"):
        for captures in by_kind.get(f"reference.{usage}", ()):
            name_node = captures["name"][0]
            start, end = name_node.start_byte, name_node.end_byte
            function, function_start = file.enclosing(start, end)
            name = source.text(name_node)
            if function and name in file.locals.get(function, {}):
                continue  # a local or parameter, never a function
            wrapper = name_node.parent
            if wrapper is not None and wrapper.type not in _VALUE_WRAPPERS:
                wrapper = None
            container = captures[f"reference.{usage}"][0]
            if usage == "initializer":
                details = _initializer_details(source, captures, container, wrapper or name_node, positions)
            else:
                details = _assignment_details(source, container)
            point = name_node.start_point
            refs.append(FunctionRef(
                name, file.path, point[0] + 1, point[1] + 1, function, usage, cast=_cast(source, wrapper),
                context=file.contexts.at(start, end, function_start), **details,
            ))
    return refs


def _initializer_details(source: Source, captures: dict, container: Node, value: Node, positions: dict) -> dict:
    if "field" in captures:
        return {"field": source.text(captures["field"][0]), "struct_type": _initializer_type(source, container.parent)}
    index = positions.get(container.id)
    if index is None:
        members = [child.id for child in container.named_children if child.type != "comment"]
        index = positions[container.id] = {member: i for i, member in enumerate(members)}
    return {"arg_index": index.get(value.id, -1), "struct_type": _initializer_type(source, container)}


def _assignment_details(source: Source, container: Node) -> dict:
    """Return lhs (and field) of `lhs = name`, or of a declaration's initializer."""
    if container.type == "init_declarator":
        name, _, _ = declarator_name(container.child_by_field_name("declarator"), source)
        return {"lhs": name}
    left = container.child_by_field_name("left")
    field = ""
    if left is not None and left.type == "field_expression":
        field = source.text(left.child_by_field_name("field"))
    return {"lhs": source.folded(left) if left is not None else "", "field": field}


def _initializer_type(source: Source, initializer_list: Node | None) -> str:
    """Return the struct type an initializer list initialises, when its declaration says so."""
    depth = 0
    node = initializer_list
    while node is not None and node.type == "initializer_list":
        depth += 1
        node = node.parent
        if node is not None and node.type == "initializer_pair":
            return ""  # a nested member's type would need the struct's fields: left to the graph
    if node is None:
        return ""
    if node.type == "compound_literal_expression":
        type_node = node.child_by_field_name("type")
        return bare_type(source.text(type_node)) if type_node is not None and depth == 1 else ""
    if node.type != "init_declarator":
        return ""
    declaration = node.parent
    if declaration is None or declaration.type != "declaration":
        return ""
    is_array = node.child_by_field_name("declarator").type == "array_declarator"
    if depth != (2 if is_array else 1):
        return ""
    return bare_type(source.text(declaration.child_by_field_name("type")))


def _writes(file: _File, matches: list[dict]) -> list[FieldWrite]:
    source = file.source
    writes = []
    for captures in matches:
        node = captures["reference.field_write"][0]
        function, function_start = file.enclosing(node.start_byte, node.end_byte)
        if node.type == "assignment_expression":
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            operator = source.text(node.child_by_field_name("operator"))
            rhs = source.folded(right) if right is not None else ""
        else:
            left = node.child_by_field_name("argument")
            operator = fold(source.text(node).replace(source.text(left), "", 1))
            rhs = ""
        base_node = left.child_by_field_name("argument")
        base = source.folded(base_node)
        base_type = ""
        if base_node.type == "identifier":
            declaration = file.declared(function, base)
            if declaration is not None:
                base_type = bare_type(declaration.type)
        statement = node
        while statement.type not in ("expression_statement", "declaration", "for_statement"):
            parent = statement.parent  # a node's parent is a walk from the root: read it once per level
            if parent is None:
                break
            statement = parent
        point = node.start_point
        writes.append(FieldWrite(
            function, file.path, point[0] + 1, point[1] + 1, source.folded(left), source.text(captures["name"][0]),
            base, base_type, rhs, operator, fold(source.text(statement if statement.type == "expression_statement" else node)),
            file.contexts.at(node.start_byte, node.end_byte, function_start),
        ))
    return writes
