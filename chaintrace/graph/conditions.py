"""`#if` conditions decided as cpp would, where the macros they name are known: a small, total evaluator (no `eval`).

`decide` reads a condition three-valued: True, False, or None when it names a macro nothing here defines (the
build's configuration decides it) or an expression the evaluator does not read. Templates decide their
inclusions' branches with it (`graph/templates`); `BuildConfig` decides the branches the default build's
configuration values settle (`queries/qemu/build.toml`'s `[config]`: `TARGET_LONG_BITS == 64`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from chaintrace.extract.facts import Define
from chaintrace.source.expand import Definition, ExpansionBudget, Expander, Lookup, definition, tokenize

# The macros an inclusion sees from its includers, by name: the last definition above the `#include`, or None for
# a macro an includer defines only below it (`ZRLE_COMPACT_PIXEL` before its own inclusions): not defined there.
Env = dict[str, Define | None]
_NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*")
_IDENT = re.compile(r"[A-Za-z_]\w*")


def decide(condition: str, env: Env, lookup: Lookup) -> bool | None:
    """Return whether an `#if` condition holds in an inclusion: True, False, or None when it cannot be told (a name
    the build's configuration defines, an expression this evaluator does not read)."""
    tokens = list(tokenize(condition))
    out: list[str] = []
    i = 0
    while i < len(tokens):  # `defined X` / `defined(X)` first: its operand is never expanded
        if tokens[i] == "defined":
            j = i + 1
            paren = j < len(tokens) and tokens[j] == "("
            name = tokens[j + 1] if paren and j + 1 < len(tokens) else tokens[j] if j < len(tokens) else ""
            out.append({True: "1", False: "0"}.get(_defined(name, env, lookup), "__unknown__"))
            i = j + (3 if paren else 1)
            continue
        out.append(tokens[i])
        i += 1
    expander = Expander(lookup)
    try:
        expanded = [t[0] for t in expander.expand([(t, frozenset(), False) for t in out])]
    except (ExpansionBudget, RecursionError):  # an expansion past its budget: undecided
        return None
    value = _Parser(expanded).parse()
    return None if value is None else bool(value)


def _defined(name: str, env: Env, lookup: Lookup) -> bool | None:
    """Return whether `defined(name)` holds in an inclusion: known for the includers' macros, else None."""
    if name in env:
        return env[name] is not None
    return None


class _Parser:
    """A C `#if` expression over integers, three-valued: None is "unknown" (`x && 0` is still 0)."""

    _BINARY = [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="), ("<<", ">>"),
               ("+", "-"), ("*", "/", "%")]

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.at = 0

    def parse(self) -> int | None:
        try:
            value = self._ternary()
        except (IndexError, ValueError, ZeroDivisionError, RecursionError):
            return None
        return value if self.at == len(self.tokens) else None

    def _peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def _ternary(self) -> int | None:
        cond = self._binary(0)
        if self._peek() != "?":
            return cond
        self.at += 1
        yes = self._ternary()
        if self._peek() != ":":
            raise ValueError("?: without :")
        self.at += 1
        no = self._ternary()
        return None if cond is None else yes if cond else no

    def _binary(self, level: int) -> int | None:
        if level == len(self._BINARY):
            return self._unary()
        left = self._binary(level + 1)
        while self._peek() in self._BINARY[level]:
            op = self.tokens[self.at]
            self.at += 1
            right = self._binary(level + 1)
            left = _apply(op, left, right)
        return left

    def _unary(self) -> int | None:
        token = self._peek()
        if token in ("!", "-", "~", "+"):
            self.at += 1
            value = self._unary()
            if value is None:
                return None
            return {"!": int(not value), "-": -value, "~": ~value, "+": value}[token]
        if token == "(":
            self.at += 1
            value = self._ternary()
            if self._peek() != ")":
                raise ValueError("unbalanced")
            self.at += 1
            return value
        self.at += 1
        number = _NUMBER.fullmatch(token)
        if number:
            digits = number.group(1)
            octal = len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX"
            return int(digits, 8) if octal else int(digits, 0)
        if _IDENT.fullmatch(token):
            return None  # a name no inclusion defines: the build's configuration decides
        raise ValueError(f"unexpected {token!r}")


def _apply(op: str, left: int | None, right: int | None) -> int | None:
    if op == "&&":
        return 0 if left == 0 or right == 0 else None if left is None or right is None else 1
    if op == "||":
        return 1 if (left not in (0, None)) or (right not in (0, None)) else None if left is None or right is None else 0
    if left is None or right is None:
        return None
    if op in ("/", "%"):
        return None if right == 0 else int(left / right) if op == "/" else left - right * int(left / right)
    if op in ("<<", ">>"):
        return None if not 0 <= right < 64 else left << right if op == "<<" else left >> right
    return _OPERATORS[op](left, right)


_OPERATORS = {"|": lambda a, b: a | b, "^": lambda a, b: a ^ b, "&": lambda a, b: a & b,
              "==": lambda a, b: int(a == b), "!=": lambda a, b: int(a != b), "<": lambda a, b: int(a < b),
              ">": lambda a, b: int(a > b), "<=": lambda a, b: int(a <= b), ">=": lambda a, b: int(a >= b),
              "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


class BuildConfig:
    """The configuration values of the default build (`[config]` of `queries/qemu/build.toml`: name -> value, or
    false for a macro the build does not define), and the `#if` branches they rule out."""

    def __init__(self, values: dict[str, int | None] | None = None) -> None:
        if values is None:
            from chaintrace.graph.alternatives import load_config
            values = load_config()
        self.env: Env = {name: None if value is None else Define(name, None, str(value), "<build>", 0)
                         for name, value in values.items()}
        self._names = frozenset(values)
        self._memo: dict[str, bool | None] = {}

    def lookup(self, name: str) -> list[Definition]:
        """Return the build's definition of `name` ([] when it has none or is not one of the configuration's)."""
        made = self.env.get(name)
        return [definition(None, made.body)] if made is not None else []

    def rules_out(self, conditions: Iterable[str]) -> bool:
        """Return True when the build's values decide one of the `#if` conditions false (`TARGET_BIG_ENDIAN` on a
        little-endian target); a condition naming none of them is never decided here."""
        return any(self.verdict(condition) is False for condition in conditions)

    def verdict(self, condition: str) -> bool | None:
        """Return what the build's values say of one `#if` condition (None: they do not decide it)."""
        verdict = self._memo.get(condition, ...)
        if verdict is ...:
            named = self._names and not self._names.isdisjoint(_IDENT.findall(condition))
            verdict = self._memo[condition] = decide(condition, self.env, self.lookup) if named else None
        return verdict
