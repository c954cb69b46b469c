"""What a called name means in the other branch of the `#if` around the definition it resolves to.

A build compiles one branch; chaintrace reads them all, so a call binds to
what each branch gives (`Symbols.direct_targets`): a header's `static inline`
beside the external definition (`stat64_get`, `tcgv_i32_temp`), or a `.c`
file's stub beside a header's function (`STUB_HELPER(inb, ...)` under
CONFIG_USER_ONLY, helper.h's `gen_helper_inb` otherwise); where the default
build's configuration decides the `#if`, only to the build's.
"""

from __future__ import annotations

import re
from posixpath import commonpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaintrace.extract.facts import FunctionDef
from chaintrace.graph.scope import MacroScope

if TYPE_CHECKING:
    from chaintrace.graph.symbols import Symbols

_GUARD = re.compile(r"!\s*defined\s*\(?\s*([A-Za-z_]\w*)\s*\)?")


@dataclass(frozen=True)
class Target:
    """What a called name resolves to: a node id, with the other candidates when ambiguous."""

    id: str
    external: bool = False
    candidates: tuple[str, ...] = ()
    reason: str = ""
    macro: str = ""


def included_alternatives(symbols: Symbols, file: str, name: str, target: Target) -> list[Target]:
    """Return the `static` definitions of `name` in headers `file` sees when `target` is the external one:
    which of them the build compiles, an `#if` decides (`stat64_get`: inline with CONFIG_ATOMIC64)."""
    statics = symbols.header_static.get(name)
    if not statics or symbols.id_of(file, name) is not None or target.id not in symbols.external.get(name, ()):
        return []
    visible = symbols.scope.visible(file)
    found = [i for i in statics if symbols.definition(i).file in visible]
    both = (target.id, *found)
    return [Target(i, candidates=both, reason="an #if picks the header's static or the external one")
            for i in found[:1]]


def outside_alternative(symbols: Symbols, file: str, name: str, target: Target, reason: str) -> list[Target]:
    """Return what `name` means outside the `.c` file whose `static` under an `#if` is `target`: a header's
    static of that name (translate.c's `STUB_HELPER(inb, ...)` under CONFIG_USER_ONLY, helper.h's
    `DEF_HELPER_2(inb, ...)` otherwise), or the external function a prototype in sight declares. [] when the tree has neither."""
    # a header the file sees, or one no tree file includes (helper.h comes in through `#include HELPER_H`); never
    # another device's (rocker.h's `DPRINTF` is not rtl8139.c's other branch)
    visible = symbols.scope.visible(file)
    statics = [i for i in symbols.header_static.get(name, ()) if i != target.id
               and (symbols.definition(i).file in visible or symbols.scope.orphan(symbols.definition(i).file))]
    if statics:  # the nearest header: target/i386/helper.h for target/i386/tcg/translate.c, not hexagon's
        chosen = max(statics, key=lambda i: len(commonpath([file, symbols.definition(i).file])))
        return [Target(chosen, candidates=(target.id, chosen), reason=reason)]
    externals = symbols.external.get(name)
    seen = symbols.scope.closure(file) | symbols.scope.prelude
    if externals and any(f in seen for f in symbols.declared.get(name, ())):
        return [Target(externals[0], candidates=(target.id, externals[0]), reason=reason)]
    return []


def under_if(scope: MacroScope, definition: FunctionDef) -> bool:
    """Return True when `definition` sits under an `#if` other than its header's include guard (`#ifndef X_H`
    with `#define X_H` in the same file)."""
    for condition in definition.conditions:
        guard = _GUARD.fullmatch(condition)
        if guard is None or not any(d.file == definition.file for d in scope.defines.get(guard.group(1), ())):
            return True
    return False


def in_the_build(symbols: Symbols, targets: list[Target]) -> list[Target]:
    """Return `targets` without the definitions whose `#if` the default build's configuration rules out
    (`queries/qemu/build.toml`'s `[config]`: util/stats64.c's `stat64_get` under `#ifndef CONFIG_ATOMIC64` on an
    x86_64 host, plugin.h's empty `qemu_plugin_vcpu_mem_cb` without CONFIG_PLUGIN), unless none is left."""
    if len(targets) < 2:
        return targets
    rules_out = symbols.scope.config.rules_out
    kept = [t for t in targets if t.external or not _ruled_out(symbols.definition(t.id), rules_out)]
    return kept or targets


def _ruled_out(definition: FunctionDef | None, rules_out) -> bool:
    return definition is not None and bool(definition.conditions) and rules_out(definition.conditions)
