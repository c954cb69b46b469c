"""Is the resolved graph the same as before a change? Dump it in a canonical form, or compare with a dump.

    .venv/bin/python bench/graph_same.py --cache DIR [--tree DIR] [--program system] -o before.jsonl
    (change the code)
    .venv/bin/python bench/graph_same.py --cache DIR [--tree DIR] --compare before.jsonl

The graph is resolved in this process (`graph.build.build_graph`) from the
facts the cache holds for the tree (index it first; a stored graph is not
read, so a resolver change is measured even when its version did not
move). The dump is one JSON line per node, per edge (with its sites,
proofs and every attribute, in their order) and per diagnostic, then the
objects and passes; a comparison prints how many of each are only before or
only after, with a few of each, and exits 1 when anything differs. A
speed-up of the resolver must leave it exactly as it was. To dump with
another checkout's code, run it with `PYTHONPATH=THAT_CHECKOUT`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def lines(cache: Path, tree: Path, program: str) -> list[str]:
    """Return the canonical lines of the graph of `tree`'s facts in `cache` (nodes, edges, diagnostics, objects)."""
    from chaintrace import api
    from chaintrace.graph.build import build_graph
    from chaintrace.graph.model import graph_rows
    from chaintrace.graph.programs import program_filter

    with api.open_store(cache) as store:
        facts = api.load_facts(store, tree, paths=program_filter(program), graph=True)
    cg = build_graph(facts)
    nodes, edges = graph_rows(cg)
    out = [json.dumps(["node", *row]) for row in nodes]
    out += [json.dumps(["edge", src, dst, kind, data], sort_keys=True) for src, dst, kind, data in edges]
    out += [json.dumps(["diagnostic", d], sort_keys=True) for d in cg.diagnostics]
    out += [json.dumps(["objects", cg.objects, cg.passes], sort_keys=True)]
    return sorted(out)


def compare(before: list[str], after: list[str]) -> int:
    """Print what differs between two dumps (as multisets of lines); return 0 when nothing does, else 1."""
    old, new = Counter(before), Counter(after)
    gone, came = old - new, new - old
    kinds = Counter(json.loads(line)[0] for line in after)
    print("after: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    if not gone and not came:
        print("same graph: every node, edge (sites, proofs, attributes), diagnostic and object is as before")
        return 0
    for name, found in (("only before", gone), ("only after", came)):
        print(f"{name}: {sum(found.values())} lines, by kind {dict(Counter(json.loads(l)[0] for l in found.elements()))}")
        for line in sorted(found)[:5]:
            print("   ", line[:300])
    return 1


def main(argv: list[str] | None = None) -> int:
    """Dump the graph (-o) or compare it with a dump (--compare); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="a cache holding the tree's facts")
    parser.add_argument("--tree", type=Path, help="the tree (default: the newest fetched QEMU 10.2)")
    parser.add_argument("--program", default="system")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("-o", "--output", type=Path, help="write the canonical dump here")
    what.add_argument("--compare", type=Path, help="compare with this dump")
    args = parser.parse_args(argv)
    if args.tree is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from index_bench import newest_tree  # bench/ is not a package

        args.tree = newest_tree("10.2") or sys.exit("graph_same: no QEMU 10.2 tree: run `make qemu`")
    found = lines(args.cache, args.tree.resolve(), args.program)
    if args.output:
        args.output.write_text("\n".join(found) + "\n")
        print(f"wrote {len(found)} lines to {args.output}")
        return 0
    return compare(args.compare.read_text().splitlines(), found)


if __name__ == "__main__":
    sys.exit(main())
