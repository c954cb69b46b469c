"""Where gcc places a call written inside the arguments of a function-like macro's use: at that use.

cpp gives every token of a macro's expansion, its arguments' included, the
place of the outermost macro use (gcc reports the expansion point), so
`v9fs_co_run_in_worker({ err = s->ops->lstat(...); })` calls `lstat` at
the line of `v9fs_co_run_in_worker`, while a call inside the arguments of a
plain function call keeps its own line (unless it is one of the arguments:
`extract.calls.site_node`). Which names are macros is known only here, where
each file's macros are (`graph.scope`): the extractor records the calls
around each site (`CallSite.within`) and this pass moves the sites.
"""

from __future__ import annotations

from dataclasses import replace

from chaintrace.extract.facts import CallSite, FileFacts
from chaintrace.graph.scope import MacroScope


def placed(facts: list[FileFacts], scope: MacroScope) -> list[FileFacts]:
    """Return the facts with each call inside a function-like macro's arguments at that macro use's line and
    column (the outermost one's); files with no such call are returned as they were."""
    result = []
    for file_facts in facts:
        moved = _moved(file_facts.path, file_facts.calls, scope)
        result.append(replace(file_facts, calls=moved) if moved is not None else file_facts)
    return result


def _moved(file: str, calls: tuple[CallSite, ...], scope: MacroScope) -> tuple[CallSite, ...] | None:
    """Return `calls` with the moved ones replaced, or None when none moves."""
    changed = None
    macro = scope.function_like
    for index, call in enumerate(calls):
        if not call.within:
            continue
        use = next(((line, col) for name, line, col in call.within if macro(file, name)), None)
        if use is None or use == (call.line, call.col):
            continue
        if changed is None:
            changed = list(calls)
        changed[index] = replace(call, line=use[0], col=use[1])
    return tuple(changed) if changed is not None else None
