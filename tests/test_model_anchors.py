"""Anchors: the source facts the model mirrors, read from small trees written here and from real QEMU trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaintrace.model import csource
from chaintrace.model.anchors import ANCHORS, AnchorDrift
from chaintrace.extract.facts import CallSite, Context, FieldWrite, FileFacts, FunctionDef
from chaintrace.model.tree import locate, read_rules
from chaintrace.model.rules import (
    COMPLETE_AT_OR_BELOW,
    COMPLETE_BELOW,
    COUNT_AT_PUT,
    COUNT_FLUSHED,
    FINAL_UNLIMITED,
    THRESHOLD_MEASURED,
    THRESHOLD_SWITCHOVER,
    Rules,
)

# Trees of a few lines each, laid out as 7.2 and 10.2 lay the facts out.
TREE_72 = {
    "VERSION": "7.2.0\n",
    "migration/migration.c": """
#define MAX_THROTTLE  (128 << 20)      /* speed throttling */
#define BUFFER_DELAY     100
#define XFER_LIMIT_RATIO (1000 / BUFFER_DELAY)
#define DEFAULT_MIGRATE_SET_DOWNTIME 300

static void migration_update_counters(MigrationState *s, int64_t current_time)
{
    double bandwidth = (double)transferred / time_spent;
    s->threshold_size = bandwidth * s->parameters.downtime_limit;
    if (ram_counters.dirty_pages_rate && transferred > 10000) {
        s->expected_downtime = ram_counters.remaining / bandwidth;
    }
}

static MigIterateState migration_iteration_run(MigrationState *s)
{
    if (pending_size && pending_size >= s->threshold_size) {
        qemu_savevm_state_iterate(s->to_dst_file, in_postcopy);
    } else {
        migration_completion(s);
    }
}

bool migration_rate_limit(void)
{
    int ms = s->iteration_start_time + BUFFER_DELAY - now;
}

static void migration_completion(MigrationState *s)
{
    if (ret >= 0) {
        qemu_file_set_rate_limit(s->to_dst_file, INT64_MAX);
    }
}

static Property migration_properties[] = {
    DEFINE_PROP_SIZE("max-bandwidth", MigrationState,
                      parameters.max_bandwidth, MAX_THROTTLE),
};
""",
    "migration/ram.c": """
#define MAX_WAIT 50 /* ms */

static int save_zero_page_to_file(RAMState *rs, QEMUFile *file, RAMBlock *block, ram_addr_t offset)
{
    if (buffer_is_zero(p, TARGET_PAGE_SIZE)) {
        len += save_page_header(rs, file, block, offset | RAM_SAVE_FLAG_ZERO);
        qemu_put_byte(file, 0);
    }
}

static void ram_save_pending(QEMUFile *f, void *opaque, uint64_t max_size)
{
    if (!migration_in_postcopy() &&
        remaining_size < max_size) {
        migration_bitmap_sync_precopy(rs);
    }
}

static void ramblock_sync_dirty_bitmap(RAMState *rs, RAMBlock *rb)
{
    rs->migration_dirty_pages += new_dirty_pages;
}

unsigned long migration_bitmap_find_dirty(RAMState *rs, RAMBlock *rb, unsigned long start)
{
    return find_next_bit(bitmap, size, start);
}
""",
    "include/exec/ram_addr.h": """
static inline
uint64_t cpu_physical_memory_sync_dirty_bitmap(RAMBlock *rb, ram_addr_t start, ram_addr_t length)
{
    unsigned long new_dirty;
    new_dirty = ~dest[k];
    dest[k] |= bits;
    new_dirty &= bits;
    return num_dirty;
}
""",
    "migration/qemu-file.c": """
#define IO_BUF_SIZE 32768
#define MAX_IOV_SIZE MIN_CONST(IOV_MAX, 64)

int qemu_fflush(QEMUFile *f)
{
    f->total_transferred += iov_size(f->iov, f->iovcnt);
}

void qemu_put_buffer_async(QEMUFile *f, const uint8_t *buf, size_t size, bool may_free)
{
    f->rate_limit_used += size;
    add_to_iovec(f, buf, size, may_free);
}
""",
    "qapi/migration.json": "{ 'struct': 'MigrationParameters',\n  'data': { '*downtime-limit': 'uint64' } }\n",
}

TREE_102 = {
    "VERSION": "10.2.2\n",
    "migration/migration-stats.h": "#define BUFFER_DELAY     100\n#define RATE_LIMIT_DISABLED 0\n",
    "migration/migration-stats.c": """#define XFER_LIMIT_RATIO (1000 / BUFFER_DELAY)

bool migration_rate_exceeded(QEMUFile *f)
{
    uint64_t rate_limit_current = migration_transferred_bytes();
    return rate_limit_current - rate_limit_start > rate_limit_max;
}
""",
    "migration/qemu-file.c": """
#define IO_BUF_SIZE 32768
#define MAX_IOV_SIZE MIN_CONST(IOV_MAX, 64)

int qemu_fflush(QEMUFile *f)
{
    stat64_add(&mig_stats.qemu_file_transferred, size);
}
""",
    "migration/options.c": """
#define MAX_THROTTLE  (128 << 20)
#define DEFAULT_MIGRATE_SET_DOWNTIME 300
const Property migration_properties[] = {
    DEFINE_PROP_SIZE("max-bandwidth", MigrationState,
                      parameters.max_bandwidth, MAX_THROTTLE),
};
""",
    "migration/migration.c": """
static void migration_update_counters(MigrationState *s, int64_t current_time)
{
    if (switchover_bw) {
        expected_bw_per_ms = switchover_bw / 1000;
    } else {
        expected_bw_per_ms = bandwidth;
    }
    /* was: s->threshold_size = bandwidth * s->parameters.downtime_limit; */
    s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();
    s->expected_downtime =
        stat64_get(&mig_stats.dirty_bytes_last_sync) / expected_bw_per_ms;
}

static MigIterateState migration_iteration_run(MigrationState *s)
{
    if (pending_size < s->threshold_size) {
        qemu_savevm_state_pending_exact(&must_precopy, &can_postcopy);
    }
    complete_ready = can_switchover && (pending_size <= s->threshold_size);
}

bool migration_rate_limit(void)
{
    int ms = s->iteration_start_time + BUFFER_DELAY - now;
}

static bool migration_switchover_start(MigrationState *s, Error **errp)
{
    migration_rate_set(RATE_LIMIT_DISABLED);
    return true;
}
""",
    "migration/ram.c": """
#define MAX_WAIT 50 /* ms, half buffered_file limit */

static int save_zero_page(RAMState *rs, PageSearchStatus *pss, ram_addr_t offset)
{
    if (!buffer_is_zero(p, TARGET_PAGE_SIZE)) { return false; }
    len += save_page_header(pss, file, pss->block, offset | RAM_SAVE_FLAG_ZERO);
    qemu_put_byte(file, 0);
}

static void ram_state_pending_exact(void *opaque, uint64_t *must_precopy, uint64_t *can_postcopy)
{
    if (!migration_in_postcopy()) {
        WITH_RCU_READ_LOCK_GUARD() {
            migration_bitmap_sync_precopy(false);
        }
    }
}

static uint64_t physical_memory_sync_dirty_bitmap(RAMBlock *rb, ram_addr_t start, ram_addr_t length)
{
    new_dirty = ~dest[k];
    dest[k] |= bits;
    new_dirty &= bits;
}

static void ramblock_sync_dirty_bitmap(RAMState *rs, RAMBlock *rb)
{
    rs->migration_dirty_pages += new_dirty_pages;
}

static void pss_find_next_dirty(PageSearchStatus *pss)
{
    pss->page = find_next_bit(bitmap, size, pss->page);
}
""",
    "qapi/migration.json": "{ 'struct': 'MigrationParameters',\n"
                           "  'data': { '*avail-switchover-bandwidth': 'size' } }\n",
}


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    tree = tmp_path / "tree"
    for name, text in files.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tree


def _read_rules(tmp_path: Path, files: dict[str, str]):
    """Write `files` as a tree, index it into a cache of its own and read its rules from the fact store."""
    return read_rules(_write(tmp_path, files), tmp_path / "cache")


def _drift(tmp_path: Path, files: dict[str, str]) -> AnchorDrift:
    """Return the drift reading the rules of the tree `files` (10.2's, changed) raises."""
    with pytest.raises(AnchorDrift) as caught:
        _read_rules(tmp_path, files)
    return caught.value


def _with_migration_c(old: str, new: str) -> dict[str, str]:
    """Return 10.2's tree with one statement of migration/migration.c rewritten."""
    changed = dict(TREE_102)
    changed["migration/migration.c"] = changed["migration/migration.c"].replace(old, new)
    return changed


def test_a_7_2_tree_gives_7_2_rules(tmp_path: Path) -> None:
    rules, results = _read_rules(tmp_path, TREE_72)
    assert rules.version == "7.2.0"
    assert rules.threshold_formula == THRESHOLD_MEASURED
    assert rules.completion_compare == COMPLETE_BELOW
    assert rules.has_switchover_bandwidth is False
    assert rules.final_stage_rate_limit == FINAL_UNLIMITED
    assert (rules.buffer_delay_ms, rules.max_wait_ms, rules.default_downtime_limit_ms) == (100, 50, 300)
    assert rules.default_max_bandwidth == 128 << 20
    assert rules.zero_page_bytes == 9
    assert (rules.rate_limit_counts, rules.flush_iovecs, rules.io_buf_size) == (COUNT_AT_PUT, 64, 32768)
    where = {result.name: result.where for result in results}
    assert where["threshold-formula"] == "migration/migration.c:10"
    assert where["sync-trigger"] == "migration/ram.c:14"
    assert where["final-rate-limit"] == "migration/migration.c:33"
    assert where["buffer-delay"] == "migration/migration.c:3"
    assert where["max-bandwidth-default"] == "migration/migration.c:38"  # the DEFINE_PROP_SIZE CallSite
    fact = {result.name: result.fact for result in results}
    assert fact["threshold-formula"] == "FieldWrite"
    assert fact["final-rate-limit"] == "CallSite"
    assert fact["buffer-delay"] == "Define"
    assert fact["completion-test"] == "FunctionDef span"
    assert {result.name for result in results} == {anchor.name for anchor in ANCHORS}


def test_a_10_2_tree_gives_10_2_rules(tmp_path: Path) -> None:
    rules, results = _read_rules(tmp_path, TREE_102)
    assert rules.version == "10.2.2"
    assert rules.threshold_formula == THRESHOLD_SWITCHOVER
    assert rules.completion_compare == COMPLETE_AT_OR_BELOW
    assert rules.has_switchover_bandwidth is True
    assert rules.rate_limit_counts == COUNT_FLUSHED
    where = {result.name: result.where for result in results}
    # The commented-out 7.2 formula on line 9 is not the fact; line 10 is.
    assert where["threshold-formula"] == "migration/migration.c:10"
    assert where["expected-downtime"] == "migration/migration.c:11"
    assert where["buffer-delay"] == "migration/migration-stats.h:1"
    assert where["switchover-bandwidth"] == "qapi/migration.json:2"
    assert where["sync-call"] == "migration/ram.c:15"
    assert where["zero-page-check"] == "migration/ram.c:6"
    newest = Rules.newest()
    same = {name: getattr(rules, name) for name in Rules.__slots__ if name not in ("version", "origin")}
    assert same == {name: getattr(newest, name) for name in same}


def test_a_drifted_threshold_names_the_fact_and_where_it_stands(tmp_path: Path) -> None:
    drift = _drift(tmp_path, _with_migration_c(
        "s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();",
        "s->threshold_size = expected_bw_per_ms * migrate_downtime_limit() / 2;",
    ))
    assert drift.fact == "threshold-formula"
    assert drift.where == "migration/migration.c:10"
    assert drift.found_text == "s->threshold_size = expected_bw_per_ms * migrate_downtime_limit() / 2"
    assert "threshold-formula" in str(drift) and "migration/migration.c:10" in str(drift)


@pytest.mark.parametrize(
    ("file", "old", "new", "fact"),
    [
        ("migration/qemu-file.c", "MIN_CONST(IOV_MAX, 64)", "MIN_CONST(IOV_MAX, 128)", "flush-iovecs"),
        ("migration/ram.c", "new_dirty &= bits;", "new_dirty = bits;", "new-dirty-pages"),
        ("migration/ram.c", "buffer_is_zero(p, TARGET_PAGE_SIZE)", "buffer_is_zero(p, 64)", "zero-page-check"),
        ("migration/migration-stats.c", "rate_limit_current = migration_transferred_bytes();",
         "rate_limit_current = migration_queued_bytes();", "rate-limit-counts"),
    ],
)
def test_the_new_mechanisms_drift_when_their_source_changes(tmp_path: Path, file: str, old: str, new: str,
                                                             fact: str) -> None:
    drifted = dict(TREE_102)
    assert old in drifted[file]
    drifted[file] = drifted[file].replace(old, new)
    drift = _drift(tmp_path, drifted)
    assert drift.fact == fact
    assert drift.where.startswith(file + ":")


def test_a_vanished_define_is_drift_naming_the_places_tried(tmp_path: Path) -> None:
    drifted = dict(TREE_102)
    drifted["migration/migration-stats.h"] = "#define RATE_LIMIT_DISABLED 0\n"
    drift = _drift(tmp_path, drifted)
    assert drift.fact == "buffer-delay"
    assert "migration/migration-stats.h" in drift.where
    assert "BUFFER_DELAY" in drift.found_text


def test_a_define_moved_elsewhere_is_drift_naming_where_it_now_stands(tmp_path: Path) -> None:
    drifted = dict(TREE_102)
    drifted["migration/migration-stats.h"] = "#define RATE_LIMIT_DISABLED 0\n"
    drifted["include/migration/delay.h"] = "\n#define BUFFER_DELAY 100\n"
    drift = _drift(tmp_path, drifted)
    assert drift.fact == "buffer-delay"
    assert drift.where == "include/migration/delay.h:2"
    assert "#define BUFFER_DELAY 100" in drift.found_text


def test_a_drifted_comparison_read_from_the_function_span_names_where_it_stands(tmp_path: Path) -> None:
    drift = _drift(tmp_path, _with_migration_c(
        "complete_ready = can_switchover && (pending_size <= s->threshold_size);",
        "complete_ready = pending_size <= s->threshold_size / 2;",
    ))
    assert drift.fact == "completion-test"
    # The comparisons of migration_iteration_run() are shown, from the first one (line 17) on.
    assert drift.where == "migration/migration.c:17"
    assert drift.found_text.endswith(" | complete_ready = pending_size <= s->threshold_size / 2")


def test_a_changed_define_value_is_read_not_assumed(tmp_path: Path) -> None:
    changed = dict(TREE_72)
    changed["migration/migration.c"] = changed["migration/migration.c"].replace(
        "#define BUFFER_DELAY     100", "#define BUFFER_DELAY     50")
    rules, _ = _read_rules(tmp_path, changed)
    assert rules.buffer_delay_ms == 50


def test_a_missing_tree_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_rules(tmp_path / "nowhere")


def _function(name: str, line: int, end_line: int) -> FunctionDef:
    return FunctionDef(name, "migration/migration.c", line, end_line, True, False, "void", ())


def test_locate_reads_facts_and_the_span_only_of_a_function_the_facts_name() -> None:
    completion = next(a for a in ANCHORS if a.name == "completion-test")
    threshold = next(a for a in ANCHORS if a.name == "threshold-formula")
    final = next(a for a in ANCHORS if a.name == "final-rate-limit")
    text = "void migration_iteration_run(void)\n{\n    if (pending_size && pending_size >= s->threshold_size) {\n"
    text += "    }\n}\n"
    facts = FileFacts(
        "migration/migration.c",
        functions=(_function("migration_iteration_run", 1, 5), _function("migration_update_counters", 7, 9),
                   _function("migration_completion", 11, 13)),
        writes=(FieldWrite("migration_update_counters", "migration/migration.c", 8, 5, "s->threshold_size",
                           "threshold_size", "s", "MigrationState", "bandwidth * migrate_downtime_limit()", "=",
                           "s->threshold_size = bandwidth * migrate_downtime_limit();", Context()),),
        calls=(CallSite("migration_completion", "migration/migration.c", 12, 5, "qemu_file_set_rate_limit", "name",
                        ("s->to_dst_file", "INT64_MAX"), Context()),),
    )
    found = locate(completion, facts, lambda: text)
    assert found is not None and found.matched
    assert (found.where, found.value, found.fact) == ("migration/migration.c:3", COMPLETE_BELOW, "FunctionDef span")
    found = locate(threshold, facts, lambda: None)  # a FieldWrite fact: no source read
    assert found is not None and (found.where, found.value, found.fact) == (
        "migration/migration.c:8", THRESHOLD_MEASURED, "FieldWrite")
    found = locate(final, facts, lambda: None)
    assert found is not None and (found.where, found.value, found.fact) == (
        "migration/migration.c:12", FINAL_UNLIMITED, "CallSite")
    # A file whose facts have no such function is not the fact's place: its text is never read.
    assert locate(completion, FileFacts("migration/migration.c"), lambda: text) is None


def test_find_function_skips_calls_prototypes_and_braces_in_strings() -> None:
    code = csource.code_view(
        'static void f(void);\nvoid g(void) { f(); puts("}"); }\nstatic void f(void)\n{\n    x = 1; /* } */\n}\n'
    )
    start, end = csource.find_function(code, "f")
    assert csource.line_of(code, start) == 3
    assert [s.text for s in csource.statements(code, start, end)] == ["f(void)", "x = 1"]
    assert csource.int_value("(128 << 20)") == 134217728
    assert csource.int_value("100ULL") == 100
    assert csource.int_value("sizeof(x)") is None


def test_real_7_2_tree_runs_7_2_rules(indexed_qemu, index_cache: Path) -> None:
    tree = indexed_qemu("7.2")
    rules, results = read_rules(tree.path, index_cache)
    assert rules.version.startswith("7.2")
    assert rules.threshold_formula == THRESHOLD_MEASURED
    assert rules.completion_compare == COMPLETE_BELOW
    assert not rules.has_switchover_bandwidth
    assert rules.final_stage_rate_limit == FINAL_UNLIMITED
    assert rules.rate_limit_counts == COUNT_AT_PUT
    assert all(":" in result.where or result.found_text == "(not mentioned)" for result in results)
    where = {result.name: result.where for result in results}
    assert where["new-dirty-pages"].startswith("include/exec/ram_addr.h:")
    assert where["rate-limit-counts"].startswith("migration/qemu-file.c:")


def test_real_10_2_tree_runs_10_2_rules(indexed_qemu, index_cache: Path) -> None:
    tree = indexed_qemu("10.2")
    rules, results = read_rules(tree.path, index_cache)
    assert rules.version.startswith("10.2")
    assert rules.threshold_formula == THRESHOLD_SWITCHOVER
    assert rules.completion_compare == COMPLETE_AT_OR_BELOW
    assert rules.has_switchover_bandwidth
    where = {result.name: result.where for result in results}
    assert where["buffer-delay"].startswith("migration/migration-stats.h:")
    assert where["final-rate-limit"].startswith("migration/migration.c:")
    fact = {result.name: result.fact for result in results}
    assert fact["threshold-formula"] == fact["expected-downtime"] == "FieldWrite"
    assert fact["sync-call"] == fact["final-rate-limit"] == fact["zero-page-byte"] == "CallSite"
    assert fact["max-throttle"] == fact["buffer-delay"] == "Define"
    assert fact["completion-test"] == "FunctionDef span"
    assert rules.rate_limit_counts == COUNT_FLUSHED and rules.flush_iovecs == 64
    assert where["new-dirty-pages"].startswith("migration/ram.c:")
    assert where["rate-limit-counts"].startswith("migration/migration-stats.c:")
    assert fact["pending-grows-by-new"] == "FieldWrite"
    assert where["zero-page-check"].startswith("migration/ram.c:")


def test_every_fetched_tree_reads_without_drift(any_qemu_tree, indexed_qemu, index_cache: Path) -> None:
    tree = indexed_qemu(any_qemu_tree.family)
    rules, results = read_rules(tree.path, index_cache)
    assert len(results) == len(ANCHORS)
    assert rules.buffer_delay_ms == 100 and rules.default_max_bandwidth == 128 << 20
