"""Target specs -> the sites they match: `FUNC`, `assign:FIELD`, `assign:EXPR`, `call:FUNC`, `FILE:LINE`.

`FUNC` is the function itself; `assign:FIELD` every write to a field of that
name; `assign:EXPR` the writes whose left-hand side is EXPR's, white space
ignored (`assign:s->threshold_size`); `call:FUNC` every call site of FUNC
(direct, ops and fnptr edges into it); `FILE:LINE` the innermost function
holding that line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from chaintrace.extract.facts import CallSite, Context, FieldWrite
from chaintrace.query.lookup import GraphLookup, UnknownFunction, find_function, function_at, id_of
from chaintrace.query.results import TargetSite

_FIELD_NAME = re.compile(r"[A-Za-z_]\w*")
_FILE_LINE = re.compile(r".+:\d+")
_SPACE = re.compile(r"\s+")


def find_targets(graph: GraphLookup, spec: str, writes: Iterable[FieldWrite] = (), calls: Iterable[CallSite] = (),
                 read_line: Callable[[str, int], str] | None = None) -> list[TargetSite]:
    """Return the sites a target spec matches, in file and line order.

    `writes` (for `assign:`) and `calls` (statements of `call:` sites) are
    facts of the tree; `read_line(file, line)` gives a `FILE:LINE` target's
    statement. Raises UnknownFunction for an unknown FUNC.
    """
    kind, _, value = spec.partition(":")
    if kind == "assign" and value:
        sites = _assignments(graph, value, writes)
    elif kind == "call" and value:
        sites = _call_sites(graph, value, calls)
    elif _FILE_LINE.fullmatch(spec) and kind not in ("assign", "call"):
        sites = [_line(graph, spec, read_line)]
    else:
        function = find_function(graph, spec)
        attrs = graph.node(function)
        sites = [TargetSite("function", function, attrs["file"], attrs["line"], 0, attrs["name"])]
    return sorted(set(sites), key=lambda s: (s.file, s.line, s.col))


def _assignments(graph: GraphLookup, value: str, writes: Iterable[FieldWrite]) -> list[TargetSite]:
    """Return the writes to field `value`, or (for an expression) to that left-hand side."""
    plain = _FIELD_NAME.fullmatch(value) is not None
    wanted = _SPACE.sub("", value)
    sites = []
    for write in writes:
        if (write.field == value if plain else _SPACE.sub("", write.lhs) == wanted) and write.function:
            function = id_of(graph, write.file, write.function)
            if function is not None:
                sites.append(TargetSite("assign", function, write.file, write.line, write.col,
                                        write.statement, _context(write.context)))
    return sites


def _call_sites(graph: GraphLookup, value: str, calls: Iterable[CallSite]) -> list[TargetSite]:
    """Return the sites of the direct, ops and fnptr edges into function `value`."""
    callee = find_function(graph, value)
    texts = {(c.file, c.line, c.col): f"{c.callee}({', '.join(c.args)})" for c in calls}
    sites = []
    for caller, _, edge_kind, data in graph.in_edges(callee):
        if edge_kind in ("direct", "ops", "fnptr"):
            for s in data["sites"]:
                statement = texts.get((s["file"], s["line"], s["col"]), f"{graph.node(callee)['name']}(...)")
                sites.append(TargetSite("call", caller, s["file"], s["line"], s["col"], statement,
                                        {"loops": s["loops"], "conditions": s["conditions"], "guards": []}))
    return sites


def _line(graph: GraphLookup, spec: str, read_line: Callable[[str, int], str] | None) -> TargetSite:
    """Return the site of a `FILE:LINE` spec, in the innermost function that holds the line."""
    file, _, line = spec.rpartition(":")
    function = function_at(graph, file, int(line))
    if function is None:
        raise UnknownFunction(f"no function of the graph holds {spec}")
    statement = read_line(file, int(line)).strip() if read_line else ""
    return TargetSite("line", function, file, int(line), 0, statement)


def _context(context: Context) -> dict:
    """Return a write's context as the trace document has it: loops, `#if` conditions, guards."""
    return {
        "loops": [{"kind": loop.kind, "condition": loop.condition, "line": loop.line} for loop in context.loops],
        "conditions": list(context.conditions),
        "guards": [{"condition": g.condition, "statement": g.statement, "line": g.line} for g in context.guards],
    }
