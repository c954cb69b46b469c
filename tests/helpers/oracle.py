"""gcc as an oracle for the direct edges of the fixtures' call graphs.

Every `.c` file under a fixture folder is compiled with

    gcc -c -O0 -fno-builtin -Wall -fcallgraph-info -I fixtures/include -I <fixture> [-I <fixture>/include] [-I <fixture>/build]

(the last two only when the fixture has an include/ folder, as QEMU has, or a build/ folder: headers
QEMU's build generates, which chaintrace never indexes) from inside the fixture folder (so gcc names files relative to it), and the
VCG files (`.ci`) gcc writes are parsed.  gcc 12 writes one graph per
translation unit:

    graph: { title: "migration/ram.c"
    node: { title: "migration/ram.c:ram_save_setup" label: "ram_save_setup\\nmigration/ram.c:12:12" }
    node: { title: "qemu_put_be64" label: "qemu_put_be64\\nmigration/qemu-file.h:9:6" shape : ellipse }
    edge: { sourcename: "migration/ram.c:ram_save_setup" targetname: "qemu_put_be64" label: "migration/ram.c:14:5" }
    node: { title: "__indirect_call" label: "Indirect Call Placeholder" shape : ellipse }
    }

A node's title is the plain name for external linkage and
"<translation unit>:<name>" for `static` functions; its label is
"<name>\\n<file>:<line>:<col>" of the definition, or of the declaration for a
function that is not defined in the unit (those get `shape : ellipse`).
A function renamed by an assembler label (`__asm__("x")`, or glibc's
redirects under _FILE_OFFSET_BITS=64: `lseek` -> `lseek64`) has the title
"*<assembler name>" and its source name in the label; the oracle uses the
source name.  An
edge's label is the call site "<file>:<line>:<col>", the line of the called
name.  The `\\n` is a backslash and an `n` in the file.  Calls through
pointers all go to the one node "__indirect_call": they are not direct edges.

Why `-fno-builtin`: without it gcc rewrites or drops calls to library
functions even at -O0 (`printf("x\\n")` becomes a call to `puts` with label
"__builtin_puts\\n<built-in>", `strcpy(b, "ab")`, `abs(x)` and
`strlen("abc")` vanish), so the graph would not be the source's.  Explicit
`__builtin_*` calls (`__builtin_expect`, `va_start`'s `__builtin_va_start`,
`__builtin_unreachable`) are expanded in place and never show; any target
whose name starts with `__builtin_` or whose label says `<built-in>` is
dropped all the same.  `always_inline` functions are inlined even at -O0, so
their calls show as calls of the caller: the fixtures use none.

A fixture source may carry lines `/* oracle-config: -DCONFIG_X -DCONFIG_Y */`:
the file is then compiled once with no extra flags and once per such line,
and the edges of all configurations are united (so that both branches of an
`#ifdef` count).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"
INCLUDE_DIR = FIXTURES_DIR / "include"
GCC_FLAGS = ("-c", "-O0", "-fno-builtin", "-Wall", "-fcallgraph-info")
INDIRECT_CALL = "__indirect_call"

_CONFIG_RE = re.compile(r"^\s*(?:/\*|//)\s*oracle-config:\s*(.*?)\s*(?:\*/)?\s*$")
_FIELD_RE = re.compile(r'(\w+)\s*:\s*"((?:[^"\\]|\\.)*)"')
_LOCATION_RE = re.compile(r"^(.*):(\d+):(\d+)$")


@dataclass(frozen=True)
class Compilation:
    """One gcc run: the source (relative to the fixture), its extra flags, its `.ci` file and gcc's stderr."""

    source: str
    config: tuple[str, ...]
    ci_path: Path
    stderr: str


@dataclass(frozen=True)
class CallSite:
    """A direct call gcc reports: node ids of caller and callee, file (fixture-relative) and line."""

    caller: str
    callee: str
    file: str
    line: int


def fixture_dirs() -> list[Path]:
    """Return every fixture folder (those holding an expected.json), sorted by name."""
    return sorted(p.parent for p in FIXTURES_DIR.glob("*/expected.json"))


def c_sources(fixture_dir: Path) -> list[str]:
    """Return the `.c` files under `fixture_dir`, relative to it with `/` separators, sorted."""
    return sorted(p.relative_to(fixture_dir).as_posix() for p in fixture_dir.rglob("*.c"))


def source_configs(source: Path) -> list[tuple[str, ...]]:
    """Return the flag sets to compile `source` with: the empty one, then one per `oracle-config:` line."""
    configs: list[tuple[str, ...]] = [()]
    for line in source.read_text().splitlines():
        match = _CONFIG_RE.match(line)
        if match:
            configs.append(tuple(match.group(1).split()))
    return configs


def include_flags(fixture_dir: Path) -> list[str]:
    """Return the -I flags for a fixture: the shared fixtures/include, the fixture, its include/ if any, and its
    build/ if any (headers QEMU's build generates, which chaintrace never indexes: build/ is excluded)."""
    flags = ["-I", str(INCLUDE_DIR), "-I", str(fixture_dir)]
    for folder in ("include", "build"):
        if (fixture_dir / folder).is_dir():
            flags += ["-I", str(fixture_dir / folder)]
    return flags


def compile_fixture(fixture_dir: Path, out_dir: Path) -> list[Compilation]:
    """Compile every `.c` of the fixture in every configuration; return the runs.

    Raises RuntimeError when gcc fails on a file.
    """
    fixture_dir = fixture_dir.resolve()
    runs: list[Compilation] = []
    for index, source in enumerate(c_sources(fixture_dir)):
        for config_index, config in enumerate(source_configs(fixture_dir / source)):
            obj = out_dir / f"tu{index}_{config_index}.o"
            cmd = ["gcc", *GCC_FLAGS, *include_flags(fixture_dir), *config, source, "-o", str(obj)]
            proc = subprocess.run(cmd, cwd=fixture_dir, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"gcc failed on {fixture_dir.name}/{source}:\n{proc.stderr}")
            runs.append(Compilation(source, config, obj.with_suffix(".ci"), proc.stderr))
    return runs


def parse_vcg(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Parse one gcc `.ci` file.

    Returns (labels, edges): labels maps each node title to its label (the
    first one seen when a title repeats, as `puts` can), and edges lists
    (sourcename, targetname, label) in file order.  Labels keep gcc's
    two-character `\\n` sequences as they are.
    """
    labels: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        fields = dict(_FIELD_RE.findall(line))
        if line.startswith("node:"):
            labels.setdefault(fields["title"], fields.get("label", ""))
        elif line.startswith("edge:"):
            edges.append((fields["sourcename"], fields["targetname"], fields.get("label", "")))
    return labels, edges


def _relative(path: str, fixture_dir: Path) -> str:
    """Return `path` (as gcc printed it, from inside the fixture) relative to the fixture, `/`-separated."""
    full = (fixture_dir / path).resolve()
    try:
        return full.relative_to(fixture_dir.resolve()).as_posix()
    except ValueError:
        return full.as_posix()


def node_id(title: str, label: str, unit: str, fixture_dir: Path) -> str:
    """Return chaintrace's node id for a gcc node.

    External linkage: the plain name (the source name from the label when
    the title is an assembler name "*x").  `static`: "<file>::<name>" where file
    is where the function is defined (from the label; a `static inline` in a
    header is named after the header), relative to the fixture; the
    translation unit when the label has no location.
    """
    if title.startswith(unit + ":"):
        name = title[len(unit) + 1:]
        parts = label.split("\\n")
        match = _LOCATION_RE.match(parts[1]) if len(parts) > 1 else None
        file = _relative(match.group(1), fixture_dir) if match else unit
        return f"{file}::{name}"
    if title.startswith("*"):
        # An assembler name (`__asm__("x")`, glibc's redirects such as
        # lseek -> *lseek64): the label holds the name the source calls.
        return label.split("\\n")[0]
    return title


def is_builtin(title: str, label: str) -> bool:
    """Return True for targets that are gcc builtins rather than calls written in the source."""
    name = label.split("\\n")[0]
    return title.startswith("__builtin_") or name.startswith("__builtin_") or "<built-in>" in label


def gcc_call_sites(fixture_dir: Path) -> set[CallSite]:
    """Return the direct call sites gcc sees in the fixture, over all its configurations.

    Indirect calls (`__indirect_call`) and builtins are dropped.
    """
    fixture_dir = fixture_dir.resolve()
    sites: set[CallSite] = set()
    with tempfile.TemporaryDirectory(prefix="chaintrace-oracle-") as tmp:
        for run in compile_fixture(fixture_dir, Path(tmp)):
            labels, edges = parse_vcg(run.ci_path.read_text())
            for source, target, location in edges:
                if target == INDIRECT_CALL or is_builtin(target, labels.get(target, "")):
                    continue
                match = _LOCATION_RE.match(location)
                if match is None:
                    raise ValueError(f"unexpected edge label {location!r} in {run.ci_path}")
                sites.add(CallSite(
                    caller=node_id(source, labels.get(source, ""), run.source, fixture_dir),
                    callee=node_id(target, labels.get(target, ""), run.source, fixture_dir),
                    file=_relative(match.group(1), fixture_dir),
                    line=int(match.group(2)),
                ))
    return sites


def gcc_direct_edges(fixture_dir: Path) -> set[tuple[str, str]]:
    """Return the direct edges (from_id, to_id) gcc sees in the fixture."""
    return {(site.caller, site.callee) for site in gcc_call_sites(fixture_dir)}


def gcc_warnings(fixture_dir: Path) -> list[str]:
    """Return gcc's non-empty stderr outputs (with -Wall) for the fixture's files, one string per run."""
    with tempfile.TemporaryDirectory(prefix="chaintrace-oracle-") as tmp:
        return [f"{run.source} {' '.join(run.config)}:\n{run.stderr}"
                for run in compile_fixture(fixture_dir, Path(tmp)) if run.stderr.strip()]


def expected_graph(fixture_dir: Path) -> dict:
    """Return the fixture's expected.json as a dict with keys "edges" and "absent"."""
    return json.loads((fixture_dir / "expected.json").read_text())


def expected_edges(fixture_dir: Path) -> list[dict]:
    """Return the "edges" list of the fixture's expected.json."""
    return expected_graph(fixture_dir)["edges"]
