"""The source lines and indexed facts of a tree's files, read on demand for `chaintrace doc` pages (by `walkthrough`)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from chaintrace.extract.facts import FileFacts, FunctionDef
from chaintrace.render.wording import Text, code
from chaintrace.source.scan import read_tree_file, read_tree_text

_DEFINE = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(?![\w(])", re.M)
_CONSTANT = re.compile(r"\b[A-Z_][A-Z0-9_]*[A-Z][A-Z0-9_]*\b")  # the names macros of constants have: BUFFER_DELAY


class SourceFacts:
    """The source lines and indexed facts of a tree's files, read on demand."""

    def __init__(self, root: Path, store, follow: bool = False) -> None:
        self.root, self.store, self.follow = root, store, follow  # follow: the tree was indexed --follow-symlinks
        self.keys = store.indexed_keys(str(root))
        self._facts: dict[str, FileFacts | None] = {}
        self._lines: dict[str, list[str]] = {}
        self._defined_in: dict[str, list[str]] | None = None

    def facts(self, file: str) -> FileFacts | None:
        """Return the facts of `file` (relative path), or None when it is not indexed."""
        if file not in self._facts:
            key = self.keys.get(file)
            self._facts[file] = next((found for _, found in self.store.iter_facts([key])), None) if key else None
        return self._facts[file]

    def lines(self, file: str) -> list[str]:
        """Return the lines of `file` (tabs expanded, no line ends); [] when unreadable."""
        if file not in self._lines:
            text = read_tree_text(self.root, file, follow=self.follow) or ""  # never a FIFO or a device
            self._lines[file] = [line.rstrip().expandtabs(8) for line in text.splitlines()]
        return self._lines[file]

    def windows(self, file: str, spans: list[tuple[int, int]]) -> tuple[tuple[int, tuple[str, ...]], ...]:
        """Return the merged line ranges `spans` (inclusive) of `file` as (first line, lines); close ranges join."""
        lines = self.lines(file)
        merged: list[list[int]] = []
        for start, end in sorted((max(1, a), min(len(lines), b)) for a, b in spans):
            if start > end:
                continue
            if merged and start <= merged[-1][1] + 2:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return tuple((start, tuple(lines[start - 1:end])) for start, end in merged)

    def include_guard(self, file: str, condition: str) -> bool:
        """Return True when `condition` is `(!)defined(X)` and header `file` defines X empty: its include guard."""
        match = re.fullmatch(r"!?defined\((\w+)\)", condition)
        facts = self.facts(file) if match and file.endswith(".h") else None
        return bool(facts) and any(d.name == match.group(1) and not d.body and d.params is None for d in facts.defines)

    def function(self, file: str, name: str, line: int) -> FunctionDef | None:
        """Return the definition of `name` in `file` at `line` (else its first one), or None."""
        found = [f for f in (self.facts(file).functions if self.facts(file) else ()) if f.name == name]
        return next((f for f in found if f.line == line), found[0] if found else None)

    def guards_at(self, file: str, line: int, col: int) -> list[dict]:
        """Return the early-return guards before the call (or reference, or store) at `file:line:col`."""
        facts = self.facts(file)
        if facts is None:
            return []
        items = [c for c in facts.calls if c.line == line] + [r for r in facts.refs if r.line == line]
        items += [w for w in facts.writes if w.line == line]
        items.sort(key=lambda item: (item.col != col, item.col))
        guards = items[0].context.guards if items else ()
        return [{"condition": g.condition, "statement": g.statement, "line": g.line} for g in guards]

    def define(self, name: str, file: str) -> tuple[str, str, int, int] | None:
        """Return (body, file, line, other definitions) of the object-like macro `name` seen from `file`, or None."""
        def own(path: str):
            facts = self.facts(path)
            return [d for d in (facts.defines if facts else ()) if d.name == name and d.params is None]

        if own(file):
            found = own(file)[0]
            return found.body, found.file, found.line, 0
        if self._defined_in is None:  # object-like #defines of the tree's headers, by name
            self._defined_in = defaultdict(list)
            for path in sorted(self.keys):
                if path.endswith((".h", ".inc")):
                    try:
                        data = read_tree_file(self.root, path, follow=self.follow)
                    except ValueError:
                        continue
                    for match in _DEFINE.finditer(data):
                        self._defined_in[match.group(1).decode("ascii")].append(path)
        folder = file.rsplit("/", 1)[0] if "/" in file else ""
        paths = sorted(self._defined_in.get(name, ()), key=lambda p: (not p.startswith(folder + "/"), not p.startswith("include/"), p))
        for path in paths:
            if own(path):
                found = own(path)[0]
                return found.body, found.file, found.line, len(paths) - 1
        return None

    def macro_words(self, text: str, file: str, depth: int = 2) -> Text:
        """Return "; `NAME` is `VALUE` (#define at FILE:LINE)" for the object-like macros in `text`, or "".

        Only upper-case names are looked up (the constants of QEMU's conditions:
        `BUFFER_DELAY`), values themselves `depth - 1` levels deep.
        """
        words, seen, todo = [], set(), [(text, depth)]
        while todo:
            expression, level = todo.pop(0)
            for name in dict.fromkeys(_CONSTANT.findall(expression)):
                if name in seen:
                    continue
                seen.add(name)
                found = self.define(name, file)
                if found:
                    body, where, line, others = found
                    more = f"; {others} other definition{'s' * (others != 1)} elsewhere" if others else ""
                    words.append(f"{code(name)} is {code(body or '(empty)')} (`#define` at {where}:{line}{more})")
                    if level > 1:
                        todo.append((body, level - 1))
        return "".join(f"; {word}" for word in words)
