"""Names used as values and writes to struct fields -> `FunctionRef` and `FieldWrite` facts.

A `FunctionRef` here is an identifier in an initializer (`.save = ram_save`,
or a positional member), on the right of an assignment or returned; whether it
names a function is decided later, against the whole tree's definitions.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from chaintrace.extract.calls import VALUE_WRAPPERS, cast_text
from chaintrace.extract.facts import FieldWrite, FunctionRef
from chaintrace.extract.scope import FileScope
from chaintrace.extract.syntax import Source, bare_type, declarator_name, fold


def references(file: FileScope, by_kind: dict[str, list[dict]]) -> list[FunctionRef]:
    """Return FunctionRef rows of identifiers in initializers and on the right of assignments."""
    source = file.source
    refs = []
    positions: dict[int, dict[int, int]] = {}  # initializer list id -> child id -> member index
    for usage in ("initializer", "assignment", "return"):
        found = _initializer_values(by_kind) if usage == "initializer" else by_kind.get(f"reference.{usage}", ())
        for captures in found:
            name_node = captures["name"][0]
            start, end = name_node.start_byte, name_node.end_byte
            function, function_start = file.enclosing(start, end)
            name = source.text(name_node)
            kind = usage
            if "member" in captures:
                # `TypeInfo info = { .instance_init = t->instance_init }`: the member is given what `t`'s holds
                name, kind = source.folded(name_node), "member initializer"
            elif function and name in file.locals.get(function, {}):
                if usage == "assignment" and _may_hold_function(file, function, captures[f"reference.{usage}"][0]):
                    # `QIOChannelFunc func = (QIOChannelFunc)callback;`: the local holds what the parameter holds
                    kind = "local copy"
                elif usage != "initializer":
                    continue  # a local or parameter, never a function
                else:
                    # `*bh = (QEMUBH){ .cb = cb }`: the member is given what the parameter holds (a copy, not an address)
                    kind = "local initializer"
            wrapper = source.parent(name_node)
            if wrapper is not None and wrapper.type not in VALUE_WRAPPERS:
                wrapper = None
            container = captures[f"reference.{usage}"][0]
            if usage == "initializer":
                element = captures["element"][0] if "element" in captures else wrapper or name_node
                details = _initializer_details(source, captures, container, element, positions)
            elif usage == "return":
                details = {}
            else:
                details = _assignment_details(source, container)
            point = name_node.start_point
            refs.append(FunctionRef(
                name, file.path, point[0] + 1, point[1] + 1, function, kind, cast=cast_text(source, wrapper),
                context=file.contexts.at(start, end, function_start), **details,
            ))
    return refs + _macro_elements(file, by_kind)


def _macro_elements(file: FileScope, by_kind: dict[str, list[dict]]) -> list[FunctionRef]:
    """Return a "macro element" FunctionRef (named after the called name, at the call) for each element or member
    value of an initializer that is a call of a plain name (`VMSTATE_UINT32_TEST(x, S, test)` in a table of
    `VMStateField`s, `[0x00] = X86_OP_ENTRY2(ADD, ...)`): the struct type and member path that value initializes.
    Whether the name is a macro, and what its expansion writes, is decided in the graph (graph/macro_functions)."""
    source = file.source
    values = [child for captures in by_kind.get("reference.initializer_list", ())
              for child in captures["reference.initializer_list"][0].named_children]
    values += [pair.child_by_field_name("value") for captures in by_kind.get("reference.initializer_pair", ())
               for pair in captures["reference.initializer_pair"]]
    # `static X86OpEntry pause = X86_OP_ENTRY0(PAUSE);`: a macro's use as a whole struct's value, as an element's
    values += [source.parent(captures["name"][0]) for captures in by_kind.get("reference.declared_call", ())
               if _declares_struct(source, captures["reference.declared_call"][0])]
    refs = []
    for value in values:
        callee = value.child_by_field_name("function") if value is not None and value.type == "call_expression" else None
        if callee is None or callee.type != "identifier":
            continue
        struct_type, path = _initializer_type(source, value, element=True)
        if not struct_type:
            continue
        function, function_start = file.enclosing(value.start_byte, value.end_byte)
        point = value.start_point
        refs.append(FunctionRef(
            source.text(callee), file.path, point[0] + 1, point[1] + 1, function, "macro element",
            call=source.text(callee), struct_type=struct_type, field=".".join(path),
            lhs=_initialized_variable(source, value), context=file.contexts.at(value.start_byte, value.end_byte,
                                                                               function_start),
        ))
    return refs


# Types of locals that never hold a function: C's scalars and the usual typedefs of them (glib's are lower case).
_SCALAR = re.compile(r"(?:.*\s)?(?:int|char|short|long|unsigned|signed|float|double|bool|_Bool|void|"
                     r"u?int\w*_t|s?size_t|off_t|hwaddr|vaddr|ram_addr_t|target_u?long|g[a-z0-9]+)")


def _may_hold_function(file: FileScope, function: str, assignment: Node) -> bool:
    """Return True when the variable an assignment or declaration of `function` writes whole (a plain name) may
    hold a function: a function pointer, or a named type that is neither a scalar nor a pointer to data."""
    source = file.source
    if assignment.type == "init_declarator":
        target = assignment.child_by_field_name("declarator")
    else:
        target = assignment.child_by_field_name("left")
    if target is None or target.type != "identifier":
        return False
    declared = file.declared(function, source.text(target))
    if declared is None:
        return False
    if declared.is_fnptr:
        return True
    words = declared.type.replace("const ", "").strip()
    return "*" not in words and not words.startswith(("struct ", "union ", "enum ")) and not _SCALAR.fullmatch(words)


def _declares_struct(source: Source, declarator: Node) -> bool:
    """Return True for an init declarator of a plain variable (no pointer, no array) of a named type that is no
    primitive: what a struct's value could be (`X86OpEntry pause = ...`; `int n = MIN(a, b)` is not)."""
    declaration = source.parent(declarator)
    type_node = declaration.child_by_field_name("type") if declaration is not None else None
    name = declarator.child_by_field_name("declarator")
    return (type_node is not None and type_node.type in ("type_identifier", "struct_specifier")
            and name is not None and name.type == "identifier" and not _SCALAR.fullmatch(source.text(type_node)))


def _initializer_values(by_kind: dict[str, list[dict]]) -> list[dict]:
    """Return the captures of the values of initializer pairs and lists that name something (`name`, `(T)name`,
    `&name`): {"name", "reference.initializer" (the pair or list), and for a pair "field" (its first designator's)}."""
    found = []
    for captures in by_kind.get("reference.initializer_pair", ()):
        pair = captures["reference.initializer_pair"][0]
        value = pair.child_by_field_name("value")
        # as the pattern `designator: (field_designator (field_identifier))` did: its first designator only, so
        # `.base.type = X` is one value and `[1].handler = X` none (its struct type is not followed)
        first = pair.child_by_field_name("designator")
        fields = [child for child in first.named_children if child.type == "field_identifier"] \
            if first is not None and first.type == "field_designator" else []
        if not fields:
            continue
        found += [{"field": fields[:1], "name": [name], "reference.initializer": [pair]} for name in _named_values(value)]
        if value is not None and value.type == "field_expression":  # `.instance_init = t->instance_init`: a copy
            found.append({"field": fields[:1], "name": [value], "reference.initializer": [pair], "member": True})
    for captures in by_kind.get("reference.initializer_list", ()):
        members = captures["reference.initializer_list"][0]
        # a positional element's index is its place among the list's children (one designated by index has none)
        found += [{"name": [name], "reference.initializer": [members]} | (
                   {"element": [element]} if element.type != "initializer_pair" else {})
                  for element in members.named_children for name in _element_values(element)]
    return found


def _element_values(node: Node) -> list[Node]:
    """Return the identifiers an array element names: positional (`f`) or designated by index (`[QTYPE_QNUM] = f`,
    as a positional one, its index unknown); else none."""
    if node.type == "initializer_pair":
        designators = node.children_by_field_name("designator")
        if not designators or any(d.type != "subscript_designator" for d in designators):
            return []
        node = node.child_by_field_name("value")
    return _named_values(node)


def _named_values(node: Node | None) -> list[Node]:
    """Return the identifiers a value names: itself, a cast's value or a pointer expression's argument, or either
    arm of a conditional (`.out_rr = HAS_X ? tgen_x : NULL`, the build's choice unknown here); else none."""
    if node is not None and node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    if node is not None and node.type == "conditional_expression":
        return [name for arm in ("consequence", "alternative") for name in _named_values(node.child_by_field_name(arm))]
    if node is not None and node.type in ("cast_expression", "pointer_expression"):
        node = node.child_by_field_name("value" if node.type == "cast_expression" else "argument")
    return [node] if node is not None and node.type == "identifier" else []


def _initializer_details(source: Source, captures: dict, container: Node, value: Node, positions: dict) -> dict:
    if "field" in captures:
        struct_type, outer = _initializer_type(source, source.parent(container))
        inner = [source.text(d.named_children[0]) for d in container.children_by_field_name("designator")
                 if d.type == "field_designator" and d.named_children]
        return {"field": ".".join(outer + inner), "struct_type": struct_type,
                "lhs": _initialized_variable(source, container) if struct_type else ""}
    index = positions.get(container.id)
    if index is None:
        members = [child.id for child in container.named_children if child.type != "comment"]
        index = positions[container.id] = {member: i for i, member in enumerate(members)}
    struct_type, outer = _initializer_type(source, container)
    variable = _initialized_variable(source, container) if struct_type else ""
    if outer:  # a positional member of a nested struct: say which by its path and index
        return {"arg_index": index.get(value.id, -1), "struct_type": struct_type, "field": ".".join(outer) + ".",
                "lhs": variable}
    return {"arg_index": index.get(value.id, -1), "struct_type": struct_type, "lhs": variable}


def _initialized_variable(source: Source, node: Node) -> str:
    """Return the name of the variable whose initializer holds `node` (`backup_job_driver`), or ""."""
    while node is not None and node.type not in ("init_declarator", "compound_literal_expression"):
        node = source.parent(node)
    if node is None or node.type != "init_declarator":
        return ""
    name, _, _ = declarator_name(node.child_by_field_name("declarator"), source)
    return name


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


def _initializer_type(source: Source, initializer_list: Node | None, element: bool = False) -> tuple[str, list[str]]:
    """Return (struct type, member path) of an initializer list: the declared type it sits in, and the
    designated members that lead from that type to this list (`.job_driver = { ... }` gives ["job_driver"]).
    With `element`, `initializer_list` is any value that stands where a nested list could (a macro's use whose
    expansion is one: `{ VMSTATE_UINT32(x, S), ... }`).

    The type is "" when the declaration does not say it (an array of structs is followed, its elements
    positional or designated by index, `[KIND] = { ... }`, also in an array's compound literal; a positional
    nested member is not).
    """
    depth = 0
    path: list[str] = []
    node = initializer_list
    while node is not None and (node.type == "initializer_list" or element) and depth <= 2:  # deeper gives ""
        element = False
        depth += 1
        node = source.parent(node)
        if node is not None and node.type == "initializer_pair":
            designators = node.children_by_field_name("designator")
            if designators and all(d.type == "subscript_designator" for d in designators):
                node = source.parent(node)  # `[KIND] = { ... }`: an element of an array, as a positional one is
                continue
            if any(d.type != "field_designator" or not d.named_children for d in designators):
                return "", []
            path[:0] = [source.text(d.named_children[0]) for d in designators]
            depth -= 1  # the pair's list is the member's own value, not an array level
            node = source.parent(node)
    if node is None:
        return "", []
    if node.type == "compound_literal_expression":
        type_node = node.child_by_field_name("type")
        text = source.text(type_node) if type_node is not None else ""
        # `(QEMUBH){ ... }` is one struct; `(const VMStateField[]) { {...}, ... }` an array of them
        return (bare_type(text), path) if text and depth == (2 if text.rstrip().endswith("]") else 1) else ("", [])
    if node.type != "init_declarator":
        return "", []
    declaration = source.parent(node)
    if declaration is None or declaration.type != "declaration":
        return "", []
    is_array = node.child_by_field_name("declarator").type == "array_declarator"
    # an array's own list holds its elements (`GenFunc group2_gen[8] = { gen_ROL, ... }`: the type is the element's),
    # a list inside it a struct element's members
    if depth not in ((1, 2) if is_array else (1,)):
        return "", []
    return bare_type(source.text(declaration.child_by_field_name("type"))), path


def field_writes(file: FileScope, matches: list[dict]) -> list[FieldWrite]:
    """Return the writes to struct fields (`s->x = ...`, `p->n += 1`, `x.y++`) with the statement that holds each."""
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
        base, base_type = file.receiver(function, left.child_by_field_name("argument"))
        point = node.start_point
        writes.append(FieldWrite(
            function, file.path, point[0] + 1, point[1] + 1, source.folded(left), source.text(captures["name"][0]),
            base, base_type, rhs, operator, fold(source.text(_statement(source, node))),
            file.contexts.at(node.start_byte, node.end_byte, function_start),
        ))
    return writes


def _statement(source: Source, node: Node) -> Node:
    """Return the expression statement that holds a write, else the write itself (`for (...; x.y++)`)."""
    statement = node
    while statement.type not in ("expression_statement", "declaration", "for_statement"):
        parent = source.parent(statement)  # in a shallow tree a walk from the root: read it once per level
        if parent is None:
            break
        statement = parent
    return statement if statement.type == "expression_statement" else node
