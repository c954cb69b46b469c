"""Where the time goes from a fresh tree (or an edit) to the first answer, beside the parse floor and peers.

    .venv/bin/python bench/phases.py [--tree DIR] [--other DIR] [--runs 3] [-j 2] [--only cold --only edit ...]
    .venv/bin/python bench/phases.py --resolve [--profile]        # the graph's phases in one process
    .venv/bin/python bench/phases.py --extraction [--step N] [--profile]   # extraction's phases, CPU

Figures, medians of `--runs` (wall seconds; the machine is shared, so each
figure is also given as a ratio to the floor measured in the same run):

- floor: a bare single-process tree-sitter `Parser.parse` of the files
  chaintrace indexes (wall and CPU): what no indexer built on tree-sitter
  goes below on one core;
- peers: `gtags` and `cscope -b` on the same files (installed with apt-get
  when missing);
- cold: a fresh cache, `chaintrace index -j N` (its index phase and its
  graph phase, as it reports them), then the headline trace, and the peak
  RSS of any single process (`wait4`'s `ru_maxrss`: the largest of the
  command and its workers); then one cold run with `-j 1`, for the map's
  scaling;
- edit: in a hard-linked copy of the tree indexed into the cold cache, a
  comment appended to a `.c` file, a comment line inserted at the top of a
  header included by about 500 files (`qemu/log.h`: lines move), a
  prototype added to that header and a macro added to it (facts change,
  but nothing the resolver reads: `graph/delta`, the graph is patched),
  each followed by the headline trace; then the warm headline;
- other: the second version (`--other`, QEMU 10.0) indexed and traced in
  the cache that holds the first, against its own cold run.

`--resolve` times the graph's phases in this process on an indexed cache
(load the facts, build, save) with peak RSS; `--profile` adds cProfile's
top functions of the build.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_bench import ensure_tools, newest_tree, peers, source_files  # noqa: E402  (bench/ is not a package)

CHAINTRACE = [sys.executable, "-m", "chaintrace"]
HEADLINE = ["--from", "qmp:migrate", "--to", "assign:threshold_size"]
EDITED_C = "migration/ram.c"
EDITED_H = "include/qemu/log.h"  # included by ~590 files of QEMU 10.2
PHASES = ("floor", "peers", "cold", "edit", "other")


def run_peak(command: list[str]) -> tuple[float, float, str]:
    """Run a command in a fresh helper process so that its peak RSS is its own (RUSAGE_CHILDREN only grows)."""
    helper = [sys.executable, __file__, "--measure", "--", *command]
    done = subprocess.run(helper, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"phases: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["seconds"], report["peak_mb"], done.stdout


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def floor(tree: Path, files: list[str], runs: int) -> tuple[float, float]:
    """Return the median (wall, CPU) seconds of parsing `files` with tree-sitter alone, in this one process."""
    import tree_sitter_c
    from tree_sitter import Language, Parser

    parser = Parser(Language(tree_sitter_c.language()))
    sources = [(tree / path).read_bytes() for path in files]
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.monotonic(), time.process_time()
        for source in sources:
            parser.parse(source)
        walls.append(time.monotonic() - wall)
        cpus.append(time.process_time() - cpu)
    return median(walls), median(cpus)


def cold(tree: Path, cache: Path, jobs: int) -> dict:
    """Index `tree` into the empty `cache` and trace the headline; return the figures of the run."""
    wall, peak, out = run_peak([*CHAINTRACE, "index", "--json", "-j", str(jobs), "--cache", str(cache), str(tree)])
    summary = json.loads(out)
    trace, trace_peak, _ = run_peak([*CHAINTRACE, "trace", str(tree), *HEADLINE, "--cache", str(cache), "--json"])
    return {"index": summary["seconds"], "graph": summary.get("graph_seconds", 0.0), "index_command": wall,
            "first_trace": trace, "total": wall + trace, "peak_mb": max(peak, trace_peak),
            "extracted": summary["extracted"]}


def rewrite(path: Path, change) -> None:
    """Rewrite a file of a hard-linked copy as a new file (the original tree stays untouched)."""
    text = change(path.read_text(encoding="utf-8", errors="surrogateescape"))
    path.unlink()
    path.write_text(text, encoding="utf-8", errors="surrogateescape")


def _prototype(text: str, number: int) -> str:
    marker = text.rindex("#endif")
    return text[:marker] + f"void chaintrace_bench_edit_{number}(void);\n" + text[marker:]


def _macro(text: str, number: int) -> str:
    marker = text.rindex("#endif")
    return text[:marker] + f"#define CHAINTRACE_BENCH_EDIT_{number}(x) chaintrace_bench_edit_{number}(x)\n" + text[marker:]


EDITS = [
    ("comment appended to " + EDITED_C, EDITED_C, lambda text, n: text + f"/* bench edit {n} */\n"),
    ("comment line atop " + EDITED_H, EDITED_H, lambda text, n: f"/* bench edit {n} */\n" + text),
    ("prototype added to " + EDITED_H, EDITED_H, _prototype),
    ("macro added to " + EDITED_H, EDITED_H, _macro),
]


def extraction_phases(tree: Path, step: int, profile: bool) -> int:
    """Print CPU seconds per phase of extraction over a tree's files, in this one process; return 0."""
    from chaintrace.extract.extractor import extract
    from chaintrace.source import normalize, parse
    from chaintrace.source.scan import read_options, scan
    from chaintrace.store.codec import encode_facts

    files, _ = scan(tree, read_options(tree))
    paths = [f.path for f in files][::step]
    times: dict[str, float] = {}
    gc.disable()  # as in the indexer's workers (chaintrace.store.indexer): extraction makes no cycles

    def timed(name: str, function, *items):
        started = time.process_time()
        result = function(*items)
        times[name] = times.get(name, 0.0) + time.process_time() - started
        return result

    data = timed("read", lambda: [(p, (tree / p).read_bytes()) for p in paths])
    timed("read", lambda: [hashlib.sha256(d).digest() for _, d in data])
    defines = timed("defines", lambda: [d for _, source in data for d in normalize.scan_defines(source)])
    classes = normalize.derive_classes(defines)

    def normalise(path: str, source: bytes) -> bytes:
        text = normalize.normalize(source, classes, normalize.used_macros(source, classes))
        return normalize.hx_to_c(text) if path.endswith(".hx") else text

    texts = timed("normalise", lambda: [normalise(p, d) for p, d in data])
    trees = timed("parse", lambda: [parse.parse(t) for t in texts])
    timed("query", lambda: [len(parse.matches(t)) for t in trees])  # matches are dropped as made, as extraction does
    trees = []  # free the trees before extraction builds its own
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    facts = timed("extract", lambda: [extract(p, d, t) for (p, d), t in zip(data, texts)])
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    blobs = timed("encode", lambda: [encode_facts(f) for f in facts])
    times["python"] = times.pop("extract") - times["parse"] - times["query"]
    total = sum(times.values())
    size = sum(len(d) for _, d in data)
    print(f"{len(paths)} files, {size / 1e6:.1f} MB, {sum(map(len, blobs)) / 1e6:.1f} MB of facts blobs")
    for name in ("read", "defines", "normalise", "parse", "query", "python", "encode"):
        print(f"  {name:10s} {times[name]:7.2f} s CPU  {100 * times[name] / total:5.1f} %")
    print(f"  {'total':10s} {total:7.2f} s CPU (one process; a cold index spreads this over the cores)")
    return 0



def edits(tree: Path, cache: Path, runs: int, work: Path) -> dict:
    """Time each edit of `EDITS` followed by the headline trace, in a hard-linked copy; then the warm headline."""
    copy = work / "tree"
    shutil.copytree(tree, copy, copy_function=os.link, symlinks=True)
    trace = [*CHAINTRACE, "trace", str(copy), *HEADLINE, "--cache", str(cache), "--json"]
    run_peak(trace)  # the copy's state is the tree's: its graph is stored; this records it as the copy's last
    figures = {}
    for name, path, change in EDITS:
        times, peaks = [], []
        for number in range(runs):
            rewrite(copy / path, lambda text: change(text, number))
            os.utime((copy / path).parent)
            seconds, peak, _ = run_peak(trace)
            times.append(seconds)
            peaks.append(peak)
        figures[name] = {"seconds": median(times), "runs": times, "peak_mb": max(peaks)}
    warm = [run_peak(trace) for _ in range(runs)]
    figures["warm headline"] = {"seconds": median([w[0] for w in warm]), "runs": [w[0] for w in warm],
                                "peak_mb": max(w[1] for w in warm)}
    return figures


def resolve_phases(tree: Path, cache: Path, profile: bool) -> int:
    """Print the graph's phases (load facts, build, save) in this process, CPU and wall, with peak RSS; return 0."""
    from chaintrace import api
    from chaintrace.graph.build import build_graph
    from chaintrace.graph.programs import program_filter
    from chaintrace.store.graphs import save_graph

    def step(name: str, function):
        wall, cpu = time.monotonic(), time.process_time()
        result = function()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  {name:6s} {time.monotonic() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU  "
              f"peak RSS {peak:6.0f} MB", flush=True)
        return result

    with api.open_store(cache) as store:
        api.index(tree, store)
        facts = step("load", lambda: api.load_facts(store, tree, paths=program_filter("system"), graph=True))
        keys = store.indexed_keys(str(tree))
        writes, paths = [w for f in facts for w in f.writes], [f.path for f in facts]
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        # as store.graphs._resolve builds: the facts emptied as they are read, the direct edges kept as calls
        cg = step("build", lambda: build_graph(facts, lean=True, consume=True))
        if profiler:
            profiler.disable()
        tables = store.graph_tables("bench-phases-resolve")
        step("save", lambda: save_graph(store, tables, cg, writes, [keys[path] for path in paths]))
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return 0


def measure(command: list[str]) -> int:
    """Run `command`, pass its stdout through, and print its wall seconds and peak RSS as JSON on stderr."""
    started = time.monotonic()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr[-2000:] if done.returncode not in (0, 1) else "")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": time.monotonic() - started, "peak_mb": peak}), file=sys.stderr)
    return 0 if done.returncode in (0, 1) else done.returncode


def ratio(seconds: float, base: float) -> str:
    return f"{seconds / base:5.2f}x floor" if base else ""


def pipeline(args: argparse.Namespace, tree: Path) -> dict:
    """Print and return the figures of the phases asked for."""
    phases = set(args.only or PHASES)
    files = source_files(tree)
    figures: dict = {"tree": str(tree), "files": len(files), "runs": args.runs, "jobs": args.jobs,
                     "load": os.getloadavg()[0]}
    print(f"tree {tree}: {len(files)} files, {args.runs} runs, -j {args.jobs}, load {os.getloadavg()[0]:.1f}", flush=True)
    wall, cpu = floor(tree, files, args.runs)
    figures["floor"] = {"wall": wall, "cpu": cpu}
    print(f"floor (bare tree-sitter parse, 1 process)  {wall:7.2f} s wall, {cpu:.2f} s CPU", flush=True)
    if "peers" in phases and not ensure_tools(["gtags", "cscope"]):
        figures["peers"] = peers(tree, files, args.runs)
        for name, seconds in figures["peers"].items():
            print(f"{name:42s} {seconds:7.2f} s       {ratio(seconds, wall)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="chaintrace-phases-") as work:
        cache = Path(work) / "cache"
        if phases & {"cold", "edit", "other"}:
            runs = []
            for number in range(args.runs if "cold" in phases else 1):
                shutil.rmtree(cache, ignore_errors=True)
                runs.append(cold(tree, cache, args.jobs))
            figures["cold"] = {key: median([r[key] for r in runs]) for key in runs[0]}
            figures["cold"]["runs"] = runs
            c = figures["cold"]
            for name, key in (("cold index: extraction", "index"), ("cold index: graph", "graph"),
                              ("cold index command", "index_command"), ("first trace after it", "first_trace"),
                              ("cold index + first trace", "total")):
                print(f"{name:42s} {c[key]:7.2f} s       {ratio(c[key], wall)}", flush=True)
            print(f"{'peak RSS of any process (cold)':42s} {max(r['peak_mb'] for r in runs):7.0f} MB (target <= 1024)")
            if "cold" in phases and args.jobs != 1:  # the map's scaling (docs/scaling.md): one run on one worker
                shutil.rmtree(cache, ignore_errors=True)
                one = figures["cold_j1"] = cold(tree, cache, 1)
                print(f"{'cold index: extraction, -j 1':42s} {one['index']:7.2f} s       {ratio(one['index'], wall)}"
                      f"  (-j {args.jobs}: {c['index'] / one['index']:.2f} of it)", flush=True)
        if "edit" in phases:
            figures["edit"] = edits(tree, cache, args.runs, Path(work))
            for name, figure in figures["edit"].items():
                print(f"{name + ', then trace':42s} {figure['seconds']:7.2f} s       {ratio(figure['seconds'], wall)}"
                      f"  peak {figure['peak_mb']:.0f} MB", flush=True)
        if "other" in phases and args.other is not None:
            other = args.other.resolve()
            after = cold(other, cache, args.jobs)  # the cache holds the first tree's facts and graph
            alone = cold(other, Path(work) / "other-cache", args.jobs)
            figures["other"] = {"after_first": after, "alone": alone}
            share = after["total"] / alone["total"]
            print(f"{other.name + ' after ' + tree.name:42s} {after['total']:7.2f} s = {100 * share:.0f} % of its "
                  f"cold {alone['total']:.2f} s (target <= 60 %)", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the phases asked for and print their figures; return 0."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--measure", "--"]:
        return measure(argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, help="the tree (default: the newest fetched QEMU 10.2)")
    parser.add_argument("--other", type=Path, help="a second version (default: the newest fetched QEMU 10.0)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure, medians reported (default 3)")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--only", action="append", choices=PHASES, help="only these figures (the floor always)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--resolve", type=Path, metavar="CACHE", help="time the graph's phases on this cache")
    parser.add_argument("--extraction", action="store_true", help="time extraction's phases instead (CPU)")
    parser.add_argument("--step", type=int, default=1, help="--extraction: every Nth file (default: all)")
    parser.add_argument("--profile", action="store_true", help="with --resolve or --extraction: cProfile's top 30")
    args = parser.parse_args(argv)
    tree = (args.tree or newest_tree("10.2") or sys.exit("phases: no QEMU 10.2 tree: run `make qemu`")).resolve()
    if args.extraction:
        return extraction_phases(tree, args.step, args.profile)
    if args.resolve:
        return resolve_phases(tree, args.resolve, args.profile)
    args.other = args.other or newest_tree("10.0")
    figures = pipeline(args, tree)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
