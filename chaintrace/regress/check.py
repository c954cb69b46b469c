"""Running checks on trees: a spec (`check_spec`) or a snapshot (`check_snapshot`) on one tree, and the report.

A `CheckResult` is one spec or snapshot on one tree: pass, fail (an
expectation broke, see `expect`), error (the trace could not run: an
unknown entry, target or via function) or skip (a version table says so).
`render_table` and `check_document` report a run's results as the text
table and the JSON document of `chaintrace check`; `junit` writes them as
JUnit XML.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chaintrace.regress import diff
from chaintrace.regress.expect import Failure, error_failure, evaluate
from chaintrace.regress.snapshot import read_snapshot, run_query, snapshot_document, write_snapshot
from chaintrace.regress.spec import Spec

STATUSES = ("pass", "fail", "error", "skip")


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
    from chaintrace.api import TraceQuery

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


def counts(results: list[CheckResult]) -> dict[str, int]:
    """Return how many results have each status."""
    return {status: sum(r.status == status for r in results) for status in STATUSES}


def failed(results: list[CheckResult]) -> bool:
    """Return True when any result failed or erred (the exit status of `check` is then 1)."""
    return any(r.status in ("fail", "error") for r in results)


def columns(results: list[CheckResult]) -> dict[str, str]:
    """Return {tree: column label}: the version, or the folder name when versions are missing or repeated."""
    trees = list(dict.fromkeys(r.tree for r in results))
    versions = {r.tree: r.version for r in results}
    labels = {}
    for tree in trees:
        label = versions[tree]
        if not label or sum(versions[t] == label for t in trees) > 1:
            label = f"{label} {Path(tree).name}".strip()
        labels[tree] = label
    return labels


def render_table(results: list[CheckResult]) -> str:
    """Return the spec x tree table, then each failure's reasons and the notes."""
    labels = columns(results)
    names = list(dict.fromkeys(r.name for r in results))
    cell = {(r.name, r.tree): r for r in results}
    width = max([len("spec"), *map(len, names)])
    widths = {tree: max(5, len(label)) for tree, label in labels.items()}
    lines = ["  ".join(["spec".ljust(width), *(label.ljust(widths[t]) for t, label in labels.items())]).rstrip()]
    for name in names:
        row = [name.ljust(width)]
        for tree in labels:
            result = cell.get((name, tree))
            status = "-" if result is None else result.status.upper() if result.status != "pass" else "pass"
            row.append(status.ljust(widths[tree]))
        lines.append("  ".join(row).rstrip())
    for result in results:
        if result.failures:
            lines.append("")
            lines.append(f"{result.status.upper()} {result.name} on {labels[result.tree]} ({result.tree}), {result.source}:")
            lines += [f"  {f.expectation}: {f.message}" for f in result.failures]
    notes = [(r, note) for r in results for note in r.notes]
    if notes:
        lines.append("")
        lines += [f"note: {r.name} on {labels[r.tree]}: {note}" for r, note in notes]
    total = counts(results)
    lines.append("")
    lines.append(f"{len(results)} checks: {total['pass']} passed, {total['fail']} failed, "
                 f"{total['error']} errors, {total['skip']} skipped")
    return "\n".join(lines)


def check_document(results: list[CheckResult], seconds: float) -> dict:
    """Return the results as the JSON document of `check --json` (schema `chaintrace.regress.check/1`)."""
    trees = list(dict.fromkeys((r.tree, r.version) for r in results))
    return {
        "schema": "chaintrace.regress.check/1",
        "trees": [{"path": tree, "version": version} for tree, version in trees],
        "results": [r.as_dict() for r in results],
        "counts": counts(results),
        "ok": not failed(results),
        "seconds": round(seconds, 3),
    }
