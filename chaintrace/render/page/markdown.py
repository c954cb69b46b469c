"""A doc page (`chaintrace.render.page.contents.Page`) as Markdown: plain CommonMark, fenced code blocks and pipe tables.

The text renders the same in Sphinx (MyST), MkDocs and on code hosts:
links inside the page go to the heading anchors code hosts and MkDocs make
(Sphinx: set `myst_heading_anchors = 3`), excerpts are fenced `text` blocks with a line
number gutter (`>` marks the call or target line, `...` skips lines), the diagram is an image
(`chain.svg`) with its Mermaid source linked.
"""

from __future__ import annotations

import re

from chaintrace.render.page.contents import Branch, Call, Excerpt, Page, Section, Target, When, target_facts, when_facts
from chaintrace.render.wording import Text, code, segments

_ESCAPE = re.compile(r"([\\`*\[\]<>|]|(?<!\w)_|_(?!\w))")
ARROWS = {"": "", "direct": "→ "}
_CONTROLS = {code: " " for code in (*range(32), 0x7F, 0x85, 0x2028, 0x2029)}


def one_line(text: str) -> str:
    """Return `text` with its line breaks and other control characters as spaces.

    Markdown finds its blocks before its inline markup: a line break in a file
    name or a statement, followed by `<script>` or `# `, would start a raw HTML
    block or a heading even inside an escaped span or a code span.
    """
    return text.translate(_CONTROLS)


def plain(text: str) -> str:
    """Return `text` as Markdown text that shows as written: on one line, markup characters escaped."""
    return _ESCAPE.sub(r"\\\1", one_line(text))


def inline(text: Text, table: bool = False) -> str:
    """Return worded `Text` as Markdown: plain parts escaped, `code` spans, [links](#anchor), all on one line."""
    out = []
    for kind, value, href in segments(text):
        if kind == "text":
            out.append(plain(value))
        elif kind == "code":
            value = one_line(value)
            value = value.replace("|", "\\|") if table else value
            out.append(f"`{value}`" if value.strip() else "` `")
        else:
            out.append(f"[{inline(value, table)}]({href})")
    return "".join(out)


def arrow(kind: str) -> str:
    """Return the connector of the outline for a hop of `kind`: ` → ` (direct) or ` —thread→ `."""
    return ARROWS.get(kind, f"—{kind}→ ")


def excerpt(block: Excerpt) -> list[str]:
    """Return a fenced block of the excerpt: `  4122 | code`, `>` before the marked line, `...` between windows.

    Its info string is `text`: with the line numbers in front, a `#if` line is no
    longer C that a strict highlighter (Sphinx's) accepts.
    """
    width = len(str(max(start + len(lines) - 1 for start, lines in block.windows)))
    body: list[str] = []
    for number, (start, lines) in enumerate(block.windows):
        if number:
            body.append(" " * (width + 2) + "...")
        for offset, line in enumerate(lines):
            mark = ">" if start + offset == block.marked else " "
            body.append(f"{mark} {start + offset:>{width}} | {line}".rstrip())
    return [f"{plain(block.file)}:", "", *fenced(body, "text"), ""]


def fenced(lines: list[str], info: str) -> list[str]:
    """Return `lines` as a fenced code block, its fence longer than any run of backticks in them."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *lines, fence]


def when_items(when: When, place: str) -> list[str]:
    """Return bullet lines of a `When`: threads, loops, early returns, `#if` (each a fact from the source)."""
    return [f"- {inline(fact)}" for fact in when_facts(when, place)]


def _target(page: Page, target: Target) -> list[str]:
    out = [f"### Target {target.index + 1}: {inline('`' + target.statement + '`')}", ""]
    out += [f"In [`{target.name}`](#{target.anchor}), {plain(target.file)}:{target.line} ({target.kind} target).", ""]
    if target.excerpt:
        out += excerpt(target.excerpt)
    items = [f"- {inline(fact)}" for fact in target_facts(target)]
    return out + ["When and how often, as the source says:", "", *items, ""]


def _outline(page: Page, branches: tuple[Branch, ...] | list[Branch], depth: int = 0) -> list[str]:
    lines = []
    for branch in branches:
        steps = " ".join(inline(arrow(kind)) + f"[`{page.section(node).name}`](#{page.anchors[node]})"
                         for kind, node in branch.steps)
        lines.append("    " * depth + "- " + steps + (" … (continues as shown above)" if branch.repeat else ""))
        lines += _outline(page, branch.children, depth + 1)
    return lines


def _call(call: Call) -> list[str]:
    """Return a call into a section's function: its words, excerpts, then facts (all top level: Python-Markdown,
    hence MkDocs, reads no fenced block inside a list)."""
    out = [f"↳ {inline(call.words)}", ""]
    for block in call.excerpts:
        out += excerpt(block)
    items = when_items(call.when, "the call is inside")
    items += [f"- {inline(more)}" for more in call.more_sites] + [f"- {inline(note)}" for note in call.notes]
    return out + items + ([""] if items else [])


def _section(section: Section) -> list[str]:
    where = f"{section.file}:{section.line}–{section.end_line}" if section.file else "not defined in the tree"
    role = {"entry": " · the entry", "target": " · holds the target", "entry target": " · the entry, holds the target"}.get(section.role, "")
    name, _, file = section.heading.partition(" (")
    out = [f"### `{name}`" + (f" ({inline(file[:-1])})" if file else ""), "", inline(where) + role, ""]
    out += [f"- runs in {inline(thread)}" for thread in section.threads]
    out += [f"- defined only under {inline('`#if ' + condition + '`')}" for condition in section.conditions]
    out.append("")
    if section.comment:
        out += ["The comment above it:", "", *fenced(section.comment.splitlines(), "c"), ""]
    if section.calls:
        out += ["Reached:", ""]
        for call in section.calls:
            out += _call(call)
    return out


def _when_section(page: Page) -> list[str]:
    out = ["## When and how often", "",
           "Facts from the source: the loops around each call of the chain, the early returns before it, its `#if` "
           "conditions and the thread it runs in. chaintrace does not estimate how often a loop turns.", ""]
    for target in page.targets:
        out.append(f"- Target {target.index + 1}, in [`{target.name}`](#{target.anchor}):")
        out += ["    " + item for item in when_items(target.when, "inside")]
        out += [f"    - on its shortest path, {inline(loop)}" for loop in target.path_loops]
    out += ["", "Threads: the thread entry function each path last crossed by a `thread` edge.", ""]
    for thread, nodes, _ in page.thread_rows:
        out.append(f"- {inline(thread)}: " + ", ".join(f"[`{page.section(n).name}`](#{page.anchors[n]})" for n in nodes))
    out += ["", "Calls of the chain inside loops, after early returns or under `#if`:", ""]
    for section in page.sections:
        for call in section.calls:
            when = call.when
            if when.loops or when.guards or when.conditions:
                caller = page.section(call.src)
                head = f"[`{caller.name}`](#{caller.anchor})" if caller else inline(f"`{call.src}`")
                out.append(f"- {head} {inline(arrow(call.kind))}[`{section.name}`](#{section.anchor}):")
                out += ["    " + item for item in when_items(when, "the call is inside")]
    return out + [""]


def render(page: Page, diagram: str = "chain.svg", mermaid: str = "chain.mmd") -> str:
    """Return the Markdown text of a doc page; `diagram` and `mermaid` name the diagram files beside it."""
    out = [f"# {inline(page.title)}", "", "| | |", "|---|---|"]
    out += [f"| {name} | {inline(value, table=True)} |" for name, value in page.header]
    out += ["", "## Target" + ("s" if len(page.targets) > 1 else ""), ""]
    for target in page.targets:
        out += _target(page, target)
    out += ["## Diagram", "", f"![The call chain: boxes are functions, arrows calls by kind]({diagram})", "",
            f"Mermaid source: [{mermaid}]({mermaid}).", ""]
    out += ["## Paths in numbers", "", inline(page.totals) + ".", "",
            "| edge kind | meaning | edges | enumerated paths using it |", "|---|---|---:|---:|"]
    out += [f"| `{kind}` | {words} | {edges} | {paths} |" for kind, words, edges, paths in page.edge_rows]
    out += ["", "| thread | functions of the chain in it | enumerated paths ending in it |", "|---|---:|---:|"]
    out += [f"| {inline(thread, table=True)} | {len(nodes)} | {paths} |" for thread, nodes, paths in page.thread_rows]
    out += [""] + _when_section(page)
    out += ["## The chain", "", "The enumerated paths merged by common prefix; each name links to its section.", ""]
    out += _outline(page, page.outline) + ["", "## Functions along the chain", ""]
    for section in page.sections:
        out += _section(section)
    if page.diagnostics_total:
        out += ["## Indirect calls without a known target", "",
                f"{page.diagnostics_total} indirect calls in the functions of the chop have no known callee: "
                "a path through them would be missing." + (f" The first {len(page.diagnostics)}:" if page.diagnostics_total > len(page.diagnostics) else ""), ""]
        out += [f"- {inline(item)}" for item in page.diagnostics] + [""]
    out += ["---", "", f"Generated by {inline(page.generator)}" + (f": {inline(code(page.command))}" if page.command else "."), ""]
    return "\n".join(out)


def render_index(title: str, rows: list[tuple[str, str, str, str, str, str, str]]) -> str:
    """Return the Markdown index of a batch: rows of (name, description, from, to, paths, error, folder)."""
    out = [f"# {inline(title)}", "", "| trace | query | what it shows | paths | page |", "|---|---|---|---:|---|"]
    for name, description, source, target, paths, error, folder in rows:
        page = f"[{inline(name, table=True)}]({folder}/index.md)" if folder else inline(error, table=True)
        out.append(f"| {inline(name, table=True)} | {inline(f'`{source}` → `{target}`', table=True)} | "
                    f"{inline(description, table=True)} | {paths} | {page} |")
    return "\n".join(out + [""])
