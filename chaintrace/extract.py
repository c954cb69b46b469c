"""One file's syntax tree -> facts. Pure (no I/O), so it runs in worker processes.

The queries in `queries/c/*.scm` say *what* to capture; this module reads
each capture's surroundings: the enclosing function, loops, `#if`
conditions, early-return guards, declarator names and types.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from tree_sitter import Node

from chaintrace import parse
from chaintrace.facts import (
    CallSite,
    Context,
    Define,
    FieldWrite,
    FileFacts,
    FunctionDef,
    FunctionRef,
    Guard,
    Loop,
    Param,
    ParseError,
    Prototype,
    StructDef,
    StructField,
    Typedef,
    VarDecl,
)

_LOOPS = {"for_statement": "for", "while_statement": "while", "do_statement": "do"}
_DECLARATOR_WRAPPERS = {
    "pointer_declarator",
    "array_declarator",
    "parenthesized_declarator",
    "init_declarator",
    "attributed_declarator",
    "function_declarator",
}
_NAME_NODES = {"identifier", "field_identifier", "type_identifier"}


def fold(text: str) -> str:
    """Return `text` with every run of white space folded to one space."""
    return " ".join(text.split())


class _File:
    """The source of one file and cached lookups over its tree."""

    def __init__(self, path: str, original: bytes) -> None:
        self.path = path
        self.original = original
        self.function_starts: list[int] = []
        self.function_nodes: list[Node] = []
        self.function_names: list[str] = []
        self.locals: dict[str, dict[str, VarDecl]] = defaultdict(dict)
        self.globals: dict[str, VarDecl] = {}
        self.loops: list[tuple[int, int, Loop]] = []
        self.conditionals: list[tuple[int, int, Node]] = []
        self.guards: list[tuple[int, int, int, int, Guard]] = []
        self.loop_starts: list[int] = []
        self.guard_starts: list[int] = []

    def text(self, node: Node) -> str:
        return self.original[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def enclosing_function(self, node: Node) -> str:
        """Return the name of the function whose body holds `node`, or ""."""
        index = bisect.bisect_right(self.function_starts, node.start_byte) - 1
        if index >= 0 and node.end_byte <= self.function_nodes[index].end_byte:
            return self.function_names[index]
        return ""

    def declared(self, function: str, name: str) -> VarDecl | None:
        """Return the local, parameter or file-scope declaration of `name` seen from `function`."""
        return self.locals.get(function, {}).get(name) or self.globals.get(name)

    def add_context(self, by_kind: dict[str, list[dict]]) -> None:
        """Record the byte ranges of loops, conditionals and guards, sorted by start."""
        for captures in by_kind["context.loop"]:
            node = captures["context.loop"][0]
            self.loops.append((node.start_byte, node.end_byte, self._loop(node)))
        for captures in by_kind["context.conditional"]:
            node = captures["context.conditional"][0]
            self.conditionals.append((node.start_byte, node.end_byte, node))
        for captures in by_kind["context.guard"]:
            node = captures["context.guard"][0]
            if not _returns(node.child_by_field_name("consequence")):
                continue
            block = node.parent
            condition = node.child_by_field_name("condition")
            guard = Guard(fold(self.text(condition)) if condition is not None else "", fold(self.text(node))[:200], node.start_point[0] + 1)
            self.guards.append((node.start_byte, node.end_byte, block.start_byte, block.end_byte, guard))
        for table in (self.loops, self.conditionals, self.guards):
            table.sort(key=lambda row: row[0])
        self.loop_starts = [row[0] for row in self.loops]
        self.guard_starts = [row[0] for row in self.guards]

    def context(self, node: Node, function: str) -> Context:
        """Return the loops, `#if` conditions and early-return guards around `node`."""
        start, end = node.start_byte, node.end_byte
        loops: list[Loop] = []
        guards: list[Guard] = []
        if function:
            index = bisect.bisect_right(self.function_starts, start) - 1
            low = self.function_starts[index]
            first = bisect.bisect_left(self.loop_starts, low)
            last = bisect.bisect_right(self.loop_starts, start)
            loops = [loop for a, b, loop in self.loops[first:last] if end <= b]
            first = bisect.bisect_left(self.guard_starts, low)
            last = bisect.bisect_left(self.guard_starts, start)
            guards = [guard for _, if_end, a, b, guard in self.guards[first:last] if if_end <= start and a <= start and end <= b]
        conditions = []
        for a, b, conditional in self.conditionals:
            if a > start:
                break
            if end <= b:
                condition = self._condition(conditional, start)
                if condition:
                    conditions.append(condition)
        return Context(tuple(loops), tuple(conditions), tuple(guards))

    def _loop(self, node: Node) -> Loop:
        body = node.child_by_field_name("body")
        header_end = body.start_byte if body is not None and node.type != "do_statement" else node.end_byte
        header = self.original[node.start_byte:header_end].decode("utf-8", "replace")
        kind = _LOOPS[node.type]
        if node.type == "do_statement":
            condition = node.child_by_field_name("condition")
            header = self.text(condition) if condition is not None else ""
        elif not header.startswith(kind):
            kind = "macro"  # a loop-like macro the normaliser rewrote
        return Loop(kind, fold(header), node.start_point[0] + 1)

    def _condition(self, node: Node, start: int) -> str:
        """Return the condition under which the byte at `start` inside conditional `node` is compiled."""
        if node.type in ("preproc_if", "preproc_elif"):
            condition = node.child_by_field_name("condition")
            text = fold(self.text(condition)) if condition is not None else ""
        else:
            name = node.child_by_field_name("name")
            negated = self.original[node.start_byte:node.start_byte + 12].split(b"(")[0].rstrip().endswith((b"ifndef", b"elifndef"))
            text = f"{'!' if negated else ''}defined({self.text(name) if name else '?'})"
        alternative = node.child_by_field_name("alternative")
        if alternative is not None and alternative.start_byte <= start:
            # in the #else (or an #elif, whose own condition is recorded when reached)
            return f"!({text})" if alternative.type == "preproc_else" else ""
        return text


def _returns(node: Node | None) -> bool:
    """Return True for `return ...;` or a block whose last statement is one."""
    if node is None:
        return False
    if node.type == "return_statement":
        return True
    if node.type == "compound_statement":
        children = node.named_children
        while children and children[-1].type == "comment":
            children = children[:-1]
        return bool(children) and children[-1].type == "return_statement"
    return False


def declarator_name(node: Node | None) -> tuple[str, bool, int]:
    """Return (name, is_function_pointer, pointer depth) of a declarator."""
    fnptr = False
    depth = 0
    seen_function = False
    while node is not None and node.type in _DECLARATOR_WRAPPERS:
        if node.type == "function_declarator":
            seen_function = True
        elif node.type == "pointer_declarator":
            if seen_function:
                fnptr = True
            else:
                depth += 1
        if node.type == "parenthesized_declarator":
            node = node.named_children[0] if node.named_children else None
        else:
            node = node.child_by_field_name("declarator")
    if node is None or node.type not in _NAME_NODES:
        return "", False, 0
    return node.text.decode("utf-8", "replace"), fnptr, depth


def _declarators(node: Node) -> list[Node]:
    return node.children_by_field_name("declarator")


def _params(file: _File, declarator: Node) -> tuple[Param, ...]:
    while declarator is not None and declarator.type != "function_declarator":
        declarator = declarator.child_by_field_name("declarator")
    if declarator is None:
        return ()
    parameters = declarator.child_by_field_name("parameters")
    params = []
    for param in parameters.named_children if parameters is not None else ():
        if param.type == "parameter_declaration":
            name, _, depth = declarator_name(param.child_by_field_name("declarator"))
            type_node = param.child_by_field_name("type")
            params.append(Param(name, _full_type(_type_text(file, param, type_node, name), depth)))
        elif param.type == "variadic_parameter":
            params.append(Param("...", "..."))
    return tuple(params)


def _type_text(file: _File, declaration: Node, type_node: Node | None, name: str) -> str:
    """Return the declared type as text: qualifiers, base type and pointer stars, name left out."""
    start = declaration.start_byte
    for child in declaration.children:
        if child.type in ("storage_class_specifier", "attribute_specifier", "ms_declspec_modifier"):
            start = child.end_byte
        else:
            break
    if type_node is None:
        return ""
    text = file.original[start:type_node.end_byte].decode("utf-8", "replace")
    return fold(text)


def _full_type(base: str, depth: int) -> str:
    return base + (" " + "*" * depth if depth else "")


def _comment_above(file: _File, node: Node) -> str:
    previous = node.prev_sibling
    if previous is not None and previous.type == "comment" and node.start_point[0] - previous.end_point[0] <= 1:
        return file.text(previous)
    return ""


def _has_child(node: Node, kind: str, text: bytes | None = None) -> bool:
    for child in node.children:
        if child.type == kind and (text is None or child.text == text):
            return True
    return False


def _storage(node: Node, word: bytes) -> bool:
    return any(child.type == "storage_class_specifier" and child.text == word for child in node.children)


def extract(path: str, original: bytes, normalized: bytes | None = None) -> FileFacts:
    """Return the facts of one C file; `normalized` is the macro-neutralised text that is parsed."""
    tree = parse.parse(normalized if normalized is not None else original)
    file = _File(path, original)
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for _, captures in parse.matches(tree):
        for capture in captures:
            if "." in capture:
                by_kind[capture].append(captures)
                break

    for captures in by_kind["definition.function"]:
        node = captures["definition.function"][0]
        file.function_starts.append(node.start_byte)
        file.function_nodes.append(node)
        file.function_names.append(file.text(captures["name"][0]))
    file.add_context(by_kind)
    functions = _functions(file, by_kind["definition.function"])
    variables = _variables(file, by_kind["definition.parameter"], by_kind["definition.variable"])
    typedefs, anonymous_structs = _typedefs(file, by_kind["definition.typedef"])
    return FileFacts(
        path=path,
        functions=functions,
        prototypes=_prototypes(file, by_kind["definition.prototype"]),
        calls=_calls(file, by_kind["reference.call"]),
        refs=_refs(file, by_kind),
        writes=_writes(file, by_kind["reference.field_write"]),
        structs=tuple(_structs(file, by_kind["definition.struct"]) + anonymous_structs),
        typedefs=tuple(typedefs),
        variables=variables,
        defines=_defines(file, by_kind["definition.macro"]),
        errors=_errors(tree.root_node),
    )


def _functions(file: _File, matches: list[dict]) -> tuple[FunctionDef, ...]:
    functions = []
    for captures in matches:
        node = captures["definition.function"][0]
        name = file.text(captures["name"][0])
        declarator = node.child_by_field_name("declarator")
        type_node = node.child_by_field_name("type")
        _, _, depth = declarator_name(declarator)
        functions.append(
            FunctionDef(
                name=name,
                file=file.path,
                line=node.start_point[0] + 1,
                end_line=node.end_point[0] + 1,
                is_static=_storage(node, b"static"),
                is_inline=_storage(node, b"inline") or _has_child(node, "storage_class_specifier", b"__inline__"),
                return_type=_full_type(_type_text(file, node, type_node, name), depth),
                params=_params(file, declarator),
                comment=_comment_above(file, node),
                conditions=file.context(node, "").conditions,
            )
        )
    return tuple(functions)


def _prototypes(file: _File, matches: list[dict]) -> tuple[Prototype, ...]:
    prototypes = []
    for captures in matches:
        node = captures["definition.prototype"][0]
        if file.enclosing_function(node):
            continue
        declarator = node.child_by_field_name("declarator")
        _, _, depth = declarator_name(declarator)
        prototypes.append(
            Prototype(
                name=file.text(captures["name"][0]),
                file=file.path,
                line=node.start_point[0] + 1,
                is_static=_storage(node, b"static"),
                return_type=_full_type(_type_text(file, node, node.child_by_field_name("type"), ""), depth),
                params=_params(file, declarator),
            )
        )
    return tuple(prototypes)


def _variables(file: _File, params: list[dict], declarations: list[dict]) -> tuple[VarDecl, ...]:
    variables = []
    for captures in params:
        node = captures["definition.parameter"][0]
        function = file.enclosing_function(node)
        if not function:
            continue
        # Parameters of a prototype nested in a body are not the function's own.
        parent = node.parent.parent if node.parent is not None else None
        if parent is None or parent.parent is None or parent.parent.type not in ("function_definition", "pointer_declarator"):
            continue
        name, fnptr, depth = declarator_name(node.child_by_field_name("declarator"))
        if not name:
            continue
        decl = VarDecl(function, name, _full_type(_type_text(file, node, captures["type"][0], name), depth), file.path, node.start_point[0] + 1, True, fnptr)
        file.locals[function][name] = decl
        variables.append(decl)
    for captures in declarations:
        node = captures["definition.variable"][0]
        function = file.enclosing_function(node)
        base = _type_text(file, node, captures["type"][0], "")
        for declarator in _declarators(node):
            name, fnptr, depth = declarator_name(declarator)
            if not name or (_is_function_declarator(declarator) and not fnptr):
                continue  # a prototype, not a variable
            decl = VarDecl(function, name, _full_type(base, depth), file.path, declarator.start_point[0] + 1, False, fnptr)
            if function:
                file.locals[function].setdefault(name, decl)
            else:
                file.globals[name] = decl
            variables.append(decl)
    return tuple(variables)


def _is_function_declarator(node: Node) -> bool:
    while node is not None and node.type in ("pointer_declarator", "attributed_declarator"):
        node = node.child_by_field_name("declarator")
    return node is not None and node.type == "function_declarator"


def _unwrap_callee(node: Node) -> Node:
    """Return the callee expression inside `(*fp)` / `(fp)` / `*fp`."""
    while True:
        if node.type == "parenthesized_expression" and node.named_child_count == 1:
            node = node.named_children[0]
        elif node.type == "pointer_expression" and node.children and node.children[0].type == "*":
            node = node.child_by_field_name("argument")
        else:
            return node


def _calls(file: _File, matches: list[dict]) -> tuple[CallSite, ...]:
    calls = []
    for captures in matches:
        node = captures["reference.call"][0]
        function = file.enclosing_function(node)
        callee_node = _unwrap_callee(captures["name"][0])
        callee = fold(file.text(callee_node))
        field = receiver = ""
        if callee_node.type == "identifier":
            declaration = file.locals.get(function, {}).get(callee)
            via = ("param" if declaration.is_param else "local") if declaration else "name"
        elif callee_node.type == "field_expression":
            via = "field"
            field = file.text(callee_node.child_by_field_name("field"))
            receiver = fold(file.text(callee_node.child_by_field_name("argument")))
        else:
            via = "expr"
        arguments = captures["arguments"][0]
        calls.append(
            CallSite(
                caller=function,
                file=file.path,
                line=node.start_point[0] + 1,
                col=node.start_point[1] + 1,
                callee=callee,
                via=via,
                args=tuple(fold(file.text(arg)) for arg in arguments.named_children if arg.type != "comment"),
                context=file.context(node, function),
                field=field,
                receiver=receiver,
            )
        )
    return tuple(calls)


def _refs(file: _File, by_kind: dict[str, list[dict]]) -> tuple[FunctionRef, ...]:
    refs = []
    for usage in ("argument", "initializer", "assignment"):
        for captures in by_kind[f"reference.{usage}"]:
            name_node = captures["name"][0]
            name = file.text(name_node)
            function = file.enclosing_function(name_node)
            if function and name in file.locals.get(function, {}):
                continue  # a local or parameter, never a function
            wrapper = name_node.parent
            cast = ""
            if wrapper is not None and wrapper.type == "cast_expression":
                cast = fold(file.text(wrapper.child_by_field_name("type")))
            elif wrapper is not None and wrapper.type == "pointer_expression":
                cast = "&"
            ref = _ref_details(file, usage, captures, name_node)
            refs.append(
                FunctionRef(
                    name=name,
                    file=file.path,
                    line=name_node.start_point[0] + 1,
                    col=name_node.start_point[1] + 1,
                    function=function,
                    usage=usage,
                    cast=cast,
                    context=file.context(name_node, function),
                    **ref,
                )
            )
    return tuple(refs)


def _ref_details(file: _File, usage: str, captures: dict, name_node: Node) -> dict:
    container = captures[f"reference.{usage}"][0]
    if usage == "argument":
        value = name_node if name_node.parent == container else name_node.parent
        index = [child.id for child in container.named_children if child.type != "comment"].index(value.id)
        call = container.parent
        function_node = call.child_by_field_name("function") if call is not None and call.type == "call_expression" else None
        callee = _unwrap_callee(function_node) if function_node is not None else None
        return {"call": fold(file.text(callee)) if callee is not None else "", "arg_index": index}
    if usage == "initializer":
        if "field" in captures:
            return {"field": file.text(captures["field"][0]), "struct_type": _initializer_type(file, container.parent)}
        value = name_node if name_node.parent == container else name_node.parent
        index = [child.id for child in container.named_children if child.type != "comment"].index(value.id)
        return {"arg_index": index, "struct_type": _initializer_type(file, container)}
    # assignment: `lhs = name` or a declaration's initializer
    if container.type == "init_declarator":
        name, _, _ = declarator_name(container.child_by_field_name("declarator"))
        return {"lhs": name}
    left = container.child_by_field_name("left")
    field = ""
    if left is not None and left.type == "field_expression":
        field = file.text(left.child_by_field_name("field"))
    return {"lhs": fold(file.text(left)) if left is not None else "", "field": field}


def _initializer_type(file: _File, initializer_list: Node | None) -> str:
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
        return _bare_type(file.text(type_node)) if type_node is not None and depth == 1 else ""
    if node.type != "init_declarator":
        return ""
    declaration = node.parent
    if declaration is None or declaration.type != "declaration":
        return ""
    is_array = node.child_by_field_name("declarator").type == "array_declarator"
    if depth != (2 if is_array else 1):
        return ""
    return _bare_type(file.text(declaration.child_by_field_name("type")))


def _bare_type(text: str) -> str:
    """Return a type's name without qualifiers and `struct`: `const struct Foo` -> `Foo`."""
    words = [w for w in text.replace("*", " ").split() if w not in ("const", "volatile", "struct", "union", "static")]
    return words[-1] if words else ""


def _writes(file: _File, matches: list[dict]) -> tuple[FieldWrite, ...]:
    writes = []
    for captures in matches:
        node = captures["reference.field_write"][0]
        function = file.enclosing_function(node)
        if node.type == "assignment_expression":
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            operator = file.text(node.child_by_field_name("operator"))
            rhs = fold(file.text(right)) if right is not None else ""
        else:
            left = node.child_by_field_name("argument")
            operator = fold(file.text(node).replace(file.text(left), "", 1))
            rhs = ""
        base_node = left.child_by_field_name("argument")
        base = fold(file.text(base_node))
        base_type = ""
        if base_node.type == "identifier":
            declaration = file.declared(function, base)
            if declaration is not None:
                base_type = _bare_type(declaration.type)
        statement = node
        while statement.parent is not None and statement.type not in ("expression_statement", "declaration", "for_statement"):
            statement = statement.parent
        writes.append(
            FieldWrite(
                function=function,
                file=file.path,
                line=node.start_point[0] + 1,
                col=node.start_point[1] + 1,
                lhs=fold(file.text(left)),
                field=captures["name"][0].text.decode(),
                base=base,
                base_type=base_type,
                rhs=rhs,
                operator=operator,
                statement=fold(file.text(statement if statement.type == "expression_statement" else node)),
                context=file.context(node, function),
            )
        )
    return tuple(writes)


def _struct_fields(file: _File, body: Node) -> tuple[StructField, ...]:
    fields = []
    for member in body.named_children:
        if member.type != "field_declaration":
            continue
        base = _type_text(file, member, member.child_by_field_name("type"), "")
        for declarator in _declarators(member):
            name, fnptr, depth = declarator_name(declarator)
            if name:
                fields.append(StructField(name, _full_type(base, depth), fnptr))
    return tuple(fields)


def _structs(file: _File, matches: list[dict]) -> list[StructDef]:
    structs = []
    for captures in matches:
        node = captures["definition.struct"][0]
        fields = _struct_fields(file, node.child_by_field_name("body"))
        structs.append(StructDef(file.text(captures["name"][0]), file.path, node.start_point[0] + 1, fields))
    return structs


def _typedefs(file: _File, matches: list[dict]) -> tuple[list[Typedef], list[StructDef]]:
    """Return the typedefs, and the anonymous structs they name (`typedef struct { ... } Name;`)."""
    typedefs = []
    anonymous = []
    for captures in matches:
        node = captures["definition.typedef"][0]
        type_node = node.child_by_field_name("type")
        if type_node is None:
            continue
        base = file.text(type_node)
        body = type_node.child_by_field_name("body")
        tag = type_node.child_by_field_name("name")
        if body is not None:
            base = f"{type_node.type.split('_')[0]} {file.text(tag) if tag else ''}".strip()
        for declarator in _declarators(node):
            name, fnptr, depth = declarator_name(declarator)
            if not name:
                continue
            typedefs.append(Typedef(name, _full_type(fold(base), depth), file.path, node.start_point[0] + 1, fnptr or _is_function_declarator(declarator)))
            if body is not None and tag is None and type_node.type in ("struct_specifier", "union_specifier") and not depth:
                anonymous.append(StructDef(name, file.path, node.start_point[0] + 1, _struct_fields(file, body)))
    return typedefs, anonymous


def _defines(file: _File, matches: list[dict]) -> tuple[Define, ...]:
    defines = []
    for captures in matches:
        node = captures["definition.macro"][0]
        params_node = node.child_by_field_name("parameters")
        params = None
        if params_node is not None:
            params = tuple(file.text(child) for child in params_node.named_children)
        value = node.child_by_field_name("value")
        body = fold(file.text(value).replace("\\\n", " ")) if value is not None else ""
        defines.append(Define(file.text(captures["name"][0]), params, body, file.path, node.start_point[0] + 1))
    return tuple(defines)


def _errors(root: Node) -> tuple[ParseError, ...]:
    """Return the ERROR and MISSING regions of a tree (outermost only)."""
    if not root.has_error:
        return ()
    errors = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error:
            errors.append(ParseError("ERROR", node.start_point[0] + 1, node.start_point[1] + 1))
        elif node.is_missing:
            errors.append(ParseError("MISSING", node.start_point[0] + 1, node.start_point[1] + 1))
        elif node.has_error:
            stack.extend(reversed(node.children))
    errors.sort(key=lambda error: (error.line, error.col))
    return tuple(errors)
