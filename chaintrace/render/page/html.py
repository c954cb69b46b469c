"""A doc page (`chaintrace.render.page.contents.Page`) as one self-contained HTML file: inline CSS, the diagram as inline SVG.

No script and nothing fetched from the network.  Source excerpts are
highlighted by Pygments (line numbers, the call or target line marked);
every function box and call arrow of the diagram links to the section of
its function (the anchor of its heading, as in the Markdown page), the
target notes to their target (`#target-N`).
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import CLexer

from chaintrace.render.page.contents import Branch, Call, Excerpt, Page, Section, Target, When, target_facts, when_facts
from chaintrace.render.wording import Text, segments

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ARROWS = {"": "", "direct": "→ "}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 72rem;
       padding: 1rem 2rem 4rem; color: #1d2733; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #d5dbe3; } h3 { margin-top: 2rem; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.9em; background: #f2f4f7; padding: 0 .2em; }
a { color: #1f4fbf; text-decoration: none; } a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: .5rem 0 1rem; } td, th { border: 1px solid #d5dbe3; padding: .25rem .6rem; text-align: left; }
td.n, th.n { text-align: right; }
.file { font-family: monospace; color: #556; margin: .6rem 0 0; font-size: .85rem; }
.highlight { margin: .2rem 0; overflow-x: auto; border: 1px solid #e1e5ea; border-radius: 4px; }
.highlight pre { margin: 0; padding: .4rem .6rem; font-size: .82rem; line-height: 1.35; }
.highlight .hll { background-color: #ffe9a8; display: block; }
.highlight code { padding: 0; background: none; }
.highlight .linenos { color: #8a94a3; padding-right: .8rem; user-select: none; }
.gap { color: #8a94a3; font-family: monospace; margin: 0 0 0 1rem; }
.diagram { overflow: auto; border: 1px solid #d5dbe3; border-radius: 4px; max-height: 80vh; background: white; }
.diagram svg a:hover path, .diagram svg a:hover polygon { stroke-width: 2.5; }
.meta { color: #556; }
section.hop { border-left: 3px solid #d5dbe3; padding-left: 1rem; margin: 1.5rem 0; }
section.hop:target, section.target:target { border-left-color: #c0392b; background: #fff8f6; }
ul.outline, ul.outline ul { list-style: none; padding-left: 1.4rem; } ul.outline { padding-left: 0; }
ul.outline li::before { content: "└ "; color: #8a94a3; }
.kind { color: #1e8a3c; font-size: .85em; }
footer { margin-top: 3rem; color: #556; font-size: .9rem; }
"""


def inline(text: Text) -> str:
    """Return worded `Text` as HTML: plain parts escaped, `code` as <code>, [label](#x) as links."""
    out = []
    for kind, value, href in segments(text):
        if kind == "text":
            out.append(html.escape(value, quote=False))
        elif kind == "code":
            out.append(f"<code>{html.escape(value, quote=False)}</code>")
        else:
            out.append(f'<a href="{html.escape(href)}">{inline(value)}</a>')
    return "".join(out)


def excerpt(block: Excerpt) -> str:
    """Return the excerpt as Pygments-highlighted blocks (one per window, `⋮` between), the marked line highlighted."""
    parts = [f'<p class="file">{html.escape(block.file)}</p>']
    for number, (start, lines) in enumerate(block.windows):
        if number:
            parts.append('<p class="gap">⋮</p>')
        marked = [block.marked - start + 1] if start <= block.marked < start + len(lines) else []
        formatter = HtmlFormatter(linenos="inline", linenostart=start, hl_lines=marked, cssclass="highlight", wrapcode=True)
        parts.append(highlight("\n".join(lines) + "\n", CLexer(stripnl=False, ensurenl=True), formatter))
    return "\n".join(parts)


def link_diagram(svg: str, page: Page) -> str:
    """Return the SVG with each function box and arrow linked to its section, each target note to its target.

    Graphviz writes a `<title>` per node (its id) and per edge (`src->dst`); an
    arrow links to the section of its callee, where the call is shown.
    """
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(svg.encode("utf-8"))
    for group in root.iter(f"{{{SVG_NS}}}g"):
        kind, title = group.get("class"), group.find(f"{{{SVG_NS}}}title")
        if kind not in ("node", "edge") or title is None or not title.text:
            continue
        node = title.text if kind == "node" else title.text.rpartition("->")[2]
        if node.startswith("target:") and node[7:].isdigit():
            anchor = f"target-{int(node[7:]) + 1}"
        else:
            anchor = page.anchors.get(node, "")
        if not anchor:
            continue
        links = list(group.iter(f"{{{SVG_NS}}}a"))  # Graphviz wraps shapes (and an arrow's label) in <a> for tooltips
        if not links:
            links = [ET.SubElement(group, f"{{{SVG_NS}}}a")]
            for child in [c for c in group if c is not title and c is not links[0]]:
                group.remove(child)
                links[0].append(child)
        for link in links:
            link.set("href", f"#{anchor}")
            link.set(f"{{{XLINK_NS}}}href", f"#{anchor}")
            link.attrib.pop("target", None)
    return ET.tostring(root, encoding="unicode")


def _when(when: When, place: str) -> list[str]:
    return [f"<li>{inline(fact)}</li>" for fact in when_facts(when, place)]


def _ul(items: list[str]) -> str:
    return "<ul>\n" + "\n".join(items) + "\n</ul>" if items else ""


def _name(page: Page, node: str) -> str:
    section = page.section(node)
    name = section.name if section else node
    return f'<a href="#{page.anchors[node]}"><code>{html.escape(name)}</code></a>' if node in page.anchors else f"<code>{html.escape(name)}</code>"


def _arrow(kind: str) -> str:
    return ARROWS.get(kind, f'<span class="kind">—{html.escape(kind)}→</span> ')


def _target(target: Target) -> str:
    out = [f'<section class="target" id="target-{target.index + 1}">',
           f"<h3>Target {target.index + 1}: <code>{html.escape(target.statement)}</code></h3>",
           f'<p>In <a href="#{target.anchor}"><code>{html.escape(target.name)}</code></a>, '
           f"{html.escape(target.file)}:{target.line} ({html.escape(target.kind)} target).</p>"]
    if target.excerpt:
        out.append(excerpt(target.excerpt))
    items = [f"<li>{inline(fact)}</li>" for fact in target_facts(target)]
    out += ["<p>When and how often, as the source says:</p>", _ul(items), "</section>"]
    return "\n".join(out)


def _outline(page: Page, branches: tuple[Branch, ...] | list[Branch]) -> str:
    items = []
    for branch in branches:
        steps = " ".join(_arrow(kind) + _name(page, node) for kind, node in branch.steps)
        more = " … (continues as shown above)" if branch.repeat else ""
        children = _outline(page, branch.children) if branch.children else ""
        items.append(f"<li>{steps}{more}{children}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _call(call: Call) -> str:
    out = [f"<li><p>{inline(call.words)}</p>"] + [excerpt(block) for block in call.excerpts]
    items = _when(call.when, "the call is inside") + [f"<li>{inline(text)}</li>" for text in call.more_sites + call.notes]
    return "\n".join(out + [_ul(items), "</li>"])


def _heading(section: Section) -> str:
    name, _, file = section.heading.partition(" (")
    return f"<h3><code>{html.escape(name)}</code>" + (f" ({html.escape(file[:-1])})" if file else "") + "</h3>"


def _section(section: Section) -> str:
    where = f"{section.file}:{section.line}–{section.end_line}" if section.file else "not defined in the tree"
    role = {"entry": " · the entry", "target": " · holds the target", "entry target": " · the entry, holds the target"}.get(section.role, "")
    out = [f'<section class="hop" id="{section.anchor}">', _heading(section),
           f'<p class="meta">{html.escape(where)}{role}</p>']
    items = [f"<li>runs in {inline(thread)}</li>" for thread in section.threads]
    items += [f"<li>defined only under <code>#if {html.escape(condition)}</code></li>" for condition in section.conditions]
    out.append(_ul(items))
    if section.comment:
        out += ["<p>The comment above it:</p>", highlight(section.comment + "\n", CLexer(stripnl=False), HtmlFormatter(cssclass="highlight"))]
    if section.calls:
        out += ["<p>Reached:</p>", "<ul>", *(_call(call) for call in section.calls), "</ul>"]
    return "\n".join(out + ["</section>"])


def _when_section(page: Page) -> list[str]:
    out = ["<h2 id=\"when-and-how-often\">When and how often</h2>",
           "<p>Facts from the source: the loops around each call of the chain, the early returns before it, its "
           "<code>#if</code> conditions and the thread it runs in. chaintrace does not estimate how often a loop turns.</p>"]
    items = [f'<li>Target {t.index + 1}, in <a href="#{t.anchor}"><code>{html.escape(t.name)}</code></a>:'
             + _ul(_when(t.when, "inside") + [f"<li>on its shortest path, {inline(loop)}</li>" for loop in t.path_loops]) + "</li>"
             for t in page.targets]
    out += [_ul(items), "<p>Threads: the thread entry function each path last crossed by a <code>thread</code> edge.</p>"]
    out.append(_ul([f"<li>{inline(thread)}: " + ", ".join(_name(page, node) for node in nodes) + "</li>"
                    for thread, nodes, _ in page.thread_rows]))
    out.append("<p>Calls of the chain inside loops, after early returns or under <code>#if</code>:</p>")
    items = []
    for section in page.sections:
        for call in section.calls:
            if call.when.loops or call.when.guards or call.when.conditions:
                items.append(f"<li>{_name(page, call.src)} {_arrow(call.kind)}{_name(page, section.node)}:"
                             f"{_ul(_when(call.when, 'the call is inside'))}</li>")
    return out + [_ul(items)]


def render(page: Page, svg: str = "") -> str:
    """Return the HTML page; `svg` is the diagram (Graphviz SVG text), embedded with its boxes linked to the sections."""
    title = html.escape(page.title)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{title}</title>",
           "<style>", CSS.strip(), HtmlFormatter(style="default").get_style_defs(".highlight"), "</style>", "</head>", "<body>",
           f"<h1>{title}</h1>", "<table>"]
    out += [f"<tr><th>{html.escape(name)}</th><td>{inline(value)}</td></tr>" for name, value in page.header]
    out += ["</table>", f"<h2 id=\"target{'s' * (len(page.targets) > 1)}\">Target{'s' * (len(page.targets) > 1)}</h2>"]
    out += [_target(target) for target in page.targets]
    if svg:
        out += ['<h2 id="diagram">Diagram</h2>', "<p>Click a function or an arrow to go to its section.</p>",
                f'<div class="diagram">{link_diagram(svg, page)}</div>']
    out += ['<h2 id="paths-in-numbers">Paths in numbers</h2>', f"<p>{inline(page.totals)}.</p>",
            '<table><tr><th>edge kind</th><th>meaning</th><th class="n">edges</th><th class="n">enumerated paths using it</th></tr>']
    out += [f'<tr><td><code>{kind}</code></td><td>{html.escape(words)}</td><td class="n">{edges}</td><td class="n">{paths}</td></tr>'
            for kind, words, edges, paths in page.edge_rows]
    out += ['</table>', '<table><tr><th>thread</th><th class="n">functions of the chain in it</th>'
            '<th class="n">enumerated paths ending in it</th></tr>']
    out += [f'<tr><td>{inline(thread)}</td><td class="n">{len(nodes)}</td><td class="n">{paths}</td></tr>'
            for thread, nodes, paths in page.thread_rows]
    out += ["</table>", *_when_section(page)]
    out += ['<h2 id="the-chain">The chain</h2>', "<p>The enumerated paths merged by common prefix; each name links to its section.</p>",
            '<div class="outline">' + _outline(page, page.outline).replace("<ul>", '<ul class="outline">', 1) + "</div>",
            '<h2 id="functions-along-the-chain">Functions along the chain</h2>']
    out += [_section(section) for section in page.sections]
    if page.diagnostics_total:
        first = f" The first {len(page.diagnostics)}:" if page.diagnostics_total > len(page.diagnostics) else ""
        out += ['<h2 id="indirect-calls-without-a-known-target">Indirect calls without a known target</h2>',
                f"<p>{page.diagnostics_total} indirect calls in the functions of the chop have no known callee: "
                f"a path through them would be missing.{first}</p>", _ul([f"<li>{inline(item)}</li>" for item in page.diagnostics])]
    command = f": <code>{html.escape(page.command)}</code>" if page.command else "."
    out += [f"<footer>Generated by {inline(page.generator)}{command}</footer>", "</body>", "</html>", ""]
    return "\n".join(out)


def render_index(title: str, rows: list[tuple[str, str, str, str, str, str, str]]) -> str:
    """Return the HTML index of a batch: rows of (name, description, from, to, paths, error, folder)."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
           "<style>", CSS.strip(), "</style>", "</head>", "<body>", f"<h1>{html.escape(title)}</h1>",
           '<table><tr><th>trace</th><th>query</th><th class="n">paths</th><th>page</th></tr>']
    for name, description, source, target, paths, error, folder in rows:
        what = f"<code>{html.escape(source)}</code> → <code>{html.escape(target)}</code>"
        what += f"<br>{html.escape(description)}" if description else ""
        page = f'<a href="{html.escape(folder)}/index.html">{html.escape(name)}</a>' if folder else html.escape(error)
        out.append(f'<tr><td>{html.escape(name)}</td><td>{what}</td><td class="n">{html.escape(paths)}</td><td>{page}</td></tr>')
    return "\n".join(out + ["</table>", "</body>", "</html>", ""])
