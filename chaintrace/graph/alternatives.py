"""Which of a tree's alternatives the build compiles (`queries/qemu/build.toml`).

QEMU holds several definitions of some functions and several files of some
`#include` names, of which one build compiles one: the coroutine backend,
the TCG backend of the host (`#include "tcg-target.c.inc"` finds
`tcg/<host>/`), the crypto library. Reading every branch, chaintrace cannot
tell them apart; the build table names the default build's, and `Preference`
ranks paths by it so that `Symbols` and `MacroScope` pick those first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import translate


def _build_table(text: str | None) -> dict:
    import tomllib  # loaded where used: a warm trace resolves nothing (tests/test_startup.py)
    from importlib import resources
    if text is None:
        text = (resources.files("chaintrace.queries") / "qemu" / "build.toml").read_text()
    return tomllib.loads(text)


def load_preferred(text: str | None = None) -> list[str]:
    """Return the `prefer` globs of a build table (QEMU's, `queries/qemu/build.toml`, by default), in order."""
    return [str(glob) for glob in _build_table(text).get("prefer", [])]


def load_config(text: str | None = None) -> dict[str, int | None]:
    """Return the `[config]` values of a build table (QEMU's by default): macro name -> its integer value, or None
    for a macro the build leaves undefined (`false` in the table)."""
    values = _build_table(text).get("config", {})
    return {str(name): None if value is False else int(value) for name, value in values.items()}


def load_types(text: str | None = None) -> dict[str, str]:
    """Return the `[types]` of a build table (QEMU's by default): the name of a type the system headers define
    (`uint32_t`, `gpointer`) -> the C type it names on the build's host."""
    return {str(name): str(value) for name, value in _build_table(text).get("types", {}).items()}


def load_prototypes(text: str | None = None) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Return the `[prototypes]` of a build table (QEMU's by default): a system header's function -> (its return
    type, its parameters' types, `...` last for a variadic one)."""
    found = {}
    for name, types in _build_table(text).get("prototypes", {}).items():
        if isinstance(types, list) and types and all(isinstance(t, str) for t in types):
            found[str(name)] = (types[0], tuple(types[1:]))
    return found


class Preference:
    """Ranks paths by the first `prefer` glob they match (lower first; unmatched paths rank last)."""

    def __init__(self, globs: Iterable[str] | None = None) -> None:
        globs = load_preferred() if globs is None else list(globs)
        self._patterns = [re.compile(translate(glob)) for glob in globs]
        self.last = len(self._patterns)
        self._ranks: dict[str, int] = {}

    def rank(self, path: str) -> int:
        """Return the index of the first glob `path` matches, or `last` when it matches none."""
        found = self._ranks.get(path)
        if found is None:
            found = self._ranks[path] = next(
                (i for i, pattern in enumerate(self._patterns) if pattern.match(path)), self.last)
        return found

    def choose(self, paths: Iterable[str]) -> tuple[str, ...]:
        """Return the paths of the best rank among `paths` when one is listed, else all of them (order kept)."""
        paths = tuple(paths)
        if len(paths) < 2:
            return paths
        best = min(self.rank(p) for p in paths)
        return paths if best == self.last else tuple(p for p in paths if self.rank(p) == best)
