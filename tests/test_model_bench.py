"""bench/model_vs_qemu without QEMU: the replay of a recorded sweep, the medians over repeats, the rig's priority."""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.ci import require_tool

from chaintrace.model.compare import Comparison, median_comparison, spread
from chaintrace.model.live import LiveInputs, Poll, scenario_from_live
from chaintrace.model.migration import Scenario, simulate
from chaintrace.model.rules import Rules

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "model_vs_qemu" / "run.py"
# Seven real runs of a sweep (calm and random three times each, too-hot-random once), trace logs left out.
RECORDED = Path(__file__).resolve().parent / "data" / "model_vs_qemu" / "results.json"
MiB = 2**20


def bench(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUN), *argv], capture_output=True, text=True, timeout=120, cwd=ROOT)


def table_line(output: str, case: str) -> list[str]:
    """Return the cells of `case`'s line in the printed table (columns are two or more spaces apart)."""
    line = next(line for line in output.splitlines() if line.split("  ")[0] == case)
    return [cell.strip() for cell in line.split("  ") if cell.strip()]


def test_replay_recomputes_the_model_from_the_recorded_inputs_and_takes_qemus_medians() -> None:
    data = json.loads(RECORDED.read_text())
    done = bench("--replay", str(RECORDED))
    assert done.returncode == 0, done.stderr
    assert "replay of" in done.stdout and "(7 runs)" in done.stdout
    assert "rules: as recorded, QEMU 7.2.0" in done.stdout

    # QEMU's side: the median of the three runs' total times, read here from the polls themselves.
    calm = [run for run in data["runs"] if run["case"]["name"] == "calm"]
    times = [run["polls"][-1]["time"] for run in calm]
    cells = table_line(done.stdout, "calm")
    assert cells[2].split()[0].split("/")[1] == f"{statistics.median(times):.2f}s"
    # The model's side comes from the recorded live inputs, not from the recorded scenario.
    rules = Rules(**data["rules"])
    loop = data["loopback"]
    predicted = []
    for run in calm:
        live = LiveInputs(**{**run["live"], "capabilities": tuple(run["live"]["capabilities"])})
        stated = Scenario(ram=0, dirty_rate=0.0, wss=run["case"]["wss_mib"] * MiB, bandwidth=loop["precopy"],
                          stopped_bandwidth=loop["stopped"], stop_cost=loop["stop_cost"],
                          throttled_bandwidth=32 * MiB * 0.1 / (0.1 + loop["lateness"]), time_limit=40.0)
        predicted.append(simulate(scenario_from_live(live, stated), rules).total_time)
    assert cells[2].split()[0].split("/")[0] == f"{statistics.median(predicted):.2f}s"
    # QEMU's spread over the three runs, and the acceptance lines.
    half_range = (max(times) - min(times)) / 2 / statistics.median(times)
    assert cells[-2 if len(cells) > 9 else -1].startswith(f"±{half_range:.0%}")
    assert "runs 3; outcome right 3/3; converged on both sides 2" in done.stdout
    assert "no/no" in " ".join(table_line(done.stdout, "too-hot-random"))


def test_replay_ignores_the_recorded_predictions(tmp_path: Path) -> None:
    data = json.loads(RECORDED.read_text())
    for run in data["runs"]:
        run["scenario"]["dirty_rate"] = 1e12  # a prediction made from these would never converge
        run["comparison"]["model_converged"] = False
    altered = tmp_path / "results.json"
    altered.write_text(json.dumps(data))
    assert bench("--replay", str(altered)).stdout == bench("--replay", str(RECORDED)).stdout.replace(
        str(RECORDED), str(altered))


def test_replay_picks_cases() -> None:
    done = bench("--replay", str(RECORDED), "--cases", "random")
    assert done.returncode == 0 and "(3 runs)" in done.stdout
    assert "calm" not in done.stdout


@pytest.mark.parametrize(("content", "says"), [
    (None, "cannot read it"),
    ("{not json", "not JSON"),
    ('{"runs": []}', "needs 'loopback' and 'runs'"),
    ('{"loopback": {"precopy": 1e8, "stopped": 1e9, "lateness": 0, "stop_cost": 0}, "rules": {"version": "7.2", "origin": "test"}, '
     '"runs": [{"case": {}}]}', "run 0: not a recorded run"),
])
def test_a_file_the_replay_cannot_read_is_one_line_and_exit_2(tmp_path: Path, content: str | None,
                                                               says: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    done = bench("--replay", str(path))
    assert done.returncode == 2
    assert says in done.stderr and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def _comparison(converged: bool, time: float | None, syncs: int, downtime: float | None = 0.01) -> Comparison:
    return Comparison(model_converged=converged, qemu_converged=converged, model_time=time, qemu_time=time,
                      model_syncs=syncs, qemu_syncs=syncs, model_downtime=downtime if converged else None,
                      qemu_downtime=downtime if converged else None, model_bytes=1.0, qemu_bytes=1.0,
                      threshold_error=0.01)


def test_the_median_of_repeats_ignores_one_slow_run_and_a_minority_outcome() -> None:
    runs = [_comparison(True, 1.0, 5), _comparison(True, 9.0, 9), _comparison(True, 1.2, 6),
            _comparison(False, None, 30)]
    median = median_comparison(runs)
    assert median.qemu_converged and median.model_converged
    assert median.qemu_time == 1.2 and median.qemu_syncs == 6  # the not-converged run is left out
    assert spread([1.0, 9.0, 1.2]) == pytest.approx((9.0 - 1.0) / 2 / 1.2)
    assert spread([1.0]) is None
    assert not median_comparison(runs[3:] * 2 + runs[:1]).qemu_converged
    with pytest.raises(ValueError):
        median_comparison([])


def _bench_module(name: str):
    """Return the bench's module `name` (`rig`, `run`), imported from its folder."""
    sys.path.insert(0, str(RUN.parent))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(RUN.parent))


def test_the_stopped_copy_is_the_median_speed_of_the_stops() -> None:
    fit = _bench_module("run")._stopped_copy
    # Six stops near 1.2 GB/s, one of them stalled by the host: the stall moves nothing.
    stops = [(12.6e6, 0.0105), (12.6e6, 0.031), (12.6e6, 0.0100), (42e6, 0.035), (42e6, 0.036), (42e6, 0.034)]
    assert fit(stops) == pytest.approx(statistics.median([b / t for b, t in stops]))
    assert 1.19e9 < fit(stops) < 1.27e9
    # Through zero: a small copy costs in proportion, not nothing (the old line through two medians read
    # these as 4 MB of socket buffers, and a 2.8 MB final copy as no downtime at all).
    buffered_line = [(12.6e6, 0.0080), (12.6e6, 0.0081), (12.6e6, 0.0079), (42e6, 0.035), (42e6, 0.035), (42e6, 0.035)]
    assert 2.8e6 / fit(buffered_line) > 1.5e-3
    # Every stop under QEMU's millisecond resolution: a byte a nanosecond at least, not a division by zero.
    assert fit([(12.6e6, 0.0), (42e6, 0.0)]) == pytest.approx(42e9)


def test_a_throttled_window_is_as_late_as_most_windows_are() -> None:
    lateness = _bench_module("run")._lateness
    # QEMU's millisecond clock: most windows measure 100 ms exactly, a busy host makes a few 5-11 ms longer.
    windows = [0.100] * 7 + [0.105, 0.111, 0.100]
    assert lateness(windows) == 0.0
    assert lateness([0.102, 0.103, 0.101]) == pytest.approx(0.002)
    assert lateness([0.0999]) == 0.0 and lateness([]) == 0.0


def test_zero_pages_are_read_as_fast_as_the_empty_guests_first_pass_went() -> None:
    zero_scan = _bench_module("run")._zero_scan
    # 32,000 zero pages and 512 KiB of normal ones in 20, 40 and 21 ms at a 512 MB/s precopy:
    # 1 ms of each pass is the normal pages; the rest is the zero pages' reading.
    scans = [(32000, 512e3, 0.020), (32000, 512e3, 0.040), (32000, 512e3, 0.021)]
    assert zero_scan(scans, 512e6) == pytest.approx(32000 * 4096 / 0.020)
    # A pass QEMU timed at 0 ms (its clock counts milliseconds): at least one of them, not a division by zero.
    assert zero_scan([(32000, 0, 0.0)], 512e6) == pytest.approx(32000 * 4096 / 1e-3)


def test_replay_reads_zero_pages_at_a_given_speed() -> None:
    plain = bench("--replay", str(RECORDED), "--cases", "calm")
    read = bench("--replay", str(RECORDED), "--cases", "calm", "--zero-scan", "4GB/s")
    assert read.returncode == 0, read.stderr
    assert "zero pages read at 4.00 GB/s, as given" in read.stdout
    # calm's guest has ~110 MB of zero pages (128 MiB less its non-zero ones): about 27 ms more at 4 GB/s.
    later = [float(table_line(done.stdout, "calm")[2].split("/")[0].rstrip("s")) for done in (plain, read)]
    assert 0.01 <= later[1] - later[0] <= 0.05, later  # the table shows hundredths of a second
    refused = bench("--replay", str(RECORDED), "--zero-scan", "0GB/s")
    assert refused.returncode == 2 and "--zero-scan must be more than 0" in refused.stderr


def test_replay_takes_a_given_loopback_instead_of_the_recorded_one() -> None:
    data = json.loads(RECORDED.read_text())
    loop = data["loopback"]
    slow_stop = bench("--replay", str(RECORDED), "--cases", "calm", "--loopback", f"{loop['precopy']}B/s", "100MB/s",
                      f"{loop['lateness'] * 1000}ms", "0ms")
    assert slow_stop.returncode == 0, slow_stop.stderr
    assert "loopback: as given" in slow_stop.stdout
    # calm's final copies are ~2.8 MB: at 100 MB/s the model's downtime is ~28 ms, whatever was recorded.
    model_downtime = table_line(slow_stop.stdout, "calm")[4].split("/")[0]
    assert model_downtime.endswith("ms") and 20 < float(model_downtime.split()[0]) < 40, model_downtime


def test_the_rig_starts_qemu_at_the_priority_it_is_given() -> None:
    rig = _bench_module("rig")
    assert rig.priority_prefix("none") == []
    assert rig.priority_prefix("rr")[:2] == ["chrt", "--rr"]
    if os.geteuid() != 0:
        pytest.skip("raising a priority needs root (the bench runs as root)")
    # nice(1) is relative to the caller: the prefix lands on rig.NICE whatever the caller's own niceness.
    command = [*rig.priority_prefix("nice"), sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"]
    assert subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip() == str(rig.NICE)


def test_a_real_pair_runs_raised_in_its_own_autogroup_with_the_vcpu_lowered(tmp_path: Path) -> None:
    require_tool(("qemu-system-x86_64",), "qemu-system-x86", "the bench's rig must be tested on a real QEMU")
    require_tool(("gcc",), "gcc", "the bench's guest is built with gcc")
    if os.geteuid() != 0:
        pytest.skip("raising a priority needs root (the bench runs as root)")
    rig = _bench_module("rig")
    image = rig.build_guest(tmp_path)
    pair = rig.start_pair(rig.qemu_binary(), image, rig.Guest(16, MiB, 1e6), tmp_path / "pair", priority="nice")
    try:
        for process in pair.processes:
            niceness = {}
            for task in Path(f"/proc/{process.pid}/task").iterdir():
                niceness[(task / "comm").read_text().strip()] = os.getpriority(os.PRIO_PROCESS, int(task.name))
            autogroup = Path(f"/proc/{process.pid}/autogroup")
            if autogroup.exists():
                assert autogroup.read_text().split()[-1] == str(rig.NICE)
            vcpus = {name: value for name, value in niceness.items() if name.endswith("/TCG")}
            assert vcpus, niceness
            others = {name: value for name, value in niceness.items() if name not in vcpus}
            assert set(others.values()) == {rig.NICE}, others
            # The source's vCPU spins and is put below the migration's threads; the destination's waits.
            expected = rig.VCPU_NICE if process is pair.processes[1] else rig.NICE
            assert set(vcpus.values()) == {expected}, vcpus
    finally:
        pair.close()
