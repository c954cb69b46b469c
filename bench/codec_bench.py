"""What storing facts costs: CPU time to encode and decode every file's facts blob, and the blobs' size.

    .venv/bin/python bench/codec_bench.py TREE [--step N] [--repeat R]

Facts are extracted once (every Nth file of TREE), then encoded and decoded
R times with the store's own `encode_facts` / `decode_facts`; the best of
the R rounds is printed (CPU time, `time.process_time`: steadier than wall
time on a shared machine). The cyclic GC is off, as in the indexer.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

from chaintrace.extract.extractor import extract
from chaintrace.source import normalize
from chaintrace.source.scan import read_options, scan
from chaintrace.store.codec import decode_facts, encode_facts


def _best(function, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = function()
        best = min(best, time.process_time() - started)
    return best, result


def main(argv: list[str] | None = None) -> int:
    """Print encode and decode CPU time and blob size over a tree's facts; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--step", type=int, default=1, help="take every Nth file (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of encode and decode; the best is printed")
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    files, _ = scan(tree, read_options(tree))
    paths = [f.path for f in files][:: args.step]
    gc.disable()
    data = [(p, (tree / p).read_bytes()) for p in paths]
    classes = normalize.derive_classes([d for _, source in data for d in normalize.scan_defines(source)])
    facts = []
    for path, source in data:
        text = normalize.normalize(source, classes, normalize.used_macros(source, classes))
        facts.append(extract(path, source, normalize.hx_to_c(text) if path.endswith(".hx") else text))
    encode, blobs = _best(lambda: [encode_facts(f) for f in facts], args.repeat)
    decode, back = _best(lambda: [decode_facts(b) for b in blobs], args.repeat)
    assert back == facts, "a blob does not decode to the facts it was made from"
    count = sum(len(f.calls) + len(f.refs) + len(f.functions) + len(f.writes) + len(f.variables) for f in facts)
    print(f"{len(facts)} files, {count} facts, {sum(map(len, blobs)) / 1e6:.2f} MB of blobs")
    print(f"  encode {encode:6.3f} s CPU   decode {decode:6.3f} s CPU   (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
