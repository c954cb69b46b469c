"""Edits whose added or removed facts no resolution reads: the graph is patched instead of resolved again.

Two kinds of facts reach the resolver by name alone:

* A prototype (`void f(int);`) gives it one thing: the return type of `f`
  (`Symbols.returns`, the first one seen). That type is read in one place
  only, `Types._call_type`, when an expression text of some fact (an
  argument, a receiver, the base of a write) calls `f(...)` by name. So
  prototypes added, removed or changed are unread when no other fact of
  the program holds the text `f`.
* A `#define` is read through the tables of macros by name
  (`scope.ReadNames`), which record every name a resolution asked about
  (`CallGraph.macros_read`): a macro's expansion, whether a file sees it,
  whether a name is a macro at all. A resolution that never asked about
  `M` does the same steps, and gives the same graph, whatever `M` is; so
  `#define`s of names the last resolution did not read may be added,
  removed or changed.

`unread_edit` tells such an edit apart (everything else equal but for lines
that move in order, as `graph.shift`) and returns the names to check;
`store.graphs` checks them (the prototypes' names in every other file's
stored facts, the macros' against the read names stored with the graph)
before it patches. Any other change of facts (a call, a reference, a write,
a definition, a type) can change edges anywhere through value flow, and the
graph is resolved in full.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from chaintrace.extract.facts import FileFacts
from chaintrace.graph.shift import LineMap, line_shift



@dataclasses.dataclass(frozen=True)
class Edit:
    """How a file's facts changed: the lines that move, and the names whose prototypes or `#define`s changed."""

    moves: LineMap
    prototypes: frozenset[str]
    defines: frozenset[str]


def _changed_names(old: tuple[Any, ...], new: tuple[Any, ...]) -> set[str] | None:
    """Return the names whose facts (by name, lines aside) differ between `old` and `new`, or None when those of
    the other names do not stay in the same order (the first of a name, which the resolver may keep, may differ)."""
    before = [dataclasses.replace(fact, line=0) for fact in old]
    after = [dataclasses.replace(fact, line=0) for fact in new]
    names = {fact.name for fact in ((Counter(before) - Counter(after)) + (Counter(after) - Counter(before)))}
    if [f for f in before if f.name not in names] != [f for f in after if f.name not in names]:
        return None
    return names


def unread_edit(old: FileFacts, new: FileFacts) -> Edit | None:
    """Return the `Edit` from `old` to `new` when they differ only by lines that move in order (`line_shift`) and
    by prototypes and `#define`s added, removed or changed; None otherwise."""
    prototypes = _changed_names(old.prototypes, new.prototypes)
    defines = _changed_names(old.defines, new.defines)
    if prototypes is None or defines is None:
        return None
    # the lines of the other macros move with the rest (a function renamed by a macro defined above it reads them)
    moves = line_shift(dataclasses.replace(old, prototypes=(), defines=tuple(d for d in old.defines if d.name not in defines)),
                       dataclasses.replace(new, prototypes=(), defines=tuple(d for d in new.defines if d.name not in defines)))
    if moves is None:
        return None
    return Edit(moves, frozenset(prototypes), frozenset(defines))


def other_text(facts: FileFacts, names: set[str] | frozenset[str]) -> str:
    """Return the text of every fact of `facts` but the prototypes of `names`, to look for those names in."""
    kept = tuple(p for p in facts.prototypes if p.name not in names)
    return repr(dataclasses.replace(facts, prototypes=kept))
