"""Templates a file includes several times, each time under other macros: one instance per inclusion.

`cirrus_vga.c` includes `cirrus_vga_rop.h` once per `#define ROP_NAME ...`,
and that header includes `cirrus_vga_rop2.h` once per `#define DEPTH ...`;
`vnc-enc-zrle.c` includes `vnc-enc-zrle.c.inc` once per `ZRLE_BPP` and
endianness. gcc compiles each inclusion with the macros defined before it,
so `glue(rop_8_, ROP_NAME)` or `ZRLE_ENCODE` is another function each time
and its calls go to that instance's functions. Read with every definition
at once, the template would define a few names and call every instance's
functions from each.

`Instances` finds such templates (a header or `.c.inc` that few files
include, one of them more than once, or that only such templates include)
and gives each inclusion's
macros: the includer's `#define`s above the `#include` (and the includer's
own instance's, when it is a template too). `instance_lookup` reads macros
as cpp would in that inclusion: the template's own definitions whose `#if`
conditions hold there (the first that holds; those that cannot be decided
are all kept), then the inclusion's, then what the template sees anyway.
Conditions are decided by `conditions.decide` (a small, total evaluator: no `eval`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from chaintrace.extract.facts import Define, FileFacts
from chaintrace.graph.conditions import Env, decide
from chaintrace.graph.scope import FEW_INCLUDERS, MacroScope
from chaintrace.source.expand import Definition, Lookup, definition

MAX_INSTANCES = 256  # inclusions of one template at most (cirrus_vga_rop2.h: 16 ROP_NAMEs x 4 DEPTHs)
# The macros an inclusion sees from its includers, by name: the last definition above the `#include`, or None for
# a macro an includer defines only below it (`ZRLE_COMPACT_PIXEL` before its own inclusions): not defined there.


class Instances:
    """The templates of a tree that are included more than once, and the macros of each inclusion."""

    def __init__(self, facts: Iterable[FileFacts], scope: MacroScope) -> None:
        self.scope = scope
        self._facts = {f.path: f for f in facts}
        self.own_defines: dict[str, dict[str, list[Define]]] = {}
        self._envs: dict[str, list[Env]] = {}
        # includer -> [(template, include line, include conditions)], in line order
        self._included: dict[str, list[tuple[str, int, tuple[str, ...]]]] = defaultdict(list)
        counts: dict[tuple[str, str], int] = defaultdict(int)  # (includer, template) -> inclusions
        for path, file_facts in self._facts.items():
            for include in file_facts.includes:
                for target in scope.resolve(path, include.target, include.system):
                    if target in self._facts and not target.endswith(".c") and target != path:
                        self._included[path].append((target, include.line, include.conditions))
                        counts[path, target] += 1
        self.templates = {t for (_, t), n in counts.items()
                          if n > 1 and len(set(scope.includers.get(t, ()))) <= FEW_INCLUDERS}
        # a file that only templates include is compiled once per inclusion of theirs too (vnc-enc-zrle.c.inc's
        # vnc-enc-zywrle-template.c)
        changed = True
        while changed:
            changed = False
            for includer, items in self._included.items():
                if includer in self.templates:
                    for target, _, _ in items:
                        includers = set(scope.includers.get(target, ()))
                        if target not in self.templates and includers <= self.templates:
                            self.templates.add(target)
                            changed = True

    def defines_of(self, path: str) -> dict[str, list[Define]]:
        """Return the `#define`s of file `path` by name, in line order."""
        found = self.own_defines.get(path)
        if found is None:
            found = defaultdict(list)
            file_facts = self._facts.get(path)
            for define in sorted(file_facts.defines if file_facts else (), key=lambda d: d.line):
                found[define.name].append(define)
            self.own_defines[path] = found = dict(found)
        return found

    def envs(self, template: str) -> list[Env]:
        """Return the macros of each inclusion of `template` ([] for a file that is no such template)."""
        if template not in self.templates:
            return []
        found = self._envs.get(template)
        if found is None:
            self._envs[template] = []  # an include cycle ends here
            found = []
            for includer in dict.fromkeys(self.scope.includers.get(template, ())):
                parents = self.envs(includer) or [{}]
                for parent in parents:
                    lookup = instance_lookup(self, includer, parent, self.scope.lookup(includer))
                    for target, line, conditions in self._included.get(includer, ()):
                        if target != template or len(found) >= MAX_INSTANCES:
                            continue
                        env = self._env_at(includer, parent, lookup, line)
                        if all(decide(c, env, layered(env, lookup)) is not False for c in conditions):
                            found.append(env)
            self._envs[template] = found
        return found

    def _env_at(self, includer: str, parent: Env, lookup: Lookup, line: int) -> Env:
        env = dict(parent)
        for name, defines in self.defines_of(includer).items():
            env.setdefault(name, None)
            for define in defines:
                if define.line < line and all(decide(c, parent, lookup) is not False for c in define.conditions):
                    env[name] = define
        return env


def layered(env: Env, fallback: Lookup) -> Lookup:
    """Return a lookup that reads `env` first (None: not defined there), then `fallback`."""
    def lookup(name: str) -> list[Definition]:
        if name in env:
            made = env[name]
            return [definition(made.params, made.body)] if made is not None else []
        return list(fallback(name))
    return lookup


def instance_lookup(instances: Instances, template: str, env: Env, base: Lookup) -> Lookup:
    """Return a macro lookup for one inclusion of `template` (see the module's docstring)."""
    own = instances.defines_of(template)
    outer = layered(env, base)
    memo: dict[str, list[Definition]] = {}

    def lookup(name: str) -> list[Definition]:
        found = memo.get(name)
        if found is None:
            memo[name] = []  # a condition naming the macro it guards decides without it
            chosen = _chosen(own.get(name, ()), env, lookup)
            found = [definition(d.params, d.body) for d in chosen] if chosen else outer(name)
            memo[name] = found
        return found
    return lookup


def _chosen(defines: Iterable[Define], env: Env, lookup: Lookup) -> list[Define]:
    """Return the definitions an inclusion takes of the template's own: those whose conditions cannot be decided,
    up to the first whose conditions hold (an `#if`/`#elif`/`#else` chain takes its first true branch)."""
    found = []
    for define in defines:
        verdicts = [decide(c, env, lookup) for c in define.conditions]
        if False in verdicts:
            continue
        found.append(define)
        if None not in verdicts:
            break
    return found
