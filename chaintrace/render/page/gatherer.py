"""Reading a trace document for a doc page: links to sections, the threads functions run in, and each hand-off in words.

`Gatherer` holds what `walkthrough.gather` reads again and again (nodes,
anchors, threads, edges) and words calls, conditions and excerpts from the
document and the tree's `SourceFacts`.
"""

from __future__ import annotations

from collections import defaultdict

from chaintrace.render.page.contents import Call, Excerpt, When, headings_of, slug
from chaintrace.render.page.sources import SourceFacts
from chaintrace.render.wording import Text, code

EDGE_WORDS = {"direct": "direct call", "thread": "thread start", "callback": "callback",
              "ops": "ops table (struct field)", "fnptr": "function pointer"}

MAIN_THREAD = {"qmp": "the caller's thread (the QMP/main loop)", "hmp": "the caller's thread (the HMP monitor/main loop)"}


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


class Gatherer:
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
