"""Member reads whose whole value a statement copies into a variable (`cb = ts->cb;`) or returns
(`return klass->build_dev_aml;`): graph.flowfacts follows them.

Kept apart from `reads` (which needs tree-sitter) because the cache's decoder asks it of every read it
loads for the graph, and a trace should not import the parser for that.
"""

from __future__ import annotations

import re

from chaintrace.extract.facts import FieldRead

# `name = value;` (folded statement text); `==` is a comparison, not an assignment
_PLAIN_ASSIGNMENT = re.compile(r"([A-Za-z_]\w*)\s*=(?!=)\s*(.+?)\s*;?", re.S)


def variable_assigned(read: FieldRead) -> str:
    """Return the variable a member read is assigned to whole (`cb = ts->cb;` gives "cb"), or ""."""
    if read.how != "rhs":
        return ""
    found = _PLAIN_ASSIGNMENT.fullmatch(read.statement)
    return found.group(1) if found is not None and found.group(2) == read.expr else ""


def returned_whole(read: FieldRead) -> bool:
    """Return True for a member read a `return` statement returns whole (`return klass->build_dev_aml;`)."""
    return read.how == "return" and read.statement == f"return {read.expr};"
