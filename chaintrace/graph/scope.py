"""Which `#define`s each file sees: its own and those of the headers it includes, transitively.

A macro defined in one file does not exist in another: libdecnumber's
`#define free(a) decFree(a)` must not turn every `free()` of the tree into a
macro. `MacroScope` resolves each `#include` as the build would find it (the
including file's folder first, then `include/` and the root, then any file
the path names the end of: the nearest, and of several the build's, as
`queries/qemu/build.toml` says), and gives each file a `lookup` of the macro
definitions it sees:

* its own definitions, then those of every header it includes, transitively;
* the tree's *prelude*, the header most `.c` files include first (QEMU's
  `qemu/osdep.h`, which every header may assume), with its own includes;
* for a header, the definitions of the files that include it (a template
  such as `audio_template.h` uses what its includer defined just before),
  and when it has only a few includers (`emit.c.inc`), all they see;
* the macros the build generates from the QAPI schemas (`RunState_str`:
  `source/qapi_schema.py`), which any file may include;
* last, GLib's cleanup macros (`g_autoptr`, `G_DEFINE_AUTOPTR_CLEANUP_FUNC`:
  `queries/qemu/glib-macros.h`), which the tree uses without defining.

Includes and definitions under a condition only other hosts or builds meet
(`#ifdef _WIN32`, `#ifdef BUILD_DSO`) are left out: chaintrace reads every
`#if` branch, but a tree built for Linux never sees `os-win32.h`'s
`#define close qemu_close_wrap`. So are those in a branch the default
build's configuration values rule out (`queries/qemu/build.toml`'s
`[config]`): on a 64-bit target `tcg_gen_mov_tl` is `tcg_gen_mov_i64`, not
also `tcg_gen_mov_i32`.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import cache
from importlib import resources

from chaintrace.extract.facts import Define, FileFacts, Include
from chaintrace.graph.alternatives import Preference
from chaintrace.graph.components import reachable
from chaintrace.graph.conditions import BuildConfig
from chaintrace.source.expand import Definition, definition, tokenize
from chaintrace.source.macros import scan_defines
from chaintrace.source.qapi_schema import SCHEMA_SUFFIX

# Macros a Linux build of the system emulator never defines (other hosts' and module builds'): an include
# or a `#define` under one of them is not followed.
NOT_DEFINED = frozenset({"BUILD_DSO", "_WIN32", "_WIN64", "WIN32", "CONFIG_WIN32", "__MINGW32__", "_MSC_VER", "__APPLE__",
                           "CONFIG_DARWIN", "__FreeBSD__", "__OpenBSD__", "__NetBSD__", "__DragonFly__",
                           "CONFIG_BSD", "__sun__", "CONFIG_SOLARIS", "__HAIKU__", "EMSCRIPTEN", "__EMSCRIPTEN__"})
_DEFINED = re.compile(r"^\(*\s*(?:defined\s*\(?\s*)?([A-Za-z_]\w*)\s*\)?\s*\)*$")
FEW_INCLUDERS = 4  # a header included by this many files at most sees what they see (templates, .c.inc)
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Atomic _Noreturn _Thread_local".split())
_PRELUDE_SHARE = 0.3  # the first include of at least this share of .c files is the prelude


_IDENT = re.compile(r"[A-Za-z_]\w*")
_NOT_CALLS = frozenset({"if", "while", "for", "switch", "return", "sizeof", "typeof", "__typeof__", "_Generic",
                        "__attribute__", "defined", "offsetof", "__builtin_offsetof", "__extension__"})


def _makes_calls(tokens: tuple[str, ...]) -> bool:
    """Return True when a macro body has `name (` for a name that may be a function (parameters included)."""
    return any(tokens[i + 1] == "(" and _IDENT.fullmatch(tokens[i]) and tokens[i] not in _NOT_CALLS
               for i in range(len(tokens) - 1))


BUILTIN = "<glib>"  # the file of the definitions of queries/qemu/glib-macros.h


@cache
def builtin_defines() -> tuple[Define, ...]:
    """Return the definitions of the macros a tree uses without defining them (GLib's cleanup macros)."""
    text = (resources.files("chaintrace.queries") / "qemu" / "glib-macros.h").read_bytes()
    return tuple(Define(name, tuple(p.strip() for p in params.strip("()").split(",") if p.strip()) if params else None,
                        body, BUILTIN, 0) for name, params, body in scan_defines(text))


def _shared_prefix(a: str, b: str) -> int:
    """Return how many leading folders two folder paths share."""
    n = 0
    for x, y in zip(a.split("/"), b.split("/")):
        if x != y or not x:
            break
        n += 1
    return n


def foreign(conditions: Iterable[str]) -> bool:
    """Return True when one of the `#if` conditions holds only on another host (`defined(_WIN32)`)."""
    for condition in conditions:
        match = _DEFINED.match(condition.strip())
        if match and match.group(1) in NOT_DEFINED:
            return True
    return False


class ReadNames(dict):
    """A dict by macro name that records each name it is asked about (`get`, `in`) in `read`.

    A resolution reads macros by name only: the names it asked about are all it depends on, so an edit of
    any other macro leaves its graph as it was (`graph.delta`, `store.graphs`).
    """

    __slots__ = ("read",)

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, name, default=None):
        """Return the entry of `name` (or `default`), recording that it was read."""
        self.read.add(name)
        return super().get(name, default)

    def __contains__(self, name) -> bool:
        self.read.add(name)
        return super().__contains__(name)


class MacroScope:
    """The tree's includes and macro definitions, and what each file sees of them."""

    def __init__(self, facts: Iterable[FileFacts], preference: Preference | None = None,
                 config: BuildConfig | None = None) -> None:
        self.preference = preference if preference is not None else Preference()
        self.config = config if config is not None else BuildConfig()
        self.defines: ReadNames = ReadNames()  # name -> [Define]
        raw: dict[str, tuple[Include, ...]] = {}
        for file_facts in facts:
            raw[file_facts.path] = file_facts.includes
            for define in file_facts.defines:
                if not self.outside(define.conditions):
                    self.defines.setdefault(define.name, []).append(define)
        self.builtin = builtin_defines()
        for define in self.builtin:
            self.defines.setdefault(define.name, []).append(define)
        self.paths = set(raw)
        self._by_base: dict[str, list[str]] = defaultdict(list)
        for path in sorted(self.paths):
            self._by_base[posixpath.basename(path)].append(path)
        self._resolved: dict[tuple[str, str, bool], tuple[str, ...]] = {}
        self.edges = {path: [r for inc in includes if not self.outside(inc.conditions)
                             for r in self.resolve(path, inc.target, inc.system)] for path, includes in raw.items()}
        self.includers: dict[str, list[str]] = defaultdict(list)
        for path, targets in self.edges.items():
            for target in targets:
                self.includers[target].append(path)
        self._closures: dict[str, frozenset[str]] = {}
        # what the build generates from the QAPI schemas, every file may include (source/qapi_schema.py)
        self.prelude = self._prelude(raw) | {path for path in self.paths if path.endswith(SCHEMA_SUFFIX)}
        self._visible: dict[str, frozenset[str]] = {}
        self._lookups: dict[tuple[str, str, bool], list[Definition]] = {}
        self._definitions: dict[Define, Definition] = {}
        self._defines_memo: dict[str, bool] = {}
        self._calls_memo: dict[str, bool] = {}

    def outside(self, conditions: tuple[str, ...]) -> bool:
        """Return True when `#if` conditions keep their lines out of the default build: another host's
        (`defined(_WIN32)`) or a branch the build's configuration values rule out (`TARGET_LONG_BITS == 32`)."""
        return bool(conditions) and (foreign(conditions) or self.config.rules_out(conditions))

    def forget(self) -> None:
        """Drop what each file sees and its lookups (made again when asked for): once the value flow is built,
        nothing reads them, and QEMU's take 50 MB."""
        self._closures.clear()
        self._visible.clear()
        self._lookups.clear()
        self._definitions.clear()

    def resolve(self, file: str, target: str, system: bool) -> tuple[str, ...]:
        """Return the tree files an `#include` of `target` in `file` may name (none for a system header outside the tree)."""
        folder = posixpath.dirname(file)
        key = (folder, target, system)
        if key not in self._resolved:
            self._resolved[key] = self._find(folder, target, system)
        return self._resolved[key]

    def _find(self, folder: str, target: str, system: bool) -> tuple[str, ...]:
        tries = ([] if system else [posixpath.normpath(posixpath.join(folder, target))]) + ["include/" + target, target]
        for path in tries:
            if path in self.paths:
                return (path,)
        ends = [p for p in self._by_base.get(posixpath.basename(target), ()) if p.endswith("/" + target)]
        if len(ends) <= 1:
            return tuple(ends)
        # several: those nearest the including file (`cpu.h` from target/i386/ is target/i386/cpu.h), and of
        # those the build's (`tcg-target.c.inc` from tcg/ is the host's backend: alternatives.Preference)
        shared = {p: _shared_prefix(folder, posixpath.dirname(p)) for p in ends}
        near = max(shared.values())
        return self.preference.choose(p for p in ends if shared[p] == near)

    def _prelude(self, raw: dict[str, tuple[Include, ...]]) -> frozenset[str]:
        firsts = Counter()
        sources = [path for path in raw if path.endswith(".c")]
        for path in sources:
            if raw[path]:
                first = self.resolve(path, raw[path][0].target, raw[path][0].system)
                if len(first) == 1:
                    firsts[first[0]] += 1
        if firsts:
            header, count = firsts.most_common(1)[0]
            if count >= _PRELUDE_SHARE * len(sources):
                return self.closure(header)
        return frozenset()

    def closure(self, file: str) -> frozenset[str]:
        """Return `file` and every file it includes, transitively."""
        found = self._closures.get(file)
        if found is None:
            found = self._closures[file] = frozenset(reachable(file, self.edges))
        return found

    def visible(self, file: str) -> frozenset[str]:
        """Return the files whose `#define`s `file` sees (see the module's docstring)."""
        found = self._visible.get(file)
        if found is None:
            self._visible[file] = found = self.closure(file) | self.prelude  # (while its includers are read)
            if not file.endswith(".c"):
                includers = self.includers.get(file, ())
                if len(includers) <= FEW_INCLUDERS:  # a template (`*.c.inc`): what its includers see
                    for includer in includers:
                        found = found | self.visible(includer)
                else:
                    found = found | frozenset(includers)
                self._visible[file] = found
        return found

    def lookup(self, file: str, fallback: bool = False):
        """Return a function: macro name -> the definitions `file` sees, its own first (`expand.Lookup`).

        With `fallback`, a name `file` sees no definition of takes every definition in the tree's headers (a
        header such as `helper.h` is read under macros its includers define through `#include MACRO`).
        """
        visible = self.visible(file)
        lookups = self._lookups
        defines = self.defines

        def lookup(name: str) -> list[Definition]:
            found = lookups.get((file, name, fallback))
            if found is None:
                defs = defines.get(name)
                if not defs:
                    return []
                chosen = [d for d in defs if d.file == file] + [d for d in defs if d.file != file and d.file in visible]
                if not chosen:  # glib's, which every file sees after the tree's own
                    chosen = [d for d in defs if d.file == BUILTIN]
                # a header's: any header's definition (a .c file's are its own), never one of a C keyword
                # (libdecnumber's `#define int ?` under `#if DECNOINT` would make helper.h's `int` a `?`)
                if not chosen and fallback and name not in _C_KEYWORDS:
                    chosen = [d for d in defs if not d.file.endswith(".c")]
                found = lookups[file, name, fallback] = [self._definition(d) for d in chosen]
            return found
        return lookup

    def _definition(self, define: Define) -> Definition:
        """Return the expander's form of `define`: one per definition, shared by every file that sees it."""
        found = self._definitions.get(define)
        if found is None:
            found = self._definitions[define] = definition(define.params, define.body)
        return found

    def may_define(self, name: str) -> bool:
        """Return True when some expansion of the macro `name` may hold a function body (a `{`) or a typedef, so a
        use of it at file scope is worth expanding; most are not (`QEMU_BUILD_BUG_ON(...)`, `VMSTATE_*` tables)."""
        return self._may(name, self._defines_memo, lambda tokens: "{" in tokens or "typedef" in tokens)

    def may_call(self, name: str) -> bool:
        """Return True when some expansion of the macro `name` may call a function its arguments do not name
        (`qemu_mutex_lock(m)` may, `MAX(a, b)` never): only then is a call site of it expanded."""
        return self._may(name, self._calls_memo, _makes_calls)

    def _may(self, name: str, memo: dict[str, bool], test) -> bool:
        found = memo.get(name)
        if found is None:
            memo[name] = False  # a macro that reaches itself adds nothing
            found = False
            for define in self.defines.get(name, ()):
                tokens = tokenize(define.body)
                if define.params is None and tokens and (tokens[-1] == ")" or _IDENT.fullmatch(tokens[-1])):
                    found = found or test is _makes_calls  # `#define f_tl f_i64`: `f_tl(x)` calls f_i64
                if found or test(tokens) or "##" in tokens or any(
                        t in self.defines and t != name and self._may(t, memo, test) for t in tokens if t[:1].isalpha() or t[:1] == "_"):
                    found = True
                    break
            memo[name] = found
        return found

    def function_like(self, file: str, name: str) -> bool:
        """Return True when `file` sees a definition of `name` as a function-like macro (`name(...)` is its use)."""
        defs = self.defines.get(name)
        if not defs:
            return False
        visible = self.visible(file)
        return any(d.params is not None and (d.file == file or d.file in visible or d.file == BUILTIN) for d in defs)

    def orphan(self, file: str) -> bool:
        """Return True for a header no file of the tree includes: only files the build generates do (block-gen.h,
        included by the generated block-gen.c after the headers it needs), so what it sees is unknown."""
        return not file.endswith(".c") and not self.includers.get(file)

    def sees(self, file: str, name: str) -> bool:
        """Return True when `file` sees a definition of the macro `name`."""
        defs = self.defines.get(name)
        if not defs:
            return False
        visible = self.visible(file)
        return any(d.file == file or d.file in visible or d.file == BUILTIN for d in defs)
