"""Position-preserving macro neutralisation, so tree-sitter can parse unpreprocessed C.

QEMU's sources are full of macros that a C parser without a preprocessor
misreads: attribute-like ones (`coroutine_fn`, `G_GNUC_PRINTF(1, 2)`,
`g_autofree`) and loop-like ones (`QTAILQ_FOREACH(var, head, field) { ... }`).
The classes are derived from the tree's own `#define`s plus a small table,
`queries/qemu/macros.toml`, by `chaintrace.source.macros`.

Every rewrite keeps the byte length and the newlines, so each line and column
the parser reports is the original's: attribute macros become spaces, a loop
macro's name becomes `while` padded with spaces (its arguments stay, so calls
inside them remain calls of the enclosing function).
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

from chaintrace.source.designators import conditionals_before_designators
from chaintrace.source.macros import (  # noqa: F401  (re-exported: the normaliser's public names)
    _DEFINE,
    _IDENT,
    ATTRIBUTE,
    ATTRIBUTE_FN,
    AUTO,
    AUTOPTR,
    CLASSES,
    DECL,
    LOOP,
    OPERATOR_ARG,
    TYPE_ARG,
    TYPE_HEAD,
    builtin_classes,
    derive_classes,
    local_classes,
    scan_defines,
)

def _derivation_version() -> str:
    """Return a hash of the derivation code and the builtin table: classes stored under another one are stale."""
    table = (resources.files("chaintrace.queries") / "qemu" / "macros.toml").read_bytes()
    code = (Path(__file__).parent / "macros.py").read_bytes()
    return hashlib.sha1(code + b"\0" + table).hexdigest()[:16]


def classes_signature(classes: dict[str, str], used: set[str]) -> str:
    """Return a short hash of the classes of the macros in `used`: the part of the table a file depends on."""
    text = ";".join(f"{name}={classes[name]}" for name in sorted(used))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def used_macros(source: bytes, classes: dict[str, str]) -> set[str]:
    """Return the classified macro names that occur in `source`."""
    return {word.decode("ascii") for word in set(_IDENT.findall(source)) & _byte_names(classes)}


_BYTE_NAMES: list = [None, frozenset()]


def _byte_names(classes: dict[str, str]) -> frozenset[bytes]:
    """Return the names of `classes` as bytes (kept for the last table: a worker uses one table)."""
    if _BYTE_NAMES[0] is not classes:
        _BYTE_NAMES[:] = [classes, frozenset(name.encode() for name in classes)]
    return _BYTE_NAMES[1]


def _occurrences(source: bytes, names: set[str]) -> list[tuple[int, int, str]]:
    """Return (start, end, name) of every whole-word occurrence of `names`, in source order."""
    found = []
    length = len(source)
    for name in names:
        word = name.encode()
        i = source.find(word)
        while i >= 0:
            end = i + len(word)
            if (i == 0 or not _is_word_byte(source[i - 1])) and (end >= length or not _is_word_byte(source[end])):
                found.append((i, end, name))
            i = source.find(word, end)
    found.sort()
    return found


def _is_word_byte(c: int) -> bool:
    return c == 0x5F or 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def normalize(source: bytes, classes: dict[str, str], used: set[str]) -> bytes:
    """Return `source` with the classified macros in `used` neutralised; same length, same newlines.

    Comments inside a multi-line `#define` are blanked too: tree-sitter-c
    loses the definition (and what follows) at `/* ... */ \\`; so are the
    `#if` lines before a designated initializer member, which it would glue
    to the member (`source.designators`).
    """
    commented = _COMMENT_THEN_CONTINUATION.search(source) is not None
    splits = _split_signatures(source) + conditionals_before_designators(source)
    own = _own_function_macros(source, classes)
    if not used and not commented and not splits and not own:
        return source
    buffer = bytearray(source)
    for start, end in _standalone_uses(source, own):
        _blank(buffer, start, end)
    if commented:
        _blank_define_comments(source, buffer)
    for start, end in splits:
        _blank(buffer, start, end)
    for start, end, name in _occurrences(source, used):
        if _in_directive(source, start):
            continue
        cls = classes[name]
        if cls == ATTRIBUTE:
            _blank(buffer, start, end)
            continue
        args = _balanced_parens(source, end)
        if not args:
            continue
        if cls == ATTRIBUTE_FN:
            _blank(buffer, start, args[1])
        elif cls == LOOP:
            _rewrite_loop(buffer, start, end, args)
        elif cls in (AUTOPTR, AUTO):
            _blank(buffer, start, args[0] + 1)  # name and "(": the type stays
            buffer[args[1] - 1] = ord("*") if cls == AUTOPTR else ord(" ")
        elif cls == DECL:
            if _stands_alone(source, start, args[1]):
                _blank(buffer, start, args[1])
        elif cls == TYPE_HEAD:
            spans = _arg_spans(source, args)
            if len(spans) > 1:  # `QTAILQ_HEAD(name, T)`: a one-argument macro type `QTAILQ_HEAD(T)` parses
                _blank(buffer, args[0] + 1, spans[-1][0])
        elif cls.startswith(TYPE_ARG):
            spans = _arg_spans(source, args)
            position = int(cls.partition(":")[2] or 0)
            if position < len(spans):
                _rewrite_type_arg(source, buffer, spans[position])
        elif cls == OPERATOR_ARG:
            spans = _arg_spans(source, args)
            if len(spans) > 2 and source[spans[1][0]:spans[1][1]].strip().strip(b"=<>!") == b"":
                _blank(buffer, spans[1][0], spans[1][1])
                buffer[spans[1][0] + 1 if spans[1][1] - spans[1][0] > 1 else spans[1][0]] = ord("0")
    return bytes(buffer)


# What may follow a declaration macro standing alone: the next declaration,
# a directive, a comment, the end of the file. Not `}`: the last member of an
# initializer list (`VMSTATE_STRUCT(...)` without a comma) must stay.
_DECL_FOLLOWERS = re.compile(rb"[ \t\r\n]*(?:$|[A-Za-z_#]|/[*/])")
_C_KEYWORDS = frozenset({
    b"struct", b"union", b"enum", b"const", b"volatile", b"unsigned", b"signed", b"char", b"short", b"int",
    b"long", b"float", b"double", b"void", b"_Bool",
})


_COMMENT_THEN_CONTINUATION = re.compile(rb"\*/[ \t]*\\\r?\n")
_COMMENT = re.compile(rb"/\*.*?\*/", re.DOTALL)


def _blank_define_comments(source: bytes, buffer: bytearray) -> None:
    """Blank the `/* ... */` comments inside multi-line `#define`s."""
    for match in _DEFINE.finditer(source):
        if b"\n" not in match.group(0) or b"/*" not in match.group(0):
            continue
        for comment in _COMMENT.finditer(source, match.start(), match.end()):
            _blank(buffer, comment.start(), comment.end())


_DIRECTIVE = re.compile(rb"^[ \t]*#[ \t]*(\w+)", re.MULTILINE)
_SIGNATURE_LINE = re.compile(rb"[A-Za-z_]")


def _split_signatures(source: bytes) -> list[tuple[int, int]]:
    """Return the byte ranges to blank so that a definition whose signature `#if` splits parses.

    ```
    #ifdef CONFIG_USER_ONLY
    void cpu_exec_start(int cpu, int flags)
    #else
    void cpu_exec_start(int cpu)
    #endif
    {
    ```

    tree-sitter reads neither branch as the head of the body that follows,
    so the function (and the caller of every call in it) is lost. When both
    branches are signatures (a line at column 0 that starts a name, the last
    line ending in `)`, no directive inside) and `{` follows the `#endif`, the
    `#if` branch and the `#else` and `#endif` lines are blanked: the `#else`
    signature heads the body, as it did when tree-sitter recovered from the
    error (QEMU's `dsound_template.h` keeps its `_out` functions), now without
    the error.
    """
    # Cheap test first (every file runs it): an `endif` whose next line starts with `{`.
    i = source.find(b"endif")
    while i >= 0:
        line_end = source.find(b"\n", i)
        if line_end < 0:
            return []
        if source[line_end:line_end + 200].lstrip()[:1] == b"{":
            break
        i = source.find(b"endif", line_end)
    else:
        return []
    directives = [(m.start(), m.group(1)) for m in _DIRECTIVE.finditer(source)]
    found = []
    for i in range(1, len(directives) - 1):
        (if_start, if_word), (else_start, else_word), (endif_start, endif_word) = directives[i - 1:i + 2]
        if else_word != b"else" or endif_word != b"endif" or if_word not in (b"if", b"ifdef", b"ifndef"):
            continue
        endif_end = source.find(b"\n", endif_start)
        if endif_end < 0 or source[endif_end:endif_end + 200].lstrip()[:1] != b"{":
            continue
        first_end = source.find(b"\n", if_start) + 1
        else_end = source.find(b"\n", else_start) + 1
        if _is_signature(source[first_end:else_start]) and _is_signature(source[else_end:endif_start]):
            found += [(if_start, else_end), (endif_start, endif_end)]
    return found


def _is_signature(branch: bytes) -> bool:
    lines = [line for line in branch.split(b"\n") if line.strip()]
    return bool(lines) and _SIGNATURE_LINE.match(lines[0]) is not None and lines[-1].rstrip().endswith(b")")


def _stands_alone(source: bytes, start: int, end: int) -> bool:
    """Return True when an invocation is alone on its line(s): nothing before it, no `;` or operator after it."""
    line_start = source.rfind(b"\n", 0, start) + 1
    if source[line_start:start].strip():
        return False
    return _DECL_FOLLOWERS.match(source, end) is not None


_LINE_START_USE = re.compile(rb"^([A-Za-z_]\w*)[ \t]*\(", re.MULTILINE)
_FUNCTION_DEFINE_NAME = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)\(", re.MULTILINE)


def _own_function_macros(source: bytes, classes: dict[str, str]) -> frozenset[bytes]:
    """Return the function-like macros the file defines that have no class (see `_standalone_uses`)."""
    if b"define" not in source:
        return frozenset()
    return frozenset(name for name in _FUNCTION_DEFINE_NAME.findall(source) if name.decode() not in classes)


def _standalone_uses(source: bytes, names: frozenset[bytes]) -> list[tuple[int, int]]:
    """Return the spans of uses of `names` that start a line and stand alone on it: `MINMAX_2(float16)`.

    Such a use of a file's own macro at the start of a line expands to
    declarations (which the parser cannot see); left in place it reads as a
    K&R function definition that swallows the next function's body.
    """
    spans = []
    for match in _LINE_START_USE.finditer(source):
        if match.group(1) in names:
            args = _balanced_parens(source, match.end(1))
            if args and _DECL_FOLLOWERS.match(source, args[1]) is not None:
                spans.append((match.start(), args[1]))
    return spans


def _arg_spans(source: bytes, args: tuple[int, int]) -> list[tuple[int, int]]:
    """Return the (start, end) of each top-level argument inside the parentheses `args`."""
    spans = []
    depth = 0
    begin = args[0] + 1
    for i in range(args[0] + 1, args[1] - 1):
        c = source[i]
        if c in b"([{":
            depth += 1
        elif c in b")]}":
            depth -= 1
        elif c == 0x2C and depth == 0:  # ","
            spans.append((begin, i))
            begin = i + 1
    spans.append((begin, args[1] - 1))
    return spans


def _rewrite_type_arg(source: bytes, buffer: bytearray, span: tuple[int, int]) -> None:
    """Turn a type argument (`struct Foo *`) into an identifier: keep its last non-keyword word, or write `x`."""
    start, end = span
    words = [m for m in _IDENT.finditer(source, start, end) if m.group(0) not in _C_KEYWORDS]
    _blank(buffer, start, end)
    if words:
        buffer[words[-1].start():words[-1].end()] = words[-1].group(0)
    else:
        first = start + len(source[start:end]) - len(source[start:end].lstrip())
        if first < end:
            buffer[first] = ord("x")


def _rewrite_loop(buffer: bytearray, start: int, end: int, args: tuple[int, int]) -> None:
    open_paren, close = args
    inner = bytes(buffer[open_paren + 1:close - 1])
    if inner.strip():
        # `while` must fit in the name, or every later byte would move: a shorter name
        # (`BLT(...)`) becomes an `if`, which keeps its body a block of its own.
        keyword = b"while" if end - start >= 5 else b"if" if end - start >= 2 else None
        if keyword is not None:
            buffer[start:end] = keyword.ljust(end - start)
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
    """Return True when `pos` is in a preprocessor directive, continuation lines (`\\` at the end) included.

    A use on the continuation line of a `#define` blanked as if it were code
    leaves `#define DEF_HELPER_1(...) \\` with no value, and tree-sitter then
    reads the next `#define` as part of it (every other definition was lost).
    """
    line_start = source.rfind(b"\n", 0, pos) + 1
    while True:
        if source[line_start:pos].lstrip().startswith(b"#"):
            return True
        end = line_start - 1  # the newline ending the previous line
        if end > 0 and source[end - 1] == 0x0D:  # "\r\n"
            end -= 1
        if end <= 0 or source[end - 1] != 0x5C:  # no backslash: the previous line does not continue into this one
            return False
        pos = end - 1
        line_start = source.rfind(b"\n", 0, pos) + 1


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


DERIVATION_VERSION = _derivation_version()
