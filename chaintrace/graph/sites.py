"""The JSON-able dict of a call site, as every edge of a call graph lists them (`docs/trace-schema.md`)."""

from __future__ import annotations

from chaintrace.extract.facts import CallSite, Context


def site_of(file: str, line: int, col: int, context: Context, **extra: object) -> dict:
    """Return the JSON-able dict of one site: position, `#if` conditions and enclosing loops."""
    site = {
        "file": file,
        "line": line,
        "col": col,
        "conditions": list(context.conditions),
        "loops": [{"kind": loop.kind, "condition": loop.condition, "line": loop.line} for loop in context.loops],
    }
    site.update(extra)
    return site


def call_site(call: CallSite, **extra: object) -> dict:
    """Return the site dict of a call."""
    return site_of(call.file, call.line, call.col, call.context, **extra)
