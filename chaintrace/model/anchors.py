"""The source facts the migration model mirrors, declared as data, and their check against a tree.

Each `Anchor` names one fact of QEMU's source (a statement in a function, a
`#define`, a mention in a file), where it lives, the known ways the source
writes it (`Variant`s) and the `Rules` field that each way sets. `read_rules`
finds every fact in a plain source tree and builds the `Rules` the simulation
runs; a fact that no known variant matches any more stops with `AnchorDrift`.

The matching works on (file path, text) only, in `locate`, so that it can be
switched to the fact store (FieldWrite statements, Define bodies) later
without touching the simulation or the declarations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chaintrace.model import csource
from chaintrace.model.rules import (
    COMPLETE_AT_OR_BELOW,
    COMPLETE_BELOW,
    DIVIDE_BY_EXPECTED,
    DIVIDE_BY_MEASURED,
    FINAL_UNLIMITED,
    PAGE_HEADER_BYTES,
    THRESHOLD_MEASURED,
    THRESHOLD_SWITCHOVER,
    Rules,
)

STATEMENT = "statement"  # a statement of a function body
DEFINE = "define"  # the body of a #define
MENTION = "mention"  # a line anywhere in a file

# A Variant whose value is INT_VALUE sets the field to the integer the #define body evaluates to.
INT_VALUE = "<int value of the body>"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a fact may live: a file and, for statements, the function around it."""

    file: str
    function: str = ""

    def describe(self) -> str:
        """Return `function() in file`, or just the file."""
        return f"{self.function}() in {self.file}" if self.function else self.file


@dataclass(frozen=True, slots=True)
class Variant:
    """One known way the source writes a fact: a regex and the value it means for `Rules`."""

    pattern: str
    value: object


@dataclass(frozen=True, slots=True)
class Anchor:
    """A source fact the model mirrors.

    `places` are tried in order (the fact moved between files and functions
    across versions); `field` is the `Rules` field it sets ("" for a fact that
    only has to hold); `near` finds the statements to show when no variant
    matches; `absent`, when set, is the value for a MENTION found nowhere.
    """

    name: str
    mirrors: str
    kind: str
    places: tuple[Place, ...]
    variants: tuple[Variant, ...]
    field: str = ""
    symbol: str = ""
    near: str = ""
    absent: object = None


@dataclass(frozen=True, slots=True)
class AnchorResult:
    """Where a fact was found (`file:line`), the source text there and the value it gave."""

    name: str
    mirrors: str
    where: str
    found_text: str
    value: object


@dataclass(frozen=True, slots=True)
class Finding:
    """What `locate` saw in one file: a match (`value` set) or the nearest text when `matched` is false."""

    matched: bool
    where: str
    found_text: str
    value: object = None


class AnchorDrift(Exception):
    """A source fact the model mirrors no longer reads as any known variant."""

    def __init__(self, fact: str, where: str, found_text: str, mirrors: str = "") -> None:
        self.fact = fact
        self.where = where
        self.found_text = found_text
        self.mirrors = mirrors
        expected = f" (expected {mirrors})" if mirrors else ""
        super().__init__(f"anchor {fact!r} drifted{expected}: at {where} the source now reads: {found_text}")


def _p(file: str, function: str = "") -> Place:
    return Place(file, function)


ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        name="buffer-delay",
        mirrors="BUFFER_DELAY, the rate-limit and bandwidth-measurement window in ms",
        kind=DEFINE, symbol="BUFFER_DELAY",
        places=(_p("migration/migration-stats.h"), _p("migration/migration.c")),
        variants=(Variant(r"^\(?\s*\d+\s*\)?$", INT_VALUE),),
        field="buffer_delay_ms",
    ),
    Anchor(
        name="iterate-max-wait",
        mirrors="MAX_WAIT, the longest one ram_save_iterate() call sends before the loop checks again (ms)",
        kind=DEFINE, symbol="MAX_WAIT",
        places=(_p("migration/ram.c"),),
        variants=(Variant(r"^\(?\s*\d+\s*\)?$", INT_VALUE),),
        field="max_wait_ms",
    ),
    Anchor(
        name="default-downtime-limit",
        mirrors="DEFAULT_MIGRATE_SET_DOWNTIME, the default downtime-limit in ms",
        kind=DEFINE, symbol="DEFAULT_MIGRATE_SET_DOWNTIME",
        places=(_p("migration/options.c"), _p("migration/migration.c")),
        variants=(Variant(r"^\(?\s*\d+\s*\)?$", INT_VALUE),),
        field="default_downtime_limit_ms",
    ),
    Anchor(
        name="max-throttle",
        mirrors="MAX_THROTTLE, the default max-bandwidth in bytes/s",
        kind=DEFINE, symbol="MAX_THROTTLE",
        places=(_p("migration/options.c"), _p("migration/migration.c")),
        variants=(Variant(r"^[\s()\d<*+]+$", INT_VALUE),),
        field="default_max_bandwidth",
    ),
    Anchor(
        name="max-bandwidth-default",
        mirrors="the max-bandwidth property defaults to MAX_THROTTLE",
        kind=MENTION,
        places=(_p("migration/options.c"), _p("migration/migration.c")),
        variants=(Variant(r"parameters\.max_bandwidth,\s*MAX_THROTTLE\b", True),),
    ),
    Anchor(
        name="threshold-formula",
        mirrors="threshold_size = bandwidth per ms * downtime limit, once per window",
        kind=STATEMENT,
        places=(_p("migration/migration.c", "migration_update_counters"),),
        variants=(
            Variant(r"^s->threshold_size = bandwidth \* s->parameters\.downtime_limit$", THRESHOLD_MEASURED),
            Variant(r"^s->threshold_size = bandwidth \* migrate_downtime_limit\(\)$", THRESHOLD_MEASURED),
            Variant(r"^s->threshold_size = expected_bw_per_ms \* migrate_downtime_limit\(\)$",
                    THRESHOLD_SWITCHOVER),
        ),
        field="threshold_formula", near=r"threshold_size\s*=",
    ),
    Anchor(
        name="switchover-bandwidth",
        mirrors="whether the avail-switchover-bandwidth parameter exists",
        kind=MENTION,
        places=(_p("qapi/migration.json"),),
        variants=(Variant(r"'\*avail-switchover-bandwidth'", True),),
        field="has_switchover_bandwidth", absent=False,
    ),
    Anchor(
        name="expected-downtime",
        mirrors="expected_downtime = dirty bytes at the last bitmap sync / expected bandwidth",
        kind=STATEMENT,
        places=(_p("migration/migration.c", "migration_update_counters"),),
        variants=(
            # 7.2: ram_counters.remaining is only assigned in migration_bitmap_sync().
            Variant(r"^s->expected_downtime = ram_counters\.remaining / bandwidth$", DIVIDE_BY_MEASURED),
            Variant(r"^s->expected_downtime = stat64_get\(&mig_stats\.dirty_bytes_last_sync\) / bandwidth$",
                    DIVIDE_BY_MEASURED),
            Variant(r"^s->expected_downtime = stat64_get\(&mig_stats\.dirty_bytes_last_sync\) / "
                    r"expected_bw_per_ms$", DIVIDE_BY_EXPECTED),
        ),
        field="expected_downtime_divisor", near=r"expected_downtime\s*=",
    ),
    Anchor(
        name="completion-test",
        mirrors="precopy completes when pending <= threshold_size (7.2: pending < threshold_size)",
        kind=STATEMENT,
        places=(_p("migration/migration.c", "migration_iteration_run"),),
        variants=(
            Variant(r"^if \(pending_size && pending_size >= s->threshold_size\)$", COMPLETE_BELOW),
            Variant(r"^if \(!pending_size \|\| pending_size < s->threshold_size\)$", COMPLETE_BELOW),
            Variant(r"^if \(\(!pending_size \|\| pending_size < s->threshold_size\) && can_switchover\)$",
                    COMPLETE_BELOW),
            Variant(r"^complete_ready = can_switchover && \(pending_size <= s->threshold_size\)$",
                    COMPLETE_AT_OR_BELOW),
        ),
        field="completion_compare", near=r"pending_size\s*[<>]=?\s*s->threshold_size",
    ),
    Anchor(
        name="sync-trigger",
        mirrors="the dirty bitmap is synced when the pending estimate drops below threshold_size",
        kind=STATEMENT,
        places=(_p("migration/migration.c", "migration_iteration_run"),
                _p("migration/ram.c", "ram_save_pending")),
        variants=(
            Variant(r"^if \(pending_size < s->threshold_size\)$", True),
            Variant(r"^if \(!migration_in_postcopy\(\) && remaining_size < max_size\)$", True),
        ),
        field="sync_when_below_threshold", near=r"(pending|remaining)_size\s*<",
    ),
    Anchor(
        name="sync-call",
        mirrors="the exact pending query syncs the dirty bitmap (one sync per round)",
        kind=STATEMENT,
        places=(_p("migration/ram.c", "ram_state_pending_exact"), _p("migration/ram.c", "ram_save_pending")),
        variants=(Variant(r"^migration_bitmap_sync_precopy\((rs|false)\)$", True),),
        near=r"bitmap_sync",
    ),
    Anchor(
        name="rate-limit-window",
        mirrors="max-bandwidth is enforced per BUFFER_DELAY window (limit / XFER_LIMIT_RATIO)",
        kind=DEFINE, symbol="XFER_LIMIT_RATIO",
        places=(_p("migration/migration-stats.c"), _p("migration/migration.c")),
        variants=(Variant(r"^\(\s*1000\s*/\s*BUFFER_DELAY\s*\)$", True),),
        field="rate_limit_per_window",
    ),
    Anchor(
        name="rate-limit-wait",
        mirrors="a thread over its window budget sleeps until the window ends",
        kind=STATEMENT,
        places=(_p("migration/migration.c", "migration_rate_limit"),),
        variants=(Variant(r"^int ms = s->iteration_start_time \+ BUFFER_DELAY - now$", True),),
        near=r"BUFFER_DELAY|timedwait",
    ),
    Anchor(
        name="final-rate-limit",
        mirrors="the rate limit is lifted once the VM is stopped for the final copy",
        kind=STATEMENT,
        places=(_p("migration/migration.c", "migration_switchover_start"),
                _p("migration/migration.c", "migration_completion_precopy"),
                _p("migration/migration.c", "migration_completion")),
        variants=(
            Variant(r"^migration_rate_set\(RATE_LIMIT_DISABLED\)$", FINAL_UNLIMITED),
            Variant(r"^qemu_file_set_rate_limit\(s->to_dst_file, INT64_MAX\)$", FINAL_UNLIMITED),
        ),
        field="final_stage_rate_limit", near=r"rate",
    ),
    Anchor(
        name="zero-page",
        mirrors="a zero page is sent as an 8-byte header plus one byte, not as a page",
        kind=STATEMENT,
        places=(_p("migration/ram.c", "save_zero_page"), _p("migration/ram.c", "save_zero_page_to_file")),
        variants=(Variant(r"^len \+= save_page_header\(.*\| RAM_SAVE_FLAG_ZERO\)$", PAGE_HEADER_BYTES + 1),),
        field="zero_page_bytes", near=r"RAM_SAVE_FLAG_ZERO",
    ),
    Anchor(
        name="zero-page-byte",
        mirrors="the byte after a zero page's header",
        kind=STATEMENT,
        places=(_p("migration/ram.c", "save_zero_page"), _p("migration/ram.c", "save_zero_page_to_file")),
        variants=(Variant(r"^qemu_put_byte\(file, 0\)$", True),),
        near=r"qemu_put",
    ),
)


def _statement_finding(anchor: Anchor, path: str, text: str) -> Finding | None:
    code = csource.code_view(text)
    missed: Finding | None = None
    for function in (place.function for place in anchor.places if place.file == path):
        span = csource.find_function(code, function)
        if span is None:
            continue
        body = csource.statements(code, *span)
        for statement in body:
            for variant in anchor.variants:
                if re.search(variant.pattern, statement.text):
                    return Finding(True, f"{path}:{statement.line}", statement.text, variant.value)
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
    for variant in anchor.variants:
        if re.search(variant.pattern, body):
            value = csource.int_value(body) if variant.value == INT_VALUE else variant.value
            if value is not None:
                return Finding(True, where, shown, value)
    return Finding(False, where, shown)


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
