"""The calls an object-like macro named as a value makes: `f(ctx, NO_DEST)` under `#define NO_DEST temp_arg(NULL)`.

The parser sees `NO_DEST` as a name (a `FunctionRef` of the call it is an
argument of); cpp makes it the call `temp_arg(NULL)`. gcc gives a call
written as an argument the place of the call it is an argument of, so the
expansion's calls are made at that call's site (its line, `#if`s and
loops); a name used otherwise (`x = NO_DEST;`) makes them at the name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace

from chaintrace.extract.facts import CallSite, FileFacts, FunctionRef
from chaintrace.graph.branches import Target
from chaintrace.graph.symbols import Symbols

# The uses of a name inside a function that read its value: an argument, the right of an assignment or a
# declaration, a return (a member of an initializer list is not followed yet).
_VALUE_USES = ("argument", "assignment", "return")


def value_macro_calls(facts: FileFacts, symbols: Symbols) -> Iterator[tuple[CallSite, list[Target]]]:
    """Yield (the call site, what it calls) for each object-like macro a function of `facts` names as a value and
    whose expansion calls a function; the site names the macro (`via` "macro", no arguments)."""
    defines = symbols.scope.defines
    calls: dict[tuple[str, str], list[CallSite]] | None = None
    for ref in facts.refs:
        if not ref.function or ref.usage not in _VALUE_USES or ref.name not in defines:
            continue
        targets = symbols.value_macro_targets(facts.path, ref.name)
        if not targets:
            continue
        if calls is None:
            calls = defaultdict(list)
            for call in facts.calls:
                calls[call.caller, call.callee].append(call)
        outer = _outer_call(ref, calls.get((ref.function, ref.call), [])) if ref.usage == "argument" else None
        if outer is not None:
            yield replace(outer, callee=ref.name, via="macro", args=(), field="", receiver="", within=(),
                          passed=()), targets
        else:
            yield CallSite(ref.function, ref.file, ref.line, ref.col, ref.name, "macro", (), ref.context), targets


def _outer_call(ref: FunctionRef, candidates: list[CallSite]) -> CallSite | None:
    """Return the call `ref` is an argument of: the last of `candidates` (calls of `ref.call` in its function) at or
    before it that passes `ref.name` at its index, or None."""
    found = None
    for call in candidates:
        if (call.line, call.col) > (ref.line, ref.col):
            continue
        if ref.arg_index < len(call.args) and call.args[ref.arg_index] == ref.name:
            if found is None or (call.line, call.col) > (found.line, found.col):
                found = call
    return found
