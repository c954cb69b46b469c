"""Bench: the migration model against real QEMU migrations on loopback (TCG guest, Debian's QEMU).

Run `bench/model_vs_qemu/setup.sh` once, then
`.venv/bin/python bench/model_vs_qemu/run.py [--out DIR] [--cases NAME,...]`.
It measures the loopback speed of an unthrottled stop-and-copy first,
then migrates each case and prints model against measured: outcome, total
time, bitmap syncs (dirty-sync-count), downtime and QEMU's expected downtime.
Not a unit test: it takes a few minutes and needs QEMU and a guest kernel.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import guest  # noqa: E402
from migrate import Measured, migrate  # noqa: E402

from chaintrace.model.tree import read_rules  # noqa: E402
from chaintrace.model.migration import Result, Scenario, simulate  # noqa: E402
from chaintrace.model.rules import Rules  # noqa: E402
from chaintrace.model.units import format_duration, format_size  # noqa: E402

MiB = 2**20
QEMU_TREE = Path.home() / ".cache" / "chaintrace" / "qemu" / "7.2.0"


@dataclass(frozen=True, slots=True)
class Case:
    """One migration: the guest's working set and write rate, and QEMU's two parameters."""

    name: str
    wss: int
    dirty_rate: float
    max_bandwidth: int
    downtime_limit_ms: int
    time_limit: float = 90.0


CASES = (
    Case("calm", 64 * MiB, 4e6, 32 * MiB, 300),
    Case("busy", 128 * MiB, 16e6, 32 * MiB, 300),
    Case("hot", 128 * MiB, 26e6, 32 * MiB, 300),
    Case("too-hot", 128 * MiB, 48e6, 32 * MiB, 300, time_limit=45.0),
    Case("tight-limit", 64 * MiB, 8e6, 64 * MiB, 50),
    Case("wss-under-threshold", 16 * MiB, 8e6, 32 * MiB, 1000),
)


def _rules() -> Rules:
    """Return the rules of the QEMU that runs (7.2 on bookworm), read from its tree when fetched."""
    if QEMU_TREE.is_dir():
        return read_rules(QEMU_TREE)[0]
    print(f"note: {QEMU_TREE} not fetched; using the newest built-in rules", file=sys.stderr)
    return Rules.newest()


def _link_bandwidth(binary: str, kernel: Path, initrd: Path, work: Path) -> float:
    """Return the loopback speed of a stop-and-copy (bytes/s): what the final copy runs at, unthrottled.

    A downtime-limit of 10 s makes QEMU stop the guest at its first check and
    send all RAM with the VM stopped; downtime-bytes over downtime is the speed.
    The working set fills most of RAM so that the copy is of real pages, not
    of zero pages (which cost scanning time but almost no bytes).
    """
    measured = migrate(binary, kernel, initrd, work / "calibrate", wss=384 * MiB, dirty_rate=0,
                       max_bandwidth=64 * 2**30, downtime_limit_ms=10_000, time_limit=60)
    info = measured.info
    return info["ram"]["downtime-bytes"] / (info["downtime"] / 1000)


def _model(case: Case, measured: Measured, link: float, rules: Rules) -> Result:
    """Return the model's run of `case`, with RAM size and zero pages taken from what QEMU migrated."""
    ram = measured.info["ram"]
    total = ram["total"]
    zero_share = ram.get("duplicate", 0) * rules.page_size / total
    scenario = Scenario(
        ram=total, dirty_rate=case.dirty_rate, wss=case.wss, bandwidth=link,
        max_bandwidth=float(case.max_bandwidth), downtime_limit=case.downtime_limit_ms / 1000,
        time_limit=case.time_limit, zero_fraction=min(zero_share, 1 - case.wss / total),
    )
    return simulate(scenario, rules)


def _row(case: Case, model: Result, measured: Measured) -> dict[str, str]:
    info = measured.info
    ram = info["ram"]
    converged = measured.status == "completed"
    active = [poll for poll in measured.polls if poll.status == "active"]
    expected = active[-1].expected_downtime_ms / 1000 if active else float("nan")
    setup = info.get("setup-time", 0) / 1000
    return {
        "case": case.name,
        "outcome model/qemu": f"{'done' if model.converged else 'no'}/{'done' if converged else 'no'}",
        "time model/qemu": (f"{format_duration(model.total_time)}/{format_duration(info['total-time'] / 1000 - setup)}"
                            if converged or model.converged else "-/-"),
        "syncs model/qemu": f"{model.dirty_sync_count}/{ram['dirty-sync-count']}",
        "sent model/qemu": f"{format_size(model.total_bytes)}/{format_size(ram['transferred'])}",
        "final copy model/qemu": (f"{format_size(model.final_bytes)}/{format_size(ram['downtime-bytes'])}"
                                  if model.converged and converged and "downtime-bytes" in ram else "-/-"),
        "downtime model/qemu": (f"{format_duration(model.downtime)}/{format_duration(info['downtime'] / 1000)}"
                                if model.converged and converged else "-/-"),
        "expected_downtime model/qemu": f"{format_duration(model.expected_downtime)}/{format_duration(expected)}",
    }


def _table(rows: list[dict[str, str]]) -> str:
    columns = list(rows[0])
    widths = [max(len(column), *(len(row[column]) for row in rows)) for column in columns]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(row[column].ljust(width) for column, width in zip(columns, widths)) for row in rows]
    return "\n".join(lines)


def _plot(case: Case, model: Result, measured: Measured, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4), layout="constrained")
    axes.plot([s.time for s in model.samples], [s.pending / MiB for s in model.samples], label="model pending")
    axes.plot([p.time for p in measured.polls], [p.remaining / MiB for p in measured.polls], ".",
              markersize=3, label="QEMU ram.remaining")
    axes.step([s.time for s in model.samples], [s.threshold / MiB for s in model.samples], where="post",
              label="model threshold_size")
    axes.set_xlabel("time since migrate (s)")
    axes.set_ylabel("MiB")
    axes.set_title(f"{case.name}: wss {format_size(case.wss)}, dirty {case.dirty_rate / 1e6:g} MB/s, "
                   f"max-bandwidth {format_size(case.max_bandwidth)}/s, limit {case.downtime_limit_ms} ms")
    axes.legend()
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print the comparison table; return 0, or 1 when set-up is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=guest.CACHE / "results",
                        help="folder for results.json and one plot per case")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--link", type=float, help="loopback bandwidth in bytes/s (default: measured)")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.cases or c.name in args.cases.split(",")]
    try:
        binary, kernel = guest.qemu_binary(), guest.kernel()
    except guest.SetupError as error:
        print(f"model_vs_qemu: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    rules = _rules()
    with tempfile.TemporaryDirectory(prefix="model-vs-qemu-") as scratch:
        work = Path(scratch)
        initrd = guest.build_initramfs(work)
        link = args.link or _link_bandwidth(binary, kernel, initrd, work)
        print(f"rules: {rules.origin}\nloopback stop-and-copy bandwidth: {link / 1e6:.0f} MB/s", flush=True)
        rows, records = [], []
        for case in cases:
            measured = migrate(binary, kernel, initrd, work / case.name, wss=case.wss, dirty_rate=case.dirty_rate,
                               max_bandwidth=case.max_bandwidth, downtime_limit_ms=case.downtime_limit_ms,
                               time_limit=case.time_limit)
            model = _model(case, measured, link, rules)
            rows.append(_row(case, model, measured))
            print(_table(rows[-1:]), flush=True)
            _plot(case, model, measured, args.out / f"{case.name}.png")
            records.append({"case": asdict(case), "measured": {"status": measured.status, "info": measured.info,
                                                                "polls": [asdict(p) for p in measured.polls]},
                            "model": {"converged": model.converged, "total_time": model.total_time,
                                      "downtime": model.downtime, "dirty_sync_count": model.dirty_sync_count,
                                      "total_bytes": model.total_bytes, "final_bytes": model.final_bytes,
                                      "expected_downtime": model.expected_downtime,
                                      "zero_fraction": model.scenario.zero_fraction}})
    (args.out / "results.json").write_text(json.dumps({"link": link, "runs": records}, indent=1))
    print()
    print(_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
