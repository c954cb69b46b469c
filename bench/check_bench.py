"""Check benchmark: `chaintrace check` of the shipped QEMU specs on every fetched QEMU tree with one cache.

    .venv/bin/python bench/check_bench.py [--specs queries/qemu] [--no-cold] [--json FILE]

Figures (wall seconds; the machine's load is printed too: on a shared
machine times are only as steady as its neighbours):

- cold alone: each tree indexed into a fresh cache of its own (skip with --no-cold);
- shared: the trees indexed one after the other into ONE fresh cache, with
  the files parsed and reused: the store is content-addressed, so a later
  version parses only the files that changed (the claim: three versions
  cost about one cold index plus the changed files);
- graph: resolving each tree's call graph once per index state (the first check pays it);
- check: every spec on every tree with the warm cache, per tree and in total.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
QEMU_CACHE = Path(os.environ.get("CHAINTRACE_QEMU_CACHE", Path.home() / ".cache" / "chaintrace" / "qemu"))


def fetched_trees() -> list[Path]:
    """Return the fetched QEMU trees (folders holding VERSION), oldest version first."""
    found = [p for p in QEMU_CACHE.iterdir() if (p / "VERSION").is_file()] if QEMU_CACHE.is_dir() else []
    return sorted(found, key=lambda p: tuple(int(x) if x.isdigit() else 0 for x in p.name.split(".")))


def index_seconds(tree: Path, cache: Path, jobs: int) -> dict:
    """Index `tree` into `cache`; return {seconds, files, parsed, reused}."""
    from chaintrace import api

    start = time.perf_counter()
    with api.open_store(cache, warn=lambda message: None) as store:
        summary = api.index(tree, store, jobs=jobs)
    return {"seconds": round(time.perf_counter() - start, 1), "files": summary.files,
            "parsed": summary.extracted, "reused": summary.reused}


def main() -> int:
    """Run the benchmark, print the figures (and write them as JSON); 2 when no tree is fetched."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, nargs="*", default=[REPO / "queries" / "qemu"])
    parser.add_argument("--no-cold", action="store_true", help="skip indexing each tree alone into a fresh cache")
    parser.add_argument("-j", "--jobs", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from chaintrace import api
    from chaintrace.regress.check import check_spec
    from chaintrace.regress.spec import spec_files

    trees = fetched_trees()
    if not trees:
        print(f"no QEMU tree under {QEMU_CACHE}: run `make qemu`", file=sys.stderr)
        return 2
    specs, _ = spec_files(args.specs)
    print(f"{len(trees)} trees, {len(specs)} specs, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    figures: dict = {"trees": [t.name for t in trees], "specs": [s.name for s in specs], "cold": {}, "shared": {},
                     "graph": {}, "check": {}}
    if not args.no_cold:
        for tree in trees:
            with tempfile.TemporaryDirectory(prefix="check-bench-cold-") as cache:
                figures["cold"][tree.name] = index_seconds(tree, Path(cache), args.jobs)
            print(f"  cold alone  {tree.name:10s} {figures['cold'][tree.name]['seconds']:8.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="check-bench-shared-") as cache:
        for tree in trees:
            figures["shared"][tree.name] = row = index_seconds(tree, Path(cache), args.jobs)
            print(f"  shared      {tree.name:10s} {row['seconds']:8.1f} s  ({row['parsed']} parsed, "
                  f"{row['reused']} reused of {row['files']} files)", flush=True)
        with api.open_store(Path(cache), warn=lambda message: None) as store:
            for tree in trees:
                start = time.perf_counter()
                api.tree_graph(store, tree)
                figures["graph"][tree.name] = round(time.perf_counter() - start, 1)
                print(f"  graph       {tree.name:10s} {figures['graph'][tree.name]:8.1f} s", flush=True)
            for tree in trees:
                start = time.perf_counter()
                tg = api.tree_graph(store, tree)
                results = [check_spec(tg, spec) for spec in specs]
                figures["check"][tree.name] = {
                    "seconds": round(time.perf_counter() - start, 1),
                    "per_spec": {r.name: round(r.seconds, 1) for r in results},
                    "status": {r.name: r.status for r in results}}
                per_spec = ", ".join(f"{name} {s:.1f}" for name, s in figures["check"][tree.name]["per_spec"].items())
                print(f"  check warm  {tree.name:10s} {figures['check'][tree.name]['seconds']:8.1f} s  ({per_spec})",
                      flush=True)
    shared = sum(row["seconds"] for row in figures["shared"].values())
    first = figures["shared"][trees[0].name]["seconds"]
    print()
    print(f"index, one shared cache: {shared:.1f} s = first tree cold {first:.1f} s + later trees {shared - first:.1f} s "
          f"({sum(r['parsed'] for r in list(figures['shared'].values())[1:])} changed files parsed)")
    if figures["cold"]:
        cold = sum(row["seconds"] for row in figures["cold"].values())
        print(f"index, each tree cold alone: {cold:.1f} s; shared cache costs {shared / cold:.0%} of that")
    check = sum(row["seconds"] for row in figures["check"].values())
    print(f"check, {len(specs)} specs x {len(trees)} trees, warm cache: {check:.1f} s; "
          f"graph resolution once per tree: {sum(figures['graph'].values()):.1f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
