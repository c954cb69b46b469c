"""Write bench/oracle/10.2/README.md from the recorded facts (build.json, the TSVs, runtime-scenarios.json)."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path


def count_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with gzip.open(path, "rt", encoding="utf-8") as src:
        return sum(1 for _ in src) - 1


def write(tree: Path, build: Path, out: Path) -> Path:
    facts = json.loads((out / "build.json").read_text())
    scenarios = {}
    if (out / "runtime-scenarios.json").exists():
        scenarios = json.loads((out / "runtime-scenarios.json").read_text())
    files = ["direct-edges", "indirect-sites", "address-taken", "functions", "units", "runtime-edges", "live-lines"]
    lines = [
        f"# Oracle data: QEMU {facts['qemu_version']} built by gcc",
        "",
        "Made by `make oracle` (`bench/oracle/build-and-record`, by hand, never in CI); read by",
        "`bench/oracle_score.py` and `tests/test_oracle_qemu.py`.  Paths are relative to the QEMU",
        "source root; files the build generates are `<build>/...`, system headers absolute.",
        "",
        "## Build",
        "",
        f"- QEMU: {facts['qemu_version']} (Debian source `{facts['tree']}`)",
        f"- compiler: {facts['gcc']}",
        f"- meson: {facts['meson']} (from PyPI: the tree ships no wheels)",
        f"- date: {facts['date']}",
        f"- command: `{facts.get('command', 'make oracle')}`",
        "- configure (run in the build folder, `nice -n 19`, PATH without `bzip2`: see build-and-record):",
        "",
        "```",
        facts["configure"],
        "```",
        "",
        "`--enable-debug` is `-O0 -g`: every call expression survives.  `cyg_recorder.o` is",
        "bench/oracle/cyg_recorder.c (`gcc -O2 -fPIC`), the runtime recorder behind",
        "`-finstrument-functions`.  Targets built: `qemu-system-x86_64`, `qemu-img`.",
        "",
        "## Files",
        "",
        "| file | rows | columns |",
        "|---|---|---|",
    ]
    columns = {
        "direct-edges": "caller caller_file caller_linkage callee callee_file callee_linkage file line col unit",
        "indirect-sites": "caller caller_file file line col unit",
        "address-taken": "function function_file function_linkage referrer referrer_kind referrer_file unit",
        "functions": "name file line linkage unit",
        "units": "unit",
        "runtime-edges": "scenario caller caller_file callee callee_file caller_linkage callee_linkage",
        "live-lines": "file lines",
    }
    for name in files:
        lines.append(f"| `{name}.tsv.gz` | {count_rows(out / (name + '.tsv.gz'))} | {columns[name]} |")
    lines += [
        "",
        "Static data (`.ci` from `-fcallgraph-info`, one edge per call expression, the site the line",
        "and column of the called name; `*.000i.cgraph` from `-fdump-ipa-cgraph`, the first symbol",
        "table): see the docstring of `extract_static.py`.  `__cyg_profile_func_*` calls and",
        "`<built-in>` targets are dropped; the two references each function makes to its own",
        "address for the instrumentation are not counted as address-taken.",
        "",
        "Compiled lines (`live-lines.tsv.gz`, `live_lines.py`): each unit's compile command rerun with",
        "`-E`; a tree line counts when some unit's preprocessed output has text on it, so an `#if`",
        "branch with no such line is one the build skipped (ranges `a-b`, comma-separated).",
        "",
        "## Runtime scenarios",
        "",
        "TCG, `-machine pc -m 128M -nodefaults -display none`, SeaBIOS (Debian `seabios`) running, QMP",
        "over unix sockets (scenarios.py).  Pairs: distinct caller -> callee pairs between functions",
        "of the tree (a call through glib or libc from a tree function is not a pair).  \"ran ...\"",
        "names the functions that prove the scenario did what it is named after.  The pairs depend",
        "a little on timing (a rerun changes about half a percent of them).  QEMU warns that",
        "`kvmvapic.bin` is missing (Debian's `qemu-system-data` is not installed): only KVM uses it.",
        "",
        "| scenario | status | pairs | seconds | notes |",
        "|---|---|---|---|---|",
    ]
    for name, r in scenarios.items():
        notes = "; ".join(r.get("notes", []))
        if r.get("error"):
            notes = (f"**failed:** {r['error']}" + ("; " + notes if notes else ""))
        lines.append(f"| {name} | {r['status']} | {r['pairs']} | {r['seconds']} | {notes.replace('|', '/')} |")
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        "make qemu      # or: scripts/fetch-qemu sid",
        "make oracle    # bench/oracle/build-and-record: build, static, runtime, readme",
        "python bench/oracle_score.py    # the figures (--json for JSON)",
        "```",
        "",
    ]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path


if __name__ == "__main__":
    write(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
