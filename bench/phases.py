"""Where a cold index spends its time: CPU seconds per phase, one process, every file of a tree.

    .venv/bin/python bench/phases.py ~/.cache/chaintrace/qemu/10.2.2 [--step N] [--profile]

Phases: read (bytes + sha256), defines (scan `#define`s), normalise
(used macros + rewrite), parse (tree-sitter), query (the combined
extraction query), python (the rest of extraction: reading captures into
facts), encode (JSON + zlib + checksum). Parse and query are timed on their own, then
`extract` is timed whole and the two are subtracted, so "python" is what our
code adds. CPU time (`time.process_time`) is used, not wall time: on a
shared machine it is the steadier figure. The cyclic GC is off, as in the
indexer's workers. `--step N` takes every Nth file;
`--profile` prints cProfile's top functions of the extraction instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import pstats
import sys
import time
from pathlib import Path

from chaintrace.source import normalize

from chaintrace.source import parse
from chaintrace.extract.extractor import extract
from chaintrace.source.scan import read_options, scan
from chaintrace.store.codec import encode_facts


def main(argv: list[str] | None = None) -> int:
    """Print CPU seconds per phase over a tree's files; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--step", type=int, default=1, help="take every Nth file (default: all)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top 30 of extraction")
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    files, _ = scan(tree, read_options(tree))
    paths = [f.path for f in files][:: args.step]
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
    profiler = cProfile.Profile() if args.profile else None
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


if __name__ == "__main__":
    sys.exit(main())
