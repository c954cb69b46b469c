"""The source facts the migration model mirrors, declared as data.

Each `Anchor` names one fact of QEMU's source (a statement in a function, a
`#define`, a mention in a file), where it lives, the known ways the source
writes it (`Variant`s) and the `Rules` field that each way sets.
`tree.read_rules` indexes a source tree, finds every fact in its fact store and builds the `Rules`
the simulation runs; a fact that no known variant matches any more stops
with `AnchorDrift`.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaintrace.model.rules import (
    COMPLETE_AT_OR_BELOW,
    COUNT_AT_PUT,
    COUNT_FLUSHED,
    COMPLETE_BELOW,
    DIVIDE_BY_EXPECTED,
    DIVIDE_BY_MEASURED,
    FINAL_UNLIMITED,
    PAGE_HEADER_BYTES,
    THRESHOLD_MEASURED,
    THRESHOLD_SWITCHOVER,
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
    """Where a fact was found (`file:line`), the source text there, the value it gave and the fact it was read from."""

    name: str
    mirrors: str
    where: str
    found_text: str
    value: object
    fact: str = ""


class AnchorDrift(Exception):
    """A source fact the model mirrors no longer reads as any known variant."""

    def __init__(self, fact: str, where: str, found_text: str, mirrors: str = "") -> None:
        self.fact = fact
        self.where = where
        self.found_text = found_text
        self.mirrors = mirrors
        expected = f" (expected {mirrors})" if mirrors else ""
        super().__init__(f"anchor {fact!r} drifted{expected}: at {where} the source now reads: {found_text}")


ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        name="buffer-delay",
        mirrors="BUFFER_DELAY, the rate-limit and bandwidth-measurement window in ms",
        kind=DEFINE, symbol="BUFFER_DELAY",
        places=(Place("migration/migration-stats.h"), Place("migration/migration.c")),
        variants=(Variant(r"^\(?\s*\d+\s*\)?$", INT_VALUE),),
        field="buffer_delay_ms",
    ),
    Anchor(
        name="iterate-max-wait",
        mirrors="MAX_WAIT, the longest one ram_save_iterate() call sends before the loop checks again (ms)",
        kind=DEFINE, symbol="MAX_WAIT",
        places=(Place("migration/ram.c"),),
        variants=(Variant(r"^\(?\s*\d+\s*\)?$", INT_VALUE),),
        field="max_wait_ms",
    ),
    Anchor(
        name="default-downtime-limit",
        mirrors="DEFAULT_MIGRATE_SET_DOWNTIME, the default downtime-limit in ms",
        kind=DEFINE, symbol="DEFAULT_MIGRATE_SET_DOWNTIME",
        places=(Place("migration/options.c"), Place("migration/migration.c")),
        variants=(Variant(r"^\(?\s*\d+\s*\)?$", INT_VALUE),),
        field="default_downtime_limit_ms",
    ),
    Anchor(
        name="max-throttle",
        mirrors="MAX_THROTTLE, the default max-bandwidth in bytes/s",
        kind=DEFINE, symbol="MAX_THROTTLE",
        places=(Place("migration/options.c"), Place("migration/migration.c")),
        variants=(Variant(r"^[\s()\d<*+]+$", INT_VALUE),),
        field="default_max_bandwidth",
    ),
    Anchor(
        name="max-bandwidth-default",
        mirrors="the max-bandwidth property defaults to MAX_THROTTLE",
        kind=MENTION,
        places=(Place("migration/options.c"), Place("migration/migration.c")),
        variants=(Variant(r"parameters\.max_bandwidth,\s*MAX_THROTTLE\b", True),),
    ),
    Anchor(
        name="threshold-formula",
        mirrors="threshold_size = bandwidth per ms * downtime limit, once per window",
        kind=STATEMENT,
        places=(Place("migration/migration.c", "migration_update_counters"),),
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
        places=(Place("qapi/migration.json"),),
        variants=(Variant(r"'\*avail-switchover-bandwidth'", True),),
        field="has_switchover_bandwidth", absent=False,
    ),
    Anchor(
        name="expected-downtime",
        mirrors="expected_downtime = dirty bytes at the last bitmap sync / expected bandwidth",
        kind=STATEMENT,
        places=(Place("migration/migration.c", "migration_update_counters"),),
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
        places=(Place("migration/migration.c", "migration_iteration_run"),),
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
        places=(Place("migration/migration.c", "migration_iteration_run"),
                Place("migration/ram.c", "ram_save_pending")),
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
        places=(Place("migration/ram.c", "ram_state_pending_exact"), Place("migration/ram.c", "ram_save_pending")),
        variants=(Variant(r"^migration_bitmap_sync_precopy\((rs|false)\)$", True),),
        near=r"bitmap_sync",
    ),
    Anchor(
        name="rate-limit-window",
        mirrors="max-bandwidth is enforced per BUFFER_DELAY window (limit / XFER_LIMIT_RATIO)",
        kind=DEFINE, symbol="XFER_LIMIT_RATIO",
        places=(Place("migration/migration-stats.c"), Place("migration/migration.c")),
        variants=(Variant(r"^\(\s*1000\s*/\s*BUFFER_DELAY\s*\)$", True),),
        field="rate_limit_per_window",
    ),
    Anchor(
        name="rate-limit-wait",
        mirrors="a thread over its window budget sleeps until the window ends",
        kind=STATEMENT,
        places=(Place("migration/migration.c", "migration_rate_limit"),),
        variants=(Variant(r"^int ms = s->iteration_start_time \+ BUFFER_DELAY - now$", True),),
        near=r"BUFFER_DELAY|timedwait",
    ),
    Anchor(
        name="final-rate-limit",
        mirrors="the rate limit is lifted once the VM is stopped for the final copy",
        kind=STATEMENT,
        places=(Place("migration/migration.c", "migration_switchover_start"),
                Place("migration/migration.c", "migration_completion_precopy"),
                Place("migration/migration.c", "migration_completion")),
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
        places=(Place("migration/ram.c", "save_zero_page"), Place("migration/ram.c", "save_zero_page_to_file")),
        variants=(Variant(r"^len \+= save_page_header\(.*\| RAM_SAVE_FLAG_ZERO\)$", PAGE_HEADER_BYTES + 1),),
        field="zero_page_bytes", near=r"RAM_SAVE_FLAG_ZERO",
    ),
    Anchor(
        name="zero-page-byte",
        mirrors="the byte after a zero page's header",
        kind=STATEMENT,
        places=(Place("migration/ram.c", "save_zero_page"), Place("migration/ram.c", "save_zero_page_to_file")),
        variants=(Variant(r"^qemu_put_byte\(file, 0\)$", True),),
        near=r"qemu_put",
    ),
    Anchor(
        name="zero-page-check",
        mirrors="a page is found zero by reading it whole (buffer_is_zero over TARGET_PAGE_SIZE), so a pass "
                "through zero pages takes time",
        kind=STATEMENT,
        places=(Place("migration/ram.c", "save_zero_page"), Place("migration/ram.c", "save_zero_page_to_file")),
        variants=(Variant(r"^buffer_is_zero\(\w+, TARGET_PAGE_SIZE\)$", True),
                  Variant(r"^if \(!?buffer_is_zero\(\w+, TARGET_PAGE_SIZE\)\)$", True)),
        near=r"buffer_is_zero",
    ),
    Anchor(
        name="new-dirty-pages",
        mirrors="a sync adds only pages not already dirty in the migration bitmap (new_dirty = ~dest & bits)",
        kind=STATEMENT,
        places=(Place("migration/ram.c", "physical_memory_sync_dirty_bitmap"),
                Place("include/exec/ram_addr.h", "cpu_physical_memory_sync_dirty_bitmap")),
        variants=(Variant(r"^new_dirty &= bits$", True),),
        near=r"new_dirty",
    ),
    Anchor(
        name="pending-grows-by-new",
        mirrors="pending (migration_dirty_pages) and the dirty-page rate grow by the new dirty pages of a sync",
        kind=STATEMENT,
        places=(Place("migration/ram.c", "ramblock_sync_dirty_bitmap"),),
        variants=(Variant(r"^rs->migration_dirty_pages \+= new_dirty_pages$", True),),
        near=r"dirty_pages",
    ),
    Anchor(
        name="scan-order",
        mirrors="the scan takes dirty pages in address order from where it stopped (find_next_bit), so runs of "
                "zero pages go together",
        kind=STATEMENT,
        places=(Place("migration/ram.c", "pss_find_next_dirty"), Place("migration/ram.c", "migration_bitmap_find_dirty")),
        variants=(Variant(r"^(pss->page = )?find_next_bit\(bitmap, size, (pss->page|start)\)$", True),),
        near=r"find_next",
    ),
    Anchor(
        name="rate-limit-counts",
        mirrors="the bytes the rate limiter compares with its budget: counted at put (7.2) or once flushed (10.x)",
        kind=STATEMENT,
        places=(Place("migration/migration-stats.c", "migration_rate_exceeded"),
                Place("migration/qemu-file.c", "qemu_put_buffer_async")),
        variants=(
            Variant(r"^(uint64_t rate_limit_current = )?migration_transferred_bytes\(\)$", COUNT_FLUSHED),
            Variant(r"^f->rate_limit_used \+= size$", COUNT_AT_PUT),
        ),
        field="rate_limit_counts", near=r"rate_limit|transferred",
    ),
    Anchor(
        name="flushed-bytes",
        mirrors="the transferred count moves when qemu_fflush() has written its iovecs",
        kind=STATEMENT,
        places=(Place("migration/qemu-file.c", "qemu_fflush"),),
        variants=(
            Variant(r"^stat64_add\(&mig_stats\.qemu_file_transferred, size\)$", True),
            Variant(r"^f->total_transferred \+= iov_size\(f->iov, f->iovcnt\)$", True),
        ),
        near=r"transferred",
    ),
    Anchor(
        name="flush-iovecs",
        mirrors="MAX_IOV_SIZE, the iovecs a QEMUFile gathers before add_to_iovec() flushes",
        kind=DEFINE, symbol="MAX_IOV_SIZE",
        places=(Place("migration/qemu-file.c"),),
        variants=(Variant(r"^MIN_CONST\(IOV_MAX, 64\)$", 64),),
        field="flush_iovecs",
    ),
    Anchor(
        name="io-buf-size",
        mirrors="IO_BUF_SIZE, the QEMUFile buffer that page headers and zero pages fill before a flush",
        kind=DEFINE, symbol="IO_BUF_SIZE",
        places=(Place("migration/qemu-file.c"),),
        variants=(Variant(r"^\(?\s*\d+\s*\)?$", INT_VALUE),),
        field="io_buf_size",
    ),
)
