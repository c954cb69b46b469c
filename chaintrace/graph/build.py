"""Facts -> the call graph: one node per definition, the direct edges, then the indirect kinds.

`build_graph` is the graph pass of the pipeline: `Symbols` says what each
called name means, `_add_direct` adds the plain calls, and
`indirect.add_indirect_edges` the threads, callbacks, ops tables and
function pointers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from chaintrace.extract.facts import CallSite, FileFacts, FunctionRef
from chaintrace.graph import indirect
from chaintrace.graph.branches import Target
from chaintrace.graph.direct_edges import DirectEdges
from chaintrace.graph.model import CallGraph, no_cycle_collection
from chaintrace.graph.macro_functions import with_macro_functions
from chaintrace.graph.placement import placed
from chaintrace.graph.scope import MacroScope
from chaintrace.graph.symbols import Symbols
from chaintrace.graph.value_macros import value_macro_calls


def build_graph(facts: Iterable[FileFacts], registrars: dict | None = None, sound: bool = False,
                lean: bool = False, consume: bool = False) -> CallGraph:
    """Return the call graph of a tree's facts, all edge kinds included.

    Parameters
    ----------
    facts : iterable of FileFacts
        The facts of every file of the tree (paths relative to its root).
    registrars : dict, optional
        The registrar table (see `indirect.load_registrars`); QEMU's by default.

    Returns
    -------
    CallGraph
        Nodes for every definition and every called external name; `direct`
        edges from plain-name calls, then the indirect kinds added by
        `chaintrace.graph.indirect.add_indirect_edges` (precise by default; `sound`
        adds the over-approximation: name-only matches, unknown registrars).
    lean : bool, optional
        Leave the direct edges as the calls that make them (`CallGraph.direct`,
        a third of the memory of QEMU's graph): `edges`, `adjacency` and the
        row functions read them as they are, which is all saving does; any
        other lookup puts them into networkx first.
    consume : bool, optional
        Empty the list `facts` once read: the facts the build replaces (calls
        placed where gcc places them, templates read once per inclusion) are
        then freed as it goes, when the caller holds them nowhere else.
    """
    own = list(facts)
    if consume and isinstance(facts, list):
        facts.clear()
    with no_cycle_collection():
        cg = _build(own, registrars, sound)
        if not lean:
            cg.settle()
        return cg


def _build(given: list[FileFacts], registrars: dict | None, sound: bool) -> CallGraph:
    scope = MacroScope(given)
    facts = with_macro_functions(placed(given, scope), scope)
    given.clear()  # build_graph's own list: the facts replaced above go, unless its caller keeps them
    symbols = Symbols(facts, scope)
    cg = CallGraph(direct=DirectEdges())
    for node_id, definition in symbols.nodes():
        cg.add_function(node_id, definition.name, definition.file, definition.line,
                        definition.end_line, definition.is_static)
    through_pointers: dict[str, list[CallSite]] = defaultdict(list)  # file -> calls through pointers macros make
    literals: dict[str, list[FunctionRef]] = defaultdict(list)  # file -> members macros' compound literals are given
    for file_facts in facts:
        for call in file_facts.calls:
            # a call in an #if branch the default build's configuration rules out is another build's
            if call.caller and call.via in ("name", "macro") and not scope.outside(call.context.conditions):
                _add_direct(cg, symbols, call)
                through_pointers[call.file] += _pointer_sites(symbols, call)
                literals[call.file] += [
                    FunctionRef(value, call.file, call.line, call.col, call.caller, "initializer", struct_type=struct,
                                field=member, context=call.context)
                    for struct, member, value in symbols.expansion_literals(call.file, call.callee, call.args)]
        for call, targets in value_macro_calls(file_facts, symbols):
            caller = symbols.id_of(call.file, call.caller)
            if caller is not None and not scope.outside(call.context.conditions):
                _add_targets(cg, caller, call, targets)
    symbols.forget_expansions()
    facts = [replace(f, calls=f.calls + tuple(through_pointers.get(f.path, ())),
                     refs=_function_refs(symbols, f.refs + tuple(literals.get(f.path, ())))) for f in facts]
    indirect.add_indirect_edges(cg, symbols, facts, registrars, sound=sound)
    cg.macros_read = scope.defines.read | symbols.macros.read
    return cg


# the references that copy a pointer whole, whatever their name (graph/flowfacts)
_COPIES = frozenset({"local initializer", "member initializer", "local copy"})


def _function_refs(symbols: Symbols, refs: tuple[FunctionRef, ...]) -> tuple[FunctionRef, ...]:
    """Return the references the indirect kinds read: those of a name that is a function, the copies of a pointer
    (local and member initializers, local copies) and the assignments of a global variable (`fn = table[i]`).
    The value flow and the registrations skip every other one (most of QEMU's: its variables), which are freed
    here, before the resolver's peak of memory."""
    return tuple(ref for ref in refs
                 if ref.usage in _COPIES or symbols.resolve_function(ref.file, ref.name) is not None
                 or (ref.usage == "assignment" and symbols.is_pointer_variable(ref.file, ref.name)))


def _add_direct(cg: CallGraph, symbols: Symbols, call: CallSite) -> None:
    """Add the direct edge(s) of a plain-name call, or hand it to the indirect resolver."""
    caller = symbols.id_of(call.file, call.caller)
    if caller is None:
        return
    if call.via == "macro":
        _add_targets(cg, caller, call, symbols.macro_targets(call.file, call.callee, call.args))
    else:
        _add_targets(cg, caller, call, symbols.direct_targets(call.file, call.callee, call.args))


def _add_targets(cg: CallGraph, caller: str, call: CallSite, targets: list[Target]) -> None:
    """Add the direct edges from `caller` (the node of `call`'s caller) to `targets`, the site `call`'s."""
    for target in targets:
        if target.external:
            cg.add_function(target.id, target.id, "", 0, 0, False, external=True)
        data = {"ambiguous": list(target.candidates), "preferred": target.reason} if target.candidates else None
        cg.direct.add(caller, target.id, call, target.macro, data)


def _pointer_sites(symbols: Symbols, call: CallSite) -> list[CallSite]:
    """Return the calls through a pointer that the macro expanded at `call` makes, as call sites of its own for the
    indirect resolver: `_l->begin(...)` through a member, `_f(...)` through a variable the expansion declares (the
    global pointer it loads when its initializer takes one address, `&lock_func`; else an unresolved expression)."""
    sites = []
    for pointer in symbols.expansion_pointer_calls(call.file, call.callee, call.args):
        if pointer.member:
            sites.append(replace(call, callee=pointer.callee, via="field", args=(), field=pointer.member,
                                 receiver=pointer.receiver))
            continue
        loaded = [name for name in pointer.addressed if symbols.is_pointer_variable(call.file, name)]
        if len(loaded) == 1:
            sites.append(replace(call, callee=loaded[0], via="name", args=()))
        else:
            sites.append(replace(call, callee=pointer.callee, via="expr", args=()))
    return sites
