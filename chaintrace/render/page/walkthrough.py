"""A walkthrough of a traced chain: what `chaintrace doc` pages show, gathered from the trace document,
the tree's source files and the indexed facts.

    page = gather(document, root, store, context=3)   # -> Page
    chaintrace.render.page.markdown.render(page), chaintrace.render.page.html.render(page, svg)

Everything a renderer needs is in the `Page`, already worded: renderers
never read C.  Worded text (`Text`) is a string with two kinds of markup,
split by `segments`: `` `code` `` and `[label](#anchor)`.  Facts are stated
as found in the source (loops, early returns, `#if`, `#define` values, the
thread a function runs in); nothing is estimated.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from chaintrace import __version__
from chaintrace.query.sources import SourceFacts
from chaintrace.render.wording import Text, code

EDGE_WORDS = {"direct": "direct call", "thread": "thread start", "callback": "callback",
              "ops": "ops table (struct field)", "fnptr": "function pointer"}
@dataclass(frozen=True)
class Excerpt:
    """Source lines of one file: `windows` of (first line number, lines), `marked` the call or target line."""

    file: str
    windows: tuple[tuple[int, tuple[str, ...]], ...]
    marked: int


@dataclass(frozen=True)
class When:
    """When a call or statement runs, as the source says: each item is worded `Text`.

    `loops`: the enclosing loops, outermost first; `guards`: early returns before
    it in its function, with the `#define` values of the macros they use;
    `conditions`: `#if` conditions around it; `threads`: the threads it runs in.
    """

    loops: tuple[Text, ...] = ()
    guards: tuple[Text, ...] = ()
    conditions: tuple[Text, ...] = ()
    threads: tuple[Text, ...] = ()


@dataclass(frozen=True)
class Call:
    """One way the section's function is reached from a caller in the trace: one edge kind, its call sites."""

    src: str
    kind: str
    words: Text          # "runs in a new thread started by `qemu_thread_create` at migration/migration.c:4122"
    excerpts: tuple[Excerpt, ...]
    when: When           # of the first site
    more_sites: tuple[Text, ...] = ()
    notes: tuple[Text, ...] = ()


@dataclass
class Section:
    """One function of the chain ("hop"): where it is, its comment, `#if`s, threads, and how it is reached.

    `heading` is the name (qualified by its file when not unique), `anchor` its slug.
    """

    node: str
    anchor: str
    heading: str
    name: str
    file: str
    line: int
    end_line: int
    role: str            # "entry", "target", "entry target", "function" or "external"
    comment: str = ""
    conditions: tuple[str, ...] = ()
    threads: tuple[Text, ...] = ()
    calls: list[Call] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A target statement: where, its enclosing function (`function`, `anchor`), excerpt, when it runs, counts,
    and the loops its shortest path passes through."""

    index: int
    kind: str
    statement: str
    function: str
    name: str
    anchor: str
    file: str
    line: int
    excerpt: Excerpt | None
    when: When
    counts: dict
    path_loops: tuple[Text, ...] = ()   # the loops around the calls of its shortest path, entry first


@dataclass(frozen=True)
class Branch:
    """A run of the chain outline: `steps` (edge kind into the node, "" for the first; node id), then `children`.

    `repeat` marks a run whose continuation is shown once already (it is not listed again).
    """

    steps: tuple[tuple[str, str], ...]
    children: tuple["Branch", ...] = ()
    repeat: bool = False


@dataclass
class Page:
    """Everything a doc page shows (see the module docstring)."""

    title: str
    header: list[tuple[str, Text]]
    targets: list[Target]
    edge_rows: list[tuple[str, str, int, int]]     # kind, words, edges, enumerated paths using it
    thread_rows: list[tuple[Text, list[str], int]]   # thread, the functions in it, enumerated paths ending in it
    totals: Text
    outline: list[Branch]
    sections: list[Section]
    anchors: dict[str, str]                          # node id -> anchor
    diagnostics: list[Text]
    diagnostics_total: int
    command: str                                     # the command line that makes the page
    generator: Text = f"chaintrace {__version__}"

    def section(self, node: str) -> Section | None:
        """Return the section of function `node`, or None."""
        if len(getattr(self, "_by_node", ())) != len(self.sections):
            self._by_node = {section.node: section for section in self.sections}
        return self._by_node.get(node)


MAIN_THREAD = {"qmp": "the caller's thread (the QMP/main loop)", "hmp": "the caller's thread (the HMP monitor/main loop)"}


RESERVED = frozenset({"target", "targets", "diagram", "paths-in-numbers", "when-and-how-often", "the-chain",
                      "functions-along-the-chain", "indirect-calls-without-a-known-target"})


def slug(text: str) -> str:
    """Return the anchor code hosts, MkDocs and MyST (`myst_heading_anchors`) give a heading of plain `text`."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def headings_of(nodes: list[dict]) -> dict[str, str]:
    """Return node id -> the heading of its section: the name, plus `(file)` when the name alone is not unique.

    A heading's anchor is `slug(heading)`; names are qualified when their slugs
    would clash (C is case-sensitive, anchors are not) or hit a heading of the page.
    """
    count: dict[str, int] = defaultdict(int)
    for node in nodes:
        count[slug(node["name"])] += 1
    return {node["id"]: node["name"] if count[slug(node["name"])] == 1 and slug(node["name"]) not in RESERVED
            and not node["name"].lower().startswith("target-") else f"{node['name']} ({node['file'] or 'external'})"
            for node in nodes}


def git_revision(root: Path) -> str:
    """Return `git rev-parse HEAD` of `root` when `root` is the top of a git checkout, else ""."""
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return ""
    return top[1] if len(top) == 2 and Path(top[0]).resolve() == root.resolve() else ""


def _thread_of_paths(document: dict) -> tuple[dict[str, list[str]], list[str]]:
    """Return node id -> thread entries it runs in ("" for the caller's), and each path's thread at its end."""
    threads: dict[str, list[str]] = defaultdict(list)
    ends = []
    for path in document["paths"]:
        thread = ""
        for index, node in enumerate(path["nodes"]):
            if index and "thread" in path["kinds"][index - 1]:
                thread = node
            if thread not in threads[node]:
                threads[node].append(thread)
        ends.append(thread)
    return threads, ends


class _Gatherer:
    """Builds a `Page` from a trace document and the tree's sources and facts."""

    def __init__(self, document: dict, facts: SourceFacts, context: int) -> None:
        self.doc, self.facts, self.context = document, facts, context
        self.nodes = {node["id"]: node for node in document["nodes"]}
        self.headings = headings_of(document["nodes"])
        self.anchors = {node: slug(heading) for node, heading in self.headings.items()}
        self.threads, self.path_threads = _thread_of_paths(document)
        source = str(document["query"].get("from", ""))
        self.main_thread = MAIN_THREAD.get(source.partition(":")[0], "the caller's thread")
        self.thread_sites = {e["dst"]: e for e in document["edges"] if e["kind"] == "thread"}
        self.edges = {(e["src"], e["dst"], e["kind"]): e for e in document["edges"]}

    def link(self, node: str) -> Text:
        name = self.nodes[node]["name"] if node in self.nodes else node
        return f"[`{name}`](#{self.anchors[node]})" if node in self.anchors else code(name)

    def thread_words(self, thread: str) -> Text:
        if not thread:
            return self.main_thread
        edge = self.thread_sites.get(thread)
        if edge is None:
            return f"the thread of {self.link(thread)}"
        site = edge["sites"][0]
        return (f"the thread {self.link(thread)}, started by {code(site.get('registrar', '?'))} "
                f"at {site['file']}:{site['line']}")

    def when(self, file: str, line: int, col: int, loops: list[dict], conditions: list[str], guards: list[dict] | None,
             threads: list[str]) -> When:
        if guards is None:
            guards = self.facts.guards_at(file, line, col)
        return When(
            loops=tuple(f"{code(loop['condition'])} (line {loop['line']})" + self.facts.macro_words(loop["condition"], file)
                        for loop in loops),
            guards=tuple(self._guard(guard, file) for guard in guards),
            conditions=tuple(code(f"#if {condition}") for condition in conditions if not self.facts.include_guard(file, condition)),
            threads=tuple(self.thread_words(thread) for thread in threads))

    def path_loops(self, path: dict) -> tuple[Text, ...]:
        """Return the loops around the calls of `path` (the first site of each hop), worded, entry first."""
        found = []
        for (src, dst), kinds in zip(zip(path["nodes"], path["nodes"][1:]), path["kinds"]):
            edge = next((self.edges[(src, dst, kind)] for kind in kinds if (src, dst, kind) in self.edges), None)
            site = edge["sites"][0] if edge and edge["sites"] else {}
            for loop in site.get("loops", []):
                found.append(f"{self.link(src)} calls {self.link(dst)} at {site['file']}:{site['line']} inside "
                             f"{code(loop['condition'])} (line {loop['line']})" + self.facts.macro_words(loop["condition"], site["file"]))
        return tuple(found)

    def _guard(self, guard: dict, file: str) -> Text:
        statement = guard.get("statement", "")
        shown = statement if len(statement) <= 120 else f"if {guard['condition']} {{ … return …; }}"
        return f"early return before it (line {guard['line']}): {code(shown)}" + self.facts.macro_words(guard["condition"], file)

    def excerpt(self, file: str, line: int, function: str, loops: list[dict], guards: list[dict]) -> Excerpt | None:
        node = self.nodes.get(function) or {}
        inside = node.get("file") == file and node["line"] <= line <= node["end_line"]
        low, high = (node["line"], node["end_line"]) if inside else (1, line + self.context)
        spans = [(max(low, line - self.context), min(high, line + self.context))] + [(low, low)] * inside
        spans += [(loop["line"], loop["line"]) for loop in loops]
        spans += [(guard["line"], min(guard["line"] + 2, line - 1)) for guard in guards]
        windows = self.facts.windows(file, spans)
        return Excerpt(file, windows, line) if windows else None

    def call(self, edges: list[dict]) -> Call:
        edge = edges[0]
        sites = edge["sites"]
        excerpts, first_when = [], When()
        for number, site in enumerate(sites[:3]):
            guards = self.facts.guards_at(site["file"], site["line"], site.get("col", 0))
            excerpt = self.excerpt(site["file"], site["line"], edge["src"], site.get("loops", []), guards)
            if excerpt:
                excerpts.append(excerpt)
            if number == 0:
                first_when = self.when(site["file"], site["line"], site.get("col", 0), site.get("loops", []),
                                       site.get("conditions", []), guards, [])
        more = tuple(f"also at {site['file']}:{site['line']}" + "".join(f", inside {code(loop['condition'])}" for loop in site.get("loops", []))
                     for site in sites[3:])
        if len(sites) > 1:
            more = (f"{len(sites)} call sites; the first {min(3, len(sites))} are shown",) + more
        notes = []
        if edge.get("confidence") == "low":
            notes.append("low confidence: the receiver's type is unknown, the callee was matched by the field name alone")
        if edge.get("ambiguous"):
            others = ", ".join(code(candidate) for candidate in edge["ambiguous"][1:6])
            notes.append(f"{len(edge['ambiguous'])} definitions of this name ({edge.get('preferred', '')}); others: {others}")
        notes += [f"also a {EDGE_WORDS.get(other['kind'], other['kind'])}: {self.edge_words(other)}" for other in edges[1:]]
        return Call(edge["src"], edge["kind"], self.edge_words(edge), tuple(excerpts), first_when, more, tuple(notes))

    def edge_words(self, edge: dict) -> Text:
        """Return how `edge` hands over to its callee, in plain words, with the place that proves it."""
        kind, site, proof = edge["kind"], edge["sites"][0], edge.get("proof") or {}
        where = f"{site['file']}:{site['line']}"
        caller = self.link(edge["src"])
        if kind == "direct":
            macro = f" (inside the macro {code(site['macro'])})" if site.get("macro") else ""
            return f"called directly by {caller} at {where}{macro}"
        registrar = site.get("registrar") or proof.get("registrar") or ""
        by = f"by {code(registrar)}" if registrar and not registrar.startswith(".") else f"by storing it into {code(registrar or proof.get('field', '?'))}"
        if kind == "thread":
            return f"runs in a new thread started {by} at {where}, in {caller}"
        if kind == "callback":
            return _callback_words(edge.get("detail", ""), registrar, by, where, caller)
        if kind == "ops":
            field_name = proof.get("field") or site.get("callee", "?").rsplit("->", 1)[-1].rsplit(".", 1)[-1]
            struct = code(f"{proof['struct_type']}.{field_name}") if proof.get("struct_type") else f"the field {code('.' + field_name)}"
            bound = f", bound to {code(self.nodes.get(edge['dst'], {}).get('name', edge['dst']))} at {proof['file']}:{proof['line']}" if proof.get("file") else ""
            how = f" ({proof['how']})" if proof.get("how") else ""
            return f"called through {struct}{bound}{how}; the call {code(site.get('callee', '?'))} is in {caller} at {where}"
        target = code(self.nodes.get(edge["dst"], {}).get("name", edge["dst"]))
        assigned = f", which is assigned {target} at {proof['file']}:{proof['line']}" if proof.get("file") else ""
        return f"called through the function pointer {code(site.get('callee') or proof.get('lhs', '?'))}{assigned}; the call is in {caller} at {where}"


_CALLBACK = {
    "QIO": "called back by the QIO channel{connect}, registered {by} at {where}",
    "bottom half": "runs as a bottom half (from the event loop), scheduled {by} at {where}",
    "timer": "called when a timer fires, the timer set up {by} at {where}",
    "fd handler": "called by the event loop when a file descriptor is ready, registered {by} at {where}",
    "coroutine": "runs in a coroutine created {by} at {where}",
    "GSource": "called by the GLib main loop (a GSource), registered {by} at {where}",
    "notifier": "called when a notifier list is notified, registered {by} at {where}",
    "destroy notify": "called when the registration is released (a destroy notify), registered {by} at {where}",
    "cpu work": "runs as work queued on a vCPU, queued {by} at {where}",
    "vm state": "called when the VM's run state changes, registered {by} at {where}",
    "reset": "called on system reset, registered {by} at {where}",
}


def _callback_words(detail: str, registrar: str, by: str, where: str, caller: Text) -> Text:
    if detail == "unknown registrar" or not detail:
        return (f"passed as a function pointer to {code(registrar or '?')} at {where}, in {caller}: "
                f"{code(registrar or '?')} is not a known registrar, so when it is called is not known")
    connect = " when the connection completes" if "connect" in registrar else ""
    template = _CALLBACK.get(detail, f"called back ({detail}), registered {{by}} at {{where}}")
    return template.format(connect=connect, by=by, where=where) + f", in {caller}"


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
    gatherer = _Gatherer(document, facts or SourceFacts(root, store), context)
    g, query, counts = gatherer, document["query"], document.get("counts", {})
    version = document.get("version", "")
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
    header += [("Options", "; ".join(options)), ("chaintrace", code(__version__))]

    targets = []
    for index, target in enumerate(document["targets"]):
        ctx, statement = target.get("context") or {}, target["kind"] != "function" and bool(target["file"])
        # the document gives no guards for call and line targets: the facts at the site do
        guards = ctx.get("guards") or (g.facts.guards_at(target["file"], target["line"], target.get("col", 0)) if statement else [])
        threads = list(dict.fromkeys(g.path_threads[p] for p in target["paths"])) or g.threads.get(target["function"], [""])
        node = g.nodes.get(target["function"], {})
        targets.append(Target(
            index, target["kind"], target.get("statement", ""), target["function"], node.get("name", target["function"]),
            g.anchors.get(target["function"], ""), target["file"], target["line"],
            g.excerpt(target["file"], target["line"], target["function"], ctx.get("loops", []), guards) if statement else None,
            g.when(target["file"], target["line"], target.get("col", 0), ctx.get("loops", []), ctx.get("conditions", []),
                   guards, threads),
            target.get("counts", {}),
            g.path_loops(document["paths"][target["paths"][0]]) if target["paths"] else ()))

    outline = _outline(document)
    order = _order(outline, {query.get("entry", ""): None} if query.get("entry") in g.nodes else {})
    order.update(dict.fromkeys(t.function for t in targets))
    incoming: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for edge in document["edges"]:
        incoming[edge["dst"]][edge["src"]].append(edge)
    entry, target_functions = query.get("entry", ""), {t.function for t in targets}
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
    diagnostics = [f"{code(d.get('callee', '?'))} in {g.link(d['caller']) if d.get('caller') in g.anchors else code(d.get('caller', '?'))} "
                   f"at {d.get('file', '?')}:{d.get('line', '?')}: {d.get('reason', d.get('kind', ''))}"
                   for d in document.get("diagnostics", [])[:25]]
    title = f"{query.get('from', query.get('entry', '?'))} → {query.get('to', '?')}"
    return Page(title, header, targets, edge_rows, thread_rows, totals, outline, sections, g.anchors, diagnostics,
                len(document.get("diagnostics", [])), command)
