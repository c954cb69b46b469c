"""Field writes and reads as the JSON rows of the graph tables (`graph_tables`), and back.

A row holds the fact's fields in order, then its context (loops, `#if`
conditions, guards) as plain lists: JSON, never a format that runs code.
"""

from __future__ import annotations

import json

from chaintrace.extract.facts import Context, FieldRead, FieldWrite, Guard, Loop


def access_row(access: FieldWrite | FieldRead) -> str:
    """Return a field write or read as one JSON row: its fields in order, the context last."""
    context = access.context
    fields = [getattr(access, name) for name in access.__slots__ if name != "context"]
    return json.dumps([
        *fields, [[loop.kind, loop.condition, loop.line] for loop in context.loops], list(context.conditions),
        [[guard.condition, guard.statement, guard.line] for guard in context.guards],
    ])


def access_from_row(cls: type, text: str) -> FieldWrite | FieldRead:
    """Return the field write or read (`cls`) a row of `access_row` holds."""
    *fields, loops, conditions, guards = json.loads(text)
    context = Context(tuple(Loop(*loop) for loop in loops), tuple(conditions), tuple(Guard(*guard) for guard in guards))
    return cls(*fields, context)
