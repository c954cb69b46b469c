"""A picture of a model run: pending bytes and threshold_size over time, rounds marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, work without a display

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from chaintrace.model.migration import Result  # noqa: E402
from chaintrace.model.units import format_bitrate, format_duration, format_rate, format_size  # noqa: E402


def plot_result(result: Result, path: Path, measured: list[tuple[float, float]] | None = None) -> Path:
    """Write the plot of `result` to `path` (format from its suffix: .svg, .png, .pdf) and return `path`.

    `measured` is QEMU's series of (seconds, remaining bytes), drawn as dots over the model's line.
    """
    times = [sample.time for sample in result.samples]
    pending = [sample.pending / 2**20 for sample in result.samples]
    threshold = [sample.threshold / 2**20 for sample in result.samples]

    figure, axes = plt.subplots(figsize=(9, 4.8), layout="constrained")
    axes.plot(times, pending, label="pending (dirty bytes)", color="tab:blue", linewidth=1.4)
    if measured:
        axes.plot([t for t, _ in measured], [r / 2**20 for _, r in measured], ".", markersize=3,
                  color="tab:green", label="QEMU ram.remaining")
    axes.step(times, threshold, where="post", label="threshold_size", color="tab:red", linewidth=1.2)
    for index, round_ in enumerate(result.rounds):
        axes.axvline(round_.time, color="0.8", linewidth=0.6, zorder=0,
                     label="bitmap sync" if index == 0 else None)
    if result.converged:
        axes.axvspan(result.stop_time, result.total_time, color="tab:orange", alpha=0.3,
                     label=f"downtime {format_duration(result.downtime)}")
    sc = result.scenario
    axes.set_title(
        f"QEMU {result.rules.version}: {format_size(sc.ram)} RAM, dirty {format_rate(sc.dirty_rate)} "
        f"in {format_size(sc.wss)}, link {format_bitrate(sc.bandwidth)}, "
        f"limit {format_duration(sc.downtime_limit)}",
        fontsize=10,
    )
    axes.set_xlabel("time (s)")
    axes.set_ylabel("MiB")
    axes.set_yscale("symlog", linthresh=1.0)
    axes.set_ylim(bottom=0)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    figure.savefig(path)
    plt.close(figure)
    return path
