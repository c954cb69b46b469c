"""Just enough reading of C text to find a function body, its statements and a `#define`.

This is the plain-text stand-in for the fact store: every function takes the
file text and returns offsets into it, so line numbers stay those of the file.
Comments and string literals are blanked first (same length, newlines kept),
so braces and words inside them never match.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass

_BODY_START = re.compile(r"\s*\{")
_TOKEN = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a function body: its whitespace-folded text and 1-based line."""

    text: str
    line: int


def code_view(text: str) -> str:
    """Return `text` with comments and string/char literal contents replaced by spaces (same offsets)."""

    def blank(match: re.Match[str]) -> str:
        token = match.group(0)
        inner = re.sub(r"[^\n]", " ", token)
        if token[0] in "\"'":
            # Keep the quotes so `"x"` still reads as a literal.
            return token[0] + inner[1:-1] + token[-1]
        return inner

    return _TOKEN.sub(blank, text)


def line_of(text: str, offset: int) -> int:
    """Return the 1-based line number of `offset` in `text`."""
    return text.count("\n", 0, offset) + 1


def _matching(code: str, start: int, open_char: str, close_char: str) -> int:
    """Return the offset just past the bracket closing the one at `start`, or -1 if unbalanced."""
    depth = 0
    for index in range(start, len(code)):
        char = code[index]
        if char == open_char:
            depth += 1
        elif char == close_char:
            depth -= 1
            if depth == 0:
                return index + 1
    return -1


def find_function(code: str, name: str) -> tuple[int, int] | None:
    """Return (offset of the name, offset past the closing brace) of the definition of `name`, or None.

    `code` must come from `code_view`. A definition is `name (...)` followed by
    `{`; calls and prototypes are followed by something else.
    """
    for match in re.finditer(r"\b" + re.escape(name) + r"\s*\(", code):
        close = _matching(code, match.end() - 1, "(", ")")
        if close < 0:
            continue
        body = _BODY_START.match(code, close)
        if body is not None:
            end = _matching(code, body.end() - 1, "{", "}")
            if end > 0:
                return match.start(), end
    return None


def statements(code: str, start: int, end: int) -> list[Statement]:
    """Return the statements of `code[start:end]`, split at `;`, `{` and `}`, whitespace folded.

    A control header (`if (a && b)`) ends at its `{`, so it reads as one
    statement; parentheses are respected, so `for (;;)` stays whole.
    """
    found: list[Statement] = []
    depth = 0
    begin = start
    for index in range(start, end):
        char = code[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char in ";{}":
            piece = code[begin:index]
            folded = " ".join(piece.split())
            if folded:
                lead = len(piece) - len(piece.lstrip())
                found.append(Statement(folded, line_of(code, begin + lead)))
            begin = index + 1
    return found


_OPERATORS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Div: operator.floordiv,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}


def int_value(body: str) -> int | None:
    """Return the value of a constant integer expression such as `(128 << 20)` or `100ULL`, or None."""
    cleaned = re.sub(r"\b(\d+)(?:[uU]?[lL]{0,2}|[lL]{1,2}[uU])\b", r"\1", body.strip())

    def evaluate(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](evaluate(node.left), evaluate(node.right))
        raise ValueError("not a constant integer expression")

    try:
        return evaluate(ast.parse(cleaned, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None
