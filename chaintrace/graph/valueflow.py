"""Where function pointers flow: a field-sensitive, Andersen-style points-to analysis of function addresses.

Locations (tuples, so they hash fast and print plainly):

* `("f", struct, field)`: a struct member, by the canonical struct type that
  holds it (`("f", "JobDriver", "run")`). A member of a struct embedded by
  value is the inner struct's member: `BlockJobDriver.job_driver.run` is
  `("f", "JobDriver", "run")`, as `container_of` makes it at run time. The
  struct is "" when the receiver's type is unknown.
* `("v", file, function, name)`: a local variable or parameter.
* `("g", name)`: a global variable.
* `("r", function id)`: what a call of a function that returns a function
  pointer yields (`field_prop_getter(info)` returns `field_prop_get`).

Facts, read from the extracted facts of every file:

* *address*: a location is given a function (`.run = backup_run`,
  `s->cb = fn`, `fn` passed as an argument binds the callee's parameter);
* *copy*: `dst = src` between locations (`prop->set = set`,
  `x->saved = dc->realize`), and every argument that is a location binds the
  parameter of the function called (`object_property_add(..., set, ...)`);
* *indirect call*: a call through a location (`job->driver->run(...)`: the
  loaded location is `("f", "JobDriver", "run")` because `job` is a `Job *`
  and `Job.driver` a `const JobDriver *`: multi-layer type analysis).

`graph/flowfacts.build_flow` reads these facts from the extracted ones.
`solve` propagates addresses along copies to a fixpoint; an indirect call's
arguments bind the parameters of each target it gains, so the graph of
copies grows while the analysis runs. Every function in a points-to set
keeps the fact that first put it there (its *proof*) and how it arrived
(`initializer`, `assignment`, `parameter flow`, `copy`).

Why no networkx or sets of objects here: QEMU has ~10^4 address-taken
functions and ~10^5 field writes; dicts keyed by tuples and a worklist solve
it in well under a second.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict

from chaintrace.graph.components import reachable
from chaintrace.graph.types import Types

Location = tuple

IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_CAST = re.compile(r"^\(\s*(?:const\s+|struct\s+|union\s+)*[A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*\s*\**\s*\)\s*")
# Words of a declared type that say nothing of what it holds (`static inline dev_aml_fn`, `const fn_t`).
_QUALIFIERS = frozenset({"const", "volatile", "static", "inline", "__inline", "__inline__", "extern", "register"})
# `f(x, y)`: a call of a plain name (its arguments checked balanced apart).
CALL = re.compile(r"([A-Za-z_]\w*)\s*\((.*)\)", re.S)
# `table[i]`: an element of an array a variable names.
ELEMENT = re.compile(r"([A-Za-z_]\w*)\s*\[[^\[\]]*\]")
# `a->b`, `a.b`, `(*a).b`, `a->b.c`: the last member and its base.
MEMBER = re.compile(r"^(?P<base>.+?)\s*(?:->|\.)\s*(?P<field>[A-Za-z_]\w*)$", re.S)


class ValueFlow:
    """The function-pointer value flow of a tree: locations, copies between them, and their points-to sets."""

    def __init__(self, types: Types) -> None:
        self.types = types
        self.symbols = types.symbols
        self.points_to: dict[Location, dict[str, dict]] = defaultdict(dict)
        # src -> {dst: how the value crossed}: all `solve` reads of a copy's proof (a copy per argument bound,
        # 400,000 on QEMU, each a proof dict of its own, was a fifth of the resolver's memory)
        self.copies: dict[Location, dict[Location, str]] = defaultdict(dict)
        self._pending: list[Location] = []
        # (file, variable, location, function id) of each function a global's initializer stores (graph.objects)
        self.initialized: list[tuple[str, str, Location, str]] = []
        # (text, file, function) -> location: the same argument text (`s`, `errp`, `opaque`) recurs in a function
        self._expressions: dict[tuple[str, str, str], Location | None] = {}
        # what code outside the tree does (graph/library): struct layouts, macros that load a pointee,
        # and the parameters its later calls bind (hand-offs)
        self.layouts: dict[str, tuple[str, ...]] = {}
        self.loads: dict[str, int] = {}
        self.handed_off: set[Location] = set()

    # -- locations -----------------------------------------------------------
    def field_location(self, struct: str, path: str) -> Location:
        """Return the location of member `path` (`job_driver.run`) of `struct`, inner embedded structs unified."""
        struct = self.types.canonical(struct) if struct else ""
        parts = path.split(".")
        for part in parts[:-1]:
            inner = self.types.field_type(struct, part) if struct else None
            if not inner:
                return ("f", struct, ".".join(parts))  # a member whose type is unknown: keep the path
            struct = inner
        return ("f", struct, parts[-1])

    def variable_location(self, file: str, function: str, name: str) -> Location | None:
        """Return the location of variable `name` as seen from `function` in `file`, or None if it is none."""
        if function and (file, function, name) in self.symbols.locals:
            return ("v", file, function, name)
        if (file, name) in self.symbols.globals or name in self.symbols.global_types:
            if self.symbols.resolve_function(file, name) is None:
                return ("g", name)
        return None

    def expression_location(self, text: str, file: str, function: str) -> Location | None:
        """Return the location a C expression reads (`set`, `p->set`, `(GSourceFunc) cb`, `&x->f`), or None."""
        key = (text, file, function)
        if key not in self._expressions:  # the symbols and types are fixed while the flow is built
            self._expressions[key] = self._expression_location(text, file, function)
        return self._expressions[key]

    def _expression_location(self, text: str, file: str, function: str) -> Location | None:
        text = text.strip()
        for _ in range(4):
            stripped = _CAST.sub("", text).lstrip("&*").strip()
            if stripped.startswith("(") and stripped.endswith(")") and _balanced(stripped[1:-1]):
                stripped = stripped[1:-1].strip()
            if stripped == text:
                break
            text = stripped
        if IDENTIFIER.fullmatch(text):
            return self.variable_location(file, function, text)
        call = CALL.fullmatch(text)
        if call is not None and _balanced(call.group(2)):
            return self.call_location(file, function, call.group(1), tuple(_arguments(call.group(2))))
        element = ELEMENT.fullmatch(text)
        if element is not None:  # `get_refcount_funcs[order]`: whatever the array holds, as a call through it reads
            return self.variable_location(file, function, element.group(1))
        member = MEMBER.match(text)
        if member is None or "(" in member.group("field"):
            return None
        return self.field_location(self.types.infer_type(member.group("base"), file, function), member.group("field"))

    def call_location(self, file: str, function: str, name: str, args: tuple[str, ...]) -> Location | None:
        """Return the location a call's value reads: its argument's pointee for a loading macro
        (`qatomic_read(&bql_mutex_lock_func)`), else what a call of the function yields (`result_location`)."""
        index = self.loads.get(name)
        if index is not None:
            return self.expression_location(args[index], file, function) if index < len(args) else None
        return self.result_location(file, name)

    def result_location(self, file: str, name: str) -> Location | None:
        """Return the location of what a call of `name` from `file` yields, or None unless it is a function of the
        tree returning a function pointer (the result of any other call holds no function, and is not followed)."""
        target = self.symbols.resolve_function(file, name)
        definition = self.symbols.definition(target.id) if target is not None else None
        if definition is None or not self.holds_function(definition.return_type):
            return None
        return ("r", target.id)

    def holds_function(self, type_text: str) -> bool:
        """Return True for a function pointer type: `fn_t`, `const fn_t`, `ObjectPropertyAccessor *` (a pointer to
        a function typedef), `void (*)(int)`."""
        text = " ".join(word for word in type_text.replace("*", " * ").split() if word not in _QUALIFIERS)
        fnptr_types = self.symbols.fnptr_types
        return "(*" in type_text or text in fnptr_types or (text.endswith("*") and text[:-1].rstrip() in fnptr_types)

    def parameter_location(self, function_id: str, index: int) -> Location | None:
        """Return the location of parameter `index` of the defined function `function_id`, or None."""
        definition = self.symbols.definition(function_id)
        if definition is None or index >= len(definition.params):
            return None
        name = definition.params[index].name
        return ("v", definition.file, definition.name, name) if name else None

    def forget_copies(self) -> None:
        """Drop the copies between locations (once nothing follows them again: `reach` then finds only `start`)."""
        self.copies.clear()

    def forget_expressions(self) -> None:
        """Drop the memo of expression locations (once the flow is built: it is the largest table left)."""
        self._expressions.clear()

    # -- facts -----------------------------------------------------------------
    def add_address(self, location: Location, function_id: str, proof: dict) -> None:
        """Record that `location` may hold `function_id` (proof: where the address was taken)."""
        held = self.points_to[location]
        if function_id not in held:
            held[function_id] = proof
            self._pending.append(location)

    def add_copy(self, source: Location, destination: Location, proof: dict) -> None:
        """Record `destination = source`; what `source` holds flows to `destination`."""
        if source == destination or destination in self.copies[source]:
            return
        self.copies[source][destination] = sys.intern(proof.get("how", ""))
        if self.points_to.get(source):
            self._pending.append(source)

    def solve(self) -> None:
        """Propagate every address along the copies until nothing changes."""
        pending = self._pending
        while pending:
            source = pending.pop()
            held = self.points_to.get(source)
            if not held:
                continue
            for destination, how in self.copies.get(source, {}).items():
                target = self.points_to[destination]
                grew = False
                for function_id, origin in held.items():
                    if function_id not in target:
                        # a proof is never edited: one that arrives as it came is shared, not copied (most are)
                        arrived = _arrival(origin, how)
                        target[function_id] = origin if origin.get("how") == arrived else {**origin, "how": arrived}
                        grew = True
                if grew:
                    pending.append(destination)

    def reach(self, start: Location) -> set[Location]:
        """Return every location `start` flows to through copies (itself included)."""
        return reachable(start, self.copies)


def _arrival(origin: dict, how: str) -> str:
    """Return how an address arrived after one more copy (`how`): `parameter flow` once it crossed a parameter,
    else `copy`."""
    return "parameter flow" if "parameter flow" in (origin.get("how"), how) else "copy"


def _arguments(text: str) -> list[str]:
    """Return the arguments of a call's argument text, split at its top-level commas."""
    args, depth, start = [], 0, 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1, "[": 1, "]": -1, "{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            args.append(text[start:position].strip())
            start = position + 1
    args.append(text[start:].strip())
    return args if any(args) else []


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0
