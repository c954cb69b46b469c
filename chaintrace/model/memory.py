"""Guest RAM as the migration bitmap sees it: dirty pages per chunk of address space, scanned in address order.

QEMU's bitmap has one bit per page; the model keeps, per chunk of RAM (a
few thousand chunks at most), how many of its pages are dirty. That keeps
what decides a run and what the old page-share model lost:

* **where** pages are: the scan takes dirty pages in address order from where
  it stopped (`find_next_bit`, anchor `scan-order`), so zero pages, which lie
  together, go together, and the last rounds carry normal pages;
* **which** pages are dirty: a sync adds only the written pages not already
  dirty (`new_dirty = ~dest & bits`, anchor `new-dirty-pages`), so a guest
  that sweeps its working set behind the scan and one that writes at random
  add different amounts.

RAM is laid out as the non-zero pages outside the working set (low memory:
kernel, page cache), then the working set, then pages never written (zero).
Counts are floats: a chunk partly written has a fraction of its pages dirty.
Each chunk also says how long one of its pages takes to go (`seconds`): a
normal page its wire bytes at the precopy speed, a zero page its few wire
bytes plus the time to read it whole and find it zero (`buffer_is_zero`,
anchor `zero-page-check`), so a pass through the zero pages takes time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Enough chunks that a sweep's edge or the scan's position is a small error
# (1/4096 of RAM), few enough that a numpy pass over them costs microseconds.
MAX_CHUNKS = 4096


def _region(pages: float, share: int) -> np.ndarray:
    """Return the page counts of `share` equal chunks covering `pages` pages (none when empty)."""
    if pages <= 0:
        return np.zeros(0)
    return np.full(share, pages / share)


@dataclass(slots=True)
class Bitmap:
    """Dirty pages per chunk, each chunk's wire cost per page, the working set's chunks and the scan cursor.

    `size` and `dirty` count pages; `wire` is the wire bytes one page of the
    chunk costs (a zero page: a header and a byte; any other: header and page).
    The working set is `size[wss_start:wss_end]`.
    """

    size: np.ndarray
    dirty: np.ndarray
    wire: np.ndarray
    seconds: np.ndarray
    wss_start: int
    wss_end: int
    cursor: int = 0
    pending: float = 0.0

    @classmethod
    def layout(cls, pages: float, wss_pages: float, nonzero_pages: float, page_wire: float,
               zero_wire: float, chunks: int = MAX_CHUNKS, page_seconds: float = 0.0,
               zero_seconds: float = 0.0) -> Bitmap:
        """Return the bitmap right after the setup sync: every page dirty, laid out nonzero, wss, zero.

        `page_seconds` and `zero_seconds` are the time one normal and one zero
        page take to go (0: no time, only wire bytes count).
        """
        zero_pages = max(0.0, pages - wss_pages - nonzero_pages)
        budget = max(1, min(chunks, int(pages)))
        counts = [max(1, round(budget * part / pages)) if part > 0 else 0
                  for part in (nonzero_pages, wss_pages, zero_pages)]
        regions = [_region(part, count) for part, count in zip((nonzero_pages, wss_pages, zero_pages), counts)]
        size = np.concatenate(regions)
        normal, zero = len(regions[0]) + len(regions[1]), len(regions[2])
        wire = np.concatenate([np.full(normal, float(page_wire)), np.full(zero, float(zero_wire))])
        seconds = np.concatenate([np.full(normal, float(page_seconds)), np.full(zero, float(zero_seconds))])
        return cls(size=size, dirty=size.copy(), wire=wire, seconds=seconds, wss_start=len(regions[0]),
                   wss_end=normal, pending=float(size.sum()))

    @property
    def zero_start(self) -> int:
        """Return the first chunk of the zero pages (the end of the working set)."""
        return self.wss_end

    def pending_pages(self) -> float:
        """Return the dirty pages in the bitmap (QEMU's migration_dirty_pages)."""
        return self.pending

    def pending_wire(self) -> float:
        """Return the wire bytes sending every dirty page would cost."""
        return float(self.dirty @ self.wire)

    def normal_share(self) -> float:
        """Return the share of the pending wire bytes that normal (non-zero) pages carry."""
        if self.zero_start >= len(self.size):
            return 1.0
        normal = float(self.dirty[:self.zero_start] @ self.wire[:self.zero_start])
        total = normal + float(self.dirty[self.zero_start:] @ self.wire[self.zero_start:])
        return normal / total if total > 0 else 1.0

    def _take(self, low: int, high: int, wire_limit: float,
              seconds_limit: float) -> tuple[float, float, float, int | None]:
        """Send chunks low..high-1 in order up to `wire_limit` wire bytes and `seconds_limit` seconds.

        Return (pages, wire bytes, seconds, chunk it stopped in or None when it sent them all).
        """
        dirty = self.dirty[low:high]
        wire, seconds = np.cumsum(dirty * self.wire[low:high]), np.cumsum(dirty * self.seconds[low:high])
        if len(wire) == 0 or (wire_limit >= wire[-1] and seconds_limit >= seconds[-1]):
            pages = float(dirty.sum())
            if pages > 0:
                self.cursor = (low + int(np.flatnonzero(dirty)[-1]) + 1) % len(self.size)
            self.dirty[low:high] = 0.0
            return pages, float(wire[-1]) if len(wire) else 0.0, float(seconds[-1]) if len(wire) else 0.0, None
        # The first chunk where either limit is reached; a page of it goes in part, as a share of the count.
        full = min(int(np.searchsorted(wire, wire_limit, side="right")),
                   int(np.searchsorted(seconds, seconds_limit, side="right")))
        wire_before = float(wire[full - 1]) if full else 0.0
        seconds_before = float(seconds[full - 1]) if full else 0.0
        per_page = self.seconds[low + full]
        by_wire = (wire_limit - wire_before) / self.wire[low + full]
        by_time = (seconds_limit - seconds_before) / per_page if per_page > 0 else math.inf
        partial = min(by_wire, by_time, float(self.dirty[low + full]))
        pages = float(dirty[:full].sum()) + partial
        self.dirty[low:low + full] = 0.0
        self.dirty[low + full] -= partial
        # Land exactly on the limit that stopped the pass (the caller compares with it).
        sent_wire = wire_limit if by_wire <= by_time else wire_before + partial * self.wire[low + full]
        sent_seconds = seconds_limit if by_time < by_wire else seconds_before + partial * per_page
        return pages, sent_wire, sent_seconds, low + full

    def send(self, wire_limit: float, seconds_limit: float = math.inf) -> tuple[float, float, float]:
        """Send dirty pages in address order from the cursor until `wire_limit` wire bytes or `seconds_limit`
        seconds; return (pages, wire bytes, seconds).

        The scan wraps at the end of RAM, as ram_find_and_save_block() does;
        within one call it passes each chunk at most once, which is enough
        because pages only become dirty at a sync.
        """
        if wire_limit <= 0 or seconds_limit <= 0 or self.pending <= 0:
            return 0.0, 0.0, 0.0
        start = self.cursor
        pages, wire, seconds, stop = self._take(start, len(self.size), wire_limit, seconds_limit)
        if stop is None and start:
            more_pages, more_wire, more_seconds, stop = self._take(0, start, wire_limit - wire,
                                                                   seconds_limit - seconds)
            pages, wire, seconds = pages + more_pages, wire + more_wire, seconds + more_seconds
        if stop is None:
            # Everything went out: the scan stands just past the last page it sent (_take moved it).
            self.pending = 0.0
            return pages, wire, seconds
        self.cursor = stop
        self.pending = max(0.0, self.pending - pages)
        return pages, wire, seconds

    def mark(self, written: np.ndarray) -> float:
        """Add the guest's writes since the last sync and return the pages newly dirty.

        `written[i]` is the share of working-set chunk i's pages written; only
        pages not already dirty count, as new_dirty = ~dest & bits does
        (pages written and not yet dirty are placed at random within a chunk).
        """
        chunk = slice(self.wss_start, self.wss_end)
        new = written * (self.size[chunk] - self.dirty[chunk])
        self.dirty[chunk] += new
        added = float(new.sum())
        self.pending += added
        return added

    def final_wire(self) -> float:
        """Return the wire bytes of everything dirty: what the stopped copy sends."""
        return self.pending_wire()
