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
from collections.abc import Callable, Iterable

from chaintrace.extract.context import EMPTY
from chaintrace.extract.facts import CallSite, FileFacts, FunctionDef, FunctionRef, MacroUse
from chaintrace.extract.preproc import arguments
from chaintrace.graph.conditions import Env, decide
from chaintrace.graph.scope import MacroScope
from chaintrace.graph.templates import Instances, instance_lookup
from chaintrace.source.expand import Expander, Lookup, Token, calls_made
from chaintrace.source.pointer_calls import PointerCall, declared_variables, pointer_calls

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_USE = re.compile(r"\s*([A-Za-z_]\w*)\s*(?=\()", re.S)
# Words that precede `(` without being a called or defined function.
KEYWORDS = frozenset({"if", "else", "while", "for", "do", "switch", "case", "return", "goto", "sizeof", "typeof",
                      "__typeof__", "__typeof", "_Generic", "__attribute__", "__attribute", "__asm__", "asm",
                      "__asm", "defined", "offsetof", "alignof", "_Alignof", "_Static_assert", "static_assert",
                      "__builtin_offsetof", "__extension__", "__declspec", "va_start", "va_end", "va_arg"})


def with_macro_functions(facts: Iterable[FileFacts], scope: MacroScope) -> list[FileFacts]:
    """Return the facts with, in each file, the functions its file-scope macro uses define, their calls and the
    functions they pass by name (`type_init(f)` hands `f` to `register_module_init`), and each function whose
    name a macro makes (`void HELPER(add)(...)`) under the names it expands to."""
    facts = list(facts)
    instances = Instances(facts, scope)
    out = []
    for file_facts in facts:
        envs = instances.envs(file_facts.path)
        if envs:
            out.append(_instantiated(file_facts, scope, instances, envs))
            continue
        if any(not _IDENTIFIER.fullmatch(f.name) or f.name in scope.defines for f in file_facts.functions):
            file_facts = _renamed(file_facts, scope)
        if file_facts.macro_uses:
            functions, calls, refs = _defined(file_facts, scope)
            if functions or refs:
                file_facts = dataclasses.replace(file_facts, functions=file_facts.functions + tuple(functions),
                                                 calls=file_facts.calls + tuple(calls),
                                                 refs=file_facts.refs + tuple(refs))
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
        made, made_calls, made_refs = _defined(facts, scope, expander, {n for n, _ in functions})
        for function in made:
            functions.setdefault((function.name, function.line), function)
        calls.update(dict.fromkeys(made_calls))
        refs.update(dict.fromkeys(made_refs))
    return dataclasses.replace(facts, functions=tuple(functions.values()), calls=tuple(calls), refs=tuple(refs),
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


def _defined(facts: FileFacts, scope: MacroScope, expander: Expander | None = None,
             known: set[str] | None = None) -> tuple[list[FunctionDef], list[CallSite], list[FunctionRef]]:
    """Return the functions the macro uses of one file define, the calls they make and the names they pass (with
    `expander`: those of one inclusion of a template)."""
    strict = expander or Expander(scope.lookup(facts.path))
    # A header is read under the macros of whoever includes it, even through `#include MACRO`: a use whose
    # macro the header does not see takes any header's; one it sees is expanded as cpp would, where a name no
    # visible macro defines (`USB_DEVICE` of `OBJECT_DECLARE_TYPE(USBDevice, USBDeviceClass, USB_DEVICE)`) is
    # a name, not some other header's macro of that name.
    loose = strict if facts.path.endswith(".c") or expander else Expander(scope.lookup(facts.path, fallback=True))
    known = {f.name for f in facts.functions} if known is None else set(known)
    functions: list[FunctionDef] = []
    calls: list[CallSite] = []
    refs: list[FunctionRef] = []
    for use in facts.macro_uses:
        if not scope.may_define(use.name):
            continue
        expander = strict if strict.lookup(use.name) else loose
        if expander is not strict and not expander.lookup(use.name):
            continue
        for tokens in expander.expand_use(use.name, use.args):
            refs += [FunctionRef(value, use.file, use.line, use.col, "", "initializer", struct_type=struct,
                                 field=member, lhs=variable) for struct, variable, member, value in initialized(tokens)]
            for name, is_static, body in definitions(tokens):
                if name in known:
                    continue
                known.add(name)
                functions.append(FunctionDef(name, facts.path, use.line, use.line, is_static, is_static, "", (), "", ()))
                declared = declared_variables(body, KEYWORDS)
                calls += [_call(use, name, callee) for callee in calls_made(body, KEYWORDS, declared)]
                calls += [_pointer_call(use, name, pointer) for pointer in pointer_calls(body, KEYWORDS, declared)]
                refs += [FunctionRef(passed, use.file, use.line, use.col, name, "argument", callee, index)
                         for callee, index, passed in names_passed(body)]
    return functions, calls, list(dict.fromkeys(refs))  # each variant of an expansion initialises the same


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


def _call(use: MacroUse, caller: str, callee: str) -> CallSite:
    return CallSite(caller, use.file, use.line, use.col, callee, "name", (), EMPTY)


def initialized(tokens: list[Token]) -> list[tuple[str, str, str, str]]:
    """Return (struct type, variable, member, name) for each `.member = name` at the top level of a file-scope
    initializer an expansion writes (`static const TypeInfo foo_info = { .class_init = foo_class_init, };`)."""
    found: list[tuple[str, str, str, str]] = []
    if "." not in {token[0] for token in tokens}:  # most expansions initialise nothing by member
        return found
    depth = 0
    head = 0  # where the current file-scope declaration starts
    for i, token in enumerate(tokens):
        text = token[0]
        if text in ("{", "(", "["):
            depth += 1
        elif text in ("}", ")", "]"):
            depth -= 1
        elif depth == 0 and text == ";":
            head = i + 1
        elif (depth == 1 and text == "." and i + 3 < len(tokens) and tokens[i + 2][0] == "="
              and tokens[i + 4 if i + 4 < len(tokens) else i + 3][0] in (",", "}") and tokens[i - 1][0] in ("{", ",")):
            value = tokens[i + 3][0]
            declared = _declared(tokens, head)
            if declared and _IDENTIFIER.fullmatch(value) and value not in KEYWORDS:
                found.append((declared[0], declared[1], tokens[i + 1][0], value))
        if depth == 0 and text == "}":
            head = i + 1
    return found


def _declared(tokens: list[Token], head: int) -> tuple[str, str] | None:
    """Return (type, variable) of the file-scope declaration `... Type variable = {` starting at `head`, or None."""
    for j in range(head, len(tokens) - 2):
        if tokens[j + 1][0] == "=" and tokens[j + 2][0] == "{":
            if j - 1 < head or not _IDENTIFIER.fullmatch(tokens[j][0]) or not _IDENTIFIER.fullmatch(tokens[j - 1][0]):
                return None
            return tokens[j - 1][0], tokens[j][0]
        if tokens[j][0] in ("{", "(", ";"):
            return None
    return None


def names_passed(tokens: list[Token]) -> list[tuple[str, int, str]]:
    """Return (callee, argument index, name) for each argument of a call in `tokens` that is a bare name, maybe
    cast or with `&` (`register_module_init(f, type)` passes `f`): a function's address handed on, if `name`
    turns out to be a function."""
    found = []
    for i in range(len(tokens) - 1):
        callee = tokens[i][0]
        if tokens[i + 1][0] != "(" or not _IDENTIFIER.fullmatch(callee) or callee in KEYWORDS:
            continue
        end = _matching(tokens, i + 1, "(", ")")
        index, start, depth = 0, i + 2, 0
        for j in range(i + 2, end + 1 if end > 0 else 0):
            text = tokens[j][0]
            if text in "([{" and j < end:
                depth += 1
            elif text in ")]}" and j < end:
                depth -= 1
            elif (text == "," and depth == 0) or j == end:
                name = _bare_name(tokens[start:j])
                if name:
                    found.append((callee, index, name))
                index, start = index + 1, j + 1
    return found


def _bare_name(tokens: list[Token]) -> str:
    """Return the name an argument's tokens are (`f`, `&f`, `(GFunc) f`), or ""."""
    texts = [t[0] for t in tokens]
    for _ in range(4):
        if len(texts) > 2 and texts[0] == "(" and texts[-1] == ")" and "(" not in texts[1:-1]:
            texts = texts[1:-1]  # `(cb)`, as a macro's body writes its arguments
        elif len(texts) > 2 and texts[0] == "(" and ")" in texts:
            texts = texts[texts.index(")") + 1:]  # a cast
        elif texts[:1] == ["&"]:
            texts = texts[1:]
        else:
            break
    return texts[0] if len(texts) == 1 and _IDENTIFIER.fullmatch(texts[0]) and texts[0] not in KEYWORDS else ""


def definitions(tokens: list[Token]) -> list[tuple[str, bool, list[Token]]]:
    """Return (name, static, body tokens) of each function an expansion defines: `... name(params) { body }`."""
    found = []
    depth = 0
    start = 0  # where the current file-scope declaration starts
    i = 0
    n = len(tokens)
    while i < n:
        text = tokens[i][0]
        if text in (";", "}") and depth == 0:
            start = i + 1
        elif text == "{" and depth == 0:
            name_at = _declarator_name(tokens, start, i)
            end = _matching(tokens, i, "{", "}")
            if name_at >= 0 and end > 0:
                head = {t[0] for t in tokens[start:name_at]}
                found.append((tokens[name_at][0], "static" in head, tokens[i + 1:end]))
                i = end
                start = end + 1
                continue
            depth += 1
        elif text == "{":
            depth += 1
        elif text == "}":
            depth -= 1
        i += 1
    return found


def _declarator_name(tokens: list[Token], start: int, brace: int) -> int:
    """Return the index of the function name in `... name(params) {`, or -1 (an initializer, a struct)."""
    close = brace - 1
    if close <= start or tokens[close][0] != ")" or any(t[0] == "=" for t in tokens[start:close]):
        return -1
    depth = 0
    for j in range(close, start - 1, -1):
        text = tokens[j][0]
        if text == ")":
            depth += 1
        elif text == "(":
            depth -= 1
            if depth == 0:
                name = tokens[j - 1][0] if j - 1 >= start else ""
                return j - 1 if name.isidentifier() and name not in KEYWORDS else -1
    return -1


def _matching(tokens: list[Token], i: int, opening: str, closing: str) -> int:
    """Return the index of the token closing the group opened at tokens[i], or -1."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j][0] == opening:
            depth += 1
        elif tokens[j][0] == closing:
            depth -= 1
            if depth == 0:
                return j
    return -1


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
        return CallSite(caller, use.file, use.line, use.col, pointer.callee, "field", (), EMPTY,
                        field=pointer.member, receiver=pointer.receiver)
    return CallSite(caller, use.file, use.line, use.col, pointer.callee, "expr", (), EMPTY)
