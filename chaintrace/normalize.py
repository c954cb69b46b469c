"""Position-preserving macro neutralisation, so tree-sitter can parse unpreprocessed C.

QEMU's sources are full of macros that a C parser without a preprocessor
misreads: attribute-like ones (`coroutine_fn`, `G_GNUC_PRINTF(1, 2)`,
`g_autofree`) and loop-like ones (`QTAILQ_FOREACH(var, head, field) { ... }`).
The classes are derived from the tree's own `#define`s (see `classify_define`)
plus a small table for what the tree does not define itself (glib's macros),
`queries/qemu/macros.toml`.

Every rewrite keeps the byte length and the newlines, so each line and column
the parser reports is the original's: attribute macros become spaces, a loop
macro's name becomes `while` padded with spaces (its arguments stay, so calls
inside them remain calls of the enclosing function).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from functools import cache
from importlib import resources

ATTRIBUTE = "attribute"  # object-like, expands to nothing or __attribute__((...)): blank the name
ATTRIBUTE_FN = "attribute_fn"  # function-like, expands to __attribute__((...)): blank name and arguments
LOOP = "loop"  # expands to a `for (...)` header: make it a `while (...)`
AUTOPTR = "autoptr"  # g_autoptr(T) x: a declaration of `T *x`
AUTO = "auto"  # g_auto(T) x: a declaration of `T x`

_DEFINE = re.compile(
    rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(\([^)\n]*\))?([^\n\\]*(?:\\\r?\n[^\n\\]*)*)",
    re.MULTILINE,
)
_IDENT = re.compile(rb"[A-Za-z_]\w*")
_ATTRIBUTE_BODY = re.compile(r"^(__attribute__|__declspec|_Pragma|\[\[)")
_FIRST_WORD = re.compile(r"^([A-Za-z_]\w*)")


def scan_defines(source: bytes) -> list[tuple[str, bool, str]]:
    """Return the file's `#define`s as (name, is_function_like, body) with continuations joined."""
    found = []
    for match in _DEFINE.finditer(source):
        body = re.sub(rb"\\\r?\n", b" ", match.group(3)).decode("utf-8", "replace")
        body = re.sub(r"/\*.*?\*/|//.*$", " ", body).strip()
        found.append((match.group(1).decode("ascii"), match.group(2) is not None, body))
    return found


def classify_define(is_function_like: bool, body: str) -> str | None:
    """Return the class a single `#define` implies on its own (ATTRIBUTE, LOOP, or None).

    Loop-like macros whose body starts with another macro are resolved later
    by `derive_classes`, which follows such chains.
    """
    if body.startswith(("for (", "for(")) and is_function_like:
        return LOOP
    if _ATTRIBUTE_BODY.match(body):
        return ATTRIBUTE_FN if is_function_like else ATTRIBUTE
    if not body and not is_function_like:
        return ATTRIBUTE
    return None


@cache
def builtin_classes() -> dict[str, str]:
    """Return the data table of macro classes that no tree defines itself (glib's, mostly)."""
    text = (resources.files("chaintrace.queries") / "qemu" / "macros.toml").read_text()
    table = tomllib.loads(text)
    classes: dict[str, str] = {}
    for cls in (ATTRIBUTE, ATTRIBUTE_FN, LOOP, AUTOPTR, AUTO):
        for name in table.get(cls, {}).get("names", []):
            classes[name] = cls
    return classes


def derive_classes(defines: list[tuple[str, bool, str]]) -> dict[str, str]:
    """Return macro name -> class for a whole tree, from all its `#define`s plus the builtin table.

    A name defined several ways (under different `#if` branches) keeps a class
    only when every definition agrees; a function-like macro whose body starts
    with a loop-like macro is loop-like too (`WITH_QEMU_LOCK_GUARD` ->
    `WITH_QEMU_LOCK_GUARD_` -> `for (`), and an object-like macro whose body
    is one attribute-like macro is attribute-like.
    """
    votes: dict[str, set[str | None]] = {}
    first_words: dict[str, tuple[bool, str]] = {}
    for name, is_function_like, body in defines:
        votes.setdefault(name, set()).add(classify_define(is_function_like, body))
        word = _FIRST_WORD.match(body)
        if word and name not in first_words:
            first_words[name] = (is_function_like, word.group(1))
    classes = {name: cls.pop() for name, cls in votes.items() if len(cls) == 1 and None not in cls}
    for name, cls in builtin_classes().items():
        classes.setdefault(name, cls)
    changed = True
    while changed:  # follow macro-to-macro chains to a fixed point
        changed = False
        for name, (is_function_like, word) in first_words.items():
            if name in classes or votes.get(name) != {None}:
                continue
            target = classes.get(word)
            if target == LOOP and is_function_like or (
                target in (ATTRIBUTE, ATTRIBUTE_FN) and is_function_like == (target == ATTRIBUTE_FN) and _only_word(name, defines)
            ):
                classes[name] = target
                changed = True
    return classes


def _only_word(name: str, defines: list[tuple[str, bool, str]]) -> bool:
    return all(_FIRST_WORD.fullmatch(body) for n, _, body in defines if n == name)


def classes_signature(classes: dict[str, str], used: set[str]) -> str:
    """Return a short hash of the classes of the macros in `used`: the part of the table a file depends on."""
    text = ";".join(f"{name}={classes[name]}" for name in sorted(used))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def used_macros(source: bytes, classes: dict[str, str]) -> set[str]:
    """Return the classified macro names that occur in `source`."""
    names = {word.decode("ascii") for word in set(_IDENT.findall(source))}
    return names & classes.keys()


def normalize(source: bytes, classes: dict[str, str], used: set[str]) -> bytes:
    """Return `source` with the classified macros in `used` neutralised; same length, same newlines."""
    if not used:
        return source
    buffer = bytearray(source)
    pattern = re.compile(rb"\b(" + b"|".join(re.escape(n.encode()) for n in sorted(used, key=len, reverse=True)) + rb")\b")
    for match in pattern.finditer(source):
        start, end = match.span()
        if _in_directive(source, start):
            continue
        cls = classes[match.group(1).decode()]
        args = _balanced_parens(source, end)
        if cls == ATTRIBUTE:
            _blank(buffer, start, end)
        elif cls == ATTRIBUTE_FN and args:
            _blank(buffer, start, args[1])
        elif cls == LOOP and args:
            _rewrite_loop(buffer, start, end, args)
        elif cls in (AUTOPTR, AUTO) and args:
            _blank(buffer, start, args[0] + 1)  # name and "(": the type stays
            buffer[args[1] - 1] = ord("*") if cls == AUTOPTR else ord(" ")
    return bytes(buffer)


def _rewrite_loop(buffer: bytearray, start: int, end: int, args: tuple[int, int]) -> None:
    open_paren, close = args
    inner = bytes(buffer[open_paren + 1:close - 1])
    if inner.strip():
        buffer[start:end] = b"while".ljust(end - start)
    else:  # `WITH_RCU_READ_LOCK_GUARD()`: a loop needs a condition
        span = close - start
        replacement = b"while(1)" if span >= 8 else b"while(1)"[:span]
        buffer[start:close] = replacement.ljust(span)


def _balanced_parens(source: bytes, end: int) -> tuple[int, int] | None:
    """Return (index of "(", index after ")") of a parenthesised group right after `end`, or None."""
    i = end
    length = len(source)
    while i < length and source[i] in b" \t":
        i += 1
    if i >= length or source[i] != 0x28:  # "("
        return None
    depth = 0
    for j in range(i, min(length, i + 4000)):
        c = source[j]
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i, j + 1
    return None


def _blank(buffer: bytearray, start: int, end: int) -> None:
    for i in range(start, end):
        if buffer[i] not in b"\r\n":
            buffer[i] = 0x20


def _in_directive(source: bytes, pos: int) -> bool:
    line_start = source.rfind(b"\n", 0, pos) + 1
    return source[line_start:pos].lstrip().startswith(b"#")


_HX_DOC = re.compile(rb"^(SRST|ERST|HXCOMM|DEF|STEXI|ETEXI|DEFHEADING|ARCHHEADING)\b")


def hx_to_c(source: bytes) -> bytes:
    """Return a QEMU `.hx` file as C: its `{ .name = ..., .cmd = fn, },` entries inside an array.

    Documentation blocks (SRST ... ERST) and HXCOMM/DEF lines become blank
    lines; the first blanked line before the first entry opens the array and
    the closing brace is appended, so every entry keeps its line and column.
    """
    lines = source.split(b"\n")
    in_doc = False
    opened = False
    for number, line in enumerate(lines):
        stripped = line.strip()
        blank = in_doc or bool(_HX_DOC.match(stripped))
        if stripped.startswith(b"SRST") or stripped.startswith(b"STEXI"):
            in_doc = True
        elif stripped.startswith(b"ERST") or stripped.startswith(b"ETEXI"):
            in_doc = False
        if blank:
            replacement = b" " * len(line)
            opener = b"static int hx[]={"
            if not opened and len(line) >= len(opener):
                replacement = opener.ljust(len(line))
                opened = True
            lines[number] = replacement
        elif not opened and stripped.startswith(b"{"):
            return source  # no room to open the array: leave the file as it is
    return b"\n".join(lines) + (b"\n};\n" if opened else b"")
