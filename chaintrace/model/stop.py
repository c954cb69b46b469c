"""The stopped copy: how long a converged migration's downtime lasts, and how fast its final bytes go.

On completion, as migration_completion() does, the VM is stopped, the
bitmap synced a last time and the rest sent at the stopped copy's speed
(the rate limit lifted, or kept where the source keeps it), less what the
socket buffers take at once: that transfer and the stop's cost are the
downtime. A migration whose rate limit never binds was as fast as its
receiver took it: at the stop the receiver is behind with the socket
buffers full, so they take nothing at once and the final copy goes no
faster than precopy did.
"""

from __future__ import annotations

from chaintrace.model.rules import FINAL_UNLIMITED, Rules
from chaintrace.model.scenario import Scenario


def stopped_copy(final_bytes: float, sc: Scenario, rules: Rules, unthrottled: bool) -> tuple[float, float]:
    """Return (downtime in s, speed in bytes/s) of sending `final_bytes` with the VM stopped, for a resolved `sc`.

    `unthrottled` says the rate limit never bound during precopy.
    """
    rate = sc.stopped_bandwidth if rules.final_stage_rate_limit == FINAL_UNLIMITED else min(
        sc.stopped_bandwidth, sc.max_bandwidth)
    buffer = sc.stopped_buffer
    if unthrottled:
        rate, buffer = min(rate, sc.bandwidth), 0.0
    # What fits in the socket buffers is written at memory speed; the rest waits for the receiver.
    return sc.stop_cost + max(0.0, final_bytes - buffer) / rate, rate
