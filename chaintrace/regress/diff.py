"""Differences between two snapshots of one chain (schema `chaintrace.regress.diff/1`).

Functions present only in A or only in B are paired before anything else
is compared:

* **moved**: same name, another file (the id of a `static` function names
  its file, so it changes too);
* **linkage**: same name and file, but `static` in one and external in the
  other (the id changes);
* **renamed**: another name, but the same role in the chain and a similar
  body: the two share at least one caller or callee on the chain (after
  earlier pairings), their line counts are within `MIN_LINES` of each
  other, and at least `MIN_CALLEES` of the names they call are shared
  (Jaccard similarity, A's callees renamed through earlier pairings).  Pairs
  are taken best first (most shared neighbours, then most similar callees),
  repeatedly, so a rename next to another rename is found too.

A's ids are then translated through the pairing, and the edges, paths and
target sites that still differ are reported as added or removed (removed
ones spelled with A's ids, added ones with B's).  A target
site whose function holds another statement in B is a **changed
statement**.  Line numbers are compared only with `lines=True`.
"""

from __future__ import annotations

from chaintrace.extract.syntax import fold

SCHEMA = "chaintrace.regress.diff/1"
MIN_CALLEES = 0.3  # Jaccard similarity of the names two bodies call, at least
MIN_LINES = 0.67  # ratio of the shorter body's line count to the longer's, at least


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _neighbours(edges: list[dict]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    preds: dict[str, set[str]] = {}
    succs: dict[str, set[str]] = {}
    for edge in edges:
        succs.setdefault(edge["src"], set()).add(edge["dst"])
        preds.setdefault(edge["dst"], set()).add(edge["src"])
    return preds, succs


def _body(fa: dict, fb: dict, names: dict[str, str]) -> tuple[float, float]:
    """Return (callee-name Jaccard, A's callees renamed through `names`; line-count ratio) of two bodies."""
    callees = _jaccard({names.get(name, name) for name in fa.get("callees", [])}, set(fb.get("callees", [])))
    la, lb = fa.get("lines", 0), fb.get("lines", 0)
    return callees, (min(la, lb) / max(la, lb) if max(la, lb) else 1.0)


def pair_functions(a: dict, b: dict) -> tuple[dict[str, str], list[dict], list[dict], list[dict]]:
    """Return (A id -> B id of every function kept, moved, relinked or renamed; moves; renames; linkage changes)."""
    fa = {f["id"]: f for f in a["functions"]}
    fb = {f["id"]: f for f in b["functions"]}
    mapping = {node: node for node in fa if node in fb}
    moved = [{"function": fa[n]["name"], "from_id": n, "to_id": n, "from_file": fa[n]["file"], "to_file": fb[n]["file"]}
             for n in sorted(mapping) if fa[n]["file"] != fb[n]["file"]]
    relinked = []
    removed = sorted(set(fa) - set(mapping))
    added = sorted(set(fb) - set(mapping))
    for old in removed:  # the same name: moved to another file, or static <-> external in the same file
        same = [new for new in added if fb[new]["name"] == fa[old]["name"] and new not in mapping.values()]
        if len(same) == 1:
            new = same[0]
            mapping[old] = new
            item = {"function": fa[old]["name"], "from_id": old, "to_id": new,
                    "from_file": fa[old]["file"], "to_file": fb[new]["file"]}
            (moved if fa[old]["file"] != fb[new]["file"] else relinked).append(item)
    preds_a, succs_a = _neighbours(a["edges"])
    preds_b, succs_b = _neighbours(b["edges"])
    renamed: list[dict] = []
    while True:
        names = {fa[o]["name"]: fb[n]["name"] for o, n in mapping.items()}
        taken = set(mapping.values())
        best = None
        for old in (o for o in removed if o not in mapping):
            for new in (n for n in added if n not in taken):
                shared = (len({mapping.get(p) for p in preds_a.get(old, ())} & preds_b.get(new, set()))
                          + len({mapping.get(s) for s in succs_a.get(old, ())} & succs_b.get(new, set())))
                callees, lines = _body(fa[old], fb[new], names)
                if shared and callees >= MIN_CALLEES and lines >= MIN_LINES:
                    score = (shared, callees, lines, old, new)
                    if best is None or score[:3] > best[:3]:
                        best = score
        if best is None:
            break
        shared, callees, lines, old, new = best
        mapping[old] = new
        renamed.append({"from": fa[old]["name"], "to": fb[new]["name"], "from_id": old, "to_id": new,
                        "from_file": fa[old]["file"], "to_file": fb[new]["file"], "shared_neighbours": shared,
                        "callee_similarity": round(callees, 3), "lines": [fa[old]["lines"], fb[new]["lines"]]})
    by_id = lambda item: item["from_id"]  # noqa: E731
    return mapping, sorted(moved, key=by_id), sorted(renamed, key=by_id), sorted(relinked, key=by_id)


def _diff_targets(a: dict, b: dict, mapping: dict[str, str], lines: bool) -> dict:
    by_fn_a: dict[str, list[dict]] = {}
    by_fn_b: dict[str, list[dict]] = {}
    for t in a["targets"]:
        by_fn_a.setdefault(mapping.get(t["function"], t["function"]), []).append(t)
    for t in b["targets"]:
        by_fn_b.setdefault(t["function"], []).append(t)
    changed, added, removed, moved_lines = [], [], [], []
    for function in sorted(set(by_fn_a) | set(by_fn_b)):
        old = {fold(t["statement"]): t for t in by_fn_a.get(function, [])}
        new = {fold(t["statement"]): t for t in by_fn_b.get(function, [])}
        gone = [old[s] for s in sorted(set(old) - set(new))]
        came = [new[s] for s in sorted(set(new) - set(old))]
        if len(gone) == len(came) == 1:
            changed.append({"function": function, "file": came[0]["file"], "line_a": gone[0]["line"],
                            "line_b": came[0]["line"], "from": gone[0]["statement"], "to": came[0]["statement"]})
        else:
            removed += [{"function": function, "file": t["file"], "line": t["line"], "statement": t["statement"]} for t in gone]
            added += [{"function": function, "file": t["file"], "line": t["line"], "statement": t["statement"]} for t in came]
        if lines:
            moved_lines += [{"function": function, "statement": s, "line_a": old[s]["line"], "line_b": new[s]["line"]}
                            for s in sorted(set(old) & set(new)) if old[s]["line"] != new[s]["line"]]
    result = {"changed": changed, "added": added, "removed": removed}
    if lines:
        result["lines"] = moved_lines
    return result


def diff_snapshots(a: dict, b: dict, lines: bool = False) -> dict:
    """Return the differences from snapshot `a` to snapshot `b` as a `chaintrace.regress.diff/1` document."""
    mapping, moved, renamed, relinked = pair_functions(a, b)
    fa = {f["id"]: f for f in a["functions"]}
    fb = {f["id"]: f for f in b["functions"]}

    def m(node: str) -> str:
        return mapping.get(node, node)

    # A's edges and paths in B's ids, each remembering A's own spelling (removed ones are shown as A had them)
    edges_a = {(m(e["src"]), m(e["dst"]), e["kind"]): (e["src"], e["dst"], e["kind"]) for e in a["edges"]}
    edges_b = {(e["src"], e["dst"], e["kind"]) for e in b["edges"]}
    paths_a = {(tuple(m(n) for n in p["nodes"]), tuple(map(tuple, p["kinds"]))):
               (tuple(p["nodes"]), tuple(map(tuple, p["kinds"]))) for p in a["paths"]}
    paths_b = {(tuple(p["nodes"]), tuple(map(tuple, p["kinds"]))) for p in b["paths"]}

    def edge_list(keys: set) -> list[dict]:
        return [{"src": s, "dst": d, "kind": k} for s, d, k in sorted(keys)]

    def path_list(keys: set) -> list[dict]:
        return [{"nodes": list(n), "kinds": [list(k) for k in kinds]}
                for n, kinds in sorted(keys, key=lambda p: (len(p[0]), p))]

    functions = {
        "added": sorted(set(fb) - set(mapping.values())),
        "removed": sorted(set(fa) - set(mapping)),
        "renamed": renamed,
        "moved": moved,
        "linkage": relinked,
    }
    if lines:
        functions["lines"] = [{"function": new, "line_a": fa[old]["line"], "line_b": fb[new]["line"]}
                              for old, new in sorted(mapping.items()) if fa[old]["line"] != fb[new]["line"]]
    result = {
        "schema": SCHEMA,
        "query": b["query"],
        "a": {"tree": a.get("tree", ""), "version": a.get("version", ""), "error": a.get("error", "")},
        "b": {"tree": b.get("tree", ""), "version": b.get("version", ""), "error": b.get("error", "")},
        "functions": functions,
        "edges": {"added": edge_list(edges_b - set(edges_a)),
                  "removed": edge_list({edges_a[key] for key in set(edges_a) - edges_b})},
        "paths": {"added": path_list(paths_b - set(paths_a)),
                  "removed": path_list({paths_a[key] for key in set(paths_a) - paths_b})},
        "targets": _diff_targets(a, b, mapping, lines),
        "counts": {"paths_total": [a["counts"]["paths_total"], b["counts"]["paths_total"]]},
    }
    result["changed"] = is_changed(result)
    return result


def is_changed(diff: dict) -> bool:
    """Return True when a diff document reports any difference."""
    groups = [diff["functions"], diff["edges"], diff["paths"], diff["targets"]]
    return (any(items for group in groups for items in group.values())
            or diff["counts"]["paths_total"][0] != diff["counts"]["paths_total"][1]
            or diff["a"]["error"] != diff["b"]["error"])


def summary(diff: dict, limit: int = 3) -> str:
    """Return a one-line account of a diff: each kind of change with its first items."""
    parts: list[str] = []

    def add(label: str, items: list, show) -> None:
        if items:
            shown = ", ".join(show(item) for item in items[:limit])
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{label} {shown}{more}")

    f, e, p, t = diff["functions"], diff["edges"], diff["paths"], diff["targets"]
    add("renamed", f["renamed"], lambda r: f"{r['from']} -> {r['to']}")
    add("moved", f["moved"], lambda r: f"{r['function']} {r['from_file']} -> {r['to_file']}")
    add("linkage changed", f["linkage"], lambda r: f"{r['from_id']} -> {r['to_id']}")
    add("function removed", f["removed"], str)
    add("function added", f["added"], str)
    add("edge removed", e["removed"], lambda x: f"{x['src']} -> {x['dst']} ({x['kind']})")
    add("edge added", e["added"], lambda x: f"{x['src']} -> {x['dst']} ({x['kind']})")
    add("statement changed", t["changed"], lambda x: f"in {x['function']}: {x['from']!r} -> {x['to']!r}")
    add("target removed", t["removed"], lambda x: f"{x['function']}: {x['statement']!r}")
    add("target added", t["added"], lambda x: f"{x['function']}: {x['statement']!r}")
    if p["removed"] or p["added"]:
        parts.append(f"paths -{len(p['removed'])} +{len(p['added'])}")
    total = diff["counts"]["paths_total"]
    if total[0] != total[1]:
        parts.append(f"path count {total[0]} -> {total[1]}")
    if diff["a"]["error"] != diff["b"]["error"]:
        parts.append(f"error {diff['a']['error'] or 'none'!r} -> {diff['b']['error'] or 'none'!r}")
    for group in ("functions", "targets"):
        if diff[group].get("lines"):
            parts.append(f"{len(diff[group]['lines'])} line change(s) in {group}")
    return "; ".join(parts) if parts else "no change"


def _path_text(path: dict) -> str:
    text = path["nodes"][0]
    for node, kinds in zip(path["nodes"][1:], path["kinds"]):
        arrow = "->" if kinds == ["direct"] else f"-[{','.join(kinds)}]->"
        text += f" {arrow} {node}"
    return text


def render_text(diff: dict) -> str:
    """Return the diff as readable text, one section per kind of change."""
    q, a, b = diff["query"], diff["a"], diff["b"]
    out = [f"diff {q['from']} -> {q['to']}: A {a['version'] or a['tree']}  B {b['version'] or b['tree']}"]
    for side, name in ((a, "A"), (b, "B")):
        if side["error"]:
            out.append(f"  {name}: {side['error']}")
    f, e, p, t = diff["functions"], diff["edges"], diff["paths"], diff["targets"]
    for r in f["renamed"]:
        where = r["to_file"] if r["from_file"] == r["to_file"] else f"{r['from_file']} -> {r['to_file']}"
        out.append(f"renamed   {r['from']} -> {r['to']}  ({where}; {r['shared_neighbours']} shared neighbour(s), "
                   f"callee similarity {r['callee_similarity']:.2f}, {r['lines'][0]} -> {r['lines'][1]} lines)")
    out += [f"moved     {m['function']}  {m['from_file']} -> {m['to_file']}" for m in f["moved"]]
    out += [f"linkage   {m['from_id']} -> {m['to_id']}" for m in f["linkage"]]
    out += [f"removed   function {x}" for x in f["removed"]]
    out += [f"added     function {x}" for x in f["added"]]
    out += [f"removed   edge {x['src']} -> {x['dst']} ({x['kind']})" for x in e["removed"]]
    out += [f"added     edge {x['src']} -> {x['dst']} ({x['kind']})" for x in e["added"]]
    for x in t["changed"]:
        out += [f"statement changed in {x['function']} ({x['file']}:{x['line_a']} -> {x['line_b']})",
                f"  - {x['from']}", f"  + {x['to']}"]
    out += [f"removed   target {x['function']}: {x['statement']}  ({x['file']}:{x['line']})" for x in t["removed"]]
    out += [f"added     target {x['function']}: {x['statement']}  ({x['file']}:{x['line']})" for x in t["added"]]
    out += [f"removed   path {_path_text(x)}" for x in p["removed"]]
    out += [f"added     path {_path_text(x)}" for x in p["added"]]
    for group in ("functions", "targets"):
        out += [f"line      {x['function']}: {x['line_a']} -> {x['line_b']}" for x in diff[group].get("lines", [])]
    total = diff["counts"]["paths_total"]
    out.append(f"paths     {total[0]} -> {total[1]}" + ("" if diff["changed"] else "  (no change)"))
    return "\n".join(out)
