"""Where each site sits: enclosing loops, `#if` conditions and early-return guards, from byte ranges.

Loops, preprocessor conditionals and guards are tree nodes, so their byte
ranges nest (or are disjoint): sites visited in byte order are answered by a
sweep with a stack per kind, instead of a search per site. Equal contexts
are one shared object (fewer objects; the store keeps each once per file).
"""

from __future__ import annotations

from tree_sitter import Node

from chaintrace.extract.syntax import Source, fold
from chaintrace.extract.facts import Context, Guard, Loop

_LOOPS = {"for_statement": "for", "while_statement": "while", "do_statement": "do"}
EMPTY = Context()


def loop(source: Source, node: Node) -> Loop:
    """Return the Loop fact of a `for`/`while`/`do` node (kind "macro" for a rewritten loop macro)."""
    kind = _LOOPS[node.type]
    if kind == "do":
        condition = node.child_by_field_name("condition")
        return Loop(kind, fold(source.text(condition)) if condition is not None else "", node.start_point[0] + 1)
    body = node.child_by_field_name("body")
    header = source.slice(node.start_byte, body.start_byte if body is not None else node.end_byte)
    if not header.startswith(kind):
        kind = "macro"  # a loop-like macro the normaliser rewrote
    return Loop(kind, fold(header), node.start_point[0] + 1)


def returns(node: Node | None) -> bool:
    """Return True for `return ...;` or a block whose last statement is one."""
    if node is None:
        return False
    if node.type == "return_statement":
        return True
    if node.type == "compound_statement":
        children = node.named_children
        while children and children[-1].type == "comment":
            children = children[:-1]
        return bool(children) and children[-1].type == "return_statement"
    return False


# What an early return's `if` sits in: a block, a `case`, an `else`, a label, an `#if` branch (what the
# query `(compound_statement (if_statement ...))` matched, read from QEMU's trees).
_BLOCKS = frozenset({"compound_statement", "case_statement", "else_clause", "labeled_statement", "preproc_if",
                     "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef", "ERROR"})


def guard(source: Source, node: Node) -> tuple[int, int, int, int, Guard] | None:
    """Return (if start, if end, block start, block end, Guard) of an `if` whose branch returns, else None."""
    block = source.parent(node)
    if block is None or block.type not in _BLOCKS or not returns(node.child_by_field_name("consequence")):
        return None
    condition = node.child_by_field_name("condition")
    text = fold(source.text(node))[:200]
    fact = Guard(fold(source.text(condition)) if condition is not None else "", text, node.start_point[0] + 1)
    return node.start_byte, node.end_byte, block.start_byte, block.end_byte, fact


def conditional(source: Source, node: Node) -> list[tuple[int, int, str]]:
    """Return the (start, end, condition) parts of an `#if`-like node: its own branch and its `#else` part.

    Code in the `#else` part is under `!(condition)`; code in an `#elif` part
    gets "" here (the `#elif` node is a conditional of its own).
    """
    if node.type in ("preproc_if", "preproc_elif"):
        condition = node.child_by_field_name("condition")
        text = fold(source.text(condition)) if condition is not None else ""
    else:
        name = node.child_by_field_name("name")
        directive = source.original[node.start_byte:node.start_byte + 16].lstrip(b"# \t").split(None, 1)
        negated = bool(directive) and directive[0] in (b"ifndef", b"elifndef")
        text = f"{'!' if negated else ''}defined({source.text(name) if name else '?'})"
    alternative = node.child_by_field_name("alternative")
    if alternative is None:
        return [(node.start_byte, node.end_byte, text)]
    parts = [(node.start_byte, alternative.start_byte, text)]
    if alternative.type == "preproc_else":
        parts.append((alternative.start_byte, node.end_byte, f"!({text})"))
    return parts


class Contexts:
    """Answers "what surrounds this site?" for sites visited in byte order.

    Each query moves a sweep forward, pushing the loops, conditionals and
    guards that start before the site on a stack per kind and popping those
    that have ended. A query behind the previous one restarts the sweep, so
    any order is answered correctly; byte order is fast.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.loops: list[tuple[int, int, Loop]] = []
        self.conditionals: list[tuple[int, int, str]] = []
        self.guards: list[tuple[int, int, int, int, Guard]] = []
        self._sorted = False
        self._memo: dict[tuple, Context] = {}
        self._restart()

    def _restart(self) -> None:
        self._last = -1
        self._next_event = -1  # the first byte at which a stack may change (-1: compute)
        self._indexes = [0, 0, 0]
        self._stacks: tuple[list, list, list] = ([], [], [])
        # the sweep's state (indexes, stack sizes, function) at the last site, and its answer
        self._cached: tuple[tuple, Context] = ((), EMPTY)

    def _sort(self) -> None:
        self.loops.sort(key=lambda row: (row[0], -row[1]))
        self.conditionals.sort(key=lambda row: (row[0], -row[1]))
        # A guard applies from the end of its `if` to the end of its block.
        self._guards = sorted(((g[1], g[3], g[0], g[2], g[4]) for g in self.guards), key=lambda row: (row[0], -row[1]))
        self._sorted = True

    def at(self, start: int, end: int, function_start: int) -> Context:
        """Return the Context of the site spanning bytes [start, end) in the function starting at `function_start` (-1: none)."""
        if not self._sorted:
            self._sort()
            if not (self.loops or self.conditionals or self._guards):
                self.at = lambda start, end, function_start: EMPTY  # nothing ever surrounds a site
                return EMPTY
        if start < self._last:
            self._restart()
        self._last = start
        indexes = self._indexes
        stacks = self._stacks
        if start >= self._next_event:
            upcoming = []
            for kind, intervals in enumerate((self.loops, self.conditionals, self._guards)):
                stack = stacks[kind]
                indexes[kind] = _advance(intervals, indexes[kind], stack, start)
                if stack:
                    upcoming.append(stack[-1][1])
                if indexes[kind] < len(intervals):
                    upcoming.append(intervals[indexes[kind]][0])
            self._next_event = min(upcoming) if upcoming else 1 << 62
        loop_stack, cond_stack, guard_stack = stacks
        state = (*indexes, len(loop_stack), len(cond_stack), len(guard_stack), function_start)
        if state == self._cached[0]:
            return self._cached[1]  # same surroundings as the previous site
        # Nodes nest, so a site that starts inside a stacked range ends inside
        # it too: only the function boundary needs checking.
        found_loops: tuple[Loop, ...] = ()
        found_guards: tuple[Guard, ...] = ()
        if function_start >= 0:
            if loop_stack:
                found_loops = tuple(row[2] for row in loop_stack if row[0] >= function_start)
            if guard_stack:
                found_guards = tuple(row[4] for row in guard_stack if row[2] >= function_start)
        conditions = tuple(row[2] for row in cond_stack if row[2])
        context = EMPTY
        if found_loops or found_guards or conditions:
            key = (found_loops, conditions, found_guards)
            context = self._memo.get(key)
            if context is None:
                context = self._memo[key] = Context(found_loops, conditions, found_guards)
        self._cached = (state, context)
        return context


def _advance(intervals: list, index: int, stack: list, point: int) -> int:
    """Push the intervals starting at or before `point`, drop those ended by then; return the next index."""
    while index < len(intervals) and intervals[index][0] <= point:
        row = intervals[index]
        while stack and stack[-1][1] <= row[0]:
            stack.pop()
        stack.append(row)
        index += 1
    while stack and stack[-1][1] <= point:
        stack.pop()
    return index
