#!/usr/bin/env python3
"""How precise the resolved call graph is: the figures of the precision issue, precise and --sound side by side.

    .venv/bin/python bench/precision.py [--tree QEMU] [--cache DIR] [--program system] [--json]

For each mode (the default precise graph, and `--sound`, the over-approximation
earlier versions gave) it prints, on one tree:

* targets per indirect call site (median, p90, max), as the MLTA paper
  (Lu & Hu, CCS'19) reports them: over the sites that have targets, for the
  kinds traces follow (`ops`, `fnptr`) and for `dispatch`;
* the indirect call sites left without a target (diagnostics);
* the largest strongly connected component over the kinds traces follow, and without the calls whose
  receiver picks the callee (which a default trace takes only where its path decides them);
* how the `ops` sites pick their callees (`each`, `one`, `built`, `receiver`: `graph.indirect`);
* the headline trace (`qmp:migrate` -> `assign:threshold_size`, up to 50
  paths): per target, the chop size, the path count (exact, or the bound it
  is) and the paths listed once object sensitivity dropped those that
  cannot run.

The tree defaults to the newest fetched QEMU (`scripts/fetch-qemu`); the
cache to `$XDG_CACHE_HOME/chaintrace`. Each mode's graph is resolved once
and kept in the cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chaintrace import api  # noqa: E402
from chaintrace.graph.kinds import TRACE_KINDS, undecided  # noqa: E402

HEADLINE = ("qmp:migrate", "assign:threshold_size")


def newest_tree() -> Path:
    """Return the newest QEMU tree scripts/fetch-qemu has fetched (sid first)."""
    for suite in ("sid", "trixie", "bookworm"):
        out = subprocess.run([str(ROOT / "scripts" / "fetch-qemu"), "--print-path", suite], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    raise SystemExit("bench/precision.py: no QEMU tree fetched: run `make qemu` (or give --tree)")


def spread(counts: list[int]) -> dict:
    """Return {sites, median, p90, max} of per-site target counts."""
    counts = sorted(counts)
    if not counts:
        return {"sites": 0, "median": 0, "p90": 0, "max": 0}
    return {"sites": len(counts), "median": statistics.median(counts), "p90": counts[int(len(counts) * 0.9)],
            "max": counts[-1]}


def figures(store: api.Store, tree: Path, program: str, sound: bool) -> dict:
    """Return the figures of one mode (see the module docstring)."""
    import networkx as nx

    started = time.perf_counter()
    tg = api.tree_graph(store, tree, program=program, sound=sound)
    resolved = time.perf_counter() - started
    cg = tg.graph
    followed, dispatch = defaultdict(set), defaultdict(set)
    kinds = set(TRACE_KINDS) | ({"dispatch"} if sound else set())
    for _, target, kind, data in cg.graph.edges(keys=True, data=True):
        bucket = dispatch if kind == "dispatch" else followed if kind in ("ops", "fnptr") else None
        if bucket is not None:
            for site in data["sites"]:
                bucket[site["file"], site["line"], site["col"]].add(target)
    walk = nx.DiGraph((src, dst) for src, dst, kind in cg.graph.edges(keys=True) if kind in kinds)
    largest = max((len(c) for c in nx.strongly_connected_components(walk)), default=0)
    decided = nx.DiGraph((src, dst) for src, dst, kind, data in cg.graph.edges(keys=True, data=True)
                         if kind in kinds and (sound or not undecided(kind, data)))
    largest_decided = max((len(c) for c in nx.strongly_connected_components(decided)), default=0)
    choices: dict[str, int] = defaultdict(int)
    for _, _, kind, data in cg.graph.edges(keys=True, data=True):
        if kind == "ops":
            for site in data["sites"]:
                choices[site.get("choice", "?")] += 1
    headline = []
    started = time.perf_counter()
    result, _ = api.trace_with_graph(tg, *HEADLINE, max_paths=50)
    traced = time.perf_counter() - started
    for target in result.targets:
        count = target.count
        headline.append({"function": target.site.function, "line": target.site.line, "chop": target.chop_nodes,
                         "paths": count.total, "exact": count.exact, "method": count.method,
                         "listed": len(target.paths), "undecided_calls": result.undecided_total})
    return {"mode": "sound" if sound else "precise", "program": program, "nodes": cg.graph.number_of_nodes(),
            "edges": cg.graph.number_of_edges(), "resolve_or_load_s": round(resolved, 2),
            "targets_per_site": spread([len(t) for t in followed.values()]),
            "dispatch_targets_per_site": spread([len(t) for t in dispatch.values()]),
            "unresolved_sites": len(cg.diagnostics), "largest_scc": largest, "largest_decided_scc": largest_decided,
            "ops_site_edges_by_choice": dict(sorted(choices.items())), "headline": headline,
            "headline_trace_s": round(traced, 2)}


def show(rows: list[dict]) -> None:
    """Print the modes side by side."""
    width = 34
    print(f"{'':{width}}" + "".join(f"{row['mode']:>22}" for row in rows))
    lines = [("nodes / edges", lambda r: f"{r['nodes']} / {r['edges']}"),
             ("ops+fnptr targets per site: median", lambda r: r["targets_per_site"]["median"]),
             ("  p90", lambda r: r["targets_per_site"]["p90"]), ("  max", lambda r: r["targets_per_site"]["max"]),
             ("  sites with targets", lambda r: r["targets_per_site"]["sites"]),
             ("dispatch targets per site: median", lambda r: r["dispatch_targets_per_site"]["median"]),
             ("  max", lambda r: r["dispatch_targets_per_site"]["max"]),
             ("unresolved indirect sites", lambda r: r["unresolved_sites"]),
             ("largest SCC (followed kinds)", lambda r: r["largest_scc"]),
             ("  without undecided calls", lambda r: r["largest_decided_scc"]),
             ("ops site-edges each/one/built/receiver", lambda r: "/".join(
                 str(r["ops_site_edges_by_choice"].get(c, 0)) for c in ("each", "one", "built", "receiver"))),
             ("headline trace (s)", lambda r: r["headline_trace_s"])]
    for title, value in lines:
        print(f"{title:{width}}" + "".join(f"{value(row)!s:>22}" for row in rows))
    for index in range(max(len(row["headline"]) for row in rows)):
        for key in ("chop", "paths", "listed", "undecided_calls"):
            title = f"headline target {index + 1}: {key}"
            cells = []
            for row in rows:
                target = row["headline"][index] if index < len(row["headline"]) else None
                bounded = key == "paths" and not target["exact"] if target else False
                cell = "" if target is None else f"{target[key]}" + (" (bound)" if bounded else "")
                cells.append(f"{cell:>22}")
            print(f"{title:{width}}" + "".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--program", default="system")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    tree = args.tree or newest_tree()
    with api.open_store(args.cache) as store:
        rows = [figures(store, tree, args.program, sound) for sound in (False, True)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"precision figures of {tree} (program {args.program})")
        show(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
