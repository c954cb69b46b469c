"""What a `chaintrace doc` page shows, already worded: the `Page` and its parts, and the anchors of its headings.

`walkthrough.gather` fills a `Page`; `markdown.render` and `html.render` lay
it out. Worded text (`Text`, see `render.wording`) is a string with two kinds
of markup: `` `code` `` and `[label](#anchor)`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from chaintrace import __version__
from chaintrace.render.wording import Text, bound_words, code


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


def when_facts(when: When, place: str) -> list[Text]:
    """Return the facts of a `When`, worded: threads, loops (`place` says how: "inside"), early returns, `#if`."""
    facts = [f"runs in {thread}" for thread in when.threads]
    facts += [f"{place} {loop}" for loop in when.loops]
    facts += list(when.guards)
    facts += [f"only under {condition}" for condition in when.conditions]
    return facts


def target_facts(target: Target) -> list[Text]:
    """Return what the source says of when and how often a target runs, and how many paths reach it, worded."""
    facts = when_facts(target.when, "inside")
    if not target.when.loops:
        facts.append("no loop around it in its function")
    if not target.when.guards:
        facts.append("no early return before it in its function")
    facts += [f"on its shortest path, {loop}" for loop in target.path_loops]
    counts = target.counts
    if counts:
        bound = bound_words(counts.get("exact", True), counts.get("method", ""))
        total = counts.get("paths_total", 0)
        facts.append(f"reached by {bound}{total} path{'s' * (total != 1)} ({counts.get('enumerated', 0)} enumerated; "
                     f"counted by {code(str(counts.get('method', '?')))}, over {counts.get('chop_nodes', '?')} functions)")
    return facts
