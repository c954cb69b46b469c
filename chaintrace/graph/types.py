"""Struct types of C expressions, read from the tree's declarations: what multi-layer type analysis needs.

`Types.infer_type("job->driver", file, function)` follows `job`'s declared
type (`Job *`), then the member `driver` of `Job` (`const JobDriver *`), and
returns the canonical struct name `JobDriver`; QOM casts (`DEVICE_CLASS(k)`,
`OBJECT_CHECK(T, ...)`, `container_of(p, T, m)`) name their type.
"""

from __future__ import annotations

import re

from chaintrace.extract.syntax import bare_type
from chaintrace.graph.symbols import Symbols


_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)

# Parenthesised expressions inside one another that `infer_types` reads before giving up: QEMU nests a few.
MAX_NESTING = 32

class Types:
    """Struct types of C expressions, from the tree's declarations, typedefs and struct definitions."""

    def __init__(self, symbols: Symbols) -> None:
        self.symbols = symbols
        # QOM naming: DEVICE_GET_CLASS -> DeviceClass, MIGRATION_OBJ -> ..., by letters alone.
        self._upper = {name.replace("_", "").upper(): name for name in sorted(symbols.types, reverse=True)}
        self._member_types: dict[str, set[str]] | None = None
        # the name given to a struct written out where it is used (`struct { ... } valid;`, `static struct { ... }
        # *multifd_send_state;`) -> its declaration's text: `Outer.member` for a member, `file::variable` for a variable
        self._anonymous: dict[str, str] = {}

    def canonical(self, name: str) -> str:
        """Return the struct name a type name stands for, following typedefs."""
        for _ in range(8):
            alias = self.symbols.typedefs.get(name)
            if not alias or alias == name or (name in self.symbols.structs and alias not in self.symbols.structs):
                break
            name = alias
        return name

    def field_type(self, struct: str, field: str) -> str | None:
        """Return the canonical type of `struct.field`, "" when untyped, None when no such struct field is known.

        A member whose struct is written out in place (`struct { bool (*accepts)(...); } valid;` in
        MemoryRegionOps) has the type `MemoryRegionOps.valid`, whose members its text declares."""
        if struct in self._anonymous:
            return self._anonymous_member(struct, field)
        struct = self.canonical(struct)
        for definition in self.symbols.structs.get(struct, ()):
            for member in definition.fields:
                if member.name == field:
                    return self._type_of(member.type, f"{struct}.{field}")
        return None

    def _type_of(self, declared: str, name: str) -> str:
        """Return the canonical struct name of a declared type; a struct written out in it is named `name`."""
        if "{" in declared:
            self._anonymous[name] = declared
            return name
        return self.canonical(bare_type(declared))

    def is_written_out(self, struct: str) -> bool:
        """Return True for the name `_type_of` gave a struct written out in place."""
        return struct in self._anonymous

    def written_out_members(self, struct: str) -> list[str]:
        """Return the member names, in order, of a struct written out in place (for its positional initializers)."""
        return [name for name, _, _ in self._declarations(struct)]

    def _anonymous_member(self, struct: str, field: str) -> str | None:
        """Return the type of member `field` of a struct written out in place (named by `_type_of`), or None."""
        for name, kind, fnptr in self._declarations(struct):
            if name == field:
                return "" if fnptr else self._type_of(kind, f"{struct}.{field}")
        return None

    def _declarations(self, struct: str) -> list[tuple[str, str, bool]]:
        """Return (member, type text, is a function pointer) of each member a written-out struct's text declares."""
        text = self._anonymous[struct]
        body = _COMMENT.sub(" ", text[text.find("{") + 1:text.rfind("}")])
        found = []
        depth, start = 0, 0
        for index, char in enumerate(body + ";"):
            depth += {"{": 1, "}": -1}.get(char, 0)
            if char != ";" or depth:
                continue
            declaration, start = body[start:index].strip(), index + 1
            pointer = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)", declaration)
            if pointer:
                found.append((pointer.group(1), "", True))
                continue
            named = re.search(r"^(?P<type>.*?)\b(?P<name>[A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*$", declaration, re.S)
            if named and named.group("type").strip():
                found.append((named.group("name"), named.group("type"), False))
        return found

    def infer_type(self, expr: str, file: str, function: str, depth: int = 0) -> str:
        """Return the canonical struct type of a C expression (`se->ops`, `DEVICE_GET_CLASS(dev)`), or ""."""
        candidates = self.infer_types(expr, file, function, depth)
        return next(iter(candidates)) if len(candidates) == 1 else ""

    def infer_types(self, expr: str, file: str, function: str, depth: int = 0, line: int = 0) -> set[str]:
        """Return the struct types a C expression may have: one when its declarations say it, else the
        types its member chain allows (`X->ops` with X unknown: the types of every member named `ops`).
        Casts of casts deeper than MAX_NESTING give no type (a bound, not recursion on the input's depth).
        With `line`, a local declared in several blocks has the type of its declaration nearest before it."""
        expr = expr.strip()
        while expr[:1] in ("&", "*"):
            expr = expr[1:].strip()
        if not expr or depth > MAX_NESTING:
            return set()
        if expr[0] == "(":
            end = _closing(expr, 0)
            inner = expr[1:end].strip()
            cast = re.match(r"\(\s*((?:const\s+|struct\s+|union\s+)*)(\w+)\s*(\**)\s*\)", inner)
            if cast and (cast.group(2) in self.symbols.types or cast.group(3) or cast.group(1)):
                base = self.canonical(cast.group(2))
            else:
                base = self.infer_type(inner, file, function, depth + 1)  # a cast of an expression: keep it simple
            rest = expr[end + 1:]
        else:
            word = re.match(r"[A-Za-z_]\w*", expr)
            if not word:
                return set()
            name, rest = word.group(), expr[word.end():].lstrip()
            if rest.startswith("("):
                end = _closing(rest, 0)
                base = self._call_type(name, rest[1:end])
                rest = rest[end + 1:]
            else:
                local = self.symbols.local_type(file, function, name, line)
                declared = local or self.symbols.globals.get((file, name)) or self.symbols.global_types.get(name, "")
                base = self._type_of(declared, f"{file}::{function}::{name}" if local else f"{file}::{name}")
        candidates = {base} if base else set()
        unknown = not base
        for step in re.finditer(r"\s*(?:(->|\.)\s*([A-Za-z_]\w*)|\[[^\]]*\])", rest):
            member = step.group(2)
            if not member:
                continue
            if unknown:
                candidates, unknown = self.member_types(member), False
            else:
                candidates = {found for c in candidates if (found := self.field_type(c, member))}
        return candidates if not unknown else set()

    def _call_type(self, name: str, args: str) -> str:
        """Return the type a call yields: the function's return type, or a QOM cast macro's type."""
        if self.symbols.returns.get(name):  # a QOM checker a macro defines has none said: its name says it
            return self.canonical(bare_type(self.symbols.returns[name]))
        first = args.split(",")
        if name == "container_of" and len(first) == 3:
            return self.canonical(first[1].strip())
        if first and first[0].strip() in self.symbols.types:
            return self.canonical(first[0].strip())  # OBJECT_CHECK(T, obj, name) and the like
        key = name.replace("_", "").upper()
        if key.endswith("GETCLASS"):
            key = key[:-len("GETCLASS")] + "CLASS"
        for guess in (key, key + "STATE"):
            if guess in self._upper:
                return self.canonical(self._upper[guess])  # QOM naming: DEVICE_GET_CLASS -> DeviceClass
        return ""


    def member_types(self, member: str) -> set[str]:
        """Return the struct types that members named `member` have across the tree (what `X->member` may be
        when X's type is unknown, as after a macro such as `QTAILQ_FIRST(...)`)."""
        if self._member_types is None:
            found: dict[str, set[str]] = {}
            for definitions in self.symbols.structs.values():
                for definition in definitions:
                    for field in definition.fields:
                        kind = self.canonical(bare_type(field.type))
                        if kind in self.symbols.structs:
                            found.setdefault(field.name, set()).add(kind)
            self._member_types = found
        return set(self._member_types.get(member, ()))


def _closing(text: str, start: int) -> int:
    """Return the index of the parenthesis closing the one at `start` (or the last index)."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return len(text) - 1
