"""One file being extracted: its source, its functions by byte range, and the declarations each function sees.

The extractors of `declarations`, `calls` and `references` share this one
object: declarations fill it (functions first, then parameters and
variables), the others read it to tell a local variable from a function.
"""

from __future__ import annotations

import bisect

from tree_sitter import Node

from chaintrace.extract.context import Contexts
from chaintrace.extract.facts import VarDecl
from chaintrace.extract.syntax import Source, bare_type


class FileScope:
    """One file being extracted: its source, functions by byte range, declarations seen from each function."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.path = source.path
        self.function_starts: list[int] = []
        self.function_ends: list[int] = []
        self.function_names: list[str] = []
        self.locals: dict[str, dict[str, VarDecl]] = {}
        self.globals: dict[str, VarDecl] = {}
        self.contexts = Contexts(source)

    def add_function(self, start: int, end: int, name: str) -> None:
        """Record a function definition's byte span; call in order of `start`."""
        self.function_starts.append(start)
        self.function_ends.append(end)
        self.function_names.append(name)

    def enclosing(self, start: int, end: int) -> tuple[str, int]:
        """Return (name, start byte) of the function whose span holds the range, or ("", -1)."""
        index = bisect.bisect_right(self.function_starts, start) - 1
        if index >= 0 and end <= self.function_ends[index]:
            return self.function_names[index], self.function_starts[index]
        return "", -1

    def declared(self, function: str, name: str) -> VarDecl | None:
        """Return the local, parameter or file-scope declaration of `name` seen from `function`."""
        return self.locals.get(function, {}).get(name) or self.globals.get(name)

    def receiver(self, function: str, base_node: Node) -> tuple[str, str]:
        """Return (text, struct type) of a member access's receiver (`s` of `s->x`); the type is "" unless
        the receiver is a name `function` sees declared."""
        base = self.source.folded_head(base_node)  # a receiver long enough to be cut is no declared name
        if base_node.type != "identifier":
            return base, ""
        declaration = self.declared(function, base)
        return base, bare_type(declaration.type) if declaration is not None else ""
