"""How the guest writes its working set between two bitmap syncs: which share of each chunk it dirties.

A page counts once however often it is written between syncs (the dirty
log has one bit per page); `Bitmap.mark` then keeps only the pages not
already dirty in the migration bitmap. Three patterns:

* `sweep`: page after page through the working set, wrapping at its end, one
  write per page (a memset, a copy, a log); in time t it dirties the arc of
  min(rate * t, wss) pages after where it stopped;
* `random`: each write lands on a page of the working set at random, so n
  writes dirty wss * (1 - exp(-n / wss)) distinct pages;
* `hot-cold`: random, with 80 % of the writes in the first 20 % of the
  working set and the rest over the other 80 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PATTERNS = ("sweep", "random", "hot-cold")
HOT_SHARE_OF_WSS = 0.2
HOT_SHARE_OF_WRITES = 0.8


def _arc(edges: np.ndarray, start: float, length: float) -> np.ndarray:
    """Return the pages of each chunk (bounded by `edges`) that [start, start + length) covers."""
    low, high = edges[:-1], edges[1:]
    return np.clip(np.minimum(high, start + length) - np.maximum(low, start), 0.0, None)


def distinct_share(writes: float, pages: float) -> float:
    """Return the share of `pages` pages that `writes` writes at random leave dirty: 1 - exp(-writes/pages)."""
    return -math.expm1(-writes / pages) if pages > 0 else 0.0


def writes_for_distinct(distinct: float, pages: float) -> float:
    """Return how many random writes dirty `distinct` of `pages` pages on average (the inverse of distinct_share)."""
    if distinct >= pages:
        return math.inf
    return -pages * math.log1p(-distinct / pages)


@dataclass(slots=True)
class Writer:
    """The guest: `rate` page writes per second over a working set of `pages` pages in `chunks` equal chunks.

    `position` is the page a sweep writes next (the others have none).
    """

    pattern: str
    rate: float
    pages: float
    chunks: int
    position: float = 0.0

    def written(self, seconds: float) -> np.ndarray:
        """Return, per working-set chunk, the share of its pages written in the next `seconds` (a sweep moves on)."""
        if self.chunks == 0 or self.pages <= 0:
            return np.zeros(self.chunks)
        writes = self.rate * seconds
        if self.pattern == "sweep":
            return self._sweep(writes)
        if self.pattern == "random":
            return np.full(self.chunks, distinct_share(writes, self.pages))
        hot = max(1, round(self.chunks * HOT_SHARE_OF_WSS)) if self.chunks > 1 else self.chunks
        chunk_pages = self.pages / self.chunks
        shares = np.full(self.chunks, distinct_share(writes * (1 - HOT_SHARE_OF_WRITES),
                                                      (self.chunks - hot) * chunk_pages))
        shares[:hot] = distinct_share(writes * HOT_SHARE_OF_WRITES if hot < self.chunks else writes,
                                      hot * chunk_pages)
        return shares

    def _sweep(self, writes: float) -> np.ndarray:
        start = self.position
        self.position = (start + writes) % self.pages
        if writes >= self.pages:
            return np.ones(self.chunks)
        edges = np.linspace(0.0, self.pages, self.chunks + 1)
        covered = _arc(edges, start, writes)
        if start + writes > self.pages:  # the arc wraps past the end of the working set
            covered += _arc(edges, 0.0, start + writes - self.pages)
        return np.minimum(covered / (self.pages / self.chunks), 1.0)
