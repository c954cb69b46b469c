"""The value flow of a tree built from its extracted facts: addresses, copies and indirect calls (graph/valueflow).

Every place a function's address is stored (an initializer, an assignment, an
argument bound to a parameter), every copy between locations (a field write
whose right side is a location, an argument that is one, a member initialized
from a local) and every call through a location, read from the facts of each
file; `build_flow` solves them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from chaintrace.extract.copies import returned_whole, variable_assigned
from chaintrace.extract.facts import CallSite, FieldWrite, FileFacts, FunctionRef
from chaintrace.graph.library import Library, bind_later_calls
from chaintrace.graph.types import Types
from chaintrace.graph.valueflow import IDENTIFIER, MEMBER, Location, ValueFlow

# `table[i]`, `(*table[i])`: an element of an array named by a variable.
_ELEMENT = re.compile(r"^\(?\s*\*?\s*([A-Za-z_]\w*)\s*\[[^\]]*\]\s*\)?$")


# -- building the flow from facts ------------------------------------------------------------------

@dataclass
class IndirectCall:
    """A call through a location, made by `caller` (a node id)."""

    call: CallSite
    caller: str
    location: Location | None  # None: the callee is an expression no location names
    kind: str  # "ops" (through a member), "fnptr" (through a variable) or "expr"


def proof_of(ref: FunctionRef, **extra: object) -> dict:
    """Return the proof dict of a function reference: where its address was taken, plus `extra`."""
    proof = {"file": ref.file, "line": ref.line, "col": ref.col, "function": ref.function}
    proof.update(extra)
    return proof


def address_location(flow: ValueFlow, ref: FunctionRef) -> tuple[Location | None, str]:
    """Return (location, how) a function reference stores its address into, or (None, "") for arguments and others."""
    symbols = flow.symbols
    if ref.usage == "initializer":
        struct = ref.struct_type
        path = ref.field
        # a struct the tree defines, or a library's whose layout is data (glib's GSourceFuncs)
        known = flow.types.canonical(struct) in symbols.structs or flow.types.canonical(struct) in flow.layouts
        if ref.lhs and not known:
            written = flow.types.infer_type(ref.lhs, ref.file, ref.function)
            if flow.types.is_written_out(written):  # `static const struct { ... } ide_cmd_table[] = { { f, ... } }`
                return _written_out_member(flow, written, ref)
        if not path and ref.lhs and not known:
            # an element of an array of function pointers (`qdestroy[] = { [QTYPE_QNUM] = qnum_destroy_obj }`):
            # the array holds it, whatever the index
            return flow.variable_location(ref.file, ref.function, ref.lhs), "initializer"
        if path.endswith(".") or (not path and ref.arg_index >= 0):  # positional member
            outer = flow.field_location(struct, path + "x") if path else ("f", flow.types.canonical(struct), "x")
            members = [f.name for d in symbols.structs.get(outer[1], ())[:1] for f in d.fields] if outer[1] else []
            members = members or list(flow.layouts.get(outer[1], ()))  # a library's struct (glib's GSourceFuncs)
            if ref.arg_index < 0 or ref.arg_index >= len(members):
                return None, ""
            return ("f", outer[1], members[ref.arg_index]), "initializer"
        if not path:
            return None, ""
        return flow.field_location(struct, path), "initializer"
    if ref.usage == "return" and ref.function:  # `return info->get ? field_prop_get : NULL;`
        returning = symbols.id_of(ref.file, ref.function)
        return (("r", returning), "return") if returning is not None else (None, "")
    if ref.usage == "assignment" and ref.field:
        member = MEMBER.match(ref.lhs)
        base = member.group("base") if member else ""
        struct = flow.types.infer_type(base, ref.file, ref.function) if base else ""
        return flow.field_location(struct, ref.field), "assignment"
    if ref.usage == "assignment" and IDENTIFIER.fullmatch(ref.lhs):
        location = flow.variable_location(ref.file, ref.function, ref.lhs)
        return (location or ("g", ref.lhs)), "assignment"
    return None, ""


def _written_out_member(flow: ValueFlow, struct: str, ref: FunctionRef) -> tuple[Location | None, str]:
    """Return (location, how) of the member of a struct written out in place that an initializer gives `ref`."""
    if ref.field and not ref.field.endswith("."):
        return flow.field_location(struct, ref.field), "initializer"
    members = flow.types.written_out_members(struct) if not ref.field else []
    if 0 <= ref.arg_index < len(members):
        return ("f", struct, members[ref.arg_index]), "initializer"
    return None, ""


def add_write_copies(flow: ValueFlow, writes: Iterable[FieldWrite]) -> None:
    """Add the copies of field writes whose right side is a location (`prop->set = set`)."""
    for write in writes:
        if write.operator != "=" or not write.rhs:
            continue
        source = flow.expression_location(write.rhs, write.file, write.function)
        if source is None:
            continue
        struct = write.base_type or flow.types.infer_type(write.base, write.file, write.function)
        destination = flow.field_location(struct, write.field)
        flow.add_copy(source, destination, {"file": write.file, "line": write.line, "col": write.col,
                                            "function": write.function, "how": "copy"})


def add_initializer_copies(flow: ValueFlow, facts: FileFacts) -> None:
    """Add the copies of a member into a function pointer: a local declared with it as its value
    (`void *(*start_routine)(void *) = args->start_routine;`) or assigned it whole (`cb = ts->cb;`, with
    `QEMUTimerCB *cb;` above): the local holds what the member holds."""
    pointers = [v for v in facts.variables if v.function and not v.is_param and (
        v.is_fnptr or flow.holds_function(v.type))]
    if not pointers:
        return
    declared = {(v.function, v.line): v.name for v in pointers}
    for call in facts.calls:  # `dev_aml_fn fn = get_dev_aml_func(dev);`: what the call returns
        name = declared.get((call.caller, call.line)) if call.via == "name" and not call.within else None
        source = flow.call_location(call.file, call.caller, call.callee, call.args) if name else None
        if source is not None:
            flow.add_copy(source, ("v", call.file, call.caller, name), {"how": "copy"})
    assignable = {(v.function, v.name) for v in pointers}
    for read in facts.reads:
        if read.how == "initializer":
            name = declared.get((read.function, read.line))
        else:
            name = variable_assigned(read)
            name = name if (read.function, name) in assignable else None
        source = flow.expression_location(read.expr, read.file, read.function) if name else None
        if source is not None:
            flow.add_copy(source, ("v", read.file, read.function, name), {"how": "copy"})  # only `how` is kept


def add_return_copies(flow: ValueFlow, facts: FileFacts) -> None:
    """Add the copies of a member a function returns whole (`return klass->build_dev_aml;`) into what a call of
    that function yields, for the functions that return a function pointer."""
    for read in facts.reads:
        if not returned_whole(read):
            continue
        returning = flow.symbols.id_of(read.file, read.function)
        definition = flow.symbols.definition(returning) if returning is not None else None
        if definition is None or not flow.holds_function(definition.return_type):
            continue
        source = flow.expression_location(read.expr, read.file, read.function)
        if source is not None:
            flow.add_copy(source, ("r", returning), {"how": "copy"})  # only `how` is kept


def add_argument_copies(flow: ValueFlow, call: CallSite, callee_id: str) -> None:
    """Bind each argument of `call` that is a location to the matching parameter of `callee_id`."""
    for index, text in enumerate(call.args):
        source = flow.expression_location(text, call.file, call.caller)
        if source is None:
            continue
        parameter = flow.parameter_location(callee_id, index)
        if parameter is not None:
            flow.add_copy(source, parameter, {"file": call.file, "line": call.line, "col": call.col,
                                              "function": call.caller, "how": "parameter flow",
                                              "call": call.callee, "arg_index": index})


def add_forwarded_copies(flow: ValueFlow, call: CallSite) -> bool:
    """Bind each argument of a macro use that its expansion passes whole to a call (`aio_bh_new(ctx, cb, opaque)`
    -> `aio_bh_new_full(ctx, cb, ...)`) to that call's parameter (a sink outside the tree); return True for a
    macro that forwards any."""
    forwards = flow.symbols.macro_forwards(call.file, call.callee, len(call.args))
    for index, callee, callee_index in forwards:
        source = flow.expression_location(call.args[index], call.file, call.caller) if index < len(call.args) else None
        if source is None:
            continue
        target = flow.symbols.resolve_function(call.file, callee)
        parameter = flow.parameter_location(target.id, callee_index) if target is not None else ("x", callee, callee_index)
        if parameter is not None:
            flow.add_copy(source, parameter, {"how": "parameter flow"})
    return bool(forwards)


def add_external_sinks(flow: ValueFlow, call: CallSite) -> None:
    """Let each location passed to a function outside the tree (or a macro) flow into a sink `("x", name, index)`:
    what happens to it there is unknown, so a pointer that reaches one counts as stored."""
    for index, text in enumerate(call.args):
        source = flow.expression_location(text, call.file, call.caller)
        if source is not None:
            flow.add_copy(source, ("x", call.callee, index), {"file": call.file, "line": call.line, "col": call.col,
                                                              "function": call.caller, "how": "parameter flow"})


def indirect_location(flow: ValueFlow, call: CallSite) -> tuple[Location | None, str]:
    """Return (location, kind) an indirect call loads its callee from: ops through a member, fnptr through a variable."""
    if call.via == "field":
        # the receiver's types that have this member: one, or the call's type is unknown
        candidates = [t for t in flow.types.infer_types(call.receiver, call.file, call.caller, line=call.line)
                      if flow.types.field_type(t, call.field) is not None]
        struct = candidates[0] if len(candidates) == 1 else ""
        return flow.field_location(struct, call.field), "ops"
    if call.via in ("local", "param", "name"):
        return flow.variable_location(call.file, call.caller, call.callee) or ("g", call.callee), "fnptr"
    element = _ELEMENT.match(call.callee) if call.via == "expr" else None
    location = flow.variable_location(call.file, call.caller, element.group(1)) if element else None
    if location is not None:  # `qdestroy[obj->base.type](obj)`: whatever the array holds
        return location, "fnptr"
    return None, "expr"


def build_flow(types: Types, facts: list[FileFacts], direct_callee,
               tables: dict[str, str] | None = None,
               library: Library | None = None) -> tuple[ValueFlow, list[IndirectCall]]:
    """Return the value flow of the tree (solved) and its indirect calls.

    `direct_callee(call)` returns the node id a plain-name call resolves to
    (a defined function), or None. `tables` maps files of bare initializers
    (`hmp-commands.hx`) to the struct the build fills with them; `library`
    says what code outside the tree does with pointers (graph/library).
    """
    flow = ValueFlow(types)
    library = library or Library()
    flow.layouts, flow.loads = library.layouts, library.loads
    kept = library.registrars_later()
    symbols = types.symbols
    indirect: list[IndirectCall] = []
    for file_facts in facts:
        for ref in file_facts.refs:
            _add_reference(flow, ref, tables, kept)
        add_write_copies(flow, file_facts.writes)
        add_initializer_copies(flow, file_facts)
        add_return_copies(flow, file_facts)
        for call in file_facts.calls:
            caller = symbols.id_of(call.file, call.caller) if call.caller else None
            if caller is None or call.via == "macro":  # a loop or cleanup macro's use: no pointer is called
                continue
            if call.via == "name" and not symbols.is_pointer_variable(call.file, call.callee):
                callee = direct_callee(call)
                if callee is not None:
                    add_argument_copies(flow, call, callee)
                elif not add_forwarded_copies(flow, call):
                    add_external_sinks(flow, call)
                continue
            location, kind = indirect_location(flow, call)
            indirect.append(IndirectCall(call, caller, location, kind))
    flow.solve()
    flow.handed_off = bind_later_calls(flow, library)
    _bind_indirect_arguments(flow, indirect)
    flow.forget_expressions()
    return flow, indirect


def _add_reference(flow: ValueFlow, ref: FunctionRef, tables: dict[str, str] | None,
                   kept: set[tuple[str, int]]) -> None:
    """Add what one reference says: a copy from a variable or member, an argument bound, or an address stored."""
    symbols = flow.symbols
    if ref.usage in ("local initializer", "member initializer"):
        _copy_local(flow, ref)
        return
    if ref.usage == "local copy":
        _copy_variable(flow, replace(ref, usage="assignment"))
        return
    target = symbols.resolve_function(ref.file, ref.name)
    if target is None or symbols.is_variable(ref.file, ref.function, ref.name):
        if ref.usage == "assignment":
            _copy_variable(flow, ref)
        return
    if ref.usage == "argument":
        _bind_argument(flow, ref, target.id, kept)
        return
    if tables and ref.file in tables and ref.field:
        # a bare `{ .cmd = hmp_migrate, }` outside any declaration: the parser reads it as it can
        # (an initializer of whatever type name precedes it, or an assignment); the table says
        ref = replace(ref, usage="initializer", struct_type=tables[ref.file], lhs="", function="")
    location, how = address_location(flow, ref)
    if location is not None and ref.usage == "initializer" and ref.lhs and not ref.function:
        flow.initialized.append((ref.file, ref.lhs, location, target.id))
    if location is not None:
        flow.add_address(location, target.id, proof_of(ref, how=how, field=_field_name(location),
                                                       struct_type=location[1] if location[0] == "f" else ""))


def _field_name(location: Location) -> str:
    return location[2] if location[0] == "f" else ""


def _copy_local(flow: ValueFlow, ref: FunctionRef) -> None:
    """Let the member a local or parameter initializes (`*bh = (QEMUBH){ .cb = cb }`), or a member read does
    (`TypeInfo info = { .instance_init = t->instance_init }`), hold what that variable or member holds."""
    if ref.usage == "member initializer":
        source = flow.expression_location(ref.name, ref.file, ref.function)
    else:
        source = flow.variable_location(ref.file, ref.function, ref.name)
    destination, _ = address_location(flow, replace(ref, usage="initializer"))
    if source is not None and destination is not None:
        flow.add_copy(source, destination, {"how": "copy"})  # only `how` is kept


def _copy_variable(flow: ValueFlow, ref: FunctionRef) -> None:
    """Let the variable or member a variable is assigned to whole (`buffer_is_zero_accel = accel_table[i];`:
    an array element, as a call through `accel_table[i]` reads the array) hold what that variable holds."""
    source = flow.variable_location(ref.file, ref.function, ref.name)
    destination, _ = address_location(flow, ref) if source is not None else (None, "")
    if destination is not None and destination != source:
        flow.add_copy(source, destination, {"how": "copy"})  # only `how` is kept


def _bind_argument(flow: ValueFlow, ref: FunctionRef, target_id: str,
                   kept: set[tuple[str, int]] = frozenset()) -> None:
    """Give the parameter a function is passed to by name that function (`prop_add(p, set_bool)`); or, passed to
    a registrar outside the tree whose argument a later call passes on (`kept`: g_source_set_callback's), its sink."""
    if ref.arg_index < 0 or not ref.function:
        return
    symbols = flow.symbols
    if (ref.call, ref.arg_index) in kept:
        flow.add_address(("x", ref.call, ref.arg_index), target_id, proof_of(ref, how="parameter flow", call=ref.call,
                                                                            arg_index=ref.arg_index))
        return
    callee = symbols.resolve_function(ref.file, ref.call)
    passed = [(callee, ref.arg_index)] if callee is not None else [
        (symbols.resolve_function(ref.file, name), index)  # a macro's argument, passed on by its expansion
        for position, name, index in symbols.macro_forwards(
            ref.file, ref.call, symbols.macro_arity(ref.file, ref.call, ref.arg_index)) if position == ref.arg_index]
    for function, index in passed:
        parameter = flow.parameter_location(function.id, index) if function is not None else None
        if parameter is not None:
            flow.add_address(parameter, target_id, proof_of(ref, how="parameter flow", call=ref.call,
                                                            arg_index=ref.arg_index))


def _bind_indirect_arguments(flow: ValueFlow, indirect: list[IndirectCall]) -> None:
    """Bind the arguments of indirect calls to the parameters of their targets, until no target is new."""
    bound: set[tuple[int, str]] = set()
    for _ in range(8):  # each round can give indirect calls new targets; QEMU settles in two or three
        grew = False
        for number, icall in enumerate(indirect):
            if icall.location is None:
                continue
            for target in list(flow.points_to.get(icall.location, ())):
                if (number, target) not in bound:
                    bound.add((number, target))
                    add_argument_copies(flow, icall.call, target)
                    grew = True
        if not grew:
            return
        flow.solve()
