"""Score chaintrace's call graph of QEMU 10.2 against the compiler and runtime oracles of bench/oracle/10.2/.

    python bench/oracle_score.py [--tree TREE] [--cache DIR] [--data DIR] [--json]

The oracle data (made once by `make oracle`, see bench/oracle/10.2/README.md):

- direct edges: every call expression gcc saw in a real x86_64-softmmu build (`-fcallgraph-info`),
  keyed (caller, callee, file, line) with chaintrace's node ids (`file::name` for `static`).  A call
  of an external function the tree defines more than once (a stub beside the real one) has no callee
  file in the data; it counts as a call of the tree's function.
  Compared over the files the build compiled (its translation units and every file holding a
  function it defined; not subprojects/, which chaintrace skips), for callees defined in the tree
  (by gcc's build, or by chaintrace's node file when gcc never calls that name as a library
  function), and for callers the build compiled: a call in a function the configuration left out
  cannot be judged and is only counted (`extras_uncompiled_callers`); so is a call on a line of an `#if`
  branch the build skipped (`extras_skipped_branches`): chaintrace reads every branch, and the build's
  preprocessed units (live-lines.tsv.gz: the lines `gcc -E` kept) show that no unit compiled that branch
  (`skipped_branch`).  `precision_all` counts those as wrong.  Whole tree and migration/.
- indirect call sites: every call through a pointer gcc saw; found when chaintrace has an `ops` or
  `fnptr` edge site, or an unresolved-call diagnostic, at that file:line.
- runtime edges: caller -> callee pairs of tree functions recorded while the instrumented build ran
  real scenarios; found when the graph has an edge of any kind between the two, or, for a callee gcc
  inlined (an `always_inline` function: never a direct callee in its data, never address-taken), a
  path of two edges through a function that calls it: the recorder names the caller of the function
  gcc inlined it into (`inlined_pairs`).  Also given for
  the pairs a scenario made beyond the plain start/query/quit run (query-status).

Misses and extras are grouped by a reason computed from the data and the source (first that
applies), each with a count and one example.  `--json` prints the figures as JSON.  The functions
`load_oracle`, `graph_facts` and `score` are what tests/test_oracle_qemu.py calls.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "bench" / "oracle" / "10.2"
INDIRECT_KINDS = ("ops", "fnptr", "dispatch")
BASELINE_SCENARIO = "query-status"
NOT_INDEXED = ("subprojects/", "roms/")     # folders chaintrace skips (README: index)
# gcc calls a variable's cleanup function at the end of its scope, at the declaration's line.
CLEANUP_PREFIXES = ("glib_autoptr_cleanup_", "glib_auto_cleanup_", "glib_autoptr_clear_", "glib_listautoptr_cleanup_",
                    "glib_slistautoptr_cleanup_", "glib_queueautoptr_cleanup_")
CLEANUP_WORDS = frozenset({"g_auto", "g_autoptr", "g_autofree", "g_autolist", "g_autoslist", "g_autoqueue",
                           "QEMU_LOCK_GUARD", "WITH_QEMU_LOCK_GUARD", "RCU_READ_LOCK_GUARD",
                           "WITH_RCU_READ_LOCK_GUARD", "BQL_LOCK_GUARD", "WITH_BQL_LOCK_GUARD"})
_DEFINE_RE = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)", re.M)
_IDENT_RE = re.compile(r"[A-Za-z_]\w*")


def read_tsv(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as src:
        header = src.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in src]


def _in_tree(file: str) -> bool:
    """True for a path of the QEMU tree (not a build-generated `<build>/` file, not a system header)."""
    return bool(file) and not file.startswith("/") and not file.startswith("<")


def node_id(name: str, file: str, linkage: str) -> str:
    return f"{file}::{name}" if linkage == "static" else name


@dataclass
class Oracle:
    """The committed oracle data, keyed the way chaintrace keys its graph."""

    direct: set[tuple[str, str, str, int]]              # (caller, callee, file, line), tree callees only
    direct_cols: dict[tuple[str, str, str, int], int]   # col of each
    indirect: set[tuple[str, int]]                      # (file, line)
    indirect_callers: dict[tuple[str, int], str]
    compiled_files: set[str]
    defined: set[str]                                   # node ids of tree functions gcc compiled
    external: set[str]                                  # names gcc only calls, never defines in the tree (libc, glib)
    address_taken: set[str]                             # node ids of functions whose address the tree takes
    called: set[str] = field(default_factory=set)       # node ids gcc's data has a direct call of (any file)
    runtime: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # scenario -> {(caller, callee)}
    scenarios: dict = field(default_factory=dict)       # runtime-scenarios.json
    build: dict = field(default_factory=dict)           # build.json
    live: dict = field(default_factory=dict)            # file -> sorted (first, last) line ranges gcc -E kept


def load_oracle(data: Path = DATA_DIR, program: str = "system") -> Oracle:
    """Read bench/oracle/10.2/*.tsv.gz, keeping what belongs to `program` (queries/qemu/programs.toml).

    The build also compiles tools (qemu-img, qemu-io); the graph chaintrace answers from by default is the
    system emulator's, so the oracle is read for the same files.
    """
    from chaintrace.graph.programs import program_filter

    in_program = program_filter(program)

    def in_tree(file: str) -> bool:
        return _in_tree(file) and in_program(file)

    functions = read_tsv(data / "functions.tsv.gz")
    units = {row["unit"] for row in read_tsv(data / "units.tsv.gz")}
    defined = {node_id(f["name"], f["file"], f["linkage"]) for f in functions if in_tree(f["file"])}
    compiled = {u for u in units if in_tree(u)} | {f["file"] for f in functions if in_tree(f["file"])}
    compiled = {f for f in compiled if not f.startswith(NOT_INDEXED)}
    defined_names = {f["name"] for f in functions if in_tree(f["file"])}
    # An external function the tree defines twice (a stub and the real one: qemu_in_main_thread, bql_lock_impl)
    # has no callee_file in gcc's data (which definition links is the linker's choice); it is the tree's all the same.
    extern_names = {f["name"] for f in functions if in_tree(f["file"]) and f["linkage"] != "static"}
    direct, cols, external = set(), {}, set()
    called = set()
    for e in read_tsv(data / "direct-edges.tsv.gz"):
        called.add(node_id(e["callee"], e["callee_file"], e["callee_linkage"]))
        if not in_tree(e["callee_file"]) and e["callee"] not in defined_names:
            external.add(e["callee"])
        tree_callee = in_tree(e["callee_file"]) or (
            not e["callee_file"] and e["callee_linkage"] != "static" and e["callee"] in extern_names)
        if not (in_tree(e["file"]) and in_tree(e["caller_file"]) and tree_callee):
            continue
        key = (node_id(e["caller"], e["caller_file"], e["caller_linkage"]),
               node_id(e["callee"], e["callee_file"], e["callee_linkage"]), e["file"], int(e["line"]))
        direct.add(key)
        cols.setdefault(key, int(e["col"]))
    indirect, indirect_callers = set(), {}
    for s in read_tsv(data / "indirect-sites.tsv.gz"):
        if in_tree(s["file"]) and in_tree(s["caller_file"]):
            key = (s["file"], int(s["line"]))
            indirect.add(key)
            indirect_callers.setdefault(key, s["caller"])
    runtime: dict[str, set[tuple[str, str]]] = defaultdict(set)
    runtime_path = data / "runtime-edges.tsv.gz"
    if runtime_path.exists():
        for r in read_tsv(runtime_path):
            if not (in_program(r["caller_file"]) and in_program(r["callee_file"])):
                continue
            runtime[r["scenario"]].add((node_id(r["caller"], r["caller_file"], r.get("caller_linkage", "extern")),
                                        node_id(r["callee"], r["callee_file"], r.get("callee_linkage", "extern"))))
    scenarios = {}
    if (data / "runtime-scenarios.json").exists():
        scenarios = json.loads((data / "runtime-scenarios.json").read_text())
    build = json.loads((data / "build.json").read_text()) if (data / "build.json").exists() else {}
    live = {}
    if (data / "live-lines.tsv.gz").exists():
        for row in read_tsv(data / "live-lines.tsv.gz"):
            live[row["file"]] = [tuple(int(n) for n in part.split("-")) for part in row["lines"].split(",") if part]
    address_taken = {node_id(a["function"], a["function_file"], a["function_linkage"])
                     for a in read_tsv(data / "address-taken.tsv.gz") if in_tree(a["function_file"])}
    return Oracle(direct, cols, indirect, indirect_callers, compiled, defined, external, address_taken,
                  called, dict(runtime), scenarios, build, live)


@dataclass
class GraphFacts:
    """What the scorer needs of chaintrace's graph."""

    nodes: dict[str, str]                               # node id -> file ("" when unknown)
    direct: set[tuple[str, str, str, int]]
    other_sites: dict[tuple[str, str, str, int], str]   # non-direct edge sites -> kind
    indirect_sites: set[tuple[str, int]]                # ops/fnptr sites and diagnostics
    pairs: set[tuple[str, str]]                         # any edge kind


def graph_facts(tg) -> GraphFacts:
    """Collect the facts of an `api.tree_graph(...)` result (uses only `.graph.graph` and `.graph.diagnostics`)."""
    cg = tg.graph
    g = cg.graph
    nodes = {n: (d.get("file") or "") for n, d in g.nodes(data=True)}
    direct, other, indirect, pairs = set(), {}, set(), set()
    for u, v, kind, d in g.edges(keys=True, data=True):
        pairs.add((u, v))
        for s in d.get("sites") or ():
            file, line = s.get("file"), s.get("line")
            if file is None or line is None:
                continue
            key = (u, v, file, int(line))
            if kind == "direct":
                direct.add(key)
            else:
                other.setdefault(key, kind)
                if kind in INDIRECT_KINDS:
                    indirect.add((file, int(line)))
    for diag in cg.diagnostics:
        if diag.get("file") and diag.get("line") is not None:
            indirect.add((diag["file"], int(diag["line"])))
    return GraphFacts(nodes, direct, other, indirect, pairs)


class Source:
    """Lines and macro names of the tree, read lazily."""

    def __init__(self, tree: Path | None):
        self.tree = tree
        self.lines: dict[str, list[str]] = {}
        self._macros: set[str] | None = None

    def line(self, file: str, line: int) -> str:
        if self.tree is None:
            return ""
        if file not in self.lines:
            try:
                self.lines[file] = (self.tree / file).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                self.lines[file] = []
        lines = self.lines[file]
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def word_at(self, file: str, line: int, col: int) -> str:
        text = self.line(file, line)
        match = _IDENT_RE.match(text, max(col - 1, 0))
        return match.group(0) if match else ""

    @property
    def macros(self) -> set[str]:
        if self._macros is None:
            self._macros = set()
            if self.tree is not None:
                for path in self.tree.rglob("*"):
                    if path.suffix in (".h", ".c", ".inc") and path.is_file():
                        try:
                            self._macros.update(m.decode() for m in _DEFINE_RE.findall(path.read_bytes()))
                        except OSError:
                            pass
        return self._macros


_DIRECTIVE_RE = re.compile(r"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b")


def skipped_branch(oracle: Oracle, source: Source, file: str, line: int) -> bool:
    """Return True when `line` of `file` lies in an `#if` branch the build skipped: the file was compiled (some
    unit's `gcc -E` kept lines of it) and no line of the innermost branch around `line` was kept."""
    ranges = oracle.live.get(file)
    if not ranges or source.tree is None:
        return False
    source.line(file, 1)  # reads the file
    lines = source.lines.get(file, [])
    start = end = None
    depth = 0
    for n in range(line - 1, 0, -1):  # the directive opening the branch: the nearest one above at this depth
        match = _DIRECTIVE_RE.match(lines[n - 1])
        if not match:
            continue
        kind = match.group(1)
        if kind == "endif":
            depth += 1
        elif depth == 0:
            start = n
            break
        elif kind.startswith("if"):
            depth -= 1
    depth = 0
    for n in range(line + 1, len(lines) + 1):  # the directive closing it
        match = _DIRECTIVE_RE.match(lines[n - 1])
        if not match:
            continue
        kind = match.group(1)
        if kind.startswith("if"):
            depth += 1
        elif depth == 0:
            end = n
            break
        elif kind == "endif":
            depth -= 1
    if start is None or end is None:
        return False
    i = bisect.bisect_right(ranges, (start, 1 << 30)) - 1  # the last range starting at or before `start`
    for first, last in ranges[max(i, 0):]:
        if first >= end:
            break
        if last > start:
            return False  # some line of the branch was compiled
    return True


def _name(node: str) -> str:
    return node.rsplit("::", 1)[-1]


def _classes(items, reason) -> dict:
    counts: Counter = Counter()
    examples: dict[str, str] = {}
    for item in sorted(items):
        why = reason(item)
        counts[why] += 1
        examples.setdefault(why, "{}:{}  {} -> {}".format(item[2], item[3], item[0], item[1]))
    return {why: {"count": n, "example": examples[why]} for why, n in counts.most_common()}


def score_direct(oracle: Oracle, facts: GraphFacts, source: Source, prefix: str = "") -> dict:
    """Precision and recall of direct edges on (caller, callee, file, line), with miss/extra classes."""
    def tree_callee(node: str) -> bool:
        # gcc's tree functions, or a node chaintrace places in the tree whose name gcc never
        # calls as a library function (a `memset` node from some #define is still libc's memset).
        if node in oracle.defined:
            return True
        return _name(node) not in oracle.external and _in_tree(facts.nodes.get(node, ""))

    gold = {e for e in oracle.direct if e[2] in oracle.compiled_files and e[2].startswith(prefix)}
    ours_all = {e for e in facts.direct if e[2] in oracle.compiled_files and e[2].startswith(prefix)
                and tree_callee(e[1])}
    ours = {e for e in ours_all if e[0] in oracle.defined}
    uncompiled = ours_all - ours
    hits = gold & ours
    misses = gold - ours
    skipped = {e for e in ours - gold if skipped_branch(oracle, source, e[2], e[3])}
    extras = ours - gold - skipped
    ours_by_site = defaultdict(set)
    ours_by_pair_file = defaultdict(set)
    for e in facts.direct:
        ours_by_site[(e[0], e[2], e[3])].add(e[1])
        ours_by_pair_file[(e[0], e[1], e[2])].add(e[3])
    gold_by_site = defaultdict(set)
    gold_by_pair_file = defaultdict(set)
    gold_lines = set()
    for e in oracle.direct:
        gold_by_site[(e[0], e[2], e[3])].add(e[1])
        gold_by_pair_file[(e[0], e[1], e[2])].add(e[3])
        gold_lines.add((e[2], e[3]))

    def miss_reason(e) -> str:
        caller, callee, file, line = e
        word = source.word_at(file, line, oracle.direct_cols.get(e, 0))
        if _name(callee).startswith(CLEANUP_PREFIXES) or word in CLEANUP_WORDS:
            return "implicit cleanup call (g_auto/g_autoptr/lock guard: __attribute__((cleanup)))"
        if caller not in facts.nodes:
            return "caller missing from graph"
        if callee not in facts.nodes:
            return "callee missing from graph"
        if ours_by_pair_file.get((caller, callee, file)):
            return "line differs"
        if (caller, callee, file, line) in facts.other_sites:
            return f"edge kind is {facts.other_sites[(caller, callee, file, line)]}, not direct"
        if word and word != _name(callee):
            return "call inside a macro expansion (site names the macro)"
        if ours_by_site.get((caller, file, line)):
            others = ours_by_site[(caller, file, line)]
            if any(_name(o) == _name(callee) for o in others):
                return "callee resolved to another node of the same name"
            return "graph calls another function at this site"
        return "no edge at this site"

    def extra_reason(e) -> str:
        caller, callee, file, line = e
        name = _name(callee)
        if not _IDENT_RE.fullmatch(name) or not _IDENT_RE.fullmatch(_name(caller)):
            return "node name is not a C identifier"
        if gold_by_pair_file.get((caller, callee, file)):
            return "line differs"
        same_site = gold_by_site.get((caller, file, line), set())
        if any(_name(c) == name for c in same_site):
            return "callee resolved to another node of the same name"
        if callee not in oracle.defined and name in source.macros:
            return "callee is a macro name"
        if (file, line) in oracle.indirect:
            return "gcc sees an indirect call here"
        if same_site:
            return "gcc calls another function at this site"
        if (file, line) not in gold_lines:
            return "gcc has no call on this line (configuration, or not a call)"
        return "other"

    return {
        "gold": len(gold),
        "graph": len(ours) - len(skipped),
        "matched": len(hits),
        "recall": round(100.0 * len(hits) / len(gold), 2) if gold else 0.0,
        "precision": round(100.0 * len(hits) / (len(ours) - len(skipped)), 2) if len(ours) > len(skipped) else 0.0,
        "precision_all": round(100.0 * len(hits) / len(ours), 2) if ours else 0.0,
        "extras_uncompiled_callers": len(uncompiled),
        "extras_skipped_branches": len(skipped),
        "skipped_example": "{2}:{3}  {0} -> {1}".format(*min(skipped)) if skipped else "",
        "misses": _classes(misses, miss_reason),
        "extras": _classes(extras, extra_reason),
    }


def score_indirect(oracle: Oracle, facts: GraphFacts) -> dict:
    gold = {s for s in oracle.indirect if s[0] in oracle.compiled_files}
    found = gold & facts.indirect_sites
    missing = sorted(gold - found)
    by_dir = Counter(s[0].split("/")[0] if "/" in s[0] else "." for s in missing)
    return {
        "gold": len(gold),
        "found": len(found),
        "recall": round(100.0 * len(found) / len(gold), 2) if gold else 0.0,
        "missing_by_top_folder": dict(by_dir.most_common(12)),
        "example_missing": [f"{f}:{l} in {oracle.indirect_callers.get((f, l), '?')}" for f, l in missing[:5]],
    }


def inlined_pairs(oracle: Oracle, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Return the pairs (x, c) the running program reports for a call f -> c that gcc inlined into f, where the
    graph has x -> f -> c.

    gcc inlines an `always_inline` function even at -O0 (`qemu_make_lockable`, which every QEMU_LOCK_GUARD
    calls) and still instruments it, but the call site it hands `__cyg_profile_func_enter` is the return
    address of the function it was inlined into, which lies in that function's caller: the recorder sees
    x -> c for f -> c.  Such a callee is the tree's, is never a direct callee in gcc's data (every call of
    it was inlined) and never address-taken.
    """
    inlined = {c for _, c in set().union(*oracle.runtime.values())
               if c in oracle.defined and c not in oracle.called and c not in oracle.address_taken} if oracle.runtime else set()
    into: dict[str, set[str]] = defaultdict(set)   # function -> its callers in the graph
    for x, f in pairs:
        into[f].add(x)
    return {(x, c) for f, c in pairs if c in inlined for x in into.get(f, ())}


def score_runtime(oracle: Oracle, facts: GraphFacts) -> dict:
    out = {}
    direct_pairs = {(e[0], e[1]) for e in oracle.direct}
    # Start-up and the idle guest give most pairs of every scenario: "specific" pairs are those the
    # plain start/query/quit run (query-status) did not make.
    baseline = oracle.runtime.get(BASELINE_SCENARIO, set())
    graph_pairs = facts.pairs | inlined_pairs(oracle, facts.pairs)
    for scenario in sorted(oracle.runtime):
        pairs = oracle.runtime[scenario]
        found = pairs & graph_pairs
        reasons: Counter = Counter()
        examples: dict[str, str] = {}
        for caller, callee in sorted(pairs - found):
            why = ("caller missing from graph" if caller not in facts.nodes
                   else "callee missing from graph" if callee not in facts.nodes
                   else "no edge: gcc has it as a direct call" if (caller, callee) in direct_pairs
                   else "no edge: callee address-taken (a call through a pointer)" if callee in oracle.address_taken
                   else "no edge, no direct call in gcc's data, callee never address-taken")
            reasons[why] += 1
            examples.setdefault(why, f"{caller} -> {callee}")
        specific = pairs - baseline if scenario != BASELINE_SCENARIO else set()
        out[scenario] = {
            "pairs": len(pairs),
            "found": len(found),
            "recall": round(100.0 * len(found) / len(pairs), 2) if pairs else 0.0,
            "specific_pairs": len(specific),
            "specific_recall": round(100.0 * len(specific & graph_pairs) / len(specific), 2) if specific else 0.0,
            "misses": {why: {"count": n, "example": examples[why]} for why, n in reasons.most_common()},
        }
    all_pairs = set().union(*oracle.runtime.values()) if oracle.runtime else set()
    if all_pairs:
        found = all_pairs & graph_pairs
        out["(all scenarios)"] = {"pairs": len(all_pairs), "found": len(found),
                                  "recall": round(100.0 * len(found) / len(all_pairs), 2), "misses": {},
                                  "found_through_inlined": len(found - facts.pairs)}
    return out


def score(oracle: Oracle, facts: GraphFacts, tree: Path | None = None) -> dict:
    """Return every figure: direct (whole tree, migration/), indirect site recall, runtime recall per scenario."""
    source = Source(tree)
    return {
        "direct": {"tree": score_direct(oracle, facts, source), "migration": score_direct(oracle, facts, source, "migration/")},
        "indirect": score_indirect(oracle, facts),
        "runtime": score_runtime(oracle, facts),
    }


def default_tree() -> Path:
    import subprocess

    out = subprocess.run([str(REPO / "scripts" / "fetch-qemu"), "--print-path", "sid"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return Path(out)


def figures_for(tree: Path, cache: Path | None = None, data: Path = DATA_DIR) -> dict:
    """Index `tree` (a no-op when fresh), load its graph and score it."""
    from chaintrace import api

    with api.open_store(cache) as store:
        tg = api.tree_graph(store, tree)
        facts = graph_facts(tg)
    return score(load_oracle(data, tg.program), facts, tree)


def print_report(figures: dict) -> None:
    for scope, d in figures["direct"].items():
        print(f"direct edges, {'whole tree' if scope == 'tree' else scope + '/'}: "
              f"recall {d['recall']:.2f} % ({d['matched']}/{d['gold']}), "
              f"precision {d['precision']:.2f} % ({d['matched']}/{d['graph']}); "
              f"{d['extras_uncompiled_callers']} more graph edges in callers the build did not compile, "
              f"{d['extras_skipped_branches']} in #if branches it skipped (precision counting them: "
              f"{d['precision_all']:.2f} %){'; e.g. ' + d['skipped_example'] if d['skipped_example'] else ''}")
        for title, classes in (("misses", d["misses"]), ("extras", d["extras"])):
            print(f"  {title}:")
            for why, c in classes.items():
                print(f"    {c['count']:6d}  {why}   e.g. {c['example']}")
    i = figures["indirect"]
    print(f"indirect call sites: recall {i['recall']:.2f} % ({i['found']}/{i['gold']}); "
          f"missing by folder {i['missing_by_top_folder']}")
    for example in i["example_missing"]:
        print(f"    e.g. {example}")
    print("runtime edges (any edge kind):")
    for scenario, r in figures["runtime"].items():
        specific = (f"; pairs beyond query-status: {r['specific_recall']:.2f} % of {r['specific_pairs']}"
                    if r.get("specific_pairs") else "")
        print(f"  {scenario:30s} recall {r['recall']:6.2f} % ({r['found']}/{r['pairs']}){specific}")
        for why, c in r["misses"].items():
            print(f"      {c['count']:6d}  {why}   e.g. {c['example']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, help="the QEMU 10.2.x tree (default: scripts/fetch-qemu --print-path sid)")
    parser.add_argument("--cache", type=Path, help="chaintrace cache folder (default: chaintrace's)")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="oracle data folder (default bench/oracle/10.2)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    tree = args.tree or default_tree()
    figures = figures_for(tree, args.cache, args.data)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
