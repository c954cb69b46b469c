"""Functions a tree defines through macros, and the calls they make, as facts of their own.

`OBJECT_DECLARE_TYPE(DeviceState, DeviceClass, DEVICE)` defines the QOM
checkers `DEVICE()`, `DEVICE_CLASS()` and `DEVICE_GET_CLASS()`;
`type_init(f)` a constructor `do_qemu_init_f`; `CPU_CONVERT(le, 16,
uint16_t)` `le16_to_cpu()`; each `DEF_HELPER_*` line of a `helper.h` a
`gen_helper_*`. The parser sees none of them. `with_macro_functions`
expands each file-scope macro use (`MacroUse`) with the macros its file
sees (`scope.MacroScope`), and reads the expansion's function definitions
and the calls in their bodies. As gcc does, each is placed at the use: the
function is defined at its line, in the file holding the use, and its calls
are made there.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence

from chaintrace.extract.context import EMPTY
from chaintrace.extract.facts import CallSite, Context, FileFacts, FunctionDef, FunctionRef, MacroUse, Typedef, VarDecl
from chaintrace.extract.preproc import arguments
from chaintrace.graph.conditions import Env, decide
from chaintrace.graph.scope import MacroScope
from chaintrace.graph.templates import Instances, instance_lookup
from chaintrace.source.expand import Definition, Expander, Lookup, calls_made
from chaintrace.source.expansion_tokens import (KEYWORDS, definitions, initialized, members_assigned, members_written,
                                               names_passed, typedefs)
from chaintrace.source.pointer_calls import PointerCall, declared_variables, pointer_calls

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_USE = re.compile(r"\s*([A-Za-z_]\w*)\s*(?=\()", re.S)


def with_macro_functions(facts: Iterable[FileFacts], scope: MacroScope) -> list[FileFacts]:
    """Return the facts with, in each file, the functions its file-scope macro uses define, their calls and the
    functions they pass by name (`type_init(f)` hands `f` to `register_module_init`), and each function whose
    name a macro makes (`void HELPER(add)(...)`) under the names it expands to."""
    facts = list(facts)
    instances = Instances(facts, scope)
    out = []
    built: set[str] | None = None
    for file_facts in facts:
        envs = instances.envs(file_facts.path)
        if envs:
            out.append(_instantiated(file_facts, scope, instances, envs))
            continue
        if any(not _IDENTIFIER.fullmatch(f.name) or f.name in scope.defines for f in file_facts.functions):
            file_facts = _renamed(file_facts, scope)
        if file_facts.macro_uses:
            made = _defined(file_facts, scope)
            if made.functions or made.refs or made.typedefs:
                file_facts = dataclasses.replace(
                    file_facts, functions=file_facts.functions + tuple(made.functions),
                    calls=file_facts.calls + tuple(made.calls), refs=file_facts.refs + tuple(made.refs),
                    typedefs=file_facts.typedefs + tuple(made.typedefs),
                    variables=file_facts.variables + tuple(made.variables))
        if any(ref.usage == "macro element" for ref in file_facts.refs):
            if built is None:  # the functions the build may compile, by name
                built = {f.name for ff in facts for f in ff.functions if not scope.outside(f.conditions)}
            elements = _element_values(file_facts, scope, built)
            if elements:
                file_facts = dataclasses.replace(file_facts, refs=file_facts.refs + tuple(elements))
        out.append(file_facts)
    return out


def _instantiated(facts: FileFacts, scope: MacroScope, instances: Instances, envs: list[Env]) -> FileFacts:
    """Return a template's facts as gcc compiles them: once per inclusion (`templates`), each function under the
    name that inclusion's macros give it, each call of a macro expanded with them (the calls it makes, at the
    use), the functions its file-scope macro uses define."""
    base = scope.lookup(facts.path, fallback=True)
    functions: dict[tuple[str, int], FunctionDef] = {}
    calls: dict[CallSite, None] = {}
    refs: dict[FunctionRef, None] = {}
    renamed: dict[str, list] = {"writes": [], "reads": [], "variables": []}
    types_made: dict[Typedef, None] = dict.fromkeys(facts.typedefs)
    for env in envs:
        lookup = instance_lookup(instances, facts.path, env, base)
        expander = Expander(lookup)
        holds = _branches(env, lookup)
        names = {f.name: _instance_name(expander, f.name) for f in facts.functions}
        for function in facts.functions:
            name = names[function.name]
            if holds(function.conditions):
                functions.setdefault((name, function.line), dataclasses.replace(function, name=name))
        for call in facts.calls:
            if not holds(call.context.conditions):  # an #if branch this inclusion's macros leave out
                continue
            caller = names.get(call.caller, call.caller)
            if call.via == "name" and expander.lookup(call.callee):
                for tokens in expander.expand_use(call.callee, call.args):
                    declared = declared_variables(tokens, KEYWORDS)  # its locals are called through, never functions
                    for callee in calls_made(tokens, KEYWORDS, declared):
                        calls[dataclasses.replace(call, caller=caller, callee=callee, args=())] = None
                    for pointer in pointer_calls(tokens, KEYWORDS, declared):  # as `Symbols._expand` hands them on
                        calls[_expanded_pointer_call(call, caller, pointer)] = None
            elif call.via == "expr" and _USE.match(call.callee):
                # `glue(scale_, OP_NAME)(v)`: the name this inclusion's macros make is called
                callee = _instance_name(expander, call.callee)
                via = "name" if _IDENTIFIER.fullmatch(callee) else call.via
                calls[dataclasses.replace(call, caller=caller, callee=callee, via=via)] = None
            else:
                calls[dataclasses.replace(call, caller=caller)] = None
        for ref in facts.refs:
            refs[dataclasses.replace(ref, function=names.get(ref.function, ref.function))] = None
        for field in renamed:
            renamed[field] += [dataclasses.replace(item, function=names.get(item.function, item.function))
                               for item in getattr(facts, field)]
        made = _defined(facts, scope, expander, {n for n, _ in functions})
        for function in made.functions:
            functions.setdefault((function.name, function.line), function)
        calls.update(dict.fromkeys(made.calls))
        refs.update(dict.fromkeys(made.refs))
        renamed["variables"] += made.variables
        types_made.update(dict.fromkeys(made.typedefs))
    return dataclasses.replace(facts, functions=tuple(functions.values()), calls=tuple(calls), refs=tuple(refs),
                               typedefs=tuple(types_made),
                               **{field: tuple(dict.fromkeys(items)) for field, items in renamed.items()})


def _branches(env: Env, lookup: Lookup) -> Callable[[tuple[str, ...]], bool]:
    """Return a test of `#if` conditions for one inclusion: False when its macros decide one of them false
    (`#if DATA_SIZE > 1` where the includer defined DATA_SIZE 1); undecided ones hold."""
    verdicts: dict[str, bool | None] = {}

    def holds(conditions: tuple[str, ...]) -> bool:
        for condition in conditions:
            if condition not in verdicts:
                verdicts[condition] = decide(condition, env, lookup)
            if verdicts[condition] is False:
                return False
        return True
    return holds


def _instance_name(expander: Expander, name: str) -> str:
    """Return what a function's name (`ZRLE_ENCODE`, `glue(rop_8_, ROP_NAME)`) expands to in one inclusion, or the
    name itself when that is no single identifier."""
    use = _USE.match(name)
    if _IDENTIFIER.fullmatch(name):
        results = [expander.expand([(name, frozenset(), False)])] if expander.lookup(name) else []
    else:
        args = arguments(name, use.end()) if use else None
        results = expander.expand_use(use.group(1), args) if args is not None else []
    for tokens in results:
        if len(tokens) == 1 and _IDENTIFIER.fullmatch(tokens[0][0]):
            return tokens[0][0]
    return name


def _element_values(facts: FileFacts, scope: MacroScope, built: set[str]) -> list[FunctionRef]:
    """Return an initializer FunctionRef for each `.member = name` the expansion of a macro used as an initializer's
    element writes (`VMSTATE_UINT32_TEST(x, S, test)` is `{ ..., .field_exists = (test), ... }` in a table of
    `VMStateField`s; `X86_OP_ENTRY2(ADD, ...)` is `{ .gen = gen_ADD, ... }`), as if the table spelt it out: for a
    name one configuration defines as a function of `built` and another renames (`#define gen_RDMSR gen_unreachable`
    under the `#else`), both."""
    expanders = tuple(Expander(either_branch(scope.lookup(facts.path, fallback), scope, built))
                      for fallback in (False, True))
    args = {(call.line, call.col, call.callee): call.args for call in facts.calls}
    found: list[FunctionRef] = []
    for ref in facts.refs:
        if ref.usage != "macro element" or (ref.line, ref.col, ref.name) not in args or not scope.may_define(ref.name):
            continue
        # a header is read under the macros of whoever includes it (as `_defined` does)
        expander = next((e for e in expanders[:1 if facts.path.endswith(".c") else 2] if e.lookup(ref.name)), None)
        for tokens in expander.expand_use(ref.name, args[ref.line, ref.col, ref.name]) if expander else ():
            found += [FunctionRef(value, ref.file, ref.line, ref.col, ref.function, "initializer",
                                  struct_type=ref.struct_type, field=".".join(filter(None, (ref.field, member))),
                                  lhs=ref.lhs, context=ref.context) for member, value in members_written(tokens)]
    return list(dict.fromkeys(found))  # each variant of an expansion writes the same members, mostly


def either_branch(lookup: Lookup, scope: MacroScope, functions: set[str]) -> Lookup:
    """Return `lookup` where a name of `functions` that every `#define` of it renames under an `#if` the build's
    configuration leaves undecided (`#ifndef CONFIG_USER_ONLY` defines gen_RDMSR, the `#else` `#define gen_RDMSR
    gen_unreachable`) also stands for itself: the configuration that compiles the function leaves it alone."""
    def either(name: str) -> Sequence[Definition]:
        found = lookup(name)
        if found and name in functions and all(params is None for params, _ in found) and all(
                define.conditions for define in scope.defines.get(name, ())):
            return [*found, (None, (name,))]
        return found
    return either


@dataclasses.dataclass
class _Made:
    """What the macro uses of one file make: functions and their calls, names passed or stored, types, locals."""

    functions: list[FunctionDef] = dataclasses.field(default_factory=list)
    calls: list[CallSite] = dataclasses.field(default_factory=list)
    refs: list[FunctionRef] = dataclasses.field(default_factory=list)
    typedefs: list[Typedef] = dataclasses.field(default_factory=list)
    variables: list[VarDecl] = dataclasses.field(default_factory=list)


def _defined(facts: FileFacts, scope: MacroScope, expander: Expander | None = None,
             known: set[str] | None = None) -> _Made:
    """Return the functions the macro uses of one file define, the calls they make, the names they pass or store in
    a member of a local (`mc->init = f;` in a class_init a macro defines, the local's type with it) and the typedefs
    they write (with `expander`: those of one inclusion of a template)."""
    strict = expander or Expander(scope.lookup(facts.path))
    # A header is read under the macros of whoever includes it, even through `#include MACRO`: a use whose
    # macro the header does not see takes any header's; one it sees is expanded as cpp would, where a name no
    # visible macro defines (`USB_DEVICE` of `OBJECT_DECLARE_TYPE(USBDevice, USBDeviceClass, USB_DEVICE)`) is
    # a name, not some other header's macro of that name.
    loose = strict if facts.path.endswith(".c") or expander else Expander(scope.lookup(facts.path, fallback=True))
    known = {f.name for f in facts.functions} if known is None else set(known)
    made = _Made()
    for use in facts.macro_uses:
        if not scope.may_define(use.name):
            continue
        expander = strict if strict.lookup(use.name) else loose
        if expander is not strict and not expander.lookup(use.name):
            continue
        expansions = expander.expand_use(use.name, use.args)
        if expander is strict and loose is not strict and not any(definitions(tokens) for tokens in expansions):
            # a header's own macro over macros only its includers define (tcg-runtime.h's GEN_ATOMIC_HELPERS over
            # DEF_HELPER_FLAGS_4): read under theirs
            expansions = loose.expand_use(use.name, use.args)
        for tokens in expansions:
            made.refs += [FunctionRef(value, use.file, use.line, use.col, "", "initializer", struct_type=struct,
                                      field=member, lhs=variable)
                          for struct, variable, member, value in initialized(tokens)]
            made.typedefs += [Typedef(name, kind, use.file, use.line) for name, kind in typedefs(tokens)]
            for name, is_static, body in definitions(tokens):
                if name in known:
                    continue
                known.add(name)
                # under the use's #ifs: a stub a branch defines (`STUB_HELPER(inb, ...)` with CONFIG_USER_ONLY)
                # is an alternative of the function another branch or a header gives (symbols)
                made.functions.append(FunctionDef(name, facts.path, use.line, use.line, is_static, is_static, "", (),
                                                  "", use.conditions))
                _read_body(use, name, body, made)
    made.refs = list(dict.fromkeys(made.refs))  # each variant of an expansion initialises the same
    made.typedefs = list(dict.fromkeys(made.typedefs))
    return made


def _read_body(use: MacroUse, name: str, body: list, made: _Made) -> None:
    """Add to `made` the calls, names passed, members assigned and locals of the body of `name`, defined at `use`."""
    declared = declared_variables(body, KEYWORDS)
    made.calls += [_call(use, name, callee) for callee in calls_made(body, KEYWORDS, declared)]
    made.calls += [_pointer_call(use, name, pointer) for pointer in pointer_calls(body, KEYWORDS, declared)]
    made.refs += [FunctionRef(passed, use.file, use.line, use.col, name, "argument", callee, index)
                  for callee, index, passed in names_passed(body)]
    stored = [(lhs, member, value) for lhs, member, value in members_assigned(body) if value not in declared]
    made.refs += [FunctionRef(value, use.file, use.line, use.col, name, "assignment", lhs=lhs, field=member,
                              context=_context(use)) for lhs, member, value in stored]
    bases = {_IDENTIFIER.match(lhs).group() for lhs, _, _ in stored}
    made.variables += [VarDecl(name, local, declared[local][0] + " *", use.file, use.line, False)
                       for local in sorted(bases & declared.keys())]


def _renamed(facts: FileFacts, scope: MacroScope) -> FileFacts:
    """Return the facts with each function named by a macro use (`HELPER(add)`, `glue(fill_, NAME)`) or by an
    object-like macro (`AES_set_encrypt_key` -> `QEMU_AES_set_encrypt_key`) under each name it expands to (a
    template included under several definitions of NAME defines several), its sites with it."""
    expander = Expander(scope.lookup(facts.path, fallback=not facts.path.endswith(".c")))
    names: dict[str, list[str]] = {}
    lookup = expander.lookup
    for function in facts.functions:
        if function.name in names:
            continue
        if _IDENTIFIER.fullmatch(function.name):
            # `int AES_set_encrypt_key(...)` under `#define AES_set_encrypt_key QEMU_AES_set_encrypt_key`; not
            # `static void gen_RDMSR(...) {...} #else #define gen_RDMSR gen_unreachable`: cpp reads in order
            definitions = lookup(function.name)
            if any(d.file == facts.path and d.line > function.line for d in scope.defines.get(function.name, ())):
                continue
            if definitions and all(params is None and len(body) == 1 and _IDENTIFIER.fullmatch(body[0])
                                   for params, body in definitions):
                names[function.name] = list(dict.fromkeys(body[0] for _, body in definitions))
            continue
        names[function.name] = []
        use = _USE.match(function.name)
        args = arguments(function.name, use.end()) if use else None
        if args is not None:
            for tokens in expander.expand_use(use.group(1), args):
                if len(tokens) == 1 and _IDENTIFIER.fullmatch(tokens[0][0]) and tokens[0][0] not in names[function.name]:
                    names[function.name].append(tokens[0][0])

    def each(items: tuple, field: str) -> tuple:
        found = []
        for item in items:
            old = getattr(item, field)
            if old in names:
                found += [dataclasses.replace(item, **{field: new}) for new in names[old]]
            else:
                found.append(item)
        return tuple(found)

    return dataclasses.replace(facts, functions=each(facts.functions, "name"), calls=each(facts.calls, "caller"),
                               refs=each(facts.refs, "function"), writes=each(facts.writes, "function"),
                               reads=each(facts.reads, "function"), variables=each(facts.variables, "function"))


def _context(use: MacroUse) -> Context:
    """Return the context of the calls a use's functions make: the use's `#if`s (the build's configuration may
    rule them out)."""
    return Context(conditions=use.conditions) if use.conditions else EMPTY


def _call(use: MacroUse, caller: str, callee: str) -> CallSite:
    return CallSite(caller, use.file, use.line, use.col, callee, "name", (), _context(use))


def _expanded_pointer_call(call: CallSite, caller: str, pointer: PointerCall) -> CallSite:
    """Return the call site of a call through a pointer that a macro used in a template's function makes, at the
    use: through a member (`s->ops->write(...)`), or an expression left for the value flow."""
    if pointer.member:
        return dataclasses.replace(call, caller=caller, callee=pointer.callee, via="field", args=(),
                                   field=pointer.member, receiver=pointer.receiver)
    return dataclasses.replace(call, caller=caller, callee=pointer.callee, via="expr", args=(), field="", receiver="")


def _pointer_call(use: MacroUse, caller: str, pointer: PointerCall) -> CallSite:
    """Return the call site of a call through a pointer in a function a macro defines: through a member, or an
    expression (a local of the definition: `fn(...)` after `SSEFunc fn = s->w ? a : b;`, left unresolved)."""
    if pointer.member:
        return CallSite(caller, use.file, use.line, use.col, pointer.callee, "field", (), _context(use),
                        field=pointer.member, receiver=pointer.receiver)
    return CallSite(caller, use.file, use.line, use.col, pointer.callee, "expr", (), _context(use))
