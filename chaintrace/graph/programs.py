"""Which files of a tree make the program whose call graph is resolved (`queries/qemu/programs.toml`).

A tree such as QEMU's builds several programs; a graph that joins them has
edges no run can take (the block layer "calling" a test driver in tests/).
`program_filter(name)` returns the test a file's path must pass to be part
of the program `name`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import translate

from chaintrace.errors import UsageError

DEFAULT_PROGRAM = "system"


def load_programs(text: str | None = None) -> dict[str, dict]:
    """Return {program name: {"description": str, "exclude": [glob, ...]}} (QEMU's table by default)."""
    import tomllib  # here, not at the top: a warm trace of the default program never reads the table
    from importlib import resources

    if text is None:
        text = (resources.files("chaintrace.queries") / "qemu" / "programs.toml").read_text()
    programs = tomllib.loads(text).get("program", {})
    return {name: {"description": str(entry.get("description", "")), "exclude": [str(g) for g in entry.get("exclude", [])]}
            for name, entry in programs.items()}


def program_filter(name: str, programs: dict[str, dict] | None = None) -> Callable[[str], bool]:
    """Return a test that is True for the paths of files that belong to program `name`.

    Raises UsageError for an unknown program, naming the known ones.
    """
    programs = programs if programs is not None else load_programs()
    if name not in programs:
        raise UsageError(f"unknown program {name!r} (known: {', '.join(sorted(programs))})")
    # one expression for every glob (what fnmatchcase matches each by): a tree's 7,000 paths are tested at
    # every trace and index, and a glob at a time cost a third of a second
    excluded = re.compile("|".join(f"(?:{translate(glob)})" for glob in programs[name]["exclude"]) or "(?!)")
    return lambda path: excluded.match(path) is None
