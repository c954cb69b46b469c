"""What one file asks of the preprocessor: its `#include`s and its file-scope macro uses.

The parser never sees through a macro, so the graph does the expanding
(`graph.includes` says which headers a file sees, `graph.macro_functions`
expands the uses that define functions). Both are read from the original
text with regular expressions: a directive or a use at the start of a line
is all they need, and the `#if` conditions around an include come from the
file's context sweep.
"""

from __future__ import annotations

import re

from chaintrace.extract.facts import CallSite, Include, MacroUse
from chaintrace.extract.scope import FileScope
from chaintrace.extract.syntax import fold, from_bytes

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*(?:"([^"\n]+)"|<([^>\n]+)>)', re.MULTILINE)
# `NAME(` at the very start of a line: QEMU indents code in bodies, so a use there is at file scope. One indented
# outside every body counts when it stands alone on its line (` type_init(f)` in gen_pcie_root_port.c), not an
# element of an initializer (`    VMSTATE_UINT32(x, S),`).
_USE = re.compile(r"^([ \t]*)([A-Za-z_]\w*)[ \t]*\(", re.MULTILINE)
_ALONE = re.compile(r"[ \t]*;?[ \t]*(?:/[/*]|\r?\n|$)")
_NOT_USES = frozenset({"if", "while", "for", "switch", "return", "sizeof", "defined"})
_MAX_ARGS = 4000  # characters of one use's arguments read at most


def includes(file: FileScope) -> tuple[Include, ...]:
    """Return the file's `#include "..."` and `#include <...>` directives, each with its `#if` conditions."""
    text = file.source.string if file.source.ascii else file.source.original.decode("utf-8", "replace")
    if "include" not in text:
        return ()
    found = []
    line, counted = 1, 0
    for match in _INCLUDE.finditer(text):
        quoted, system = match.group(1), match.group(2)
        start = len(text[:match.start()].encode()) if not file.source.ascii else match.start()
        conditions = file.contexts.at(start, start + 1, -1).conditions
        line += text.count("\n", counted, match.start())
        counted = match.start()
        found.append(Include((quoted or system).strip(), quoted is None, file.path, line, conditions))
    return tuple(found)


def macro_uses(file: FileScope) -> tuple[MacroUse, ...]:
    """Return the `NAME(args)` that start a line outside every function body (QOM, `type_init`, `DEF_HELPER_*`)."""
    text = file.source.by_byte  # offsets are bytes, as the function spans are, in a file with UTF-8 comments too
    found = []
    line, counted = 1, 0  # lines counted as the matches go forward: one pass over the text
    for match in _USE.finditer(text):
        name = match.group(2)
        if name in _NOT_USES:
            continue
        start = match.start(2)
        if match.group(1) and file.enclosing(start, match.end())[0]:
            continue  # most indented lines are in bodies: left before reading their arguments
        args = arguments(text, match.end() - 1)
        if args is None or _continued(text, match.start()) or _in_body(file, start, match.end()):
            continue
        if match.group(1) and not _ALONE.match(text, _closing(text, match.end() - 1) + 1):
            continue
        line += text.count("\n", counted, start)
        counted = start
        conditions = file.contexts.at(start, start + 1, -1).conditions
        found.append(MacroUse(name, args, file.path, line, start - match.start() + 1, conditions))
    return tuple(found)


def _closing(text: str, open_paren: int) -> int:
    """Return the offset of the `)` closing the group at `open_paren` (balanced: `arguments` read it)."""
    depth = 0
    for i in range(open_paren, len(text)):
        if text[i] in "([{":
            depth += 1
        elif text[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def _continued(text: str, line_start: int) -> bool:
    """Return True when the line starting at `line_start` continues the one before (`\\` at its end): a `#define`'s
    body (`type_init(do_qemu_init_ ## type_array)` in `DEFINE_TYPES`), no use."""
    return text.endswith("\\\n", 0, line_start) or text.endswith("\\\r\n", 0, line_start)


def _in_body(file: FileScope, start: int, end: int) -> bool:
    """Return True when a use lies inside a function's body. Uses with no `;` after them that the parser read as
    the start of the next function's definition (`DEFINE_TYPES(t)` then `Foo *foo_new(void) {`; `type_init(f)`
    then `OBJECT_DEFINE_SIMPLE_TYPE_WITH_INTERFACES(...)` then a function) lie in that function's span before
    its body's `{`: they are at file scope."""
    function, function_start = file.enclosing(start, end)
    return bool(function) and function_start != start and "{" in file.source.by_byte[function_start:start]


def loop_macro_calls(file: FileScope, loops: list[dict]) -> list[CallSite]:
    """Return a call site for each loop macro the normaliser rewrote (`RAMBLOCK_FOREACH_NOT_IGNORED(b) {`).

    Its expansion may call functions (`migrate_ram_is_ignored`), which the
    graph finds by expanding the use; the parser only sees a `while`.
    """
    text = file.source.by_byte
    found = []
    for captures in loops:
        node = captures["context.loop"][0]
        start = node.start_byte
        match = _USE_AT.match(text, start)
        if match is None or match.group(1) in ("for", "while", "do"):
            continue
        args = arguments(text, match.end() - 1)
        function, function_start = file.enclosing(start, node.end_byte)
        if args is None or not function:
            continue
        point = node.start_point
        found.append(CallSite(function, file.path, point[0] + 1, point[1] + 1, match.group(1), "macro", args,
                              file.contexts.at(start, start + 1, function_start)))
    return found


_AUTO = re.compile(r"\b(g_autoptr|g_auto|g_autolist|g_autoslist|g_autoqueue)[ \t]*\(")


def cleanup_calls(file: FileScope) -> list[CallSite]:
    """Return a macro site for each `g_autoptr(T) x` (and `g_auto`, `g_autolist` ...) declared in a function:
    gcc calls its cleanup function (`glib_autoptr_cleanup_T`) there, at the declaration's line."""
    text = file.source.by_byte
    if "g_auto" not in text:
        return []
    found = []
    line, counted = 1, 0
    for match in _AUTO.finditer(text):
        function, function_start = file.enclosing(match.start(), match.end())
        args = arguments(text, match.end() - 1) if function else None
        if args is None:
            continue
        line += text.count("\n", counted, match.start())
        counted = match.start()
        col = match.start() - text.rfind("\n", 0, match.start())
        found.append(CallSite(function, file.path, line, col, match.group(1), "macro", args,
                              file.contexts.at(match.start(), match.end(), function_start)))
    return found


_USE_AT = re.compile(r"([A-Za-z_]\w*)[ \t]*\(")


def arguments(text: str, open_paren: int) -> tuple[str, ...] | None:
    """Return the folded top-level arguments of the parenthesised group at `open_paren`, or None when unbalanced."""
    depth = 0
    args = []
    start = open_paren + 1
    for i in range(open_paren, min(len(text), open_paren + _MAX_ARGS)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(fold(from_bytes(text[start:i])))
                return tuple(args) if args != [""] else ()
        elif c == "," and depth == 1:
            args.append(fold(from_bytes(text[start:i])))
            start = i + 1
    return None
