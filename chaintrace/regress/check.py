"""Trace specs as data (`queries/qemu/*.toml`) and the expectations a trace must meet.

A spec file holds one spec (see docs/checks.md):

    name = "migrate-threshold-size"
    from = "qmp:migrate"
    to = "assign:threshold_size"
    [options]   max_paths, max_depth, via, avoid, edges, sites
    [expect]    reach, through, through_all, edges_allowed, edges_required,
                max_length, min_paths, max_paths, statement, target_file
    [versions.">=10.0"]   note, skip, from, to, [..options], [..expect]

Version tables apply, in file order, to the trees whose VERSION matches
their selector: `7.2` (that release family), `10.0.13` (that release),
`>=10.0`, `<10.0`, `>7.2,<=10.0` (every comparison must hold).  A selector
compares as many version parts as it names.

`evaluate(expect, document)` checks a trace document
(`chaintrace.render.document.trace_document`) and returns the failures, each
naming the expectation, the path that broke it and where.
"""

from __future__ import annotations

import re
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chaintrace.errors import UsageError
from chaintrace.regress.snapshot import TraceQuery

OPTION_KEYS = {"max_paths": int, "max_depth": int, "via": list, "avoid": list, "edges": list, "sites": str}
EXPECT_KEYS = {"reach": bool, "through": list, "through_all": list, "edges_allowed": list, "edges_required": list,
               "max_length": int, "min_paths": int, "max_paths": int, "statement": str, "target_file": str}
VERSION_KEYS = {"note", "skip", "from", "to", "options", "expect"}
_SELECTOR = re.compile(r"(>=|<=|==|!=|>|<|=)?\s*(\d+(?:\.\d+)*)")


@dataclass
class Spec:
    """A trace spec read from a TOML file; `resolve(version)` gives what to run and expect on one tree."""

    name: str
    path: Path
    source: str
    target: str
    description: str = ""
    options: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)
    versions: list[tuple[str, dict]] = field(default_factory=list)

    def resolve(self, version: str) -> "Resolved":
        """Return the query, expectations and notes for a tree of `version` (version tables applied in order)."""
        source, target, options, expect = self.source, self.target, dict(self.options), dict(self.expect)
        notes, skip = [], ""
        for selector, table in self.versions:
            if not version_matches(selector, version):
                continue
            source, target = table.get("from", source), table.get("to", target)
            options.update(table.get("options", {}))
            expect.update(table.get("expect", {}))
            if table.get("note"):
                notes.append(f"[{selector}] {table['note']}")
            skip = table.get("skip", skip)
        query = TraceQuery(source, target, options.get("max_paths", 50), options.get("max_depth"),
                           tuple(options.get("via", ())), tuple(options.get("avoid", ())), tuple(options.get("edges", ())),
                           options.get("sites", ""))
        return Resolved(self, query, expect, notes, skip)


@dataclass
class Resolved:
    """A spec as it applies to one version: the query to run, the expectations, notes and a skip reason."""

    spec: Spec
    query: TraceQuery
    expect: dict
    notes: list[str]
    skip: str = ""


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in text.strip().split("."))


def version_matches(selector: str, version: str) -> bool:
    """Return True when `version` ("10.2.2") satisfies `selector` ("10.2", ">=10.0", ">7.2,<10.0")."""
    if not version:
        return False
    for clause in selector.split(","):
        match = _SELECTOR.fullmatch(clause.strip())
        if match is None:
            raise UsageError(f"bad version selector {selector!r} (e.g. \"7.2\", \">=10.0\", \">=7.2,<10.0\")")
        op, wanted = match.group(1) or "==", _version_key(match.group(2))
        have = (_version_key(version) + (0,) * len(wanted))[:len(wanted)]
        ok = {"==": have == wanted, "=": have == wanted, "!=": have != wanted, ">=": have >= wanted,
              "<=": have <= wanted, ">": have > wanted, "<": have < wanted}[op]
        if not ok:
            return False
    return True


def _checked(table: dict, allowed: dict, where: str) -> dict:
    for key, value in table.items():
        if key not in allowed:
            raise UsageError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        kind = allowed[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UsageError(f"{where}: {key} must be {kind.__name__}, not {type(value).__name__}")
        if kind is list and not all(isinstance(item, str) for item in value):
            raise UsageError(f"{where}: {key} must be a list of strings")
    for key in ("statement", "target_file", "sites"):
        try:
            re.compile(table.get(key, ""))
        except re.error as error:
            raise UsageError(f"{where}: {key} is not a regular expression: {error}") from None
    return dict(table)


def load_spec(path: Path) -> Spec:
    """Return the spec in a TOML file; raises UsageError (one line, naming file and key) when it is malformed."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read spec {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: {error}") from None
    known = {"name", "description", "from", "to", "options", "expect", "versions"}
    for key in data:
        if key not in known:
            raise UsageError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    for key in ("from", "to"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise UsageError(f"{path}: `{key}` is required (a string)")
    versions = []
    for selector, table in data.get("versions", {}).items():
        where = f"{path}: [versions.{selector!r}]"
        version_matches(selector, "0")  # validates the selector
        if not isinstance(table, dict) or set(table) - VERSION_KEYS:
            raise UsageError(f"{where}: keys must be among {', '.join(sorted(VERSION_KEYS))}")
        table = dict(table)
        table["options"] = _checked(table.get("options", {}), OPTION_KEYS, f"{where}.options")
        table["expect"] = _checked(table.get("expect", {}), EXPECT_KEYS, f"{where}.expect")
        versions.append((selector, table))
    return Spec(
        name=str(data.get("name") or path.stem), path=path, source=data["from"], target=data["to"],
        description=str(data.get("description", "")),
        options=_checked(data.get("options", {}), OPTION_KEYS, f"{path}: [options]"),
        expect=_checked(data.get("expect", {}), EXPECT_KEYS, f"{path}: [expect]"),
        versions=versions,
    )


# -- expectations ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One broken expectation: which (`expectation`) and a one-line `message` saying which path and where."""

    expectation: str
    message: str


def _names(document: dict) -> dict[str, str]:
    return {node["id"]: node["name"] for node in document.get("nodes", [])}


def _where(document: dict) -> dict[str, str]:
    return {node["id"]: f"{node['file']}:{node['line']}" for node in document.get("nodes", []) if node["file"]}


def _matches(wanted: str, node: str, names: dict[str, str]) -> bool:
    return wanted == node or wanted == names.get(node)


def _prefix(path: list[str], wanted: list[str], names: dict[str, str]) -> tuple[int, int]:
    """Return (how many of `wanted` the path passes in order, index in the path of the last one passed)."""
    done, last = 0, -1
    for index, node in enumerate(path):
        if done < len(wanted) and _matches(wanted[done], node, names):
            done, last = done + 1, index
    return done, last


def _show(path: list[str], names: dict[str, str], limit: int = 12) -> str:
    shown = [names.get(node, node) for node in path]
    if len(shown) > limit:
        shown = shown[:limit // 2] + ["..."] + shown[-limit // 2:]
    return " -> ".join(shown)


def _through(wanted: list[str], paths: list[list[str]], document: dict, every: bool) -> Failure | None:
    names, where = _names(document), _where(document)
    scored = [(_prefix(path, wanted, names), index) for index, path in enumerate(paths)]
    broken = [(score, index) for score, index in scored if score[0] < len(wanted)]
    if not broken or (not every and len(broken) < len(paths)):
        return None
    if every:
        (done, last), index = broken[0]
    else:  # the path that gets furthest, the shortest of those
        (done, last), index = max(broken, key=lambda item: (item[0][0], -len(paths[item[1]]), -item[1]))
    missing, path = wanted[done], paths[index]
    after = f" after {names.get(path[last], path[last])} ({where.get(path[last], 'external')})" if done else ""
    shown = f"[path {index + 1}: {_show(path, names)}]"
    if every:
        return Failure("through_all", f"path {index + 1} of {len(paths)} does not pass {missing}{after} {shown}")
    on_any = any(_matches(missing, node, names) for p in paths for node in p)
    why = f"never comes{after}" if on_any else "is on no path"
    return Failure("through", f"no path passes {' -> '.join(wanted)}: {missing} {why}; closest {shown}")


def _hop_site(document: dict, src: str, dst: str) -> str:
    for edge in document.get("edges", []):
        if edge["src"] == src and edge["dst"] == dst and edge.get("sites"):
            site = edge["sites"][0]
            return f"{site['file']}:{site['line']}"
    return "?"


def _edge_failures(expect: dict, paths: list[dict], document: dict) -> list[Failure]:
    names, failures = _names(document), []
    allowed = expect.get("edges_allowed")
    if allowed:
        for index, path in enumerate(paths):
            for src, dst, kinds in zip(path["nodes"], path["nodes"][1:], path["kinds"]):
                if not set(kinds) & set(allowed):
                    failures.append(Failure("edges_allowed", (
                        f"path {index + 1} hop {names.get(src, src)} -> {names.get(dst, dst)} at "
                        f"{_hop_site(document, src, dst)} is {'/'.join(kinds)}, not {', '.join(allowed)} "
                        f"[path {index + 1}: {_show(path['nodes'], names)}]")))
                    break
            if failures:
                break
    for kind in expect.get("edges_required", []):
        for index, path in enumerate(paths):
            if not any(kind in hop for hop in path["kinds"]):
                failures.append(Failure("edges_required", (
                    f"path {index + 1} of {len(paths)} has no {kind} edge [path {index + 1}: {_show(path['nodes'], names)}]")))
                break
    return failures


def evaluate(expect: dict, document: dict) -> list[Failure]:
    """Return the expectations a trace document breaks (empty: it passes), in the order of EXPECT_KEYS."""
    reached_targets = [t for t in document.get("targets", []) if t["paths"]]
    paths = sorted(document.get("paths", []), key=lambda p: (len(p["nodes"]), p["nodes"]))  # stable "path N"
    node_paths = [p["nodes"] for p in paths]
    total = document.get("counts", {}).get("paths_total", 0)
    exact = document.get("counts", {}).get("exact", True)
    failures: list[Failure] = []
    if not expect.get("reach", True):
        if reached_targets:
            names = _names(document)
            failures.append(Failure("reach", f"expected no path, found {total}: {_show(node_paths[0], names)}"))
        return failures
    if not reached_targets:
        sites = ", ".join(f"{t['file']}:{t['line']}" for t in document.get("targets", [])[:4])
        failures.append(Failure("reach", f"no path from {document.get('query', {}).get('entry', '?')} to any of "
                                         f"{len(document.get('targets', []))} target site(s) ({sites})"))
        return failures
    for key, every in (("through", False), ("through_all", True)):
        if expect.get(key):
            failure = _through(expect[key], node_paths, document, every)
            if failure:
                failures.append(failure)
    failures += _edge_failures(expect, paths, document)
    shortest = min(len(path) - 1 for path in node_paths) if node_paths else 0
    if "max_length" in expect and shortest > expect["max_length"]:
        path = min(node_paths, key=len)
        failures.append(Failure("max_length", f"shortest path has {shortest} hops, more than {expect['max_length']} "
                                              f"[{_show(path, _names(document))}]"))
    bound = "" if exact else " (a lower bound)"
    if "min_paths" in expect and total < expect["min_paths"]:
        failures.append(Failure("min_paths", f"{total} path(s){bound}, fewer than {expect['min_paths']}"))
    if "max_paths" in expect and total > expect["max_paths"]:
        failures.append(Failure("max_paths", f"{total} path(s){bound}, more than {expect['max_paths']}"))
    if "statement" in expect and not any(re.search(expect["statement"], t["statement"]) for t in reached_targets):
        seen = "; ".join(f"{t['statement']} ({t['file']}:{t['line']})" for t in reached_targets[:3])
        failures.append(Failure("statement", f"no reached target statement matches /{expect['statement']}/: {seen}"))
    if "target_file" in expect and not any(re.search(expect["target_file"], t["file"]) for t in reached_targets):
        seen = ", ".join(sorted({t["file"] for t in reached_targets}))
        failures.append(Failure("target_file", f"reached targets are in {seen}, not /{expect['target_file']}/"))
    return failures


def error_failure(expect: dict, error: str) -> list[Failure]:
    """Return the failures of a trace that could not run (`error`: unknown entry, target or via function)."""
    if not expect.get("reach", True) and error.startswith("no site in"):
        return []  # no target at all: certainly not reached
    return [Failure("reach", error)]


# -- running checks on trees ----------------------------------------------------------------------------


@dataclass
class CheckResult:
    """One spec (or snapshot) on one tree: `status` pass, fail, error (the trace could not run) or skip."""

    name: str
    source: str  # the spec or snapshot file
    tree: str
    version: str
    status: str
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    query: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """Return the result as JSON-able data (failures as {expectation, message})."""
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def _summary(document: dict | None) -> dict:
    if not document:
        return {}
    paths = [p["nodes"] for p in document["paths"]]
    return {"paths_total": document["counts"]["paths_total"], "exact": document["counts"]["exact"],
            "shortest": min((len(p) - 1 for p in paths), default=None),
            "targets": sorted({f"{t['file']}:{t['line']}" for t in document["targets"] if t["paths"]})}


def check_spec(tg, spec: Spec) -> CheckResult:
    """Return the result of one spec on one tree (`api.TreeGraph`, its store open)."""
    from chaintrace.regress.snapshot import run_query

    start = time.perf_counter()
    resolved = spec.resolve(tg.version)
    result = CheckResult(spec.name, str(spec.path), str(tg.root), tg.version, "pass", notes=resolved.notes,
                         query=resolved.query.as_dict())
    if resolved.skip:
        result.status, result.notes = "skip", [*resolved.notes, f"skipped: {resolved.skip}"]
        return result
    traced = run_query(tg, resolved.query)
    if traced.error:
        result.failures = error_failure(resolved.expect, traced.error)
        result.status = "error" if result.failures else "pass"
    else:
        result.failures = evaluate(resolved.expect, traced.document)
        result.status = "fail" if result.failures else "pass"
    result.summary = _summary(traced.document)
    result.seconds = time.perf_counter() - start
    return result


def check_snapshot(tg, path: Path, update: bool = False, lines: bool = False) -> CheckResult:
    """Return the result of comparing a tree's chain with the snapshot in `path` (rewritten when `update`)."""
    from chaintrace.regress import diff
    from chaintrace.regress.snapshot import TraceQuery, read_snapshot, run_query, snapshot_document, write_snapshot

    start = time.perf_counter()
    old = read_snapshot(path)
    query = TraceQuery.from_dict(old["query"])
    traced = run_query(tg, query)
    new = snapshot_document(traced)
    result = CheckResult(f"snapshot {Path(path).name}", str(path), str(tg.root), tg.version, "pass",
                         query=query.as_dict(), summary=_summary(traced.document))
    changes = diff.diff_snapshots(old, new, lines=lines)
    if update:
        if changes["changed"] or lines:
            write_snapshot(path, new)
        result.notes.append(f"updated {path}: {diff.summary(changes)}" if changes["changed"] else "unchanged")
    elif changes["changed"]:
        was = old.get("version") or old.get("tree") or "the snapshot"
        result.status = "fail"
        result.failures = [Failure("snapshot", f"chain changed since {was}: {diff.summary(changes)}")]
    result.seconds = time.perf_counter() - start
    return result


def spec_files(paths: list[Path]) -> tuple[list[Spec], list[str]]:
    """Return the specs among `paths` (folders: their *.toml), and notes on TOML files that are not specs.

    A TOML file with none of `from`, `to`, `expect` (macros.toml, registrars.toml) is not a spec.
    """
    files: list[Path] = []
    for path in paths:
        files += sorted(Path(path).glob("*.toml")) if Path(path).is_dir() else [Path(path)]
    specs, skipped = [], []
    for file in files:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            data = {"from": None}  # load_spec reports it
        if not {"from", "to", "expect"} & set(data):
            skipped.append(f"{file}: not a trace spec (no from/to), skipped")
            continue
        specs.append(load_spec(file))
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"two specs are named {name!r}: give each spec file its own `name`")
    return specs, skipped
