"""The edge kinds beyond `direct`: thread, callback, ops, fnptr; and the light type analysis ops need.

`add_indirect_edges` adds the edges that go through a function's address:

* `thread` / `callback`: a function named as an argument of a call (the
  registrar table `queries/qemu/registrars.toml` says which), or stored into
  a registration field (`.notify = fn`), inside the registering function;
* `ops`: a call through a struct field, to every function stored in that
  field (designated or positional initializers, assignments), restricted to
  the receiver's struct type when `Types` can infer it, else to every
  function stored in a field of that name (`confidence: low`);
* `fnptr`: a call through a local, parameter or global function pointer, to
  the functions assigned to it.

Every edge keeps its sites and the proof (where the address was taken);
indirect calls left without a target become `CallGraph.diagnostics`.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections import defaultdict
from importlib import resources

from chaintrace.extract.facts import CallSite, FileFacts, FunctionRef
from chaintrace.extract.syntax import bare_type
from chaintrace.graph.model import CallGraph, call_site, site_of
from chaintrace.graph.symbols import Symbols

def load_registrars(text: str | None = None) -> dict:
    """Return the registrar table: {"calls": {name: {arg_index: kind}}, "fields": {field: kind}}.

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
    return {"calls": dict(calls), "fields": fields}


class Types:
    """Struct types of C expressions, from the tree's declarations, typedefs and struct definitions."""

    def __init__(self, symbols: Symbols) -> None:
        self.symbols = symbols
        # QOM naming: DEVICE_GET_CLASS -> DeviceClass, MIGRATION_OBJ -> ..., by letters alone.
        self._upper = {name.replace("_", "").upper(): name for name in sorted(symbols.types, reverse=True)}

    def canonical(self, name: str) -> str:
        """Return the struct name a type name stands for, following typedefs."""
        for _ in range(8):
            alias = self.symbols.typedefs.get(name)
            if not alias or alias == name or (name in self.symbols.structs and alias not in self.symbols.structs):
                break
            name = alias
        return name

    def field_type(self, struct: str, field: str) -> str | None:
        """Return the canonical type of `struct.field`, "" when untyped, None when no such struct field is known."""
        for definition in self.symbols.structs.get(self.canonical(struct), ()):
            for member in definition.fields:
                if member.name == field:
                    return self.canonical(bare_type(member.type))
        return None

    def infer_type(self, expr: str, file: str, function: str) -> str:
        """Return the canonical struct type of a C expression (`se->ops`, `DEVICE_GET_CLASS(dev)`), or ""."""
        expr = expr.strip()
        while expr[:1] in ("&", "*"):
            expr = expr[1:].strip()
        if not expr:
            return ""
        if expr[0] == "(":
            end = _closing(expr, 0)
            inner = expr[1:end].strip()
            cast = re.match(r"\(\s*((?:const\s+|struct\s+|union\s+)*)(\w+)\s*(\**)\s*\)", inner)
            if cast and (cast.group(2) in self.symbols.types or cast.group(3) or cast.group(1)):
                base = self.canonical(cast.group(2))
            else:
                base = self.infer_type(inner, file, function)
            rest = expr[end + 1:]
        else:
            word = re.match(r"[A-Za-z_]\w*", expr)
            if not word:
                return ""
            name, rest = word.group(), expr[word.end():].lstrip()
            if rest.startswith("("):
                end = _closing(rest, 0)
                base = self._call_type(name, rest[1:end])
                rest = rest[end + 1:]
            else:
                declared = self.symbols.locals.get((file, function, name)) or self.symbols.globals.get((file, name)) or self.symbols.global_types.get(name, "")
                base = self.canonical(bare_type(declared))
        for step in re.finditer(r"\s*(?:(->|\.)\s*([A-Za-z_]\w*)|\[[^\]]*\])", rest):
            if step.group(2) and base:
                base = self.field_type(base, step.group(2)) or ""
        return base

    def _call_type(self, name: str, args: str) -> str:
        """Return the type a call yields: the function's return type, or a QOM cast macro's type."""
        if name in self.symbols.returns:
            return self.canonical(bare_type(self.symbols.returns[name]))
        first = args.split(",")
        if name == "container_of" and len(first) == 3:
            return self.canonical(first[1].strip())
        if first and first[0].strip() in self.symbols.types:
            return self.canonical(first[0].strip())  # OBJECT_CHECK(T, obj, name) and the like
        key = name.replace("_", "").upper()
        if key.endswith("GETCLASS"):
            key = key[:-len("GETCLASS")] + "CLASS"
        for guess in (key, key + "STATE"):
            if guess in self._upper:
                return self.canonical(self._upper[guess])  # QOM naming: DEVICE_GET_CLASS -> DeviceClass
        return ""


def _closing(text: str, start: int) -> int:
    """Return the index of the parenthesis closing the one at `start` (or the last index)."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return len(text) - 1


def add_indirect_edges(cg: CallGraph, symbols: Symbols, facts: list[FileFacts], registrars: dict | None = None) -> None:
    """Add the thread, callback, ops and fnptr edges of the tree to `cg`, and diagnostics for the rest."""
    registrars = registrars if registrars is not None else load_registrars()
    calls_by_function: dict[tuple[str, str], list[CallSite]] = defaultdict(list)
    for file_facts in facts:
        for call in file_facts.calls:
            calls_by_function[call.file, call.caller].append(call)
    for calls in calls_by_function.values():
        calls.sort(key=lambda c: (c.line, c.col))
    stores = _Stores(Types(symbols))
    registered: set[tuple] = set()
    for file_facts in facts:
        for ref in file_facts.refs:
            target = symbols.resolve_function(ref.file, ref.name)
            if target is None or symbols.is_variable(ref.file, ref.function, ref.name):
                continue
            stores.add(ref, target.id)
            source = symbols.id_of(ref.file, ref.function) if ref.function else None
            if source is None:
                continue
            if ref.usage == "argument":
                registered.add(_add_registration(cg, symbols, registrars, calls_by_function[ref.file, ref.function], ref, source, target.id))
            elif ref.field in registrars["fields"] and ref.usage in ("assignment", "initializer"):
                proof = _proof(ref, field=ref.field, struct_type=ref.struct_type, how=ref.usage)
                cg.add_site(source, target.id, "callback", site_of(ref.file, ref.line, ref.col, ref.context, registrar=f".{ref.field}"),
                            proof=proof, detail=registrars["fields"][ref.field])
    for calls in calls_by_function.values():
        for call in calls:
            caller = symbols.id_of(call.file, call.caller)
            if caller is None:
                continue
            if call.via != "name" or symbols.is_pointer_variable(call.file, call.callee):
                _add_indirect_call(cg, stores, call, caller)
            if call.callee not in symbols.types:
                _add_argument_functions(cg, symbols, registrars, call, caller, registered)


# A function designator as a whole argument, possibly cast, `&`-ed or parenthesised:
# `fn`, `&fn`, `(GSourceFunc)fn`, `(GSourceFunc)&fn`, `(GSourceFunc)(fn)`.
_FUNCTION_ARG = re.compile(r"(\(\s*[A-Za-z_][\w\s]*\**\s*\)\s*)?&?\s*\(?\s*([A-Za-z_]\w*)\s*\)?")


def _add_argument_functions(cg: CallGraph, symbols: Symbols, registrars: dict, call: CallSite,
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
        registered.add(_add_registration(cg, symbols, registrars, [call], ref, caller, target.id))


def _proof(ref: FunctionRef, **extra: object) -> dict:
    proof = {"file": ref.file, "line": ref.line, "col": ref.col, "function": ref.function}
    proof.update(extra)
    return proof


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


def _add_registration(cg: CallGraph, symbols: Symbols, registrars: dict, calls: list[CallSite],
                      ref: FunctionRef, source: str, target: str) -> tuple:
    """Add the thread or callback edge of a function passed as an argument; return (source, target, line, col)."""
    call, registrar, index = _registering_call(calls, ref, symbols)
    detail = registrars["calls"].get(registrar, {}).get(index, "unknown registrar")
    kind = "thread" if detail == "thread" else "callback"
    site = call_site(call, registrar=registrar, arg_index=index) if call is not None else \
        site_of(ref.file, ref.line, ref.col, ref.context, registrar=registrar, arg_index=index)
    data = {"detail": detail} if kind == "callback" else {}
    cg.add_site(source, target, kind, site, proof=_proof(ref, registrar=registrar, arg_index=index), **data)
    return (source, target, site["line"], site["col"])


class _Stores:
    """Where function addresses are stored: struct fields (by struct type) and pointer variables."""

    def __init__(self, types: Types) -> None:
        self.types, self.symbols = types, types.symbols
        self.fields: dict[tuple[str, str], list[tuple[str, dict]]] = defaultdict(list)  # (struct, field) -> [(id, proof)]
        self.by_field: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        self.pointers: dict[tuple[str, str, str], list[tuple[str, dict]]] = defaultdict(list)  # (file, function, var)

    def add(self, ref: FunctionRef, target: str) -> None:
        """Record the store `ref` makes, if it is one."""
        if ref.usage == "initializer":
            struct, field = self.types.canonical(ref.struct_type), ref.field
            if not field and struct and ref.arg_index >= 0:  # positional: the struct's n-th member
                members = [f for d in self.symbols.structs.get(struct, ())[:1] for f in d.fields]
                field = members[ref.arg_index].name if ref.arg_index < len(members) else ""
            if field:
                self._add_field(struct, field, target, _proof(ref, field=field, struct_type=struct, how="initializer"))
        elif ref.usage == "assignment" and ref.field:
            base = re.sub(rf"\s*(->|\.)\s*{re.escape(ref.field)}\s*$", "", ref.lhs)
            struct = self.types.infer_type(base, ref.file, ref.function)
            self._add_field(struct, ref.field, target, _proof(ref, field=ref.field, struct_type=struct, how="assignment"))
        elif ref.usage == "assignment" and re.fullmatch(r"[A-Za-z_]\w*", ref.lhs):
            local = (ref.file, ref.function, ref.lhs) in self.symbols.locals
            key = (ref.file, ref.function, ref.lhs) if local else ("", "", ref.lhs)
            self.pointers[key].append((target, _proof(ref, lhs=ref.lhs, how="assignment")))

    def _add_field(self, struct: str, field: str, target: str, proof: dict) -> None:
        self.fields[struct, field].append((target, proof))
        self.by_field[field].append((target, proof))


def _add_indirect_call(cg: CallGraph, stores: _Stores, call: CallSite, caller: str) -> None:
    """Add the ops or fnptr edges of an indirect call, or a diagnostic saying why there are none."""
    data: dict = {}
    if call.via == "field":
        kind = "ops"
        struct = stores.types.infer_type(call.receiver, call.file, call.caller)
        if struct and stores.types.field_type(struct, call.field) is not None:
            found = stores.fields.get((struct, call.field), [])
            reason = f"no function is stored in {struct}.{call.field}"
        else:
            found = stores.by_field.get(call.field, [])
            data["confidence"] = "low"
            reason = f"receiver type unknown and no function is stored in any field `{call.field}`"
        data["receiver_type"] = struct
    elif call.via in ("local", "param", "name"):
        kind = "fnptr"
        key = (call.file, call.caller, call.callee) if call.via != "name" else ("", "", call.callee)
        found = stores.pointers.get(key, [])
        reason = {"param": "parameter: its value comes from the callers"}.get(call.via, "no function is assigned to it")
    else:
        kind, found, reason = "expr", [], "callee is an expression"
    for target, proof in found:
        cg.add_site(caller, target, kind, call_site(call, callee=call.callee), proof=proof, **data)
    if not found:
        cg.diagnostics.append({"kind": kind, "caller": caller, "file": call.file, "line": call.line,
                               "col": call.col, "callee": call.callee, "reason": reason})
