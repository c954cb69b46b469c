"""The closed-form pre-copy model the simulation is checked against.

Akoush et al., "Predicting the Performance of Virtual Machine Migration",
MASCOTS 2010: with memory V_0, a constant dirty rate D and bandwidth R, round
i sends V_i = V_0 * (D/R)**i in T_i = V_i / R; pre-copy stops after the first
round n whose volume is at or below the threshold, which is then sent with
the VM stopped. It assumes uniform dirtying of ever new pages, no zero pages
and a fluid link: no rate-limit windows, no check granularity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClosedForm:
    """The closed form's prediction: volumes V_0..V_n, pre-copy time, downtime, totals."""

    converged: bool
    rounds: int
    volumes: tuple[float, ...]
    precopy_time: float
    downtime: float
    total_time: float
    total_bytes: float


def closed_form(memory: float, dirty_rate: float, bandwidth: float, threshold: float,
                max_rounds: int = 10_000) -> ClosedForm:
    """Return the closed-form prediction; `rounds` is n, the number of pre-copy rounds before the stop.

    Does not converge (converged false, times infinite) when D >= R and V_0
    is above the threshold, or when n would exceed `max_rounds`.
    """
    ratio = dirty_rate / bandwidth
    if memory <= threshold:
        rounds = 0
    elif ratio >= 1 or ratio == 0 and threshold <= 0:
        return ClosedForm(False, 0, (memory,), math.inf, math.inf, math.inf, math.inf)
    elif ratio == 0:
        rounds = 1
    else:
        # Smallest n with V_0 * ratio**n <= threshold.
        rounds = max(0, math.ceil(math.log(threshold / memory) / math.log(ratio) - 1e-12))
    if rounds > max_rounds:
        return ClosedForm(False, 0, (memory,), math.inf, math.inf, math.inf, math.inf)
    volumes = tuple(memory * ratio**i for i in range(rounds + 1))
    precopy = sum(volumes[:-1]) / bandwidth
    downtime = volumes[-1] / bandwidth
    return ClosedForm(True, rounds, volumes, precopy, downtime, precopy + downtime, sum(volumes))
