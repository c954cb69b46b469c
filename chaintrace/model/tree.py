"""Finding the anchored facts of a QEMU source tree in the fact store, and the Rules they give.

`read_rules` indexes the tree (`chaintrace.api.index`: warm, a fraction of a
second) and checks every anchor with a query against the facts of the few
files the anchors name:

- a `#define` anchor reads the `Define` fact of that name (body, file, line);
- a statement anchor reads the `FieldWrite` and `CallSite` facts of the named
  function; a statement no fact carries (an `if` condition, a local
  declaration) is read from the source lines of the function's `FunctionDef`
  span — the fact says where, the span is all that is read;
- a mention anchor reads the `CallSite`/`FieldWrite` texts of a C file, and
  the text of a file the indexer does not take (QAPI JSON).

The variant matching itself works on one statement or one `#define` body
(`statement_value`, `define_value`), whatever it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaintrace import api
from chaintrace.extract.facts import CallSite, Define, FileFacts
from chaintrace.model import csource
from chaintrace.model.anchors import ANCHORS, DEFINE, INT_VALUE, MENTION, STATEMENT, Anchor, AnchorDrift, AnchorResult
from chaintrace.model.rules import Rules
from chaintrace.source.scan import OpenTree, open_tree, read_tree_text
from chaintrace.source.qapi_schema import SCHEMA_SUFFIX
from chaintrace.store.cache import Store

C_SUFFIXES = (".c", ".h")


@dataclass(frozen=True, slots=True)
class Finding:
    """What `locate` saw in one file: a match (`value` set) or the nearest text when `matched` is false.

    `fact` names what the text was read from: "FieldWrite", "CallSite",
    "Define", "FunctionDef span" or "file text".
    """

    matched: bool
    where: str
    found_text: str
    value: object = None
    fact: str = ""


@dataclass(frozen=True, slots=True)
class _Candidate:
    text: str
    line: int
    fact: str


def statement_value(anchor: Anchor, statement: str) -> object | None:
    """Return the value the first matching variant gives one whitespace-folded statement, or None.

    This is the whole match for a statement fact: a FieldWrite's `statement`,
    a CallSite's call text or a statement read from a function's span.
    """
    text = statement.strip().rstrip(";").rstrip()
    for variant in anchor.variants:
        if re.search(variant.pattern, text):
            return variant.value
    return None


def define_value(anchor: Anchor, body: str) -> object | None:
    """Return the value the first matching variant gives a `#define` body (a Define fact's body), or None."""
    for variant in anchor.variants:
        if re.search(variant.pattern, body):
            value = csource.int_value(body) if variant.value == INT_VALUE else variant.value
            if value is not None:
                return value
    return None


def call_text(call: CallSite) -> str:
    """Return a CallSite as the statement text it stands for: `callee(arg, arg)`."""
    return f"{call.callee}({', '.join(call.args)})"


def _fact_candidates(facts: FileFacts, function: str | None) -> list[_Candidate]:
    """Return the FieldWrite statements and CallSite texts of `function` (all of the file when None), by line."""
    found = [_Candidate(w.statement, w.line, "FieldWrite") for w in facts.writes if function in (None, w.function)]
    found += [_Candidate(call_text(c), c.line, "CallSite") for c in facts.calls if function in (None, c.caller)]
    return sorted(found, key=lambda candidate: candidate.line)


def _span_candidates(facts: FileFacts, function: str, text: str | None) -> list[_Candidate]:
    """Return the statements of `function` read from the source lines of its FunctionDef span."""
    if text is None:
        return []
    lines = text.splitlines(keepends=True)
    found: list[_Candidate] = []
    for definition in (f for f in facts.functions if f.name == function):
        # Lines before the span are left blank so that line numbers stay the file's.
        snippet = "\n" * (definition.line - 1) + "".join(lines[definition.line - 1:definition.end_line])
        code = csource.code_view(snippet)
        span = csource.find_function(code, function)
        if span is not None:
            found += [_Candidate(s.text, s.line, "FunctionDef span") for s in csource.statements(code, *span)]
    return found


def _statement_finding(anchor: Anchor, facts: FileFacts, text: Callable[[], str | None]) -> Finding | None:
    path = facts.path
    missed: Finding | None = None
    for function in (place.function for place in anchor.places if place.file == path):
        definitions = [f for f in facts.functions if f.name == function]
        if not definitions:
            continue
        from_facts = _fact_candidates(facts, function)
        for candidate in from_facts:
            value = statement_value(anchor, candidate.text)
            if value is not None:
                return Finding(True, f"{path}:{candidate.line}", candidate.text, value, candidate.fact)
        from_span = _span_candidates(facts, function, text())
        for candidate in from_span:
            value = statement_value(anchor, candidate.text)
            if value is not None:
                return Finding(True, f"{path}:{candidate.line}", candidate.text, value, candidate.fact)
        seen: set[tuple[int, str]] = set()
        nearby = []
        for candidate in sorted(from_facts + from_span, key=lambda c: c.line):
            key = (candidate.line, candidate.text.rstrip(";"))
            if anchor.near and re.search(anchor.near, candidate.text) and key not in seen:
                seen.add(key)
                nearby.append(candidate)
        if nearby:
            shown = " | ".join(c.text.rstrip(";") for c in nearby[:3])
            missed = missed or Finding(False, f"{path}:{nearby[0].line}", shown, fact=nearby[0].fact)
        else:
            line = definitions[0].line
            shown = f"no statement of {function}() matches"
            missed = missed or Finding(False, f"{path}:{line}", shown, fact="FunctionDef")
    return missed


def _define_text(define: Define) -> str:
    return f"#define {define.name} {define.body}".rstrip()


def _define_finding(anchor: Anchor, facts: FileFacts) -> Finding | None:
    found = [d for d in facts.defines if d.name == anchor.symbol and d.params is None]
    if not found:
        return None
    define = found[0]
    value = define_value(anchor, define.body)
    return Finding(value is not None, f"{define.file}:{define.line}", _define_text(define), value, "Define")


def _mention_finding(
    anchor: Anchor, facts: FileFacts | None, path: str, text: Callable[[], str | None]
) -> Finding | None:
    if facts is not None and not facts.path.endswith(SCHEMA_SUFFIX):
        # An indexed C file: the mention is a call's or a field write's text (a QAPI schema's facts are only the
        # macros generated from it: its mentions are in its text).
        for candidate in _fact_candidates(facts, None):
            for variant in anchor.variants:
                if re.search(variant.pattern, candidate.text):
                    return Finding(True, f"{path}:{candidate.line}", candidate.text, variant.value, candidate.fact)
        return None
    content = text()
    if content is None:
        return None
    for number, line in enumerate(content.splitlines(), start=1):
        for variant in anchor.variants:
            if re.search(variant.pattern, line):
                return Finding(True, f"{path}:{number}", " ".join(line.split()), variant.value, "file text")
    return None


def locate(anchor: Anchor, facts: FileFacts, text: Callable[[], str | None] = lambda: None) -> Finding | None:
    """Return what `anchor` finds in the facts of one file (`text()` gives its source, read only when needed).

    None means the fact's place (function, #define, mention) is not in this
    file; a Finding with `matched` false means the place is there but no
    known variant matches, and carries the nearest source text.
    """
    if anchor.kind == STATEMENT:
        return _statement_finding(anchor, facts, text)
    if anchor.kind == DEFINE:
        return _define_finding(anchor, facts)
    return _mention_finding(anchor, facts, facts.path, text)


class TreeFacts:
    """The facts of an indexed tree, loaded per file as the anchors ask for them."""

    def __init__(self, store: Store, tree: Path | OpenTree) -> None:
        self.store = store
        self.root = open_tree(tree).root
        self.keys = store.indexed_keys(str(self.root))
        self._facts: dict[str, FileFacts | None] = {}
        self._texts: dict[str, str | None] = {}
        self._defines: dict[str, list[Define]] | None = None

    def facts(self, path: str) -> FileFacts | None:
        """Return the facts of `path` (relative to the tree), or None when it is not indexed."""
        if path not in self._facts:
            found = None
            if path in self.keys:
                for _, found in self.store.iter_facts([self.keys[path]]):
                    pass
            self._facts[path] = found
        return self._facts[path]

    def text(self, path: str) -> str | None:
        """Return the source text of `path`, or None when there is no such file."""
        if path not in self._texts:
            self._texts[path] = read_tree_text(self.root, path)
        return self._texts[path]

    def defines_named(self, name: str) -> list[Define]:
        """Return the object-like Define facts named `name` in any file (all files' facts, read once)."""
        if self._defines is None:
            self._defines = {}
            for _, found in self.store.iter_facts(self.keys[path] for path in sorted(self.keys)):
                for define in found.defines if found is not None else ():
                    if define.params is None:
                        self._defines.setdefault(define.name, []).append(define)
        return self._defines.get(name, [])


def check_anchor(anchor: Anchor, tree: TreeFacts) -> AnchorResult:
    """Return where `anchor` holds in the facts of `tree`; raise AnchorDrift if it does not."""
    missed: Finding | None = None
    for place in anchor.places:
        facts = tree.facts(place.file)
        if facts is None and not (anchor.kind == MENTION and not place.file.endswith(C_SUFFIXES)):
            continue
        if facts is None:
            finding = _mention_finding(anchor, None, place.file, lambda file=place.file: tree.text(file))
        else:
            finding = locate(anchor, facts, lambda file=place.file: tree.text(file))
        if finding is None:
            continue
        if finding.matched:
            return AnchorResult(anchor.name, anchor.mirrors, finding.where, finding.found_text, finding.value,
                                finding.fact)
        missed = missed or finding
    if anchor.kind == MENTION and anchor.absent is not None:
        where = " or ".join(place.file for place in anchor.places)
        return AnchorResult(anchor.name, anchor.mirrors, where, "(not mentioned)", anchor.absent)
    if missed is not None:
        raise AnchorDrift(anchor.name, missed.where, missed.found_text, anchor.mirrors)
    tried = ", ".join(place.describe() for place in anchor.places)
    if anchor.kind == DEFINE:
        moved = tree.defines_named(anchor.symbol)
        if moved:
            define = moved[0]
            raise AnchorDrift(anchor.name, f"{define.file}:{define.line}",
                              f"{_define_text(define)} (moved: not in {tried})", anchor.mirrors)
        raise AnchorDrift(anchor.name, tried, f"#define {anchor.symbol} is not there any more", anchor.mirrors)
    raise AnchorDrift(anchor.name, tried, "it is not there any more", anchor.mirrors)


def rules_from_store(store: Store, tree: Path | OpenTree) -> tuple[Rules, list[AnchorResult]]:
    """Return the Rules of the already indexed `tree`, and where each anchored fact stands, from `store`."""
    opened = open_tree(tree)
    facts = TreeFacts(store, opened)
    results = [check_anchor(anchor, facts) for anchor in ANCHORS]
    values = {anchor.field: result.value for anchor, result in zip(ANCHORS, results) if anchor.field}
    version = opened.version or "unknown"
    rules = Rules(version=version, origin=f"QEMU {version} source at {opened.root}", **values)
    return rules, results


def read_rules(tree: Path, cache: Path | None = None, progress: bool = False) -> tuple[Rules, list[AnchorResult]]:
    """Index `tree` into the fact store in `cache` (default cache when None), then return its Rules and anchors.

    Raises AnchorDrift when a fact no longer reads as any known variant, and
    FileNotFoundError when `tree` is not a directory.
    """
    if not tree.is_dir():
        raise FileNotFoundError(f"QEMU tree {tree} is not a directory")
    opened = api.open_tree(tree)
    with api.open_store(cache) as store:
        api.index(opened, store, progress=progress, warn=lambda message: None)
        return rules_from_store(store, opened)
