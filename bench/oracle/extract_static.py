"""Read gcc's call-graph dumps of the oracle build and write the static oracle TSVs.

Inputs, per translation unit of the build folder (gcc 12, `-fcallgraph-info -fdump-ipa-cgraph`):

- `<obj dir>/<unit>.ci`: VCG, one node per function defined or called, one edge per call
  expression (format in tests/oracle.py's docstring).  Titles are "<unit path>:<name>" for
  `static` functions, the plain name otherwise; labels "<name>\\n<file>:<line>:<col>" of the
  definition (or, for `shape : ellipse` nodes, of the declaration); an edge's label is the call
  site.  Calls through pointers go to "__indirect_call".  `-finstrument-functions` adds
  unlabelled edges to `__cyg_profile_func_enter/exit`: dropped, with every `<built-in>` target.
- `<obj dir>/<unit>.c.000i.cgraph`: the ipa "Initial Symbol table": one block per symbol
  ("name/order (asm name) @0x...", "Type: function|variable ...", "References: x/12 (addr) ...");
  only the first table is read (the file holds several; later ones have lost references).
  A function whose address a symbol's initialiser or body takes is listed there with `(addr)`.
  The instrumentation makes every function take its own address twice (for the enter and exit
  hooks), so a function's references to itself count only beyond those two.

Outputs (gzip TSV, one header line, paths relative to the QEMU source root; build-generated
files as `<build>/...`, system files absolute):

- direct-edges.tsv.gz   caller caller_file caller_linkage callee callee_file callee_linkage file line col unit
- indirect-sites.tsv.gz caller caller_file file line col unit
- address-taken.tsv.gz  function function_file function_linkage referrer referrer_kind referrer_file unit
- functions.tsv.gz      name file line linkage unit   (every function a unit defines)
- units.tsv.gz          unit                          (every translation unit compiled)

`callee_file` is the definition's file: the unit's own when the callee is defined there, else
the file of the one external definition of that name anywhere in the build, else "" (a library
function, or a name defined more than once).
"""

from __future__ import annotations

import gzip
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

_FIELD_RE = re.compile(r'(\w+)\s*:\s*"((?:[^"\\]|\\.)*)"')
_LOCATION_RE = re.compile(r"^(.*):(\d+):(\d+)$")
_SYMBOL_RE = re.compile(r"^(\S+)/(\d+) \((.*)\) @0x[0-9a-f]+")
_REF_RE = re.compile(r"(\S+)/(\d+) \((addr)\)")
INDIRECT = "__indirect_call"
IGNORED_CALLEES = {"__cyg_profile_func_enter", "__cyg_profile_func_exit"}

HEADERS = {
    "direct-edges": ["caller", "caller_file", "caller_linkage", "callee", "callee_file", "callee_linkage",
                     "file", "line", "col", "unit"],
    "indirect-sites": ["caller", "caller_file", "file", "line", "col", "unit"],
    "address-taken": ["function", "function_file", "function_linkage", "referrer", "referrer_kind",
                      "referrer_file", "unit"],
    "functions": ["name", "file", "line", "linkage", "unit"],
    "units": ["unit"],
}


class Paths:
    """Turns gcc's paths (relative to the build folder, or absolute) into oracle paths."""

    def __init__(self, tree: Path, build: Path):
        self.tree = str(tree.resolve())
        self.build = str(build.resolve())
        self.cache: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        found = self.cache.get(path)
        if found is None:
            full = os.path.normpath(os.path.join(self.build, path))
            if full.startswith(self.tree + "/"):
                found = full[len(self.tree) + 1:]
            elif full.startswith(self.build + "/"):
                found = "<build>/" + full[len(self.build) + 1:]
            else:
                found = full
            self.cache[path] = found
        return found


def write_tsv(path: Path, header: list[str], rows) -> int:
    count = 0
    lines = ["\t".join(header) + "\n"]
    for row in rows:
        lines.append("\t".join(str(v) for v in row) + "\n")
        count += 1
    # mtime 0 and a total row order: the same build gives the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out:
        out.write("".join(lines).encode("utf-8"))
    return count


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Read one of the oracle TSVs back as dicts (shared with bench/oracle_score.py)."""
    with gzip.open(path, "rt", encoding="utf-8") as src:
        header = src.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in src]


def parse_ci(text: str):
    """Yield ('node', title, label, defined) and ('edge', source, target, label) records of a `.ci` file."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("node:"):
            fields = dict(_FIELD_RE.findall(line))
            yield "node", fields["title"], fields.get("label", ""), "shape : ellipse" not in line
        elif line.startswith("edge:"):
            fields = dict(_FIELD_RE.findall(line))
            yield "edge", fields["sourcename"], fields["targetname"], fields.get("label", "")


def parse_cgraph_dump(text: str) -> dict[str, dict]:
    """Return the symbols of an ipa cgraph dump: name -> {kind, refs: [names referenced by (addr)]}."""
    symbols: dict[str, dict] = {}
    current: dict | None = None
    in_table = False
    for line in text.splitlines():
        if line.startswith("Initial Symbol table"):
            in_table = True
            continue
        if in_table and line and not line[0].isspace() and not _SYMBOL_RE.match(line):
            break               # the first table only: later ones (reclaimed, optimized) drop references
        if not in_table:
            continue
        match = _SYMBOL_RE.match(line)
        if match:
            current = {"name": match.group(1), "order": match.group(2), "kind": "", "refs": []}
            symbols[f"{match.group(1)}/{match.group(2)}"] = current
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith("Type:"):
            current["kind"] = "function" if "function" in stripped.split()[1] else "variable"
            current["defined"] = "definition" in stripped
        elif stripped.startswith("References:"):
            current["refs"] = [f"{m.group(1)}/{m.group(2)}" for m in _REF_RE.finditer(stripped)]
    return symbols


def _split_label(label: str, paths: Paths) -> tuple[str, str, int]:
    parts = label.split("\\n")
    name = parts[0]
    if len(parts) > 1:
        match = _LOCATION_RE.match(parts[1])
        if match:
            return name, paths(match.group(1)), int(match.group(2))
    return name, "", 0


def units(build: Path) -> list[tuple[Path, Path]]:
    """Return (ci file, cgraph dump or None) of every translation unit under the build folder."""
    found = []
    for ci in sorted(build.rglob("*.ci")):
        if "meson-private" in ci.parts or "meson-logs" in ci.parts:
            continue
        dumps = sorted(ci.parent.glob(ci.name[:-3] + ".*.000i.cgraph"))
        found.append((ci, dumps[0] if dumps else None))
    return found


def extract(tree: Path, build: Path, out: Path) -> dict[str, int]:
    """Read every unit of the build and write the TSVs to `out`; return the row counts."""
    paths = Paths(tree, build)
    functions = []          # (name, file, line, linkage, unit)
    raw_edges = []          # (caller, caller_file, caller_linkage, callee, callee_file?, callee_linkage, file, line, col, unit, defined_here)
    indirect = []
    address_taken_raw = []  # (function, function_file?, linkage, referrer, kind, referrer_file, unit)
    unit_names = []
    external_defs: dict[str, set[str]] = defaultdict(set)
    for ci, dump in units(build):
        text = ci.read_text(encoding="utf-8", errors="replace")
        records = list(parse_ci(text))
        unit_title = next((line.split('"')[1] for line in text.splitlines()[:1] if line.startswith("graph:")), "")
        unit = paths(unit_title) if unit_title else str(ci)
        unit_names.append(unit)
        nodes: dict[str, tuple[str, str, int, bool, str]] = {}
        for record in records:
            if record[0] != "node":
                continue
            _, title, label, defined = record
            name, file, line = _split_label(label, paths)
            linkage = "static" if title.startswith(unit_title + ":") else "extern"
            if title.startswith("*"):
                name = name or title[1:]
            nodes.setdefault(title, (name, file, line, defined, linkage))
            if defined and "<built-in>" not in label and title != INDIRECT:
                functions.append((name, file, line, linkage, unit))
                if linkage == "extern":
                    external_defs[name].add(file)
        for record in records:
            if record[0] != "edge":
                continue
            _, source, target, label = record
            caller = nodes.get(source)
            if caller is None:
                continue
            match = _LOCATION_RE.match(label)
            if target == INDIRECT:
                if match:
                    indirect.append((caller[0], caller[1], paths(match.group(1)), match.group(2), match.group(3), unit))
                continue
            callee = nodes.get(target)
            if callee is None or not match or target in IGNORED_CALLEES or callee[0] in IGNORED_CALLEES:
                continue
            if target.startswith("__builtin_") or callee[0].startswith("__builtin_") or callee[1] == "" and "<built-in>" in label:
                continue
            raw_edges.append((caller[0], caller[1], caller[4], callee[0], callee[1] if callee[3] else None, callee[4],
                              paths(match.group(1)), match.group(2), match.group(3), unit))
        if dump is None:
            continue
        by_name = {info[0]: info for info in nodes.values()}
        symbols = parse_cgraph_dump(dump.read_text(encoding="utf-8", errors="replace"))
        for key, symbol in symbols.items():
            counts: dict[str, int] = defaultdict(int)
            for ref in symbol["refs"]:
                counts[ref] += 1
            for ref, count in counts.items():
                target = symbols.get(ref)
                if target is None or target["kind"] != "function":
                    continue
                if ref == key and symbol["kind"] == "function":
                    count -= 2          # the instrumentation's own two
                if count <= 0 or target["name"].startswith("__builtin_") or target["name"] in IGNORED_CALLEES:
                    continue
                info = by_name.get(target["name"])
                function_file = info[1] if info and info[3] else None
                linkage = info[4] if info else "extern"
                ref_info = by_name.get(symbol["name"])
                referrer_file = ref_info[1] if ref_info and ref_info[3] else unit
                address_taken_raw.append((target["name"], function_file, linkage, symbol["name"], symbol["kind"],
                                          referrer_file, unit))

    def definition(name: str, file: str | None, linkage: str) -> str:
        if file is not None:
            return file
        if linkage == "extern":
            files = external_defs.get(name, set())
            if len(files) == 1:
                return next(iter(files))
        return ""

    edges = sorted({(*e[:4], definition(e[3], e[4], e[5]), *e[5:]) for e in raw_edges},
                   key=lambda r: (r[6], int(r[7]), int(r[8]), r))
    taken = sorted({(a[0], definition(a[0], a[1], a[2]), *a[2:]) for a in address_taken_raw})
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        "direct-edges": write_tsv(out / "direct-edges.tsv.gz", HEADERS["direct-edges"], edges),
        "indirect-sites": write_tsv(out / "indirect-sites.tsv.gz", HEADERS["indirect-sites"],
                                    sorted(set(indirect), key=lambda r: (r[2], int(r[3]), int(r[4]), r))),
        "address-taken": write_tsv(out / "address-taken.tsv.gz", HEADERS["address-taken"], taken),
        "functions": write_tsv(out / "functions.tsv.gz", HEADERS["functions"], sorted(set(functions))),
        "units": write_tsv(out / "units.tsv.gz", HEADERS["units"], ((u,) for u in sorted(set(unit_names)))),
    }
    print("static oracle: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
    return counts


if __name__ == "__main__":
    extract(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
