"""The indexer's progress line on a terminal: files done, files per second, time left."""

from __future__ import annotations

import sys
import time


class Progress:
    """A progress line on a terminal (files/s, ETA); silent when not `enabled`."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0

    def update(self, phase: str, done: int, total: int, started: float) -> None:
        """Redraw the line at most ten times a second (`started`: the phase's `time.monotonic()`)."""
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        rate = done / max(now - started, 1e-6)
        eta = (total - done) / rate if rate else 0
        sys.stderr.write(f"\r{phase}: {done}/{total} files, {rate:.0f} files/s, ETA {eta:.0f}s   ")
        sys.stderr.flush()

    def done(self) -> None:
        """End the progress line."""
        if self.enabled:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()
