"""One file's syntax tree -> facts. Pure (no I/O), so it runs in worker processes.

The queries in `queries/c/*.scm` say *what* to capture; the extractors read
each capture's surroundings: the enclosing function, declarator names and
types, and (through `context`) loops, `#if` conditions and early-return
guards. `extract` runs them in order over one `FileScope`:
`declarations` first (they fill the scope's locals and globals), then
`calls`, `references` and `reads`, which read them.

Extraction is the indexer's hot loop (hundreds of thousands of sites in a
tree like QEMU), so it keeps tree-sitter `Node` calls to a minimum: byte
offsets over text, one sweep for all contexts, identifier arguments read
from the call's own argument list rather than from a query capture each.
"""

from __future__ import annotations

from collections import Counter

from chaintrace.extract import declarations, preproc
from chaintrace.extract.calls import calls
from chaintrace.extract.context import conditional, guard, loop
from chaintrace.extract.facts import FileFacts
from chaintrace.extract.reads import field_reads
from chaintrace.extract.references import field_writes, references
from chaintrace.extract.scope import FileScope
from chaintrace.extract.syntax import Source, define, errors, struct_def
from chaintrace.source import parse

# Pattern index -> its construct capture (`reference.call`, ...): the same for every file.
_KINDS: dict[int, str] = {}


def _group(tree) -> dict[str, list[dict]]:
    """Return the query's matches grouped by their construct capture (`reference.call`, ...)."""
    by_kind: dict[str, list[dict]] = {}
    lists: dict[int, list[dict]] = {}  # pattern index -> its kind's list (a million matches per tree: one lookup each)
    for pattern, captures in parse.matches(tree):
        found = lists.get(pattern)
        if found is None:
            kind = _KINDS.get(pattern)
            if kind is None:
                kind = _KINDS[pattern] = next(name for name in captures if "." in name)
            found = lists[pattern] = by_kind.setdefault(kind, [])
        found.append(captures)
    return by_kind


def extract(path: str, original: bytes, normalized: bytes | None = None) -> FileFacts:
    """Return the facts of one C file; `normalized` is the macro-neutralised text that is parsed.

    Raises ValueError, saying so, for a file nested deeper than `parse.MAX_DEPTH` levels.
    """
    tree = parse.parse(normalized if normalized is not None else original)
    depth = parse.depth(tree.root_node, parse.DEEP, parse.MAX_DEPTH)
    if depth > parse.MAX_DEPTH:
        raise ValueError(f"nested more than {parse.MAX_DEPTH:,} levels deep (brackets, else-if or operator chains)")
    file = FileScope(Source(path, original))
    if depth > parse.DEEP:
        file.source.parents = parse.deep_parents(tree, parse.DEEP, parse.PARENTS_BUDGET)
    by_kind = _group(tree)
    empty: list[dict] = []

    definitions = sorted(
        ((captures["definition.function"][0], captures["name"][0]) for captures in by_kind.get("definition.function", empty)),
        key=lambda pair: pair[0].start_byte,
    )
    for node, name_node in definitions:
        file.add_function(node.start_byte, node.end_byte, file.source.text(name_node))
    _add_context_nodes(file, by_kind)

    functions, parameters = declarations.functions(file, definitions)
    variables = parameters + declarations.variables(file, by_kind.get("definition.variable", empty))
    call_sites, arg_refs = calls(file, by_kind.get("reference.call", empty))
    call_sites += preproc.loop_macro_calls(file, by_kind.get("context.loop", empty)) + preproc.cleanup_calls(file)
    refs = references(file, by_kind)
    structs = [struct_def(file.source, c["definition.struct"][0], c["name"][0]) for c in by_kind.get("definition.struct", empty)]
    typedefs, anonymous = declarations.all_typedefs(file, by_kind.get("definition.typedef", empty))

    return FileFacts(
        path=path,
        functions=tuple(functions),
        prototypes=declarations.prototypes(file, by_kind.get("definition.prototype", empty)),
        calls=tuple(call_sites),
        refs=tuple(sorted(arg_refs + refs, key=lambda r: (r.line, r.col))),
        writes=tuple(field_writes(file, by_kind.get("reference.field_write", empty))),
        reads=tuple(field_reads(file, by_kind.get("reference.field_access", empty))),
        structs=tuple(structs + anonymous),
        typedefs=tuple(typedefs),
        variables=tuple(variables),
        defines=_defines(file, by_kind.get("definition.macro", empty), {f.name for f in functions}),
        errors=errors(tree.root_node),
        includes=preproc.includes(file),
        macro_uses=preproc.macro_uses(file),
    )


def _add_context_nodes(file: FileScope, by_kind: dict[str, list[dict]]) -> None:
    """Hand the loops, `#if` branches and early-return guards to the file's context sweep."""
    source = file.source
    contexts = file.contexts
    for captures in by_kind.get("context.loop", ()):
        node = captures["context.loop"][0]
        contexts.loops.append((node.start_byte, node.end_byte, loop(source, node)))
    for captures in by_kind.get("context.conditional", ()):
        contexts.conditionals += conditional(source, captures["context.conditional"][0])
    for captures in by_kind.get("context.guard", ()):
        found = guard(source, captures["context.guard"][0])
        if found is not None:
            contexts.guards.append(found)


def _defines(file: FileScope, matches: list[dict], functions: set[str] = frozenset()) -> tuple:
    """Return the file's `#define`s; those of a name the file defines more than once, as a macro or as a function
    (`functions`), with the `#if` conditions around each (which one a build takes: `module_init` under `#ifdef
    BUILD_DSO` and `#else`; `gen_RDMSR` a function under `#ifndef CONFIG_USER_ONLY`, a macro in the `#else`)."""
    source = file.source
    names = [source.text(c["name"][0]) for c in matches]
    twice = {name for name, count in Counter(names).items() if count > 1 or name in functions}
    at = file.contexts.at
    found = []
    for captures, name in zip(matches, names):
        node = captures["definition.macro"][0]
        conditions = at(node.start_byte, node.start_byte + 1, -1).conditions if name in twice else ()
        found.append(define(source, node, captures["name"][0], conditions))
    return tuple(found)
