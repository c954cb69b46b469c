"""Where gcc places a call: the extractor's place, moved where gcc's argument rules and macros say.

gcc gives an argument the place of the call it is passed to, so a call
passed directly as an argument is at the outermost call of that chain
(`extract.calls.site_climb` places it there) unless gcc converts it to the
parameter's type: then the conversion is the argument and the call keeps its
own place (`g_ptr_array_add(a,\\n virtio_add_queue(...))` returns a
`VirtQueue *` to a `gpointer`; `graph.type_identity` compares the types).
And cpp gives every token of a macro's expansion, its arguments' included,
the place of the outermost macro use: `v9fs_co_run_in_worker({ err =
s->ops->lstat(...); })` calls `lstat` at the line of `v9fs_co_run_in_worker`.
Which names are macros and functions is known only here, where each file's
macros and every prototype are: the extractor records the calls around each
site (`CallSite.passed`, `CallSite.within`) and this pass moves the sites.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from chaintrace.extract.facts import CallSite, FileFacts, Param
from chaintrace.graph.alternatives import load_prototypes, load_types
from chaintrace.graph.scope import MacroScope
from chaintrace.graph.type_identity import TypeNames, converted, promoted


def placed(facts: list[FileFacts], scope: MacroScope) -> list[FileFacts]:
    """Return the facts with each call placed where gcc places it (see the module's docstring); files none of
    whose calls moves are returned as they were."""
    signatures = _Signatures(facts)
    result = []
    for file_facts in facts:
        moved = _moved(file_facts.path, file_facts.calls, scope, signatures)
        result.append(replace(file_facts, calls=moved) if moved is not None else file_facts)
    return result


class _Signatures:
    """The return and parameter types of the functions the argument chains name (their first declaration, else the
    build table's `[prototypes]` of the system headers)."""

    def __init__(self, facts: list[FileFacts]) -> None:
        wanted: set[str] = set()
        for file_facts in facts:
            for call in file_facts.calls:
                if call.passed:
                    wanted.add(call.callee)
                    wanted.update(hop.name for hop in call.passed)
        self.returns: dict[str, str] = {}
        self.params: dict[str, tuple[Param, ...]] = {}
        typedefs: dict[str, set[str]] = defaultdict(set)
        for file_facts in facts:
            for declared in (*file_facts.functions, *file_facts.prototypes):
                if declared.name in wanted and declared.name not in self.returns:
                    self.returns[declared.name] = declared.return_type
                    self.params[declared.name] = declared.params
            for typedef in file_facts.typedefs:
                typedefs[typedef.name].add(typedef.type)
        for name, (returned, params) in load_prototypes().items():  # the system's, where the tree declares none
            if name in wanted and name not in self.returns:
                self.returns[name] = returned
                self.params[name] = tuple(Param("..." if t == "..." else "", t) for t in params)
        self.types = TypeNames(dict(typedefs), load_types())

    def returned(self, name: str):
        """Return the `CType` the function `name` returns, or None when unknown."""
        text = self.returns.get(name)
        return self.types.resolve(text) if text else None

    def converts(self, argument, name: str, index: int) -> bool:
        """Return True when gcc converts an argument of type `argument` passed as argument `index` of `name`
        (unknown types never do: the call keeps the place of the call it is passed to)."""
        params = self.params.get(name)
        if params is None or argument is None:
            return False
        fixed = [p for p in params if p.type != "..."]
        if len(fixed) == 1 and fixed[0].type == "void" and not fixed[0].name:
            fixed = []
        if index < len(fixed):
            return bool(converted(argument, self.types.resolve(fixed[index].type)))
        return len(fixed) < len(params) and bool(promoted(argument))


def _moved(file: str, calls: tuple[CallSite, ...], scope: MacroScope, signatures: _Signatures) -> tuple[CallSite, ...] | None:
    """Return `calls` with the moved ones replaced, or None when none moves."""
    changed = None
    for index, call in enumerate(calls):
        if not call.within and not call.passed:
            continue
        place = _place(file, call, scope, signatures)
        if place == (call.line, call.col):
            continue
        if changed is None:
            changed = list(calls)
        changed[index] = replace(call, line=place[0], col=place[1])
    return tuple(changed) if changed is not None else None


def _place(file: str, call: CallSite, scope: MacroScope, signatures: _Signatures) -> tuple[int, int]:
    """Return the line and column gcc gives `call`."""
    macro = scope.function_like
    hops = call.passed
    stop = None
    argument = signatures.returned(call.callee) if call.via == "name" and not macro(file, call.callee) else None
    for i, hop in enumerate(hops):
        if hop.name and macro(file, hop.name):
            argument = None  # what a macro makes of its argument is not read here: the climb goes on
            continue
        if hop.name and signatures.converts(argument, hop.name, hop.index):
            stop = i
            break
        argument = signatures.returned(hop.name) if hop.name else None
    if stop is None:
        place, above = (call.line, call.col), []
    else:  # the conversion is the argument: the call keeps the place it had below that hop
        place = (hops[stop].line, hops[stop].col)
        # the calls it is no longer placed at still hold it, outermost first: (name, line, column)
        above = [(hops[j].name, *((hops[j + 1].line, hops[j + 1].col) if j + 1 < len(hops) else (call.line, call.col)))
                 for j in range(len(hops) - 1, stop - 1, -1)]
    # the outermost function-like macro use around the place gives it its own
    around = [(a.name, a.line, a.col) for a in call.within] + above
    return next(((line, col) for name, line, col in around if name and macro(file, name)), place)
