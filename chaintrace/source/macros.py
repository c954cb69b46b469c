"""Macro classes: what each macro of a tree means to a parser that has no preprocessor.

A class is derived from a macro's `#define`s (every definition must agree),
following chains to a fixed point (`coroutine_fn` -> `QEMU_ANNOTATE(x)` ->
`__attribute__((annotate(x)))`), with `queries/qemu/macros.toml` for the
macros a tree uses but does not define (glib's). `chaintrace.source.normalize`
applies the classes; this module only decides them.
"""

from __future__ import annotations

import re
import tomllib
from collections import ChainMap
from dataclasses import dataclass
from functools import cache
from importlib import resources

ATTRIBUTE = "attribute"  # object-like, expands to nothing or __attribute__((...)): blank the name
ATTRIBUTE_FN = "attribute_fn"  # function-like, expands to __attribute__((...)) or nothing: blank name and arguments
LOOP = "loop"  # expands to a `for (...)` header: make it a `while (...)`
AUTOPTR = "autoptr"  # g_autoptr(T) x: a declaration of `T *x`
AUTO = "auto"  # g_auto(T) x: a declaration of `T x`
DECL = "decl"  # expands to whole declarations (`FIELD(R, F, 0, 1)`): blank a use that stands alone on its line
TYPE_HEAD = "type_head"  # `QTAILQ_HEAD(name, T) x;` expands to a struct: keep only the last argument, a type
TYPE_ARG = "type_arg"  # `g_new(struct Foo, n)`: the first argument is a type: keep its last word;
# "type_arg:N" when argument N is (derived from a `(param *)` cast in the body: container_of)
OPERATOR_ARG = "operator_arg"  # `g_assert_cmpint(a, ==, b)`: the second argument is an operator: make it `0`
CLASSES = (ATTRIBUTE, ATTRIBUTE_FN, LOOP, AUTOPTR, AUTO, DECL, TYPE_HEAD, TYPE_ARG, OPERATOR_ARG)
_EMPTY = "empty"  # a definition with no body: agrees with any blanking class
# `#define tpm_cleanup()`: no body and no parameters, the stub of a function another #if branch declares; alone it
# is no attribute (blanking would hide `void tpm_cleanup(void) {...}`'s name and every call of it)
_EMPTY_CALL = "empty_call"

_DEFINE = re.compile(
    rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(\([^)\n]*\))?([^\n\\]*(?:\\\r?\n[^\n\\]*)*)",
    re.MULTILINE,
)
_IDENT = re.compile(rb"[A-Za-z_]\w*")
_CONTINUATION = re.compile(rb"\\\r?\n")
_DEFINE_COMMENT = re.compile(r"/\*.*?\*/|//.*$")
_FUNCTION_DEFINE = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+[A-Za-z_]\w*\(", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z_]\w*")
_ATTRIBUTE_WORDS = ("__attribute__", "__attribute", "__declspec", "_Pragma")
_FIRST_WORD = re.compile(r"^([A-Za-z_]\w*)")
# A parameter passed on to a function (lower-case name, QEMU's convention)
# or assigned may carry a function reference (`type_init(fn)` registers fn):
# such a macro is never blanked.
_LOWER_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def scan_defines(source: bytes) -> list[tuple[str, str, str]]:
    """Return the file's `#define`s as (name, parameter list or "" when object-like, body), continuations joined.

    The parameter list is the text in parentheses, `(a, b)`; `bool()` of it
    says whether the macro is function-like.
    """
    found = []
    for match in _DEFINE.finditer(source):
        body = match.group(3)
        if b"\\" in body:
            body = _CONTINUATION.sub(b" ", body)
        body = body.decode("utf-8", "replace")
        if "/" in body:
            body = _DEFINE_COMMENT.sub(" ", body)
        body = body.strip()
        params = match.group(2).decode("utf-8", "replace") if match.group(2) is not None else ""
        found.append((match.group(1).decode("ascii"), params, body))
    return found


@dataclass(unsafe_hash=True, slots=True)  # not frozen: a frozen dataclass's __init__ is ~8x slower
class _Shape:
    """What one `#define` says about its class before other macros are known.

    `fixed` is the class when the body alone decides it (`_EMPTY`, LOOP,
    TYPE_HEAD, DECL, or None for "never"); otherwise `attributes` lists the
    words of a body made only of attribute-like tokens (each must be an
    attribute macro), and `first` names the macro a `NAME(...)`-only body
    invokes (its LOOP or DECL class carries over).
    """

    function_like: bool
    fixed: str | None | bool = False  # False: not decided by the body alone
    attributes: tuple[tuple[str, bool], ...] | None = None
    first: str = ""
    one_invocation: bool = False
    last: str = ""  # the macro a body ending in `NAME(...)` invokes last (DECL carries over)


def _shape(params: str | bool, body: str, macros: frozenset[str] | set[str]) -> _Shape:
    function_like = bool(params)
    if not body:
        return _Shape(function_like, _EMPTY_CALL if function_like and not str(params).strip("() \t") else _EMPTY)
    if function_like and body.startswith(("for (", "for(")):
        return _Shape(function_like, LOOP)
    attributes = _attribute_tokens(body)
    first = _first_word(body)
    if function_like and body.startswith(("struct ", "union ")) and "{" in body:
        return _Shape(function_like, TYPE_HEAD)
    names = [n.strip() for n in str(params).strip("()").split(",")] if function_like else []
    if function_like and body.endswith((";", "}")) and attributes is None:
        return _Shape(function_like, None if _passes_on(body, [n for n in names if n and n != "..."], macros) else DECL)
    if attributes is None and not function_like:
        return _Shape(function_like, None)
    if function_like and not body.startswith(_ATTRIBUTE_WORDS):
        types = [i for i, name in enumerate(names) if name and "*" in body and _cast_to(body, name)]
        if len(types) == 1 and types[0] < len(names) - 1:  # `(type *)`: container_of(ptr, type, member)
            return _Shape(function_like, f"{TYPE_ARG}:{types[0]}")
    last = ""
    if function_like and body.endswith(")") and attributes is None:
        last = _last_invocation(body)
        if last and _passes_on(body, [n for n in names if n and n != "..."], macros):
            return _Shape(function_like, None)
    return _Shape(function_like, False, attributes, first, function_like and _one_invocation(body), last)


def _cast_to(body: str, name: str) -> bool:
    """Return True when `body` casts to a pointer to `name`: `(name *)`."""
    i = body.find(name)
    while i >= 0:
        before = body[:i].rstrip()
        after = body[i + len(name):].lstrip()
        if before.endswith("(") and after.startswith("*") and after.lstrip("* \t").startswith(")"):
            if not (i > 0 and (body[i - 1].isalnum() or body[i - 1] == "_")):
                return True
        i = body.find(name, i + len(name))
    return False


def _last_invocation(body: str) -> str:
    """Return NAME when a body ends with `NAME(...)`, else ""."""
    depth = 0
    for k in range(len(body) - 1, -1, -1):
        if body[k] == ")":
            depth += 1
        elif body[k] == "(":
            depth -= 1
            if depth == 0:
                match = re.search(r"([A-Za-z_]\w*)\s*$", body[:k])
                return match.group(1) if match else ""
    return ""


def _resolve(shape: _Shape, classes: dict[str, str]) -> str | None | bool:
    """Return the class of a definition given the classes known so far; False while it depends on unknown ones."""
    if shape.fixed is not False:
        return shape.fixed
    target = classes.get(shape.first)
    if shape.function_like and target == LOOP:
        return LOOP
    if (shape.one_invocation and target == DECL) or (shape.last and classes.get(shape.last) == DECL):
        return DECL
    if shape.attributes is not None:
        pending = False
        for word, has_args in shape.attributes:
            cls = classes.get(word)
            if word in _ATTRIBUTE_WORDS or (cls == ATTRIBUTE_FN and has_args) or (cls == ATTRIBUTE and not has_args):
                continue
            if cls is not None:
                return None
            pending = True
        if not pending:
            return ATTRIBUTE_FN if shape.function_like else ATTRIBUTE
    return False


def _first_word(body: str) -> str:
    match = _FIRST_WORD.match(body)
    return match.group(1) if match else ""


def _skip_parens(text: str, i: int) -> int:
    """Return the index after the balanced group opening at text[i] ("(" or "["), or -1."""
    opening = text[i]
    closing = ")" if opening == "(" else "]"
    depth = 0
    for j in range(i, len(text)):
        if text[j] == opening:
            depth += 1
        elif text[j] == closing:
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def _attribute_tokens(body: str) -> tuple[tuple[str, bool], ...] | None:
    """Return the (word, has arguments) tokens of a body made only of words with optional `(...)` and `[[...]]`, else None."""
    tokens = []
    i = 0
    n = len(body)
    while i < n:
        if body[i] in " \t":
            i += 1
            continue
        if body.startswith("[[", i):
            i = _skip_parens(body, i)
            if i < 0:
                return None
            continue
        word = _WORD.match(body, i)
        if not word:
            return None
        i = word.end()
        while i < n and body[i] in " \t":
            i += 1
        has_args = i < n and body[i] == "("
        if has_args:
            i = _skip_parens(body, i)
            if i < 0:
                return None
        tokens.append((word.group(0), has_args))
    return tuple(tokens)


def _one_invocation(body: str) -> bool:
    """Return True when a body is exactly one macro invocation: `NAME(...)`."""
    word = _WORD.match(body)
    if not word:
        return False
    i = body.find("(", word.end())
    if i < 0 or body[word.end():i].strip():
        return False
    return _skip_parens(body, i) == len(body)


_KEYWORDS = frozenset({"if", "while", "for", "switch", "return", "sizeof", "typeof", "__typeof__", "defined"})


_TOKEN = re.compile(r"[A-Za-z_]\w*|##|#|==|!=|<=|>=|\S")


def _passes_on(body: str, params: list[str], macros: frozenset[str] | set[str]) -> bool:
    """Return True when a parameter may name a function: called, assigned (`= p`), or passed as is to a function.

    One pass over the body's tokens with a stack of the calls whose
    argument lists are open.
    """
    wanted = set(params)
    if not wanted:
        return False
    tokens = _TOKEN.findall(body)
    calls: list[bool] = []  # per open "(": is it a function call's argument list?
    previous = ""
    for i, token in enumerate(tokens):
        if token == "(":
            calls.append(bool(_LOWER_NAME.fullmatch(previous)) and previous not in _KEYWORDS and previous not in macros)
        elif token == ")":
            if calls:
                calls.pop()
        elif token in wanted and previous not in ("#", "##"):
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            if following == "(":
                if previous == "return" or not (previous == "*" or _WORD.fullmatch(previous)):
                    return True  # `return FUNC(s, a)`: the argument names a function the expansion calls
                continue  # `int *CHECKER(void)`: the name of a function the expansion declares
            if following != "##":
                lead = "".join(tokens[max(0, i - 3):i])
                if following in ("", ",", ";", "}", ")") and lead.endswith(("=", "=&", "=&(")) and not lead.endswith("=="):
                    return True  # `.f = p`, `.vmsd = &(p)`
                if previous in ("(", ",") and following in (",", ")") and calls and calls[-1]:
                    return True
        previous = token
    return False


@cache
def builtin_classes() -> dict[str, str]:
    """Return the data table of macro classes that no tree defines itself (glib's, mostly)."""
    text = (resources.files("chaintrace.queries") / "qemu" / "macros.toml").read_text()
    table = tomllib.loads(text)
    classes: dict[str, str] = {}
    for cls, section in table.items():
        if cls.partition(":")[0] not in CLASSES:
            raise ValueError(f"macros.toml: unknown macro class {cls!r}")
        for name in section.get("names", []):
            classes[name] = cls
    return classes


def derive_classes(defines: list[tuple[str, str, str]]) -> dict[str, str]:
    """Return macro name -> class for a whole tree, from all its `#define`s plus the builtin table.

    A name defined several ways (under different `#if` branches, or locally
    in several files) keeps a class only when every definition agrees (an
    empty definition agrees with any); `local_classes` gives a file its own
    definitions' classes. Definitions that use other macros are classified
    once those are: the table grows to a fixed point, so `coroutine_fn` ->
    `QEMU_ANNOTATE(x)` -> `__attribute__((annotate(x)))` is an attribute, and
    `WITH_QEMU_LOCK_GUARD` -> `WITH_QEMU_LOCK_GUARD_` -> `for (` a loop.
    """
    macros = frozenset(name for name, params, _ in defines if params)
    by_name: dict[str, list[_Shape]] = {}
    for name, params, body in defines:
        by_name.setdefault(name, []).append(_shape(params, body, macros))
    return _fixed_point(by_name, dict(builtin_classes()))


def local_classes(source: bytes, classes: dict[str, str]) -> dict[str, str]:
    """Return `classes` with the file's own `#define`s deciding the class of the names it defines.

    A `.c` file's private `INSN(...)` or `DEF(...)` means what its own
    definition says, whatever other files define under that name. Returns
    `classes` itself when the file changes nothing.
    """
    # Only function-like definitions are looked at: the classes that need
    # care (DECL, LOOP, TYPE_HEAD, ATTRIBUTE_FN) apply to `NAME(...)` only.
    if _FUNCTION_DEFINE.search(source) is None:
        return classes
    own: dict[str, list[_Shape]] = {}
    for name, params, body in scan_defines(source):
        if params:
            own.setdefault(name, []).append(_shape(params, body, classes.keys()))
    if not own:
        return classes
    # The file's names start unclassified (None hides the tree-wide class).
    local: dict[str, str | None] = dict.fromkeys(own)
    _fixed_point(own, ChainMap(local, classes), list(own))  # type: ignore[arg-type]
    if all(local[name] == classes.get(name) for name in own):
        return classes
    merged = dict(classes)
    for name, cls in local.items():
        if cls is None:
            merged.pop(name, None)
        else:
            merged[name] = cls
    return merged


def _fixed_point(by_name: dict[str, list[_Shape]], classes: dict[str, str], pending: list[str] | None = None) -> dict[str, str]:
    """Classify the `pending` names (default: those of `by_name` not in `classes`) into `classes`; return it."""
    if pending is None:
        pending = [name for name in by_name if name not in classes]
    while True:
        changed = False
        still = []
        for name in pending:
            shapes = by_name[name]
            if any(shape.function_like for shape in shapes):
                # only a function-like definition can be what `NAME(...)` invokes
                shapes = [shape for shape in shapes if shape.function_like]
            votes = {_resolve(shape, classes) for shape in shapes}
            votes.discard(_EMPTY)
            stub = _EMPTY_CALL in votes
            votes.discard(_EMPTY_CALL)
            if None in votes or len(votes) > 1:
                if False in votes and None not in votes:
                    still.append(name)
                continue
            if False in votes:
                still.append(name)
                continue
            if not votes:  # only empty definitions
                kinds = {shape.function_like for shape in shapes}
                if len(kinds) > 1 or stub:
                    continue
                votes = {ATTRIBUTE_FN if kinds.pop() else ATTRIBUTE}
            classes[name] = votes.pop()
            changed = True
        pending = still
        if not changed:
            return classes
