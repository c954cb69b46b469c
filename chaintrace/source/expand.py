"""A small C macro expander: what `NAME(args)` becomes, given the `#define`s a file sees.

chaintrace parses each file without a preprocessor, so the functions a macro
defines (`OBJECT_DECLARE_TYPE(...)` defines `DEVICE()`, `type_init(f)` a
constructor) and the calls a macro makes (`qemu_mutex_lock(m)` calls
`qemu_mutex_lock_impl`) are invisible to the parser. This module expands
one use the way cpp would, on tokens: arguments substituted (expanded
first, except next to `#` and `##`), `#` and `##` applied, GNU's
`, ## __VA_ARGS__`, and the result rescanned with each macro hidden inside
its own expansion. Where cpp would pick one definition by `#if`, the caller
chooses what `lookup` returns, and each definition of a macro defined
several ways is tried in turn (one macro varied at a time, a few variants
at most).

Every token remembers whether it came from the use's own arguments, so a
caller can tell a call the macro makes (`qemu_mutex_lock_impl(`) from a call
written in an argument (`f(g(x))`: `g` is a call site of its own already).
Pure and bounded: an expansion stops after `MAX_TOKENS`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache

from chaintrace.source.pointer_calls import MEMBER, declared_variables

_TOKEN = re.compile(
    r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|[A-Za-z_]\w*|\.?\d(?:[eEpP][+-]|[\w.])*'
    r"|##|\.\.\.|->|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||\+\+|--|[-+*/%&|^]=|\S"
)
_IDENT = re.compile(r"[A-Za-z_]\w*")
MAX_TOKENS = 20_000
MAX_VARIANTS = 6
_MAX_NESTED = 64  # invocations expanded alone inside one another at most (each is a Python call)


# A token: (text, hide set: the macros it may not expand (cpp's), whether the use's arguments wrote it).
# Plain tuples: an expansion makes millions of them, and a NamedTuple's constructor is a Python call.
Token = tuple[str, frozenset, bool]
_NO_HIDE: frozenset[str] = frozenset()


Definition = tuple[tuple[str, ...] | None, tuple[str, ...]]  # (parameters or None when object-like, body tokens)
Lookup = Callable[[str], Sequence[Definition]]


@lru_cache(maxsize=65536)
def tokenize(text: str) -> tuple[str, ...]:
    """Return the preprocessing tokens of `text` (white space and comments dropped)."""
    if "/" in text:
        text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)
    # interned: the cache holds tens of thousands of bodies whose names recur (QEMU's took 60 MB as copies)
    return tuple(map(sys.intern, _TOKEN.findall(text)))


def definition(params: Sequence[str] | None, body: str) -> Definition:
    """Return a `Definition` from a `#define`'s parameter names (None when object-like) and body text."""
    return (tuple(params) if params is not None else None, tokenize(body))


class ExpansionBudget(Exception):
    """An expansion grew past MAX_TOKENS."""


class Expander:
    """Expands uses with the definitions `lookup` gives (see the module's docstring)."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.produced = 0
        self.choice: dict[str, int] = {}  # macro name -> which of its definitions this run takes
        self.met: dict[str, int] = {}  # macros with several definitions met in this run -> how many
        # What each invocation expanded to (see `_invoke`): a file's uses repeat the same inner invocations
        # (each `DEF_HELPER_*` line of a helper.h expands `dh_ctype(i32)` ...), and so do the runs of one use.
        # Each entry holds the choices it depends on: those of the macros with several definitions it met.
        self._memo: dict[tuple, list[tuple[tuple[tuple[str, int], ...], tuple[Token, ...], int, dict[str, int]]]] = {}
        self._depth = 0

    def expand_use(self, name: str, args: Sequence[str] | None) -> list[list[Token]]:
        """Return the expansions of `name(args)` (of the bare name `name` when `args` is None: an object-like
        macro used as a value): one per definition of each macro met with several (at most `MAX_VARIANTS`, one
        macro varied at a time); [] when `name` is no macro."""
        if not self.lookup(name):
            return []
        tokens = [(name, _NO_HIDE, False)]
        if args is not None:
            tokens += [("(", _NO_HIDE, False)] + _join_args(args) + [(")", _NO_HIDE, False)]
        found: dict[tuple[str, ...], list[Token]] = {}
        runs: list[dict[str, int]] = [{}]
        varied: set[str] = set()
        while runs and len(found) < MAX_VARIANTS:
            self.choice, self.met, self.produced, self._depth = runs.pop(0), {}, 0, 0
            try:
                result = self.expand(tokens)
            except (ExpansionBudget, RecursionError):
                continue
            found.setdefault(tuple(t[0] for t in result), result)
            for macro, count in self.met.items():
                if macro not in varied and len(runs) < MAX_VARIANTS:
                    varied.add(macro)
                    runs += [{**self.choice, macro: i} for i in range(1, min(count, MAX_VARIANTS))]
        return list(found.values())

    def expand(self, tokens: list[Token]) -> list[Token]:
        """Return `tokens` with every macro use in them expanded, rescanning as cpp does."""
        return self._expand(tokens)[0]

    def _expand(self, tokens: list[Token]) -> tuple[list[Token], bool]:
        """Return (`tokens` expanded, whether the end of `tokens` cut an invocation short: a function-like
        macro's name, or an unbalanced `(`, at the end, which in a longer sequence could take what follows)."""
        out: list[Token] = []
        stack = tokens[::-1]
        lookup = self.lookup
        open_end = False
        while stack:
            token = stack.pop()
            text = token[0]
            first = text[:1]
            if not (first.isalpha() or first == "_") or text in token[1]:
                out.append(token)
                continue
            definitions = lookup(text)
            if not definitions:
                out.append(token)
                continue
            if len(definitions) > 1:
                self.met[text] = len(definitions)
            params, body = definitions[min(self.choice.get(text, 0), len(definitions) - 1)]
            if params is None:
                stack.extend(reversed(self._object(token, body)))
                continue
            if not stack or stack[-1][0] != "(":
                open_end = open_end or not stack
                out.append(token)  # a function-like macro's name without arguments is just a name
                continue
            raw, used = _split_stack(stack)
            if raw is None:
                open_end = True
                out.append(token)
                continue
            closing = stack[len(stack) - used]
            del stack[len(stack) - used:]
            # cpp's hide set: what both the name and the closing `)` hide, and the name itself
            hide = (token[1] & closing[1]) | {text}
            expanded = self._invoke(text, params, body, raw, hide, token[2])
            if type(expanded) is tuple:  # the whole expansion of the invocation, rescanned
                out.extend(expanded)
            else:  # its substituted body, to rescan with what follows
                stack.extend(reversed(expanded))
        return out, open_end

    def _invoke(self, name: str, params: tuple[str, ...], body: tuple[str, ...], raw: list[list[Token]],
                hide: frozenset[str], from_arg: bool) -> tuple[Token, ...] | list[Token]:
        """Return the invocation `name(raw)` fully expanded (a tuple), or its substituted body (a list) when it
        must be rescanned with the tokens that follow it.

        cpp rescans a substituted body together with the rest of the input, but
        the rest only matters when the body ends inside an invocation (`_expand`'s
        open end). Otherwise the body expands alone, to the same tokens, with the
        same macros met and the same budget spent; that is remembered and
        replayed for the next identical invocation (same name, arguments, hide
        sets, and the same choice of definition for each macro it met that has several: the lookup is the
        expander's own).
        """
        key = (name, params, body, hide, from_arg, tuple(map(tuple, raw)))  # body: which definition of `name`
        entries = self._memo.get(key)
        if entries is not None:
            choice = self.choice
            for chosen, tokens, produced, met in entries:
                if all(choice.get(macro, 0) == index for macro, index in chosen):
                    self._count(produced)
                    if met:
                        self.met.update(met)
                    return tokens
        outer_met, before = self.met, self.produced
        self.met = {}
        substituted = self._substitute(name, params, body, raw, hide, from_arg)
        if self._depth >= _MAX_NESTED:  # deep enough: rescan in place, as cpp does, without remembering
            outer_met.update(self.met)
            self.met = outer_met
            return substituted
        substituted_met, substituted_produced = dict(self.met), self.produced
        self._depth += 1
        tokens, open_end = self._expand(substituted)
        self._depth -= 1
        if open_end:  # undo the rescan: it is done again in place, with what follows
            self.produced = substituted_produced
            outer_met.update(substituted_met)
            self.met = outer_met
            return substituted
        tokens = tuple(tokens)
        chosen = tuple((macro, self.choice.get(macro, 0)) for macro in self.met)
        self._memo.setdefault(key, []).append((chosen, tokens, self.produced - before, self.met))
        outer_met.update(self.met)
        self.met = outer_met
        return tokens

    def _count(self, n: int) -> None:
        self.produced += n
        if self.produced > MAX_TOKENS:
            raise ExpansionBudget

    def _object(self, token: Token, body: tuple[str, ...]) -> list[Token]:
        self._count(len(body))
        hide = token[1] | {token[0]}
        from_arg = token[2]
        return [(t, hide, from_arg) for t in body]

    def _substitute(self, name: str, params: tuple[str, ...], body: tuple[str, ...], raw: list[list[Token]],
                    hide: frozenset[str], from_arg: bool = False) -> list[Token]:
        """Return the body of `name` with its parameters replaced by the arguments `raw`, `#` and `##` applied."""
        self._count(len(body))
        names = [p[:-3] or "__VA_ARGS__" if p.endswith("...") else p for p in params]
        variadic = bool(params) and params[-1].endswith("...")
        if variadic and len(raw) >= len(names):  # the variadic parameter takes the rest, commas included
            rest = raw[len(names) - 1:]
            joined: list[Token] = []
            for i, arg in enumerate(rest):
                joined += ([(",", _NO_HIDE, True)] if i else []) + arg
            raw = raw[:len(names) - 1] + [joined]
        elif variadic and len(raw) == len(names) - 1:
            raw = raw + [[]]
        if raw == [[]] and not names:
            raw = []
        bound = dict(zip(names, raw))
        expanded: dict[str, list[Token]] = {}
        out: list[Token] = []
        n = len(body)
        i = 0
        while i < n:
            text = body[i]
            if text == "#" and i + 1 < n and body[i + 1] in bound:
                out.append(('"' + " ".join(t[0] for t in bound[body[i + 1]]).replace('"', '\\"') + '"', hide, False))
                i += 2
                continue
            if text in bound:
                pasted = (i > 0 and body[i - 1] == "##") or (i + 1 < n and body[i + 1] == "##")
                if pasted:
                    arg = bound[text]
                    if not arg and i > 1 and body[i - 1] == "##" and body[i - 2] == "," and out and out[-1][0] == "##":
                        out.pop()  # GNU: `, ## __VA_ARGS__` with nothing passed drops the comma
                        if out and out[-1][0] == ",":
                            out.pop()
                        i += 1
                        continue
                    out.extend(arg)
                else:
                    if text not in expanded:
                        expanded[text] = self.expand(list(bound[text]))
                    out.extend(expanded[text])
                if pasted and not bound[text]:
                    out.append(("", hide, False))  # a placemarker: `x ## EMPTY` pastes to `x`
                i += 1
                continue
            out.append((text, hide, from_arg))
            i += 1
        return [t if t[1] >= hide else (t[0], t[1] | hide, t[2]) for t in _paste(out) if t[0]]


def _paste(tokens: list[Token]) -> list[Token]:
    """Return `tokens` with each `a ## b` joined into one token."""
    if not any(t[0] == "##" for t in tokens):
        return tokens
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token[0] == "##" and out and i + 1 < len(tokens):
            left = out.pop()
            right = tokens[i + 1]
            if left[0] == ",":  # GNU's `, ## __VA_ARGS__` with arguments: the comma stays a comma
                out += [left, right]
            else:
                out.append((left[0] + right[0], left[1] | right[1], left[2] and right[2]))
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _join_args(args: Sequence[str]) -> list[Token]:
    """Return the tokens of a use's argument texts, separated by commas, each marked as written by the use."""
    tokens: list[Token] = []
    for i, arg in enumerate(args):
        if i:
            tokens.append((",", _NO_HIDE, True))
        tokens.extend((t, _NO_HIDE, True) for t in tokenize(arg))
    return tokens


def _split_stack(stack: list[Token]) -> tuple[list[list[Token]] | None, int]:
    """Return (the arguments of the group opening at stack[-1], tokens used), or (None, 0) when unbalanced; the
    stack's next token is its last, so it is read from the end."""
    args: list[list[Token]] = [[]]
    depth = 0
    for i in range(len(stack) - 1, -1, -1):
        text = stack[i][0]
        if text == "(":
            depth += 1
            if depth == 1:
                continue
        elif text == ")":
            depth -= 1
            if depth == 0:
                return args, len(stack) - i
        elif text == "," and depth == 1:
            args.append([])
            continue
        args[-1].append(stack[i])
    return None, 0


def calls_made(tokens: list[Token], keywords: frozenset[str],
               declared: dict[str, tuple[str, list[str]]] | None = None) -> list[str]:
    """Return the names called in an expansion (`name (`), leaving out calls written whole in the use's arguments
    and calls through a pointer (`l->begin (`, a variable the expansion declares: see `source.pointer_calls`;
    `declared` is `declared_variables(tokens, keywords)` when the caller has it already)."""
    found = []
    if declared is None:
        declared = declared_variables(tokens, keywords)
    for i in range(len(tokens) - 1):
        token = tokens[i]
        following = tokens[i + 1][0]
        if following == "(" and (token[0] in declared or (i > 0 and tokens[i - 1][0] in MEMBER)):
            continue
        if following == "(" and _IDENT.fullmatch(token[0]) and token[0] not in keywords:
            if token[0] == "cleanup" and i + 3 < len(tokens) and tokens[i + 3][0] == ")":
                found.append(tokens[i + 2][0])  # `__attribute__((cleanup(f)))`: f is called at the scope's end
            elif not (token[2] and tokens[i + 1][2]):
                found.append(token[0])
        elif (following == ")" and i > 0 and tokens[i - 1][0] == "(" and i + 2 < len(tokens)
              and tokens[i + 2][0] == "(" and _IDENT.fullmatch(token[0]) and not tokens[i + 2][2]
              and _opens_expression(tokens[i - 2][0] if i > 1 else ";")):
            found.append(token[0])  # `(func)(x)`: a parenthesised name is still a direct call
    return found


def _opens_expression(previous: str) -> bool:
    """Return True when a `(` after `previous` opens an expression, not a call's or a keyword's `if (`."""
    return previous == "return" or not (_IDENT.fullmatch(previous) or previous in (")", "]"))

