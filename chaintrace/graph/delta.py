"""Edits whose added or removed facts no resolution reads: the graph is patched instead of resolved again.

A prototype (`void f(int);`) gives the resolver one thing: the return type
of `f` (`Symbols.returns`, the first one seen). That type is read in one
place only, `Types._call_type`, when an expression text of some fact
(an argument, a receiver, the base of a write) calls `f(...)` by name.
So prototypes added, removed or changed are unread when no other fact of
the program holds the text `f`: the graph of the edited tree is the graph
of the old one, its lines moved (`graph.shift`). `prototype_edit` tells
such an edit apart and returns the names to look for; `store.graphs` looks
for them in every other file's stored facts before it patches.

Any other change of facts (a call, a reference, a write, a definition, a
macro, a type) can change edges anywhere through value flow, and the graph
is resolved in full.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from chaintrace.extract.facts import FileFacts, Prototype
from chaintrace.graph.shift import LineMap, line_shift


def _shape(prototype: Prototype) -> Prototype:
    """Return the prototype with its line blanked: where it stands is read by nothing."""
    return dataclasses.replace(prototype, line=0)


def prototype_edit(old: FileFacts, new: FileFacts) -> tuple[LineMap, set[str]] | None:
    """Return (the lines that move, the names whose prototypes changed) when `new` differs from `old` only by lines
    that move in order (`line_shift`) and by prototypes added, removed or changed; None otherwise.

    The prototypes of the other names must stay in the same order, so each one's first return type stays
    the one the resolver keeps.
    """
    moves = line_shift(dataclasses.replace(old, prototypes=()), dataclasses.replace(new, prototypes=()))
    if moves is None:
        return None
    before, after = list(map(_shape, old.prototypes)), list(map(_shape, new.prototypes))
    names = {p.name for p in ((Counter(before) - Counter(after)) + (Counter(after) - Counter(before)))}
    if [p for p in before if p.name not in names] != [p for p in after if p.name not in names]:
        return None  # two prototypes of one name swapped: the one kept first may be another
    return moves, names


def other_text(facts: FileFacts, names: set[str]) -> str:
    """Return the text of every fact of `facts` but the prototypes of `names`, to look for those names in."""
    kept = tuple(p for p in facts.prototypes if p.name not in names)
    return repr(dataclasses.replace(facts, prototypes=kept))
