"""What the names of a tree mean: its definitions, declarations, typedefs and macros, file by file.

`Symbols` gives each function definition its node id (see `model`) and
resolves a called name much as the linker would: the file's own definition
first, then the external one (a non-stub file preferred, then the build's
of several alternatives, `queries/qemu/build.toml`; the others kept as
candidates), then a header's `static inline`. A header the file includes
that defines a `static inline` of an external name (`stat64_get` under
`#ifdef CONFIG_ATOMIC64`, the external one in util/stats64.c otherwise) is
an alternative the `#if` picks: the call binds to both, or to the build's
where its configuration decides the `#if` (`graph/branches`). A macro resolves to
the defined functions its body calls. It also answers the types the indirect
resolver needs: locals, globals, struct members, typedefs, return types.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath

from chaintrace.extract.facts import FileFacts, FunctionDef
from chaintrace.extract.syntax import bare_type
from chaintrace.source.expansion_tokens import KEYWORDS as _MACRO_KEYWORDS, literal_members, names_passed
from chaintrace.graph.branches import Target, included_alternatives, outside_alternative, in_the_build, under_if
from chaintrace.graph.scope import FEW_INCLUDERS, MacroScope, ReadNames
from chaintrace.source.expand import Expander, calls_made
from chaintrace.source.pointer_calls import PointerCall, declared_variables, pointer_calls

# Names that are never functions of the tree: compiler builtins and C-library macros, and
# C keywords, which look like calls in a macro body (`if (`) and which a misparse can give
# a "function" (`if (x) {...}` read as a definition).
_BUILTIN_PREFIXES = ("__builtin_", "__atomic_", "__sync_")
_KEYWORDS = frozenset({"va_start", "va_end", "va_arg", "va_copy", "offsetof", "alignof", "_Alignof",
                       "_Static_assert", "static_assert", "if", "else", "while", "for", "do", "switch", "case",
                       "return", "goto", "sizeof", "typeof", "__typeof__", "_Generic", "__attribute__",
                       "__asm__", "asm", "defined"})
_IDENT_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_MARK = "__chaintrace_arg"  # the placeholder arguments a macro's forwarding is read with
_MARKED = re.compile(_MARK + r"\d+")  # one whole (`__chaintrace_arg1 ## _SHIFT` is another name)


def is_stub(path: str) -> bool:
    """Return True for QEMU stub files: under a `stubs/` folder or named `*stub*`."""
    parts = PurePosixPath(path).parts
    return "stubs" in parts[:-1] or "stub" in parts[-1]


class Symbols:
    """The tree's definitions, declarations and macros, and what names mean in each file."""

    def __init__(self, facts: Iterable[FileFacts], scope: MacroScope | None = None) -> None:
        if scope is None:
            facts = list(facts)
            scope = MacroScope(facts)
        self.scope = scope
        self._ids: dict[tuple[str, str], str] = {}  # (file, name) -> node id
        self._defs: dict[str, FunctionDef] = {}  # node id -> first definition
        self.external: dict[str, list[str]] = {}  # name -> ids, preferred first
        self.header_static: dict[str, list[str]] = defaultdict(list)  # statics outside .c files
        self.macros: ReadNames = ReadNames()  # name -> [(params, body)], the names asked about recorded
        self.types: set[str] = set()
        self.fnptr_types: set[str] = set()  # typedefs of function pointer types (`QEMUTimerCB *`'s are not)
        self.typedefs: dict[str, str] = {}
        self.structs: dict[str, list] = defaultdict(list)
        self.locals: dict[tuple[str, str, str], str] = {}  # (file, function, name) -> type
        # (file, function, name) -> [(line, type)] of a local declared again with another type in another block
        self.redeclared: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        self.globals: dict[tuple[str, str], str] = {}  # (file, name) -> type
        self.global_types: dict[str, str] = {}  # name -> type, any file
        self.returns: dict[str, str] = {}  # function name -> return type
        self.declared: dict[str, set[str]] = defaultdict(set)  # function name -> files with a prototype of it
        self._shared: dict[str, Target | None] = {}  # name -> what it means outside its own file
        self._own: dict[str, Target] = {}  # node id -> its Target, made once
        self._expanded: dict[tuple[str, str, tuple[str, ...]], list[Target]] = {}
        self._pointer_calls: dict[tuple[str, str, tuple[str, ...]], list[PointerCall]] = {}
        self._literals: dict[tuple[str, str, tuple[str, ...]], list[tuple[str, str, str]]] = {}
        self._forwards: dict[tuple[str, str, int], tuple[tuple[int, str, int], ...]] = {}
        self._expander: tuple[str, Expander | None] = ("", None)  # the last file's (its invocations remembered)
        externals: dict[str, list[FunctionDef]] = defaultdict(list)
        for file_facts in facts:
            self._index(file_facts, externals)
        for name, defs in externals.items():
            defs.sort(key=lambda d: (is_stub(d.file), scope.preference.rank(d.file), d.file))
            ids = []
            for rank, definition in enumerate(defs):
                node_id = name if rank == 0 else f"{definition.file}::{name}"
                self._define(definition, node_id)
                ids.append(self._ids[definition.file, name])
            self.external[name] = list(dict.fromkeys(ids))
        for ids in self.header_static.values():  # the build's header first (host/include/x86_64/ before aarch64/)
            ids.sort(key=lambda i: scope.preference.rank(self._defs[i].file))

    def _index(self, facts: FileFacts, externals: dict[str, list[FunctionDef]]) -> None:
        for definition in facts.functions:
            # a name that is not an identifier is a parser's mistake, never a function (and never a node)
            if definition.name in _KEYWORDS or not _IDENTIFIER.fullmatch(definition.name):
                continue
            self.returns.setdefault(definition.name, definition.return_type)
            if definition.is_static:
                self._define(definition, f"{definition.file}::{definition.name}")
                if not definition.file.endswith(".c"):
                    self.header_static[definition.name].append(self._ids[definition.file, definition.name])
            elif not any(d.file == definition.file for d in externals[definition.name]):
                externals[definition.name].append(definition)
        for prototype in facts.prototypes:
            self.returns.setdefault(prototype.name, prototype.return_type)
            self.declared[prototype.name].add(prototype.file)
        for define in facts.defines:
            self.macros.setdefault(define.name, []).append((define.params or (), define.body))
        for typedef in facts.typedefs:
            self.types.add(typedef.name)
            if typedef.is_fnptr:
                self.fnptr_types.add(typedef.name)
            self.typedefs.setdefault(typedef.name, bare_type(typedef.type))
        for struct in facts.structs:
            self.types.add(struct.name)
            self.structs[struct.name].append(struct)
        for var in facts.variables:
            if var.function:
                key = (var.file, var.function, var.name)
                known = self.locals.get(key)
                if known is not None and known != var.type:
                    self.redeclared.setdefault(key, [(0, known)]).append((var.line, var.type))
                self.locals[key] = var.type
            else:
                self.globals[var.file, var.name] = var.type
                if not var.file.endswith(".c"):  # declared in a header: visible everywhere
                    self.global_types.setdefault(var.name, var.type)

    def _define(self, definition: FunctionDef, node_id: str) -> None:
        # A second definition in the same file (#if/#else) is the same node.
        if (definition.file, definition.name) not in self._ids:
            self._ids[definition.file, definition.name] = node_id
            self._defs.setdefault(node_id, definition)

    def nodes(self) -> Iterator[tuple[str, FunctionDef]]:
        """Yield (node id, first definition) of every defined function."""
        yield from self._defs.items()

    def definition(self, node_id: str) -> FunctionDef | None:
        """Return the first definition of the node `node_id`, or None for an unknown id."""
        return self._defs.get(node_id)

    def id_of(self, file: str, name: str) -> str | None:
        """Return the node id of the function `name` defined in `file`, or None."""
        return self._ids.get((file, name))

    def local_type(self, file: str, function: str, name: str, line: int = 0) -> str | None:
        """Return the declared type of the local `name` of `function`, or None: with `line`, of its last declaration
        at or before that line (`const TCGOutOpBinary *out` in one `case` block, `TCGOutOpUnary *out` in the next)."""
        declarations = self.redeclared.get((file, function, name)) if line else None
        if declarations:
            return next((kind for at, kind in reversed(sorted(declarations)) if at <= line), declarations[0][1])
        return self.locals.get((file, function, name))

    def is_variable(self, file: str, function: str, name: str) -> bool:
        """Return True when `name` is a local of `function` or a variable of `file` (not a function)."""
        return (file, function, name) in self.locals or ((file, name) in self.globals and (file, name) not in self._ids)

    def resolve_function(self, file: str, name: str) -> Target | None:
        """Return the defined function `name` means in `file`: its static, the external one, a header's static."""
        own = self._ids.get((file, name))
        if own is None and not file.endswith(".c"):
            own = self._includers_static(file, name)
        if own is not None:  # the file's static, or its own definition of an external name (one Target per id)
            target = self._own.get(own)
            if target is None:
                target = self._own[own] = Target(own)
            return target
        if name not in self._shared:
            self._shared[name] = None
            for ids in (self.external.get(name), self.header_static.get(name)):
                if ids and len(ids) == 1:
                    self._shared[name] = Target(ids[0])
                elif ids:
                    stubs = [is_stub(self._defs[i].file) for i in ids]
                    reason = "non-stub definition preferred" if any(stubs) and not stubs[0] else "first definition by path"
                    self._shared[name] = Target(ids[0], candidates=tuple(ids), reason=reason)
                if ids:
                    break
        return self._shared[name]

    def _includers_static(self, file: str, name: str) -> str | None:
        """Return the id of a `static` function `name` that a file including `file` defines, or None: a template
        (`emit.c.inc`, `tcg-target.c.inc`) is compiled inside its includer and calls its statics, and one a
        template includes (`cirrus_vga_rop2.h` in `cirrus_vga_rop.h`) inside that template's includer. The
        nearest includer first; a header more than a few files include is no template and is not climbed (one file
        including it many times, as `cirrus_vga.c` does `cirrus_vga_rop.h` per `ROP_NAME`, is one includer)."""
        seen, frontier = {file}, [file]
        while frontier:
            above = []
            for current in frontier:
                includers = tuple(dict.fromkeys(self.scope.includers.get(current, ())))  # once per #include
                if len(includers) > FEW_INCLUDERS:
                    continue
                for includer in includers:
                    if includer in seen:
                        continue
                    seen.add(includer)
                    found = self._ids.get((includer, name))
                    if found is not None and self._defs[found].is_static:
                        return found
                    if not includer.endswith(".c"):
                        above.append(includer)
            frontier = above
        return None

    def is_pointer_variable(self, file: str, name: str) -> bool:
        """Return True when a plain-name call of `name` in `file` calls through a global variable."""
        return self.resolve_function(file, name) is None and name not in self.macros and (
            (file, name) in self.globals or name in self.global_types)

    def direct_targets(self, file: str, name: str, args: tuple[str, ...] = ()) -> list[Target]:
        """Return what a plain-name call `name(args)` in `file` calls.

        A defined function, unless a macro of that name the file or a header
        it includes defines hides another file's function (cpp expands it
        first); else, for a macro the file sees (its own, or one of a header
        it includes), the defined functions its expansion calls (marked
        `macro`); else an external leaf, except for type names (a cast
        the parser read as a call), builtins and global variables (calls
        through a global pointer are `fnptr`, not direct). A macro defined
        only in files `file` does not see means nothing there (`free`).
        """
        target = self.resolve_function(file, name)
        if target is not None and not self._macro_first(file, name, target):
            return in_the_build(self, [target, *included_alternatives(self, file, name, target),
                                      *self._conditional_alternatives(file, name, args, target)])
        if self.scope.sees(file, name):
            return self.macro_targets(file, name, args)
        if self.scope.orphan(file) and len(self.scope.defines.get(name, ())) == 1 and self.scope.may_call(name):
            return self._orphan_targets(file, name, args)
        return [Target(name, external=True)] if self._library_function(file, name) else []

    def _orphan_targets(self, file: str, name: str, args: tuple[str, ...]) -> list[Target]:
        """Return what the use `name(args)` of the one macro of that name in the tree calls, in a header no tree file
        includes (`AIO_WAIT_WHILE` in block-gen.h: its generated includer includes aio-wait.h first), expanded with
        any header's macros."""
        key = (file, name, args)
        found = self._expanded.get(key)
        if found is None:
            found = self._expanded[key] = self._expand(file, name, args, Expander(self.scope.lookup(file, True)))
        return found

    def _macro_first(self, file: str, name: str, target: Target) -> bool:
        """Return True when cpp would expand `name(` in `file` and no function of that name is in sight: the file
        or a header it includes defines a macro `name`, while neither the function's definition nor a prototype
        of it is among them (ati_int.h's `DPRINTF` macro hides rocker.h's `static inline int DPRINTF(...)` from
        ati_2d.c). A function `file` sees beside the macro is the other branch of a configuration
        (`#ifdef CONFIG_TPM int tpm_init(void); #else #define tpm_init() (0)`): both are kept, as before."""
        defs = self.scope.defines.get(name)
        if not defs:
            return False
        definition = self._defs.get(target.id)
        home = definition.file if definition is not None else ""
        seen = self.scope.closure(file) | self.scope.prelude
        if home == file or home in seen or any(f in seen for f in self.declared.get(name, ())):
            return False
        return any(d.file == file or d.file in seen for d in defs)

    def _conditional_alternatives(self, file: str, name: str, args: tuple[str, ...], target: Target) -> list[Target]:
        """Return what `name` means in the other branch of the `#if` its definition `target` sits under: the
        external definition when `target` is a header's static (`tcgv_i32_temp`: inline without CONFIG_DEBUG_TCG,
        in tcg/tcg.c with it), and what a macro of that name defined under another `#if` of the same file
        expands to (`#define buffer_is_zero buffer_is_zero_ool` without __OPTIMIZE__). The build picks one."""
        definition = self._defs.get(target.id)
        if definition is None or not under_if(self.scope, definition):
            return []
        reason = "an #if picks the header's static or another definition"
        found = []
        if definition.is_static and not definition.file.endswith(".c"):
            found += [Target(i, candidates=(target.id, i), reason=reason) for i in self.external.get(name, ())[:1]]
        elif definition.is_static:
            found += outside_alternative(self, file, name, target, reason)
        # the file's own #define of the name: under the other branch (one in the same branch would have renamed
        # the definition; its conditions are kept only for a name defined twice)
        if any(d.file == definition.file for d in self.scope.defines.get(name, ())) and self.scope.sees(file, name):
            key = (file, name, args)
            if key not in self._expanded:
                self._expanded[key] = self._expand(file, name, args)
            # the tree's functions only: a name the tree never defines there is another build's (a `#define
            # aes_probe aes_unsupported` for a user-mode build that has one)
            found += [t for t in self._expanded[key] if t.id != target.id and not t.external]
        return found

    def macro_targets(self, file: str, name: str, args: tuple[str, ...]) -> list[Target]:
        """Return the defined functions the expansion of the macro use `name(args)` in `file` calls, marked `macro`.

        Calls written whole in the arguments are left out (they are call sites
        of their own); none when `file` sees no macro of that name.
        """
        key = (file, name, args)
        found = self._expanded.get(key)
        if found is None:
            visible = self.scope.may_call(name) and self.scope.sees(file, name)
            found = self._expanded[key] = self._expand(file, name, args) if visible else []
        return found

    def value_macro_targets(self, file: str, name: str) -> list[Target]:
        """Return the defined functions the expansion of `name`, named as a value in `file`, calls (`NO_DEST` under
        `#define NO_DEST temp_arg(NULL)`), marked `macro`; [] unless `file` sees only object-like macros `name`."""
        key = (file, name, None)
        found = self._expanded.get(key)
        if found is None:
            found = []
            if self.scope.may_call(name) and self.scope.sees(file, name) and self.resolve_function(file, name) is None:
                definitions = self._expander_of(file).lookup(name)
                if definitions and all(params is None for params, _ in definitions):
                    found = self._expand(file, name, None)
            self._expanded[key] = found
        return found

    def _expand(self, file: str, name: str, args: tuple[str, ...] | None, expander: Expander | None = None
                ) -> list[Target]:
        found: dict[str, Target] = {}
        pointers: dict[PointerCall, None] = {}
        literals: dict[tuple[str, str, str], None] = {}
        for tokens in (expander or self._expander_of(file)).expand_use(name, args):
            declared = declared_variables(tokens, _MACRO_KEYWORDS)  # read once for both kinds of call
            pointers.update(dict.fromkeys(pointer_calls(tokens, _MACRO_KEYWORDS, declared)))
            literals.update(dict.fromkeys(literal_members(tokens)))
            for word in calls_made(tokens, _MACRO_KEYWORDS, declared):
                t = self.resolve_function(file, word)
                if t is not None:
                    found.setdefault(t.id, Target(t.id, False, t.candidates, t.reason, name))
                elif self._library_function(file, word):
                    found.setdefault(word, Target(word, True, macro=name))
        if pointers:
            self._pointer_calls[file, name, args] = list(pointers)
        if literals:
            self._literals[file, name, args] = list(literals)
        return list(found.values())

    def expansion_pointer_calls(self, file: str, name: str, args: tuple[str, ...]) -> list[PointerCall]:
        """Return the calls through a pointer the expansion of the macro use `name(args)` in `file` makes (after
        `macro_targets` expanded it, until `forget_expansions`)."""
        return self._pointer_calls.get((file, name, args), [])

    def expansion_literals(self, file: str, name: str, args: tuple[str, ...]) -> list[tuple[str, str, str]]:
        """Return (struct type, member, name) for each member a compound literal in the expansion of the macro use
        `name(args)` in `file` is given (after `macro_targets` expanded it, until `forget_expansions`)."""
        return self._literals.get((file, name, args), [])

    def _expander_of(self, file: str) -> Expander:
        """Return the expander of the macros `file` sees: one per file, kept while its calls are resolved (they come
        file by file), so the invocations its uses share are expanded once."""
        if self._expander[0] != file:
            self._expander = (file, Expander(self.scope.lookup(file)))
        return self._expander[1]

    def forget_expansions(self) -> None:
        """Drop the remembered macro expansions (made again when asked for): each pass that expands keeps them only
        while it runs."""
        self._expanded.clear()
        self._pointer_calls.clear()
        self._literals.clear()
        self._forwards.clear()
        self._expander = ("", None)

    def macro_forwards(self, file: str, name: str, count: int) -> tuple[tuple[int, str, int], ...]:
        """Return (argument index, function called, its argument index) for each argument of the macro use
        `name(...)` with `count` arguments that its expansion in `file` passes whole to a call
        (`aio_bh_new(ctx, cb, opaque)` passes its argument 1 as argument 1 of `aio_bh_new_full`); () for no macro."""
        key = (file, name, count)
        found = self._forwards.get(key)
        if found is None:
            found = ()
            if self.scope.sees(file, name):
                marks = tuple(f"{_MARK}{i}" for i in range(count))
                found = tuple(dict.fromkeys(
                    (int(passed[len(_MARK):]), callee, index)
                    for tokens in self._expander_of(file).expand_use(name, marks)
                    for callee, index, passed in names_passed(tokens) if _MARKED.fullmatch(passed)))
            self._forwards[key] = found
        return found

    def macro_arity(self, file: str, name: str, index: int) -> int:
        """Return how many arguments a use of the macro `name` in `file` passing argument `index` has (its first
        definition's parameters; at least `index + 1` for a variadic one)."""
        definitions = self.scope.lookup(file)(name)
        params = definitions[0][0] if definitions else None
        if not params:
            return index + 1
        return max(len(params), index + 1) if params[-1].endswith("...") else len(params)

    def _library_function(self, file: str, name: str) -> bool:
        """Return True when a called `name` no tree function has may be a library function (not a type, builtin,
        keyword or pointer variable)."""
        return not (name in self.types or name.startswith(_BUILTIN_PREFIXES) or name in _KEYWORDS
                    or self.is_pointer_variable(file, name) or not _IDENTIFIER.fullmatch(name))
