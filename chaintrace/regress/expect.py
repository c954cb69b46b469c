"""The expectations of a trace spec, checked on a trace document: `evaluate(expect, document)`.

Pure: it reads a trace document (`chaintrace.render.document.trace_document`)
and returns the failures, each naming the expectation, the path that broke
it and where (docs/checks.md lists the keys).  The paths are taken in a
stable order (fewest hops, then node ids), so "path 3" means the same path
on every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


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


def _exact_paths(expected: list, listed: list[list[str]]) -> list[Failure]:
    """Return a failure when the paths listed are not exactly the hand-verified set `expected` (node ids)."""
    want = {tuple(path) for path in expected}
    got = {tuple(path) for path in listed}
    if want == got:
        return []
    missing = " | ".join(" -> ".join(p) for p in sorted(want - got)) or "none"
    extra = " | ".join(" -> ".join(p) for p in sorted(got - want)[:3]) or "none"
    return [Failure("paths", f"the paths listed are not the verified set: missing {missing}; extra {extra}"
                             + (f" (+{len(got - want) - 3} more)" if len(got - want) > 3 else ""))]


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
    if "paths" in expect:
        failures += _exact_paths(expect["paths"], node_paths)
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
