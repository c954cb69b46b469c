"""Finding the anchored facts in a plain QEMU source tree, and the Rules they give.

Everything here works on (file path, text), and the variant matching on one
statement or one `#define` body (`statement_value`, `define_value`), so the
lookup can move onto the fact store (FieldWrite statements, Define bodies)
without touching the declarations or the simulation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chaintrace.model import csource
from chaintrace.model.anchors import ANCHORS, DEFINE, INT_VALUE, MENTION, STATEMENT, Anchor, AnchorDrift, AnchorResult
from chaintrace.model.rules import Rules


@dataclass(frozen=True, slots=True)
class Finding:
    """What `locate` saw in one file: a match (`value` set) or the nearest text when `matched` is false."""

    matched: bool
    where: str
    found_text: str
    value: object = None


def statement_value(anchor: Anchor, statement: str) -> object | None:
    """Return the value the first matching variant gives one whitespace-folded statement, or None.

    This is the whole match for a statement fact: the fact store's FieldWrite
    `statement` can be passed here as well as a statement read from text.
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


def _statement_finding(anchor: Anchor, path: str, text: str) -> Finding | None:
    code = csource.code_view(text)
    missed: Finding | None = None
    for function in (place.function for place in anchor.places if place.file == path):
        span = csource.find_function(code, function)
        if span is None:
            continue
        body = csource.statements(code, *span)
        for statement in body:
            value = statement_value(anchor, statement.text)
            if value is not None:
                return Finding(True, f"{path}:{statement.line}", statement.text, value)
        nearby = [s for s in body if anchor.near and re.search(anchor.near, s.text)]
        if nearby:
            shown = " | ".join(s.text for s in nearby[:3])
            missed = missed or Finding(False, f"{path}:{nearby[0].line}", shown)
        else:
            line = csource.line_of(code, span[0])
            missed = missed or Finding(False, f"{path}:{line}", f"no statement of {function}() matches")
    return missed


def _define_finding(anchor: Anchor, path: str, text: str) -> Finding | None:
    code = csource.code_view(text)
    found = csource.find_define(code, anchor.symbol)
    if found is None:
        return None
    body, offset = found
    where = f"{path}:{csource.line_of(code, offset)}"
    shown = f"#define {anchor.symbol} {body}"
    value = define_value(anchor, body)
    return Finding(value is not None, where, shown, value)


def _mention_finding(anchor: Anchor, path: str, text: str) -> Finding | None:
    # C files are searched without their comments; other files (QAPI JSON) as they are.
    searched = csource.code_view(text) if path.endswith((".c", ".h")) else text
    for number, line in enumerate(searched.splitlines(), start=1):
        for variant in anchor.variants:
            if re.search(variant.pattern, line):
                return Finding(True, f"{path}:{number}", " ".join(line.split()), variant.value)
    return None


def locate(anchor: Anchor, path: str, text: str) -> Finding | None:
    """Return what `anchor` finds in one file (`path` relative to the tree, `text` its content).

    None means the fact's place (function, #define, mention) is not in this
    file; a Finding with `matched` false means the place is there but no
    known variant matches, and carries the nearest source text.
    """
    if anchor.kind == STATEMENT:
        return _statement_finding(anchor, path, text)
    if anchor.kind == DEFINE:
        return _define_finding(anchor, path, text)
    return _mention_finding(anchor, path, text)


def check_anchor(anchor: Anchor, read: Callable[[str], str | None]) -> AnchorResult:
    """Return where `anchor` holds, reading files with `read(path) -> text or None`; raise AnchorDrift if not."""
    missed: Finding | None = None
    for place in anchor.places:
        text = read(place.file)
        if text is None:
            continue
        finding = locate(anchor, place.file, text)
        if finding is None:
            continue
        if finding.matched:
            return AnchorResult(anchor.name, anchor.mirrors, finding.where, finding.found_text, finding.value)
        missed = missed or finding
    if anchor.kind == MENTION and anchor.absent is not None:
        where = " or ".join(place.file for place in anchor.places)
        return AnchorResult(anchor.name, anchor.mirrors, where, "(not mentioned)", anchor.absent)
    if missed is not None:
        raise AnchorDrift(anchor.name, missed.where, missed.found_text, anchor.mirrors)
    tried = ", ".join(place.describe() for place in anchor.places)
    what = f"#define {anchor.symbol}" if anchor.kind == DEFINE else "it"
    raise AnchorDrift(anchor.name, tried, f"{what} is not there any more", anchor.mirrors)


def tree_version(tree: Path) -> str:
    """Return the QEMU version of `tree` from its VERSION file, or "unknown"."""
    version_file = tree / "VERSION"
    return version_file.read_text().strip() if version_file.is_file() else "unknown"


def read_rules(tree: Path) -> tuple[Rules, list[AnchorResult]]:
    """Return the Rules that the QEMU source `tree` runs by, and where each anchored fact stands.

    Raises AnchorDrift when a fact no longer reads as any known variant, and
    FileNotFoundError when `tree` is not a directory.
    """
    if not tree.is_dir():
        raise FileNotFoundError(f"QEMU tree {tree} is not a directory")
    cache: dict[str, str | None] = {}

    def read(path: str) -> str | None:
        if path not in cache:
            file = tree / path
            cache[path] = file.read_text(errors="replace") if file.is_file() else None
        return cache[path]

    results = [check_anchor(anchor, read) for anchor in ANCHORS]
    values = {anchor.field: result.value for anchor, result in zip(ANCHORS, results) if anchor.field}
    version = tree_version(tree)
    rules = Rules(version=version, origin=f"QEMU {version} source at {tree}", **values)
    return rules, results
