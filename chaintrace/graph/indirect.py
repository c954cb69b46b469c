"""The edge kinds beyond `direct`: thread, callback, ops, fnptr, resolved by the value flow of function pointers.

`add_indirect_edges` reads `valueflow`'s points-to sets and adds:

* `thread` / `callback`: a function passed to a registrar, from the
  function that registers it: the hand-off a reader follows. Registrars are
  known (`queries/qemu/registrars.toml`: threads, bottom halves, timers,
  coroutines, QIO, GSources) or found by behaviour: a function of the tree
  whose pointer parameter flows into a struct member (itself or through its
  callees) stores it for later. A function stored into a registration
  member (`.notify = fn`) is a callback of the function that stores it.
* `ops`: a call through a struct member, to the functions that member may
  hold: the receiver's multi-layer type (`job->driver->run` is
  `JobDriver.run`), never the member's name alone. Members the registrars
  store into (`QEMUBH.cb`, `Coroutine.entry`) are hand-offs: the event loop
  that calls through them gets a `dispatch` edge, which traces do not follow
  by default (the registering call's edge stands for it).
* `fnptr`: a call through a variable or parameter, to what flows into it.

`sound=True` keeps the over-approximation of earlier versions on top: a
member of unknown receiver type resolves by its name alone (`confidence:
low`), traces follow `dispatch` edges too, and a function
passed to a function that neither stores nor calls it is still a callback.
Every edge keeps its sites and the proof (where the address was taken and
how it flowed: `initializer`, `assignment`, `parameter flow`, `copy`,
`name-only`); indirect calls left without a target become diagnostics.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources

from chaintrace.extract.facts import CallSite, FileFacts, FunctionRef
from chaintrace.graph.flowfacts import IndirectCall, build_flow, proof_of
from chaintrace.graph.library import library_of
from chaintrace.graph.model import CallGraph
from chaintrace.graph.sites import call_site, site_of
from chaintrace.graph.symbols import Symbols
from chaintrace.graph.objects import object_facts
from chaintrace.graph.types import Types
from chaintrace.graph.valueflow import Location, ValueFlow


def load_registrars(text: str | None = None) -> dict:
    """Return the registrar table: {"calls": {name: {arg_index: kind}}, "fields": {field: kind},
    "structs": {struct: kind}, "tables": {file: struct its initializers fill}, "library": graph.library.Library}.

    `text` is TOML in the format of `queries/qemu/registrars.toml` (the default).
    """
    if text is None:
        text = (resources.files("chaintrace.queries") / "qemu" / "registrars.toml").read_text()
    table = tomllib.loads(text)
    calls: dict[str, dict[int, str]] = defaultdict(dict)
    for entry in table.get("registrar", []):
        for index in entry["args"]:
            calls[entry["name"]][int(index)] = entry["kind"]
    fields = {entry["name"]: entry["kind"] for entry in table.get("field", [])}
    structs = {entry["name"]: entry["kind"] for entry in table.get("struct", [])}
    tables = {entry["file"]: entry["struct"] for entry in table.get("table", [])}
    return {"calls": dict(calls), "fields": fields, "structs": structs, "tables": tables, "library": library_of(table)}


@dataclass
class Resolution:
    """What the value flow says about registrars: hand-off members, and what each pointer parameter does."""

    flow: ValueFlow
    registrars: dict
    sound: bool
    handoff: set[Location] = field(default_factory=set)
    invokers: dict[Location, list[str]] = field(default_factory=lambda: defaultdict(list))
    _stores: dict[tuple[str, int], list[Location]] = field(default_factory=dict)
    _by_member: dict[str, dict[str, dict]] | None = None

    def stores(self, function_id: str, index: int) -> list[Location]:
        """Return the members (and external sinks) parameter `index` of `function_id` flows into."""
        key = (function_id, index)
        if key not in self._stores:
            parameter = self.flow.parameter_location(function_id, index)
            reached = self.flow.reach(parameter) if parameter is not None else set()
            self._stores[key] = sorted(loc for loc in reached if loc[0] in ("f", "x"))
        return self._stores[key]

    def by_member_name(self, member: str) -> dict[str, dict]:
        """Return every function stored in a member named `member` of any struct (the --sound fallback)."""
        if self._by_member is None:  # one pass over the points-to sets, not one per call site
            self._by_member = defaultdict(dict)
            for location, held in self.flow.points_to.items():
                if location[0] == "f":
                    for target, proof in held.items():
                        self._by_member[location[2]].setdefault(target, {**proof, "how": "name-only"})
        return self._by_member.get(member, {})

    def is_handoff(self, location: Location) -> bool:
        """Return True for a member a registrar stores into (or a registration member such as `.notify`)."""
        return location in self.handoff or (location[0] == "f" and location[2] in self.registrars["fields"])


def add_indirect_edges(cg: CallGraph, symbols: Symbols, facts: list[FileFacts], registrars: dict | None = None,
                       sound: bool = False) -> None:
    """Add the thread, callback, ops and fnptr edges of the tree to `cg`, and diagnostics for the rest."""
    registrars = registrars if registrars is not None else load_registrars()

    def direct_callee(call: CallSite) -> str | None:
        target = symbols.resolve_function(call.file, call.callee)
        return target.id if target is not None else None

    flow, indirect = build_flow(Types(symbols), facts, direct_callee, registrars.get("tables", {}),
                                registrars.get("library"))
    symbols.forget_expansions()  # nothing below expands a macro: what the flow remembered is freed for the rest
    symbols.scope.forget()
    resolution = _resolution(flow, symbols, registrars, indirect, sound)
    cg.objects, cg.passes = object_facts(symbols, facts, flow.initialized)
    calls_by_function: dict[tuple[str, str], list[CallSite]] = defaultdict(list)
    for file_facts in facts:
        for call in file_facts.calls:
            calls_by_function[call.file, call.caller].append(call)
    for calls in calls_by_function.values():
        calls.sort(key=lambda c: (c.line, c.col))
    registered: set[tuple] = set()
    for file_facts in facts:
        for ref in file_facts.refs:
            target = symbols.resolve_function(ref.file, ref.name)
            if target is None or symbols.is_variable(ref.file, ref.function, ref.name):
                continue
            source = symbols.id_of(ref.file, ref.function) if ref.function else None
            if source is None:
                continue
            if ref.usage == "argument":
                registered.add(_add_registration(cg, symbols, resolution, calls_by_function[ref.file, ref.function],
                                                 ref, source, target.id))
            elif ref.field.rsplit(".", 1)[-1] in registrars["fields"] and ref.usage in ("assignment", "initializer"):
                member = ref.field.rsplit(".", 1)[-1]
                proof = proof_of(ref, field=member, struct_type=ref.struct_type, how=ref.usage)
                cg.add_site(source, target.id, "callback",
                            site_of(ref.file, ref.line, ref.col, ref.context, registrar=f".{member}"),
                            proof=proof, detail=registrars["fields"][member])
    for calls in calls_by_function.values():
        for call in calls:
            caller = symbols.id_of(call.file, call.caller)
            if caller is not None and call.callee not in symbols.types:
                _add_argument_functions(cg, symbols, resolution, call, caller, registered)
    flow.forget_copies()  # the registrations were the last to follow copies: their memory goes to the edges below
    looped = _loop_fed_parameters(symbols, calls_by_function)
    calls_by_function.clear()  # likewise: nothing below reads the calls by function
    # (file, function) -> its local variables, for the functions that call through a member (`_choice` reads them)
    callers = {symbols.definition(icall.caller) for icall in indirect if icall.kind == "ops" and icall.location}
    wanted = {(definition.file, definition.name) for definition in callers if definition is not None}
    local: dict[tuple[str, str], set[str]] = defaultdict(set)
    for file, function, name in symbols.locals:
        if (file, function) in wanted:
            local[file, function].add(name)
    for icall in indirect:
        _add_indirect_call(cg, resolution, icall, looped, local)


def _resolution(flow: ValueFlow, symbols: Symbols, registrars: dict, indirect: list[IndirectCall],
                sound: bool) -> Resolution:
    """Return the registrar knowledge: the members the known registrars store into, and who calls through them."""
    resolution = Resolution(flow, registrars, sound)
    for name, indexes in registrars["calls"].items():
        for target_id in symbols.external.get(name, ()) or symbols.header_static.get(name, ()):
            for index in indexes:
                resolution.handoff.update(loc for loc in resolution.stores(target_id, index) if loc[0] == "f")
    for location, held in flow.points_to.items():
        # a member given a function through a parameter is a registration (qemu_allocate_irq(handler)
        # storing irq->handler); a member of a registration record (TypeInfo) is one too
        if location[0] == "f" and (location[1] in registrars.get("structs", {}) or
                                   any(proof.get("how") == "parameter flow" for proof in held.values())):
            resolution.handoff.add(location)
    # a parameter a library's later call binds (a GSource's dispatch function's `callback`) is the event loop's
    resolution.handoff.update(flow.handed_off)
    for location in list(resolution.handoff):  # and so is every member or variable they are copied into
        resolution.handoff.update(loc for loc in flow.reach(location) if loc[0] in ("f", "v", "g"))
    for icall in indirect:
        if icall.location is not None:
            resolution.invokers[icall.location].append(icall.caller)
    return resolution


# A function designator as a whole argument, possibly cast, `&`-ed or parenthesised:
# `fn`, `&fn`, `(GSourceFunc)fn`, `(GSourceFunc)&fn`, `(GSourceFunc)(fn)`.
_FUNCTION_ARG = re.compile(r"(\(\s*[A-Za-z_][\w\s]*\**\s*\)\s*)?&?\s*\(?\s*([A-Za-z_]\w*)\s*\)?")


def _add_argument_functions(cg: CallGraph, symbols: Symbols, resolution: Resolution, call: CallSite,
                            caller: str, registered: set[tuple]) -> None:
    """Add registrations the references missed, read from the call's argument texts.

    The extractor records no reference for some argument shapes (a cast of
    `&fn`); the argument text still names the function.
    """
    for index, arg in enumerate(call.args):
        match = _FUNCTION_ARG.fullmatch(arg)
        if match is None or symbols.is_variable(call.file, call.caller, match.group(2)):
            continue
        target = symbols.resolve_function(call.file, match.group(2))
        if target is None or (caller, target.id, call.line, call.col) in registered:
            continue
        ref = FunctionRef(match.group(2), call.file, call.line, call.col, call.caller, "argument",
                          call=call.callee, arg_index=index, cast=(match.group(1) or "").strip(), context=call.context)
        registered.add(_add_registration(cg, symbols, resolution, [call], ref, caller, target.id))


def _registering_call(calls: list[CallSite], ref: FunctionRef, symbols: Symbols) -> tuple[CallSite | None, str, int]:
    """Return (call, registrar, argument index) of the call `ref` is an argument of.

    When the parser read a cast `(GSourceFunc)(fn)` as a call of `GSourceFunc`,
    the registrar is the nearest enclosing real call whose argument names `fn`.
    """
    position = (ref.line, ref.col)
    end = bisect.bisect_right([(c.line, c.col) for c in calls], position)
    if ref.call not in symbols.types:
        for call in reversed(calls[:end]):
            if call.callee == ref.call:
                return call, ref.call, ref.arg_index
        return None, ref.call, ref.arg_index
    word = re.compile(rf"\b{re.escape(ref.name)}\b")
    for call in reversed(calls[:end]):
        if call.callee in symbols.types:
            continue
        for index, arg in enumerate(call.args):
            if word.search(arg):
                return call, call.callee, index
    return None, ref.call, ref.arg_index


def _registration_detail(symbols: Symbols, resolution: Resolution, file: str, registrar: str, index: int) -> tuple[str, dict] | None:
    """Return (detail, proof extras) of a function passed as argument `index` of `registrar`, or None for no edge.

    A known registrar says its kind. A function of the tree is a registrar when
    the pointer flows into a member (the proof names it and who calls through
    it); one that only calls the pointer gets its own `fnptr` edge; one that
    does neither gives no edge (a comparison, a lookup key), except under
    `sound`. What a macro or a function outside the tree does is unknown: an
    `unknown registrar` callback, as before.
    """
    known = resolution.registrars["calls"].get(registrar, {}).get(index)
    if known is not None:
        return known, {}
    callee = symbols.resolve_function(file, registrar)
    if callee is None:
        return "unknown registrar", {}
    landed = resolution.stores(callee.id, index)
    members = [loc for loc in landed if loc[0] == "f"]
    if members:
        first = members[0]
        invokers = sorted(set(resolution.invokers.get(first, ())))[:5]
        return "registrar", {"field": f"{first[1]}.{first[2]}" if first[1] else first[2], "invokers": invokers}
    if any(loc[0] == "x" for loc in landed):
        return "registrar", {"passed_to": next(loc[1] for loc in landed if loc[0] == "x")}
    return ("unknown registrar", {}) if resolution.sound else None


def _add_registration(cg: CallGraph, symbols: Symbols, resolution: Resolution, calls: list[CallSite],
                      ref: FunctionRef, source: str, target: str) -> tuple:
    """Add the thread or callback edge of a function passed as an argument; return (source, target, line, col)."""
    call, registrar, index = _registering_call(calls, ref, symbols)
    site = call_site(call, registrar=registrar, arg_index=index) if call is not None else \
        site_of(ref.file, ref.line, ref.col, ref.context, registrar=registrar, arg_index=index)
    decided = _registration_detail(symbols, resolution, ref.file, registrar, index)
    if decided is None:
        return (source, target, site["line"], site["col"])
    detail, extra = decided
    kind = "thread" if detail == "thread" else "callback"
    data = {"detail": detail} if kind == "callback" else {}
    cg.add_site(source, target, kind, site, proof=proof_of(ref, registrar=registrar, arg_index=index, **extra), **data)
    return (source, target, site["line"], site["col"])


def _add_indirect_call(cg: CallGraph, resolution: Resolution, icall: IndirectCall,
                       looped: set[tuple[str, int]] = frozenset(), local: dict | None = None) -> None:
    """Add the ops or fnptr edges of an indirect call, or a diagnostic saying why there are none."""
    flow, call, location, kind = resolution.flow, icall.call, icall.location, icall.kind
    if location is None:
        cg.diagnostics.append({"kind": kind, "caller": icall.caller, "file": call.file, "line": call.line,
                               "col": call.col, "callee": call.callee, "reason": "callee is an expression"})
        return
    found = flow.points_to.get(location, {})
    data: dict = {}
    reason = "no function flows into it"
    if resolution.is_handoff(location):
        kind = "dispatch"  # a call of what a registration holds: traces follow the registering call's edge instead
    if icall.kind == "ops":
        data["receiver_type"] = location[1]
        if location[1]:
            data["member"] = f"{location[1]}.{location[2]}"  # what object sensitivity checks (query.objects)
        if not location[1]:
            if resolution.sound:
                found = resolution.by_member_name(location[2])
                data["confidence"] = "low"
            else:
                found = {}
            reason = f"receiver type unknown: `{location[2]}` is not resolved by its name alone (--sound does)"
        else:
            reason = f"no function is stored in {location[1]}.{location[2]}"
    elif location[0] == "v" and (location[1], location[2], location[3]) in flow.symbols.locals and not found:
        reason = "parameter: no caller passes it a function" if call.via == "param" else reason
    extra = {"choice": _choice(call, len(found), _looped_names(flow, icall.caller, looped),
                               _local_names(flow, icall.caller, local or {}))} if kind == "ops" else {}
    for target, proof in found.items():
        cg.add_site(icall.caller, target, kind, call_site(call, callee=call.callee, **extra), proof=proof, **data)
    if not found:
        cg.diagnostics.append({"kind": kind, "caller": icall.caller, "file": call.file, "line": call.line,
                               "col": call.col, "callee": call.callee, "reason": reason})


_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# the identifiers of a callee expression that are not members: `se` in `se->ops->save_live_iterate`
_BASE = re.compile(r"(->|\.)?\s*([A-Za-z_]\w*)")


def _choice(call: CallSite, targets: int, looped: set[str] = frozenset(), local: set[str] = frozenset()) -> str:
    """Return how a call through a member picks its callee among the `targets` the member may hold.

    `each`: the call sits in a loop over its receivers in a collection the
    program keeps (`QTAILQ_FOREACH(se, &savevm_state.handlers, entry)
    se->ops->save_live_iterate(...)`), or its receiver is a parameter
    (`looped`) a caller passes from such a loop (`qemu_savevm_complete(se,
    f)` in one), so every registered target runs; `built`: the loop walks a
    collection reached from a parameter or local (`QSLIST_FOREACH(act,
    &tran->actions, entry) act->drv->commit(...)`), which the path filled, so
    only what the path put there runs; `one`: a single function may be there;
    `receiver`: the receiver's run-time value picks one of several, which only
    what the path did can decide (`klass->io_close(ioc)`: the class of `ioc`).
    """
    bases = {match.group(2) for match in _BASE.finditer(call.callee) if not match.group(1)}
    if bases & looped:
        return "each"
    for loop in call.context.loops:
        names = _IDENTIFIER.findall(loop.condition)
        if bases & set(names):
            return "built" if (set(names) - bases) & local else "each"
    return "one" if targets == 1 else "receiver"


def _loop_fed_parameters(symbols: Symbols, calls_by_function: dict[tuple[str, str], list[CallSite]]) -> set[tuple[str, int]]:
    """Return (function id, parameter index) for each parameter some direct call passes a loop variable of a
    loop around the call (`QTAILQ_FOREACH(se, ...) { qemu_savevm_complete(se, f); }`)."""
    fed: set[tuple[str, int]] = set()
    for calls in calls_by_function.values():
        for call in calls:
            if call.via != "name" or not call.context.loops:
                continue
            variables = {name for loop in call.context.loops for name in _IDENTIFIER.findall(loop.condition)}
            for index, arg in enumerate(call.args):
                if arg.strip() in variables:
                    target = symbols.resolve_function(call.file, call.callee)
                    if target is not None:
                        fed.add((target.id, index))
    return fed


def _looped_names(flow: ValueFlow, function_id: str, looped: set[tuple[str, int]]) -> set[str]:
    """Return the names of the parameters of `function_id` a caller passes from a loop over them."""
    definition = flow.symbols.definition(function_id)
    if definition is None:
        return set()
    return {param.name for index, param in enumerate(definition.params)
            if param.name and (function_id, index) in looped}


def _local_names(flow: ValueFlow, function_id: str, local: dict[tuple[str, str], set[str]]) -> set[str]:
    """Return the names of the parameters and local variables (`local`: by file and function) of `function_id`."""
    definition = flow.symbols.definition(function_id)
    if definition is None:
        return set()
    return {param.name for param in definition.params if param.name} | local.get((definition.file, definition.name), set())
