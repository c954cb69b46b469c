"""Edits that move lines and nothing else: a resolved graph patched instead of resolved again.

Resolution reads a file's line numbers only to place and order what it
finds: an edit that leaves every fact of a file as it was but for its
`line` and `end_line` fields (a comment added or removed, a blank line,
code moved down by an insertion above it) gives the same graph, its lines
moved. `line_shift` tells such an edit apart and returns how lines move;
`shift_fact` and `shift_rows` apply a move to facts and to the JSON rows of
the graph tables. A move must keep the order of the lines it maps (strictly
increasing), so that every "sorted by position" in resolution and in the
queries gives the same order as a full resolve would.

A `LineMap` maps old line numbers to new ones for the lines that move
(lines absent from it stay); `Shifts` maps a file path to its `LineMap`.
Imports nothing heavy: warm traces read through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

LineMap = dict[int, int]
Shifts = dict[str, LineMap]
_LINE_FIELDS = ("line", "end_line")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # a dataclass's field names, read once (fields() is slow)


def shift_fact(value: Any, move: Callable[[int], int]) -> Any:
    """Return `value` (a fact dataclass, or a tuple or list of them, at any depth) with every
    `line` and `end_line` field passed through `move`; other values are returned as they are."""
    if isinstance(value, (tuple, list)):
        return type(value)(shift_fact(item, move) for item in value) if value else value
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(cls):
            return value
        names = _FIELD_NAMES[cls] = tuple(field.name for field in dataclasses.fields(cls))
    changes = {}
    for name in names:
        old = getattr(value, name)
        if name in _LINE_FIELDS and type(old) is int:
            new = move(old)
        elif isinstance(old, (tuple, list)) or dataclasses.is_dataclass(type(old)):
            new = shift_fact(old, move)
        else:
            continue  # text, flags, numbers: nothing to move
        if new is not old:
            changes[name] = new
    return dataclasses.replace(value, **changes) if changes else value


def _lines_and_shape(facts: Any) -> tuple[list[int], Any]:
    """Return the line numbers of `facts` in a fixed order, and the facts with every line set to 0."""
    lines: list[int] = []

    def record(line: int) -> int:
        lines.append(line)
        return 0

    return lines, shift_fact(facts, record)


def line_shift(old: Any, new: Any) -> LineMap | None:
    """Return how lines move from the facts `old` to the facts `new` of one file: {old line: new line} for the
    lines that move ({} when nothing does), or None when the facts differ otherwise or the move would
    reorder lines (then the graph must be resolved again)."""
    if old == new:
        return {}  # the common edit: a comment appended, nothing moved
    old_lines, old_shape = _lines_and_shape(old)
    new_lines, new_shape = _lines_and_shape(new)
    if old_shape != new_shape:
        return None
    moves: LineMap = {}
    for before, after in zip(old_lines, new_lines):
        if moves.setdefault(before, after) != after:
            return None  # one old line would go to two places
    pairs = sorted(moves.items())
    if any(b[1] <= a[1] for a, b in zip(pairs, pairs[1:])):
        return None  # not strictly increasing: positions would sort differently
    return {before: after for before, after in pairs if before != after}


def compose(first: Shifts, second: Shifts) -> Shifts:
    """Return the shifts of `first` then `second` (`second`'s lines are those `first` gave)."""
    files = set(first) | set(second)
    composed: Shifts = {}
    for file in files:
        one, two = first.get(file, {}), second.get(file, {})
        moves = {line: two.get(moved, moved) for line, moved in one.items()}
        moved_to = set(one.values())
        for line, moved in two.items():
            if line not in one and line not in moved_to:  # a line `first` left where it was
                moves[line] = moved
        moves = {line: moved for line, moved in moves.items() if line != moved}
        if moves:
            composed[file] = moves
    return composed


def shift_json(value: Any, shifts: Shifts, moves: LineMap | None = None) -> Any:
    """Move, in place, the lines of a JSON-able value of the graph tables (edge data, a diagnostic) and return it.

    A dict with a `file` moves its `line` and `end_line` by that file's map, and so do the dicts inside it
    without a `file` of their own (the loops of a site).
    """
    if isinstance(value, list):
        for item in value:
            shift_json(item, shifts, moves)
    elif isinstance(value, dict):
        if "file" in value:
            moves = shifts.get(value["file"])
        if moves:
            for name in _LINE_FIELDS:
                line = value.get(name)
                if type(line) is int and line in moves:
                    value[name] = moves[line]
        for item in value.values():
            if isinstance(item, (list, dict)):
                shift_json(item, shifts, moves)
    return value


def shift_node_row(row: tuple, shifts: Shifts) -> tuple:
    """Return a node row (id, name, file, line, end_line, static, external) with its lines moved."""
    moves = shifts.get(row[2])
    if not moves:
        return row
    return (*row[:3], moves.get(row[3], row[3]), moves.get(row[4], row[4]), *row[5:])
