"""Trace benchmark: the headline trace on the whole QEMU 10.2 tree with the index warm, end to end.

    .venv/bin/python bench/trace_bench.py [--tree DIR] [--cache DIR] [--runs N]

Runs `chaintrace trace TREE --from qmp:migrate --to assign:threshold_size`
(and a few other queries) as a user would, each `--runs` times after one
warm-up run (which indexes the tree and resolves its graph when the cache is
cold), and prints the median, minimum and maximum wall time and the peak RSS
of each. Then it times the phases of the headline inside one process
(imports aside): the freshness check of the index, loading the graph's
integer form, the trace itself, rendering. The goals: the headline in at
most 0.5 s (issue #12) and 0.3 s (issue #18), peak RSS at most 1 GB. The
machine is shared: quote medians, and with `--instructions` the headline's
instruction count under valgrind (callgrind), which the load does not move:
the figure to compare two versions by on a busy machine.

Bytecode: a Python install caches each module's compiled bytecode
(`__pycache__`) on first use, so a user's second run compiles nothing. This
sandbox sets PYTHONDONTWRITEBYTECODE=1, under which every run would compile
chaintrace module again; the bench compiles the package once
(`compileall`, what any first run or a wheel install does) and times the
steady state, then times the headline once more with the package's
bytecode set aside, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QEMU_CACHE = Path(os.environ.get("CHAINTRACE_QEMU_CACHE", Path.home() / ".cache" / "chaintrace" / "qemu"))
CHAINTRACE = [sys.executable, "-m", "chaintrace"]
QUERIES = [
    ("headline", ["--from", "qmp:migrate", "--to", "assign:threshold_size"]),
    ("headline --json", ["--from", "qmp:migrate", "--to", "assign:threshold_size", "--json"]),
    ("hmp:migrate", ["--from", "hmp:migrate", "--to", "assign:threshold_size"]),
    ("call target", ["--from", "qmp_migrate", "--to", "call:migration_rate_limit"]),
    ("direct+thread only", ["--from", "qmp:migrate", "--to", "assign:threshold_size", "--edges", "direct,thread"]),
]


def newest_tree() -> Path:
    """Return the fetched QEMU 10.2.x tree (see scripts/fetch-qemu), or exit with a message."""
    trees = sorted(QEMU_CACHE.glob("10.2.*"))
    if not trees:
        sys.exit(f"trace_bench: no QEMU 10.2 tree under {QEMU_CACHE}: run `scripts/fetch-qemu sid` first")
    return trees[-1]


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Run `command` with its output discarded; return (seconds, peak RSS in MB, exit code)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.stderr.close()
    return seconds, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def phases(tree: Path, cache: Path) -> dict[str, float]:
    """Return the seconds of each phase of the headline in this process (its imports excluded)."""
    from chaintrace import api
    from chaintrace.render.document import trace_document
    from chaintrace.render.text import render_trace

    times: dict[str, float] = {}
    with api.open_store(cache) as store:
        started = time.perf_counter()
        tg = api.tree_graph(store, tree)
        times["index freshness"] = time.perf_counter() - started
        started = time.perf_counter()
        tg.tables.adjacency()
        times["load graph"] = time.perf_counter() - started
        started = time.perf_counter()
        result, shown = api.trace_with_graph(tg, "qmp:migrate", "assign:threshold_size")
        times["trace"] = time.perf_counter() - started
    started = time.perf_counter()
    render_trace(shown, result)
    trace_document(shown, result)
    times["render"] = time.perf_counter() - started
    return times


def headline_instructions(tree: Path, cache: Path) -> int | None:
    """Return the instructions the headline trace runs, counted by valgrind's callgrind; None without valgrind."""
    if shutil.which("valgrind") is None:
        print("headline instructions: valgrind is not installed (apt-get install valgrind)")
        return None
    with tempfile.TemporaryDirectory() as folder:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
                   *CHAINTRACE, "trace", str(tree), "--cache", str(cache), *QUERIES[0][1]]
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    return int(found.group(1)) if done.returncode == 0 and found else None


def main() -> int:
    """Print the figures; return 0 (1 when a trace fails)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, help="QEMU tree (default: the fetched 10.2.x)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "chaintrace" / "bench" / "trace",
                        help="cache folder (default ~/.cache/chaintrace/bench/trace)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query (default 7)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the headline's instructions under valgrind (needs valgrind; ~1 min)")
    args = parser.parse_args()
    tree = args.tree or newest_tree()
    version = (tree / "VERSION").read_text(encoding="utf-8").strip()
    print(f"QEMU {version} at {tree}, cache {args.cache}, {args.runs} runs, {os.cpu_count()} cores")
    package = Path(__file__).resolve().parent.parent / "chaintrace"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package), str(package.parent / "queries")], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    failed = False
    rows = []
    for label, options in QUERIES:
        command = [*CHAINTRACE, "trace", str(tree), "--cache", str(args.cache), *options]
        seconds, _, code = run(command)  # warm-up: indexes and resolves when the cache is cold
        if label == "headline":
            print(f"warm-up (index + graph when cold): {seconds:.2f} s")
        runs = [run(command) for _ in range(args.runs)]
        codes = {code for _, _, code in runs} | {code}
        failed = failed or codes - {0}
        times = [s for s, _, _ in runs]
        rows.append((label, statistics.median(times), min(times), max(times), max(r for _, r, _ in runs), codes))
    print(f"{'query':<22}{'median s':>10}{'min s':>8}{'max s':>8}{'peak RSS MB':>13}  exit")
    for label, median, low, high, rss, codes in rows:
        print(f"{label:<22}{median:>10.3f}{low:>8.3f}{high:>8.3f}{rss:>13}  {','.join(map(str, sorted(codes)))}")
    headline = rows[0][1]
    print(f"headline median {headline:.3f} s against the goals 0.5 s (#12): {'met' if headline <= 0.5 else 'NOT met'}, "
          f"0.3 s (#18): {'met' if headline <= 0.3 else 'NOT met'}")
    instructions = headline_instructions(tree, args.cache) if args.instructions else None
    if instructions is not None:
        print(f"headline instructions (valgrind --tool=callgrind, load-independent): {instructions:,}")
    # chaintrace's own bytecode set aside (the standard library keeps its own): every run compiles the package
    caches = sorted(package.rglob("__pycache__"))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [*CHAINTRACE, "trace", str(tree), "--cache", str(args.cache), *QUERIES[0][1]]
    try:
        for cache in caches:
            cache.rename(cache.with_name("__pycache__.aside"))
        cold_code = statistics.median(run(command, env)[0] for _ in range(args.runs))
    finally:
        for cache in caches:
            cache.with_name("__pycache__.aside").rename(cache)
    print(f"headline median with chaintrace's bytecode not cached (PYTHONDONTWRITEBYTECODE=1 from the start): "
          f"{cold_code:.3f} s")
    samples = [phases(tree, args.cache) for _ in range(args.runs)]
    print("phases of the headline in one process (medians, imports excluded): " + ", ".join(
        f"{name} {statistics.median(s[name] for s in samples):.3f} s" for name in samples[0]))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import chaintrace.cli.app"], check=True)
    print(f"python start + `import chaintrace.cli.app`: {time.perf_counter() - started:.3f} s")
    print(json.dumps({"headline_median_s": round(headline, 3), "headline_no_bytecode_s": round(cold_code, 3),
                      "peak_rss_mb": rows[0][4], "headline_instructions": instructions}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
