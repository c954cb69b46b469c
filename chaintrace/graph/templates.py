"""Templates a file includes several times, each time under other macros: one instance per inclusion.

`cirrus_vga.c` includes `cirrus_vga_rop.h` once per `#define ROP_NAME ...`,
and that header includes `cirrus_vga_rop2.h` once per `#define DEPTH ...`;
`vnc-enc-zrle.c` includes `vnc-enc-zrle.c.inc` once per `ZRLE_BPP` and
endianness. gcc compiles each inclusion with the macros defined before it,
so `glue(rop_8_, ROP_NAME)` or `ZRLE_ENCODE` is another function each time
and its calls go to that instance's functions. Read with every definition
at once, the template would define a few names and call every instance's
functions from each.

`Instances` finds such templates (a header or `.c.inc` that few files
include, one of them more than once, or that only such templates include)
and gives each inclusion's
macros: the includer's `#define`s above the `#include` (and the includer's
own instance's, when it is a template too). `instance_lookup` reads macros
as cpp would in that inclusion: the template's own definitions whose `#if`
conditions hold there (the first that holds; those that cannot be decided
are all kept), then the inclusion's, then what the template sees anyway.
Conditions are decided by `decide` (a small, total evaluator: no `eval`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from chaintrace.extract.facts import Define, FileFacts
from chaintrace.graph.scope import FEW_INCLUDERS, MacroScope
from chaintrace.source.expand import Definition, Expander, Lookup, definition, tokenize

MAX_INSTANCES = 256  # inclusions of one template at most (cirrus_vga_rop2.h: 16 ROP_NAMEs x 4 DEPTHs)
# The macros an inclusion sees from its includers, by name: the last definition above the `#include`, or None for
# a macro an includer defines only below it (`ZRLE_COMPACT_PIXEL` before its own inclusions): not defined there.
Env = dict[str, Define | None]
_NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*")
_IDENT = re.compile(r"[A-Za-z_]\w*")


class Instances:
    """The templates of a tree that are included more than once, and the macros of each inclusion."""

    def __init__(self, facts: Iterable[FileFacts], scope: MacroScope) -> None:
        self.scope = scope
        self._facts = {f.path: f for f in facts}
        self.own_defines: dict[str, dict[str, list[Define]]] = {}
        self._envs: dict[str, list[Env]] = {}
        # includer -> [(template, include line, include conditions)], in line order
        self._included: dict[str, list[tuple[str, int, tuple[str, ...]]]] = defaultdict(list)
        counts: dict[tuple[str, str], int] = defaultdict(int)  # (includer, template) -> inclusions
        for path, file_facts in self._facts.items():
            for include in file_facts.includes:
                for target in scope.resolve(path, include.target, include.system):
                    if target in self._facts and not target.endswith(".c") and target != path:
                        self._included[path].append((target, include.line, include.conditions))
                        counts[path, target] += 1
        self.templates = {t for (_, t), n in counts.items()
                          if n > 1 and len(set(scope.includers.get(t, ()))) <= FEW_INCLUDERS}
        # a file that only templates include is compiled once per inclusion of theirs too (vnc-enc-zrle.c.inc's
        # vnc-enc-zywrle-template.c)
        changed = True
        while changed:
            changed = False
            for includer, items in self._included.items():
                if includer in self.templates:
                    for target, _, _ in items:
                        includers = set(scope.includers.get(target, ()))
                        if target not in self.templates and includers <= self.templates:
                            self.templates.add(target)
                            changed = True

    def defines_of(self, path: str) -> dict[str, list[Define]]:
        """Return the `#define`s of file `path` by name, in line order."""
        found = self.own_defines.get(path)
        if found is None:
            found = defaultdict(list)
            file_facts = self._facts.get(path)
            for define in sorted(file_facts.defines if file_facts else (), key=lambda d: d.line):
                found[define.name].append(define)
            self.own_defines[path] = found = dict(found)
        return found

    def envs(self, template: str) -> list[Env]:
        """Return the macros of each inclusion of `template` ([] for a file that is no such template)."""
        if template not in self.templates:
            return []
        found = self._envs.get(template)
        if found is None:
            self._envs[template] = []  # an include cycle ends here
            found = []
            for includer in dict.fromkeys(self.scope.includers.get(template, ())):
                parents = self.envs(includer) or [{}]
                for parent in parents:
                    lookup = instance_lookup(self, includer, parent, self.scope.lookup(includer))
                    for target, line, conditions in self._included.get(includer, ()):
                        if target != template or len(found) >= MAX_INSTANCES:
                            continue
                        env = self._env_at(includer, parent, lookup, line)
                        if all(decide(c, env, layered(env, lookup)) is not False for c in conditions):
                            found.append(env)
            self._envs[template] = found
        return found

    def _env_at(self, includer: str, parent: Env, lookup: Lookup, line: int) -> Env:
        env = dict(parent)
        for name, defines in self.defines_of(includer).items():
            env.setdefault(name, None)
            for define in defines:
                if define.line < line and all(decide(c, parent, lookup) is not False for c in define.conditions):
                    env[name] = define
        return env


def layered(env: Env, fallback: Lookup) -> Lookup:
    """Return a lookup that reads `env` first (None: not defined there), then `fallback`."""
    def lookup(name: str) -> list[Definition]:
        if name in env:
            made = env[name]
            return [definition(made.params, made.body)] if made is not None else []
        return list(fallback(name))
    return lookup


def instance_lookup(instances: Instances, template: str, env: Env, base: Lookup) -> Lookup:
    """Return a macro lookup for one inclusion of `template` (see the module's docstring)."""
    own = instances.defines_of(template)
    outer = layered(env, base)
    memo: dict[str, list[Definition]] = {}

    def lookup(name: str) -> list[Definition]:
        found = memo.get(name)
        if found is None:
            memo[name] = []  # a condition naming the macro it guards decides without it
            chosen = _chosen(own.get(name, ()), env, lookup)
            found = [definition(d.params, d.body) for d in chosen] if chosen else outer(name)
            memo[name] = found
        return found
    return lookup


def _chosen(defines: Iterable[Define], env: Env, lookup: Lookup) -> list[Define]:
    """Return the definitions an inclusion takes of the template's own: those whose conditions cannot be decided,
    up to the first whose conditions hold (an `#if`/`#elif`/`#else` chain takes its first true branch)."""
    found = []
    for define in defines:
        verdicts = [decide(c, env, lookup) for c in define.conditions]
        if False in verdicts:
            continue
        found.append(define)
        if None not in verdicts:
            break
    return found


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
    except Exception:  # an expansion past its budget: undecided
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
