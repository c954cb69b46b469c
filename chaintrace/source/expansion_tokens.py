"""Readers of a macro expansion's tokens: the functions it defines, the members its initializers and compound
literals write, the names it passes and the locals it initializes. They know C's shapes only, nothing of a tree's macros or files
(`graph.macro_functions` and `graph.symbols` apply them to the expansions of a tree's macro uses)."""

from __future__ import annotations

import re

from chaintrace.source.expand import Token

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# Words that precede `(` without being a called or defined function.
KEYWORDS = frozenset({"if", "else", "while", "for", "do", "switch", "case", "return", "goto", "sizeof", "typeof",
                      "__typeof__", "__typeof", "_Generic", "__attribute__", "__attribute", "__asm__", "asm",
                      "__asm", "defined", "offsetof", "alignof", "_Alignof", "_Static_assert", "static_assert",
                      "__builtin_offsetof", "__extension__", "__declspec", "va_start", "va_end", "va_arg"})


def members_written(tokens: list[Token]) -> list[tuple[str, str]]:
    """Return (member path, name) for each `.member = name` (maybe cast, `&`-ed or parenthesised; in nested braces
    `.a = { .b = name }` gives `a.b`) of the braced initializers `{ ... }, { ... }` that `tokens` are (a macro may
    write several elements of a table: `VMSTATE_PCI_HOTPLUG(...)`), else []."""
    found: list[tuple[str, str]] = []
    start = 0
    while start < len(tokens) and tokens[start][0] == "{":
        end = matching(tokens, start, "{", "}")
        if end < 0:
            return []
        found += _members(tokens[start + 1:end], "")
        start = end + 2 if end + 1 < len(tokens) and tokens[end + 1][0] == "," else end + 1
    return found if start >= len(tokens) else []


def literal_members(tokens: list[Token]) -> list[tuple[str, str, str]]:
    """Return (struct type, member path, name) for each `.member = name` of a compound literal `(Type){ ... }` in
    `tokens` (`QML_OBJ_`'s `(QemuLockable){ .lock = qemu_lockable_mutex_lock, ... }`), each branch of a
    `_Generic` included."""
    found: list[tuple[str, str, str]] = []
    for i in range(2, len(tokens) - 1):
        if tokens[i][0] != ")" or tokens[i + 1][0] != "{":
            continue
        words = [tokens[j][0] for j in range(i - 1, max(i - 4, -1), -1)]
        kind = words[0]
        if not _IDENTIFIER.fullmatch(kind) or kind in KEYWORDS or (words[1] != "(" and words[1:3] not in (
                ["struct", "("], ["union", "("], ["const", "("])):
            continue
        end = matching(tokens, i + 1, "{", "}")
        if end > 0:
            found += [(kind, member, name) for member, name in _members(tokens[i + 2:end], "")]
    return found


def _members(tokens: list[Token], prefix: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    start, depth = 0, 0
    for i in range(len(tokens) + 1):
        text = tokens[i][0] if i < len(tokens) else ","
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
        if text != "," or depth != 0:
            continue
        element, start = tokens[start:i], i + 1
        path, k = [], 0
        while k + 1 < len(element) and element[k][0] == "." and _IDENTIFIER.fullmatch(element[k + 1][0]):
            path.append(element[k + 1][0])
            k += 2
        if not path or k >= len(element) or element[k][0] != "=":
            continue  # a positional member: which one is the struct's business, not followed here
        member, value = ".".join(filter(None, (prefix, *path))), element[k + 1:]
        if value and value[0][0] == "{" and matching(value, 0, "{", "}") == len(value) - 1:
            found += _members(value[1:-1], member)
        elif name := bare_name(value):
            found.append((member, name))
    return found


def initialized(tokens: list[Token]) -> list[tuple[str, str, str, str]]:
    """Return (struct type, variable, member, name) for each `.member = name` at the top level of a file-scope
    initializer an expansion writes (`static const TypeInfo foo_info = { .class_init = foo_class_init, };`)."""
    found: list[tuple[str, str, str, str]] = []
    if "." not in {token[0] for token in tokens}:  # most expansions initialise nothing by member
        return found
    depth = 0
    head = 0  # where the current file-scope declaration starts
    for i, token in enumerate(tokens):
        text = token[0]
        if text in ("{", "(", "["):
            depth += 1
        elif text in ("}", ")", "]"):
            depth -= 1
        elif depth == 0 and text == ";":
            head = i + 1
        elif (depth == 1 and text == "." and i + 3 < len(tokens) and tokens[i + 2][0] == "="
              and tokens[i + 4 if i + 4 < len(tokens) else i + 3][0] in (",", "}") and tokens[i - 1][0] in ("{", ",")):
            value = tokens[i + 3][0]
            declared = _declared(tokens, head)
            if declared and _IDENTIFIER.fullmatch(value) and value not in KEYWORDS:
                found.append((declared[0], declared[1], tokens[i + 1][0], value))
        if depth == 0 and text == "}":
            head = i + 1
    return found


def _declared(tokens: list[Token], head: int) -> tuple[str, str] | None:
    """Return (type, variable) of the file-scope declaration `... Type variable = {` starting at `head`, or None."""
    for j in range(head, len(tokens) - 2):
        if tokens[j + 1][0] == "=" and tokens[j + 2][0] == "{":
            if j - 1 < head or not _IDENTIFIER.fullmatch(tokens[j][0]) or not _IDENTIFIER.fullmatch(tokens[j - 1][0]):
                return None
            return tokens[j - 1][0], tokens[j][0]
        if tokens[j][0] in ("{", "(", ";"):
            return None
    return None


def members_assigned(tokens: list[Token]) -> list[tuple[str, str, str]]:
    """Return (left side, member, name) for each statement `base->member = name;` (or `base.a.member`, a name maybe
    cast or `&`-ed) of a function body an expansion defines (`mc->init = pc_init_10_2;` in a class_init)."""
    found = []
    for i in range(1, len(tokens) - 3):
        if tokens[i - 1][0] not in (";", "{", "}") or not _IDENTIFIER.fullmatch(tokens[i][0]):
            continue
        j = i + 1
        while j + 1 < len(tokens) and tokens[j][0] in ("->", ".") and _IDENTIFIER.fullmatch(tokens[j + 1][0]):
            j += 2
        if j == i + 1 or j >= len(tokens) or tokens[j][0] != "=":
            continue
        end = next((k for k in range(j + 1, len(tokens)) if tokens[k][0] == ";"), -1)
        name = bare_name(tokens[j + 1:end]) if end > 0 else ""
        if name:
            found.append(("".join(t[0] for t in tokens[i:j]), tokens[j - 1][0], name))
    return found


def typedefs(tokens: list[Token]) -> list[tuple[str, str]]:
    """Return (name, type) for each file-scope `typedef struct A B;` (or `union`, or a plain type name, pointers
    kept) an expansion writes (`OBJECT_DECLARE_CPU_TYPE`'s `typedef struct ArchCPU X86CPU;`)."""
    found = []
    depth = 0
    for i, token in enumerate(tokens):
        text = token[0]
        depth += (text in "([{") - (text in ")]}")
        if text != "typedef" or depth != 0 or (i and tokens[i - 1][0] not in (";", "}")):
            continue
        end = next((k for k in range(i + 1, len(tokens)) if tokens[k][0] in (";", "{", "(")), -1)
        words = [t[0] for t in tokens[i + 1:end]] if end > 0 and tokens[end][0] == ";" else []
        if len(words) >= 2 and _IDENTIFIER.fullmatch(words[-1]) and all(
                _IDENTIFIER.fullmatch(w) or w == "*" for w in words[:-1]):
            found.append((words[-1], " ".join(words[:-1])))
    return found


def names_passed(tokens: list[Token]) -> list[tuple[str, int, str]]:
    """Return (callee, argument index, name) for each argument of a call in `tokens` that is a bare name, maybe
    cast or with `&` (`register_module_init(f, type)` passes `f`): a function's address handed on, if `name`
    turns out to be a function."""
    found = []
    for i in range(len(tokens) - 1):
        callee = tokens[i][0]
        if tokens[i + 1][0] != "(" or not _IDENTIFIER.fullmatch(callee) or callee in KEYWORDS:
            continue
        end = matching(tokens, i + 1, "(", ")")
        index, start, depth = 0, i + 2, 0
        for j in range(i + 2, end + 1 if end > 0 else 0):
            text = tokens[j][0]
            if text in "([{" and j < end:
                depth += 1
            elif text in ")]}" and j < end:
                depth -= 1
            elif (text == "," and depth == 0) or j == end:
                name = bare_name(tokens[start:j])
                if name:
                    found.append((callee, index, name))
                index, start = index + 1, j + 1
    return found


def bare_name(tokens: list[Token]) -> str:
    """Return the name an argument's tokens are (`f`, `&f`, `(GFunc) f`), or ""."""
    texts = [t[0] for t in tokens]
    for _ in range(4):
        if len(texts) > 2 and texts[0] == "(" and texts[-1] == ")" and "(" not in texts[1:-1]:
            texts = texts[1:-1]  # `(cb)`, as a macro's body writes its arguments
        elif len(texts) > 2 and texts[0] == "(" and ")" in texts:
            texts = texts[texts.index(")") + 1:]  # a cast
        elif texts[:1] == ["&"]:
            texts = texts[1:]
        else:
            break
    return texts[0] if len(texts) == 1 and _IDENTIFIER.fullmatch(texts[0]) and texts[0] not in KEYWORDS else ""


def definitions(tokens: list[Token]) -> list[tuple[str, bool, list[Token]]]:
    """Return (name, static, body tokens) of each function an expansion defines: `... name(params) { body }`."""
    found = []
    depth = 0
    start = 0  # where the current file-scope declaration starts
    i = 0
    n = len(tokens)
    while i < n:
        text = tokens[i][0]
        if text in (";", "}") and depth == 0:
            start = i + 1
        elif text == "{" and depth == 0:
            name_at = _declarator_name(tokens, start, i)
            end = matching(tokens, i, "{", "}")
            if name_at >= 0 and end > 0:
                head = {t[0] for t in tokens[start:name_at]}
                found.append((tokens[name_at][0], "static" in head, tokens[i + 1:end]))
                i = end
                start = end + 1
                continue
            depth += 1
        elif text == "{":
            depth += 1
        elif text == "}":
            depth -= 1
        i += 1
    return found


def _declarator_name(tokens: list[Token], start: int, brace: int) -> int:
    """Return the index of the function name in `... name(params) {`, or -1 (an initializer, a struct)."""
    close = brace - 1
    if close <= start or tokens[close][0] != ")" or any(t[0] == "=" for t in tokens[start:close]):
        return -1
    depth = 0
    for j in range(close, start - 1, -1):
        text = tokens[j][0]
        if text == ")":
            depth += 1
        elif text == "(":
            depth -= 1
            if depth == 0:
                name = tokens[j - 1][0] if j - 1 >= start else ""
                return j - 1 if name.isidentifier() and name not in KEYWORDS else -1
    return -1


def matching(tokens: list[Token], i: int, opening: str, closing: str) -> int:
    """Return the index of the token closing the group opened at tokens[i], or -1."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j][0] == opening:
            depth += 1
        elif tokens[j][0] == closing:
            depth -= 1
            if depth == 0:
                return j
    return -1
