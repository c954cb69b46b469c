"""gcc as the oracle for the non-direct edges of the fixtures: address-taken functions and indirect call sites.

Every `.c` file of a fixture is compiled with

    gcc -c -O0 -fno-builtin -fdump-ipa-cgraph -fcallgraph-info <include flags> <file>

once per configuration (the empty one, then one per `oracle-config:` line of
the file, as tests/helpers/oracle.py compiles it), the facts of all unioned;
two of gcc's outputs are read:

* the IPA call-graph dump (`<object>.000i.cgraph`): one block per symbol,
  `name/N (name) @0x...`, with a line `  References: f/3 (addr) g/4 (addr)`
  naming the functions whose address the symbol's body or initializer
  takes (a variable's initializer: `.run = backup_run`; a function's body:
  `qemu_thread_create(..., migration_thread, ...)` or `s->cb = fn`);
* the VCG call graph (`.ci`, see tests/oracle.py): a call through a pointer
  is an edge to the node `__indirect_call`, labelled `<file>:<line>:<col>`.

What this proves about chaintrace's expected edges (tests/test_graph.py):
an `ops`, `fnptr` or `dispatch` edge sits at an indirect call of its caller
and goes to a function whose address is taken somewhere in the fixture; a
`thread` or `callback` edge goes to a function whose address its source
takes. gcc says nothing about *which* address reaches which call: that
part of each expectation is read by hand (the `note` of the edge).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from helpers.oracle import c_sources, include_flags, node_id, parse_vcg, source_configs

GCC_FLAGS = ("-c", "-O0", "-fno-builtin", "-fdump-ipa-cgraph", "-fcallgraph-info")
_SYMBOL = re.compile(r"^(\S+)/\d+ \((\S+)\) @0x[0-9a-f]+$")
_REFERENCE = re.compile(r"(\S+)/\d+ \(addr\)")
_INDIRECT = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "__indirect_call" label: "([^"]+):(\d+):\d+" \}')


@dataclass
class IpaFacts:
    """What gcc says about a fixture's function addresses and indirect calls (names as chaintrace's node ids)."""

    address_taken: set[str] = field(default_factory=set)  # functions whose address is taken anywhere
    takes_address: dict[str, set[str]] = field(default_factory=dict)  # function -> functions it takes the address of
    indirect_sites: set[tuple[str, str, int]] = field(default_factory=set)  # (caller, file, line)


def _node_id(name: str, source: str, statics: dict[str, str]) -> str:
    return statics.get(name, name)


def _statics(source_text: str, ci_text: str, source: str, fixture_dir: Path) -> dict[str, str]:
    """Return name -> node id of the `static` functions a unit defines: those its C file spells `static ...(`, and
    every one gcc's `.ci` names `<unit>:<name>` (a function a macro defines, a header's `static inline`)."""
    found = {name: f"{source}::{name}"
             for name in re.findall(r"^static\s+(?:inline\s+)?[\w\s\*]*?\b(\w+)\s*\([^;]*$", source_text, re.M)}
    labels, _ = parse_vcg(ci_text)
    for title, label in labels.items():
        if title.startswith(source + ":"):
            found[title[len(source) + 1:]] = node_id(title, label, source, fixture_dir)
    return found


def ipa_facts(fixture_dir: Path) -> IpaFacts:
    """Compile the fixture's `.c` files and return gcc's address-taken functions and indirect call sites.

    Raises RuntimeError when gcc fails on a file.
    """
    fixture_dir = fixture_dir.resolve()
    facts = IpaFacts()
    with tempfile.TemporaryDirectory() as tmp:
        units = [(source, config) for source in c_sources(fixture_dir) for config in source_configs(fixture_dir / source)]
        for index, (source, config) in enumerate(units):
            out = Path(tmp) / f"tu{index}"
            cmd = ["gcc", *GCC_FLAGS, *config, *include_flags(fixture_dir), source, "-o", f"{out}.o", "-dumpbase", f"{out}"]
            proc = subprocess.run(cmd, cwd=fixture_dir, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"gcc failed on {fixture_dir.name}/{source} {' '.join(config)}:\n{proc.stderr}")
            statics = _statics((fixture_dir / source).read_text(), Path(f"{out}.ci").read_text(), source, fixture_dir)
            dumps = list(Path(tmp).glob(f"tu{index}.*cgraph"))
            if len(dumps) != 1:
                raise RuntimeError(f"gcc wrote {len(dumps)} cgraph dumps for {source}")
            _read_dump(dumps[0].read_text(), source, statics, facts)
            for caller, file, line in _INDIRECT.findall(Path(f"{out}.ci").read_text()):
                name = caller.split(":")[-1]
                if Path(file).is_absolute() and Path(file).is_relative_to(fixture_dir):
                    file = Path(file).relative_to(fixture_dir).as_posix()  # a header found through `-I <fixture>/include`
                facts.indirect_sites.add((_node_id(name, source, statics), file, int(line)))
    return facts


def _read_dump(text: str, source: str, statics: dict[str, str], facts: IpaFacts) -> None:
    symbol = ""
    for line in text.splitlines():
        match = _SYMBOL.match(line)
        if match:
            symbol = _node_id(match.group(2), source, statics)
        elif line.startswith("  References:") and symbol:
            targets = {_node_id(name, source, statics) for name in _REFERENCE.findall(line)}
            facts.takes_address.setdefault(symbol, set()).update(targets)
            facts.address_taken.update(targets)
