"""Whether two C types are one type, as gcc asks when it passes an argument to a parameter.

A call passed directly as an argument takes the place of the call it is
passed to, unless gcc converts it to the parameter's type, which it does
whenever the two types differ: `uint32_t` returned to a `size_t` parameter,
`char *` to `const char *`, `bool` to a variadic `...` (promoted to `int`).
Types are compared by what they name: through the tree's typedefs and the
build's (`[types]` of `queries/qemu/build.toml`: the system headers' and those the tree defines
under each branch of an `#if`), with the integer words in
any order (`long unsigned int` is `unsigned long`) and top-level qualifiers
left out. A type that cannot be read (a function pointer, an array, a
typedef the tree defines twice differently) is unknown, and the caller keeps
its default.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_WORD = re.compile(r"[A-Za-z_]\w*|\*|[\[(]")
_QUALIFIERS = frozenset({"const", "volatile", "restrict", "__restrict", "__restrict__", "_Atomic"})
_IGNORED = frozenset({"extern", "static", "inline", "__inline", "__inline__", "register", "auto"})
_TAGS = frozenset({"struct", "union", "enum"})
# What the default argument promotions change (C11 6.5.2.2): passed to `...`, these are converted.
_PROMOTED_TYPES = ("_Bool", "char", "signed char", "unsigned char", "short", "unsigned short", "float")
_DEPTH = 8  # typedefs of typedefs followed this far


class CType(NamedTuple):
    """A type as compared: its base (`unsigned long`, `struct Foo`), pointer depth, and whether the pointee is const."""

    base: str
    stars: int
    const: bool


class TypeNames:
    """The typedefs of a tree and of its build's system headers, resolving type texts to `CType`s."""

    def __init__(self, typedefs: dict[str, set[str]], system: dict[str, str]) -> None:
        self._typedefs = typedefs  # name -> the type texts the tree gives it (one, or an #if's several)
        self._system = system
        self._memo: dict[str, CType | None] = {}

    def resolve(self, text: str) -> CType | None:
        """Return the `CType` a type's text names, or None when it cannot be read."""
        found = self._memo.get(text, ...)
        if found is ...:
            found = self._memo[text] = self._resolve(text, 0)
        return found

    def _resolve(self, text: str, depth: int) -> CType | None:
        tokens = _WORD.findall(text)
        if not tokens or "(" in tokens or "[" in tokens or depth > _DEPTH:
            return None
        stars = tokens.count("*")
        first = tokens.index("*") if stars else len(tokens)
        words = [t for t in tokens[:first] if t not in _IGNORED]
        const = any(w in _QUALIFIERS for w in words)
        words = [w for w in words if w not in _QUALIFIERS]
        if len(words) == 1 and not words[0] in _TAGS:
            named = self._named(words[0], depth)
            if named is not ...:
                if named is None:
                    return None
                pointee_const = named.const if named.stars else (named.const or const)
                total = named.stars + stars
                return CType(named.base, total, pointee_const and total > 0)
        if len(words) == 2 and words[0] in ("struct", "union"):
            words = words[1:]  # `struct Foo` is the `Foo` of QEMU's `typedef struct Foo Foo`, often made by a macro
        base = _integer_words(words)
        return CType(base, stars, const and stars > 0) if base else None

    def _named(self, name: str, depth: int):
        """Return the CType a typedef name stands for, None when unreadable or ambiguous, ... for no typedef."""
        texts = self._typedefs.get(name)
        if texts is None or len(texts) != 1:
            # the system's, or the build's of a typedef the tree gives under each branch of an #if (`target_ulong`)
            build = self._system.get(name)
            if build is not None:
                return self._resolve(build, depth + 1)
            return ... if texts is None else None  # of several, which one is the build's is not known
        text = next(iter(texts))
        if text.strip() in _TAGS:  # `typedef struct { ... } Name;`: a type of its own
            return CType("typedef " + name, 0, False)
        return self._resolve(text, depth + 1)


def _integer_words(words: list[str]) -> str:
    """Return a base type's words in one spelling: `int` left out beside `short`/`long`/`unsigned`, `signed` but
    for `signed char`, sorted (`long unsigned int` and `unsigned long` are `long unsigned`)."""
    if len(words) > 1 and "int" in words:
        words = [w for w in words if w != "int"]
    if "signed" in words and "char" not in words:
        words = [w for w in words if w != "signed"] or ["int"]
    if words == ["unsigned"]:
        words = ["int", "unsigned"]
    if words and words[0] in _TAGS:
        return " ".join(words)
    return " ".join(sorted(words))


_PROMOTED = frozenset(_integer_words(name.split()) for name in _PROMOTED_TYPES)


def converted(argument: CType | None, parameter: CType | None) -> bool | None:
    """Return True when gcc converts an argument of type `argument` to `parameter` (they differ), False when they
    are one type, None when either is unknown."""
    if argument is None or parameter is None:
        return None
    return argument != parameter


def promoted(argument: CType | None) -> bool | None:
    """Return True when an argument of this type passed to `...` is converted (a default argument promotion),
    None when unknown."""
    if argument is None:
        return None
    return argument.stars == 0 and (argument.base in _PROMOTED or argument.base.startswith("enum "))
