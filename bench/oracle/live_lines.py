"""Record which lines of the tree the oracle build compiled: the lines `gcc -E` keeps, over every unit.

chaintrace reads every `#if` branch; the build took one.  A graph edge on a line of a branch the build
skipped (`#ifdef DEBUG_AC97` ... `dolog(...)`, `#if TCG_TARGET_REG_BITS == 32`) is no mistake of
chaintrace's, and no call gcc could have seen: bench/oracle_score.py tells such edges apart, from this
evidence.  For each unit of the build (units.tsv.gz), the compile command of compile_commands.json is
rerun with `-E` instead of `-c -o ...` (its other flags kept, the call-graph dump flags dropped), in the
build folder, and the output's line markers (`# 12 "file"`) give, for each output line, its source file and
line.  A line counts as compiled when some unit's output has text on it (whitespace-only lines, comments,
directives and skipped branches have none).

Output: live-lines.tsv.gz, columns `file lines`, paths relative to the QEMU source root (tree files only),
`lines` as comma-separated ranges `a-b`.

    python bench/oracle/live_lines.py [--build DIR] [--tree TREE] [--out DIR] [-j N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shlex
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
_MARKER = re.compile(rb'^# (\d+) "((?:[^"\\]|\\.)*)"')
_DROP_WITH_VALUE = {"-o", "-MQ", "-MF", "-MT"}
_DROP = {"-c", "-MD", "-MMD", "-fcallgraph-info", "-fdump-ipa-cgraph", "-finstrument-functions"}


def preprocess_command(command: str) -> list[str]:
    """Return the argv that preprocesses what `command` (a compile_commands.json entry) compiles."""
    argv = shlex.split(command)
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in _DROP_WITH_VALUE:
            skip = True
            continue
        if arg in _DROP or arg.startswith("-fdiagnostics-color"):
            continue
        out.append(arg)
    return out + ["-E"]


def live_lines(output: bytes, directory: str) -> dict[str, set[int]]:
    """Return {absolute source path: lines with text} of one `gcc -E` output."""
    found: dict[str, set[int]] = defaultdict(set)
    file, line = "", 0
    for raw in output.split(b"\n"):
        marker = _MARKER.match(raw)
        if marker:
            line = int(marker.group(1))
            name = marker.group(2).decode("utf-8", "replace")
            file = os.path.normpath(os.path.join(directory, name)) if not name.startswith("<") else name
            continue
        if raw.strip():
            found[file].add(line)
        line += 1
    return found


def ranges(lines: set[int]) -> str:
    """Return sorted line numbers as `a-b,c-d` ranges."""
    out, start, previous = [], None, None
    for n in sorted(lines):
        if start is None:
            start = previous = n
        elif n == previous + 1:
            previous = n
        else:
            out.append(f"{start}-{previous}")
            start = previous = n
    if start is not None:
        out.append(f"{start}-{previous}")
    return ",".join(out)


def record(tree: Path, build: Path, out: Path, jobs: int = 2) -> int:
    """Preprocess every unit of the oracle build and write live-lines.tsv.gz; return the number of units run."""
    tree_prefix = str(tree.resolve()) + "/"
    build_dir = str(build.resolve())
    with gzip.open(out / "units.tsv.gz", "rt") as src:
        units = {line.rstrip("\n") for line in list(src)[1:]}
    entries = []
    for entry in json.loads((build / "compile_commands.json").read_text()):
        path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
        unit = path[len(tree_prefix):] if path.startswith(tree_prefix) else "<build>/" + os.path.relpath(path, build_dir)
        if unit in units:
            entries.append(entry)
    compiled: dict[str, set[int]] = defaultdict(set)

    def run(entry: dict) -> dict[str, set[int]]:
        proc = subprocess.run(["nice", "-n", "19", *preprocess_command(entry["command"])], cwd=entry["directory"],
                              capture_output=True)
        if proc.returncode != 0:
            print(f"gcc -E failed on {entry['file']}: {proc.stderr.decode(errors='replace')[:300]}", file=sys.stderr)
            return {}
        return live_lines(proc.stdout, entry["directory"])

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for found in pool.map(run, entries):
            for path, lines in found.items():
                if path.startswith(tree_prefix):
                    compiled[path[len(tree_prefix):]] |= lines
    with gzip.open(out / "live-lines.tsv.gz", "wt", encoding="utf-8", compresslevel=9) as dst:
        dst.write("file\tlines\n")
        for path in sorted(compiled):
            dst.write(f"{path}\t{ranges(compiled[path])}\n")
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=Path.home() / ".cache/chaintrace/qemu/10.2.2")
    parser.add_argument("--build", type=Path, default=Path("/work/oracle-build/qemu"))
    parser.add_argument("--out", type=Path, default=HERE / "10.2")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    count = record(args.tree, args.build, args.out, args.jobs)
    print(f"preprocessed {count} units", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
