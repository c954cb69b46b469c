"""Calls through pointers in a macro's expansion: `_l->begin(...)`, `_f(...)` of a variable the expansion declares.

`source.expand.calls_made` leaves these out (they name no function); the
graph pass hands them to the value flow as call sites of their own
(`graph.build`), spelled as a `CallSite` spells an indirect call: a member
call with its receiver, cast to the type the expansion declares it with
(`((Listener *)_l)`, which is how the resolver learns a type no declaration
in the caller states); a variable's call with the names whose address its
initializer takes (`LockFunc _f = atomic_read(&lock_func)`: the global it
loads).
"""

from __future__ import annotations

import re
from typing import NamedTuple

Token = tuple[str, frozenset, bool]  # as source.expand's: (text, hide set, whether the use's arguments wrote it)
_IDENT = re.compile(r"[A-Za-z_]\w*")
_WORD = re.compile(r"\w")
MEMBER = ("->", ".")
_TYPE_WORDS = frozenset({"struct", "union", "enum", "const", "volatile", "static", "unsigned", "signed"})
_STATEMENT_START = frozenset({";", "{", "}", "(", ","})


class PointerCall(NamedTuple):
    """A call through a pointer that a macro's expansion makes, spelled the way a `CallSite` spells one."""

    callee: str  # the callee's text: `_l->begin`, `_f`
    receiver: str  # a member call's receiver (cast to its type when the expansion declares it), else ""
    member: str  # a member call's member, else ""
    addressed: tuple[str, ...]  # a variable's call: the names whose address its initializer takes (`&lock_func`)


def declared_variables(tokens: list[Token], keywords: frozenset[str]) -> dict[str, tuple[str, list[str]]]:
    """Return the variables an expansion declares (`LockFunc _f = ...;`, `Listener *_l;`): name -> (type name, the
    tokens of its initializer, [] without one)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for i in range(1, len(tokens) - 1):
        name, following = tokens[i][0], tokens[i + 1][0]
        if following not in ("=", ";", ",", "[") or not _IDENT.fullmatch(name) or name in keywords:
            continue
        j = i - 1
        while j >= 0 and tokens[j][0] == "*":
            j -= 1
        if j < 0 or not _IDENT.fullmatch(tokens[j][0]) or tokens[j][0] in keywords or tokens[j][0] in _TYPE_WORDS:
            continue
        k = j - 1
        while k >= 0 and tokens[k][0] in _TYPE_WORDS:
            k -= 1
        if k >= 0 and tokens[k][0] not in _STATEMENT_START:
            continue  # `a * b;`, `x = y;`: an expression, not a declaration
        initializer: list[str] = []
        if following == "=":
            depth = 0
            for text, _hide, _arg in tokens[i + 2:]:
                if depth == 0 and text in (";", ","):
                    break
                depth += (text in "([{") - (text in ")]}")
                if depth < 0:
                    break
                initializer.append(text)
        found.setdefault(name, (tokens[j][0], initializer))
    return found


def pointer_calls(tokens: list[Token], keywords: frozenset[str],
                  declared: dict[str, tuple[str, list[str]]] | None = None) -> list[PointerCall]:
    """Return the calls through a pointer an expansion makes: through a member (`_l->begin (`) or through a
    variable it declares (`_f (`), leaving out calls written whole in the use's arguments (`declared` as for
    `source.expand.calls_made`)."""
    if declared is None:
        declared = declared_variables(tokens, keywords)
    found: list[PointerCall] = []
    for i in range(1, len(tokens) - 1):
        name, following = tokens[i][0], tokens[i + 1][0]
        if following != "(" or not _IDENT.fullmatch(name) or (tokens[i][2] and tokens[i + 1][2]):
            continue
        if tokens[i - 1][0] in MEMBER:
            start = _operand_start(tokens, i - 2, keywords)
            if start is None:
                continue
            receiver = _receiver_text(tokens[start:i - 1], declared)
            found.append(PointerCall(f"{_text(tokens[start:i - 1])}{tokens[i - 1][0]}{name}", receiver, name, ()))
        elif name in declared:
            initializer = declared[name][1]
            addressed = tuple(dict.fromkeys(initializer[k + 1] for k in range(len(initializer) - 1)
                                            if initializer[k] == "&" and _IDENT.fullmatch(initializer[k + 1])))
            found.append(PointerCall(name, "", "", addressed))
    return found


def _operand_start(tokens: list[Token], end: int, keywords: frozenset[str]) -> int | None:
    """Return where the postfix expression ending at `end` (`a->b[i].c`, `f(x)->d`) starts, or None."""
    i = end
    while i >= 0:
        text = tokens[i][0]
        if text in (")", "]"):
            opening = _opening(tokens, i)
            if opening is None:
                return None
            if text == "]":
                i = opening - 1  # the array the subscript indexes
                continue
            named = opening > 0 and _IDENT.fullmatch(tokens[opening - 1][0]) and tokens[opening - 1][0] not in keywords
            i = opening - 1 if named else opening  # a call `f(x)` or a parenthesised expression
        elif not _IDENT.fullmatch(text) or text in keywords:
            return None
        if i >= 2 and tokens[i - 1][0] in MEMBER:
            i -= 2
            continue
        return i
    return None


def _opening(tokens: list[Token], close: int) -> int | None:
    """Return the index of the bracket that `tokens[close]` closes, or None."""
    pair = {")": "(", "]": "["}[tokens[close][0]]
    depth = 0
    for i in range(close, -1, -1):
        text = tokens[i][0]
        if text == tokens[close][0]:
            depth += 1
        elif text == pair:
            depth -= 1
            if depth == 0:
                return i
    return None


def _receiver_text(tokens: list[Token], declared: dict[str, tuple[str, list[str]]]) -> str:
    """Return a receiver's text; one rooted at a variable the expansion declares is cast to that variable's type
    (`((Listener *)_l)`), which is how the resolver learns a type no declaration in the caller states."""
    first = tokens[0][0]
    if first in declared:
        return f"(({declared[first][0]} *){first}){_text(tokens[1:])}"
    return _text(tokens)


def _text(tokens: list[Token]) -> str:
    """Return tokens as C text: a space only between two words."""
    out: list[str] = []
    for text, _hide, _arg in tokens:
        if out and _WORD.match(out[-1][-1:]) and _WORD.match(text[:1]):
            out.append(" ")
        out.append(text)
    return "".join(out)
