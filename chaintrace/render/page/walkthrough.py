"""A walkthrough of a traced chain: what `chaintrace doc` pages show, gathered from the trace document,
the tree's source files and the indexed facts.

    page = gather(document, root, store, context=3)   # -> Page
    chaintrace.render.page.markdown.render(page), chaintrace.render.page.html.render(page, svg)

Everything a renderer needs is in the `Page`, already worded: renderers
never read C.  Worded text (`Text`) is a string with two kinds of markup,
split by `segments`: `` `code` `` and `[label](#anchor)`.  Facts are stated
as found in the source (loops, early returns, `#if`, `#define` values, the
thread a function runs in); nothing is estimated.

`contents` holds the `Page` and its parts, `gatherer` words what one call,
thread or excerpt shows, `sources` reads the tree's files and facts.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

from chaintrace import __version__
from chaintrace.render.page.contents import Branch, Page, Section, Target
from chaintrace.render.page.gatherer import EDGE_WORDS, Gatherer
from chaintrace.render.page.sources import SourceFacts
from chaintrace.render.wording import Text, code


def git_revision(root: Path) -> str:
    """Return `git rev-parse HEAD` of `root` when `root` is the top of a git checkout, else ""."""
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return ""
    return top[1] if len(top) == 2 and Path(top[0]).resolve() == root.resolve() else ""


def _outline(document: dict) -> list[Branch]:
    """Return the enumerated paths merged by common prefix, runs without a fork on one line, repeats cut."""
    trie: dict = {}
    for path in document["paths"]:
        level = trie
        for index, node in enumerate(path["nodes"]):
            kind = "/".join(path["kinds"][index - 1]) if index else ""
            level = level.setdefault((kind, node), {})
    signatures: dict = {}

    def sign(children: dict) -> int:
        return signatures.setdefault(tuple((step, sign(sub)) for step, sub in children.items()), len(signatures))

    seen: set[int] = set()

    def runs(children: dict) -> tuple[Branch, ...]:
        branches = []
        for step, sub in children.items():
            steps, repeat = [step], False
            while True:
                signature = (steps[-1], sign(sub))
                if sub and signature in seen:
                    repeat, sub = True, {}
                    break
                seen.add(signature)
                if len(sub) != 1:
                    break
                (step, sub), = sub.items()
                steps.append(step)
            branches.append(Branch(tuple(steps), runs(sub), repeat))
        return tuple(branches)

    return list(runs(trie))


def _order(branches: list[Branch] | tuple[Branch, ...], found: dict[str, None]) -> dict[str, None]:
    for branch in branches:
        found.update(dict.fromkeys(node for _, node in branch.steps))
        _order(branch.children, found)
    return found


def gather(document: dict, root: Path, store, context: int = 3, command: str = "",
           facts: SourceFacts | None = None) -> Page:
    """Return the `Page` of a trace document of the tree at `root`, whose facts are in `store` (open).

    `context`: lines shown around each call and target; `command`: the command line
    that makes the page (shown in its footer); `facts`: a `SourceFacts` of the same
    tree to reuse (its `#define` index is built once).
    """
    g = Gatherer(document, facts or SourceFacts(root, store), context)
    query, counts = document["query"], document.get("counts", {})
    targets = [_target(g, index, target) for index, target in enumerate(document["targets"])]
    outline = _outline(document)
    order = _order(outline, {query.get("entry", ""): None} if query.get("entry") in g.nodes else {})
    order.update(dict.fromkeys(t.function for t in targets))
    sections = _sections(g, order, targets)
    edge_paths = counts.get("by_edge_kind", {})
    edge_rows = [(kind, EDGE_WORDS.get(kind, kind), number, edge_paths.get(kind, 0))
                 for kind, number in counts.get("edges_by_kind", {}).items()]
    members: dict[str, list[str]] = {}
    for node_id in order:
        for thread in g.threads.get(node_id, [""]):
            members.setdefault(thread, []).append(node_id)
    thread_rows = [(g.thread_words(thread), nodes, g.path_threads.count(thread)) for thread, nodes in members.items()]
    bound = "" if counts.get("exact", True) else "At least "
    total, listed = counts.get("paths_total", len(document["paths"])), counts.get("enumerated", len(document["paths"]))
    totals = (f"{bound}{total} path{'s' * (total != 1)} from the entry to the target functions; "
              f"{listed} enumerated (shortest first) and shown; {len(document['nodes'])} functions, {len(document['edges'])} edges")
    undecided = document.get("undecided", {}).get("total", 0)
    if undecided:
        totals += (f". {undecided} call{'s' * (undecided != 1)} on the way were not followed: the receiver picks the "
                   "callee at run time and nothing on the path decides which (`--undecided` follows them)")
    diagnostics = [f"{code(d.get('callee', '?'))} in {g.link(d['caller']) if d.get('caller') in g.anchors else code(d.get('caller', '?'))} "
                   f"at {d.get('file', '?')}:{d.get('line', '?')}: {d.get('reason', d.get('kind', ''))}"
                   for d in document.get("diagnostics", [])[:25]]
    title = f"{query.get('from', query.get('entry', '?'))} → {query.get('to', '?')}"
    return Page(title, _header(g, query, root, document.get("version", "")), targets, edge_rows, thread_rows, totals,
                outline, sections, g.anchors, diagnostics, len(document.get("diagnostics", [])), command)


def _header(g: Gatherer, query: dict, root: Path, version: str) -> list[tuple[str, Text]]:
    """Return the page's header rows: the query, entry, tree, version, revision, options, chaintrace's version."""
    header = [("Query", f"{code(query.get('from', query.get('entry', '?')))} → {code(query.get('to', '?'))}"),
              ("Entry", g.link(query.get("entry", ""))),
              ("Tree", code(root.name)),
              ("QEMU version", version or "(no VERSION file)")]
    revision = git_revision(root)
    if revision:
        header.append(("Git revision", code(revision)))
    options = [f"max paths {query.get('max_paths')}"] + ([f"max depth {query['max_depth']}"] if query.get("max_depth") else [])
    options += [f"via {', '.join(map(code, query['via']))}" for _ in [0] if query.get("via")]
    options += [f"avoid {', '.join(map(code, query['avoid']))}" for _ in [0] if query.get("avoid")]
    options.append("edges " + ", ".join(query.get("edge_kinds") or EDGE_WORDS))
    return header + [("Options", "; ".join(options)), ("chaintrace", code(__version__))]


def _target(g: Gatherer, index: int, target: dict) -> Target:
    """Return target `index` of the document with its excerpt, when it runs and the loops of its shortest path."""
    ctx, statement = target.get("context") or {}, target["kind"] != "function" and bool(target["file"])
    # the document gives no guards for call and line targets: the facts at the site do
    guards = ctx.get("guards") or (g.facts.guards_at(target["file"], target["line"], target.get("col", 0)) if statement else [])
    threads = list(dict.fromkeys(g.path_threads[p] for p in target["paths"])) or g.threads.get(target["function"], [""])
    node = g.nodes.get(target["function"], {})
    return Target(
        index, target["kind"], target.get("statement", ""), target["function"], node.get("name", target["function"]),
        g.anchors.get(target["function"], ""), target["file"], target["line"],
        g.excerpt(target["file"], target["line"], target["function"], ctx.get("loops", []), guards) if statement else None,
        g.when(target["file"], target["line"], target.get("col", 0), ctx.get("loops", []), ctx.get("conditions", []),
               guards, threads),
        target.get("counts", {}),
        g.path_loops(g.doc["paths"][target["paths"][0]]) if target["paths"] else ())


def _sections(g: Gatherer, order: dict[str, None], targets: list[Target]) -> list[Section]:
    """Return a section per function, in outline order, each with the calls that reach it."""
    incoming: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for edge in g.doc["edges"]:
        incoming[edge["dst"]][edge["src"]].append(edge)
    entry, target_functions = g.doc["query"].get("entry", ""), {t.function for t in targets}
    sections = []
    for node_id in order:
        node = g.nodes[node_id]
        definition = g.facts.function(node["file"], node["name"], node["line"])
        role = " ".join(r for r, on in (("entry", node_id == entry), ("target", node_id in target_functions)) if on)
        section = Section(node_id, g.anchors[node_id], g.headings[node_id], node["name"], node["file"], node["line"], node["end_line"],
                          role or ("external" if node.get("external") else "function"),
                          comment=definition.comment if definition else "",
                          conditions=tuple(c for c in (definition.conditions if definition else ())
                                           if not g.facts.include_guard(node["file"], c)),
                          threads=tuple(g.thread_words(t) for t in g.threads.get(node_id, [""])),
                          targets=[t.index for t in targets if t.function == node_id])
        for src in sorted(incoming[node_id], key=lambda s: list(order).index(s) if s in order else len(order)):
            section.calls.append(g.call(incoming[node_id][src]))
        sections.append(section)
    return sections
