"""The rules of QEMU's precopy loop that the simulation runs, as one frozen value.

Each field mirrors one fact of QEMU's source, named by an anchor in
`anchors.py`; `Rules.newest()` holds the facts of the newest version we know
(10.2), and `tree.read_rules(tree)` reads them from the fact store of a real tree instead.
"""

from __future__ import annotations

from dataclasses import dataclass

# Threshold formulas in `migration_update_counters`, as the source writes them.
THRESHOLD_MEASURED = "bandwidth * downtime_limit"
THRESHOLD_SWITCHOVER = "expected_bw_per_ms * migrate_downtime_limit()"

# Divisors of `expected_downtime` in `migration_update_counters`: the measured
# bandwidth (7.2) or the expected one, which a switchover bandwidth overrides (10.x).
DIVIDE_BY_MEASURED = "bandwidth"
DIVIDE_BY_EXPECTED = "expected_bw_per_ms"

# Completion comparisons in `migration_iteration_run`: the migration completes
# when pending < threshold_size (7.2: it goes on while `pending_size >=
# s->threshold_size`) or when pending <= threshold_size (10.x).
COMPLETE_BELOW = "<"
COMPLETE_AT_OR_BELOW = "<="

# What the rate limit becomes once the VM is stopped for the final copy.
FINAL_UNLIMITED = "unlimited"
FINAL_KEPT = "kept"

# When the rate limiter sees the bytes it counts: as each page is put into the
# QEMUFile (7.2: `f->rate_limit_used += size` in qemu_put_buffer_async), or only
# once qemu_fflush() has written them (10.x: migration_rate_exceeded() reads
# migration_transferred_bytes(), which qemu_fflush advances every MAX_IOV_SIZE
# iovecs), so a window overshoots its budget by up to one flush.
COUNT_AT_PUT = "put"
COUNT_FLUSHED = "flushed"

# Page and stream layout of RAM migration (x86 target): a page goes out as an
# 8-byte header (offset | flags) followed by its 4096 bytes.
TARGET_PAGE_SIZE = 4096
PAGE_HEADER_BYTES = 8


@dataclass(frozen=True, slots=True)
class Rules:
    """The source facts the simulation needs; `origin` says where they were read."""

    version: str
    origin: str
    buffer_delay_ms: int = 100
    max_wait_ms: int = 50
    default_downtime_limit_ms: int = 300
    default_max_bandwidth: int = 128 << 20
    threshold_formula: str = THRESHOLD_SWITCHOVER
    has_switchover_bandwidth: bool = True
    expected_downtime_divisor: str = DIVIDE_BY_EXPECTED
    completion_compare: str = COMPLETE_AT_OR_BELOW
    sync_when_below_threshold: bool = True
    rate_limit_per_window: bool = True
    final_stage_rate_limit: str = FINAL_UNLIMITED
    zero_page_bytes: int = PAGE_HEADER_BYTES + 1
    page_size: int = TARGET_PAGE_SIZE
    page_header_bytes: int = PAGE_HEADER_BYTES
    rate_limit_counts: str = COUNT_FLUSHED
    flush_iovecs: int = 64
    io_buf_size: int = 32768

    @staticmethod
    def newest() -> "Rules":
        """Return the rules of the newest QEMU we know (10.2), used when no tree is given."""
        return Rules(version="10.2", origin="built-in defaults of QEMU 10.2 (no --tree given)")

    @property
    def page_wire_bytes(self) -> int:
        """Return the bytes a normal (non-zero) page costs on the wire: header plus page."""
        return self.page_header_bytes + self.page_size

    def rate_limit_quantum(self, normal_share: float) -> float:
        """Return the wire bytes the rate limiter's count moves by at a time, for a stream of this mix.

        Counted at put time, that is one page; counted at flush time, one
        qemu_fflush(): MAX_IOV_SIZE iovecs, two per normal page (its header in
        the buffer, the page itself from guest RAM), or a full IO_BUF_SIZE
        buffer of zero-page headers, which coalesce into one iovec.
        `normal_share` is the share of wire bytes that normal pages carry.
        """
        if self.rate_limit_counts == COUNT_AT_PUT:
            return float(self.page_wire_bytes)
        normal = self.flush_iovecs // 2 * self.page_wire_bytes
        return normal_share * normal + (1 - normal_share) * self.io_buf_size

    def completes(self, pending: float, threshold: float) -> bool:
        """Return whether `migration_iteration_run` would complete with this pending size and threshold."""
        if self.completion_compare == COMPLETE_BELOW:
            # 7.2 goes on only while `pending_size && pending_size >= threshold_size`.
            return pending <= 0 or pending < threshold
        return pending <= threshold

    def threshold_bandwidth(self, measured: float, switchover_bandwidth: float) -> float:
        """Return the bandwidth (bytes/s) that `threshold_size` is computed from."""
        if self.threshold_formula == THRESHOLD_SWITCHOVER and switchover_bandwidth > 0:
            return switchover_bandwidth
        return measured

    def downtime_bandwidth(self, measured: float, switchover_bandwidth: float) -> float:
        """Return the bandwidth (bytes/s) that `expected_downtime` divides the last sync's dirty bytes by."""
        if self.expected_downtime_divisor == DIVIDE_BY_EXPECTED and switchover_bandwidth > 0:
            return switchover_bandwidth
        return measured
