"""A trace as readable text: per target, the paths merged by common prefix into a tree.

    qmp_migrate  migration/migration.c:2208
    └─ qmp_migrate_finish  at migration/migration.c:2290:9
       └─ socket_start_outgoing_migration  at migration/migration.c:2317:13
          └─ socket_outgoing_migration  ⇒ callback (QIO) via qio_channel_socket_connect_async(arg 2) at migration/socket.c:103:5
             ...
                └─ migration_update_counters  at migration/migration.c:3683:5
                   ◆ s->threshold_size = ...;  migration/migration.c:3418

Each hop shows the call site (`file:line:col`); a non-direct hop shows its
kind and proof (`⇒ thread via qemu_thread_create(arg 2) at ...`, `⇒ ops via
se->ops->save_live_iterate at ...; stored at ...`), then the loops the site
sits in and its `#if` conditions.
"""

from __future__ import annotations

from chaintrace.query.lookup import GraphLookup
from chaintrace.query.results import TargetSite, TargetTrace, Trace, counts_by_target
from chaintrace.render.wording import bound_words


def _where(item: dict) -> str:
    col = f":{item['col']}" if item.get("col") else ""
    return f"{item['file']}:{item['line']}{col}"


def _context(item: dict) -> str:
    """Return the loops and `#if` conditions of a site or target context, as text ("" when none)."""
    parts = [f"in {loop['condition']}" for loop in item.get("loops", [])]
    if item.get("conditions"):
        parts.append(f"[#if {' && '.join(item['conditions'])}]")
    return "  " + "  ".join(parts) if parts else ""


def describe_hop(cg: GraphLookup, src: str, dst: str, kinds: list[str] | None = None) -> str:
    """Return how `src` reaches `dst`: call site, kind and proof, loop and `#if` context, extra kinds and sites."""
    edges = cg.edges_between(src, dst, kinds)
    if not edges:
        return ""
    kind, data = edges[0]
    site = data["sites"][0]
    if kind == "direct":
        text = f"at {_where(site)}" + (f" (in macro {site['macro']})" if site.get("macro") else "")
    elif kind in ("thread", "callback"):
        detail = f" ({data['detail']})" if data.get("detail") and data.get("detail") != kind else ""
        registrar = site.get("registrar", "?")
        how = f"{registrar}(arg {site['arg_index']})" if "arg_index" in site else f"store to {registrar}"
        text = f"⇒ {kind}{detail} via {how} at {_where(site)}"
    else:
        proof = data.get("proof", {})
        stored = f"{proof.get('struct_type') or '?'}.{proof['field']}" if proof.get("field") else proof.get("lhs", "?")
        text = f"⇒ {kind} via {site.get('callee', '?')} at {_where(site)}; {stored} stored at {_where(proof)}"
    if data.get("confidence") == "low":
        text += " (low confidence: receiver type unknown)"
    if data.get("ambiguous"):
        text += f" (ambiguous: {len(data['ambiguous'])} definitions, {data.get('preferred', '')})"
    text += _context(site)
    extra = [k for k, _ in edges[1:]]
    if len(data["sites"]) > 1:
        text += f"  (+{len(data['sites']) - 1} more site{'s' if len(data['sites']) > 2 else ''})"
    if extra:
        text += f"  (also {', '.join(extra)})"
    return text


def _label(cg: GraphLookup, node: str) -> str:
    attrs = cg.node(node)
    return attrs.get("name", node)


def render_tree(cg: GraphLookup, paths: list[list[str]], kinds: list[str] | None = None, leaf_note: str = "") -> list[str]:
    """Return the lines of `paths` merged by common prefix (all paths start at the same node).

    `leaf_note` is printed under every path's last node (the target statement).
    """
    if not paths:
        return []
    trie: dict = {}
    for path in paths:
        level = trie
        for node in path[1:]:
            level = level.setdefault(node, {})
    root = paths[0][0]
    attrs = cg.node(root)
    lines = [f"{_label(cg, root)}  {attrs['file']}:{attrs['line']}" if attrs.get("file") else _label(cg, root)]
    if leaf_note and not trie:
        lines.append(f"   {leaf_note}")

    def walk(parent: str, children: dict, indent: str) -> None:
        for index, (node, grandchildren) in enumerate(children.items()):
            last = index == len(children) - 1
            lines.append(f"{indent}{'└─' if last else '├─'} {_label(cg, node)}  {describe_hop(cg, parent, node, kinds)}")
            below = indent + ("   " if last else "│  ")
            if leaf_note and not grandchildren:
                lines.append(f"{below}   {leaf_note}")
            walk(node, grandchildren, below)

    walk(root, trie, "")
    return lines


def access_words(site: TargetSite) -> str:
    """Return how a field target's site accesses the field and how it was matched ("" for other targets).

    `write (=) of MigrationState.threshold_size`, `read (condition) of ?.threshold_size, matched by field
    name (receiver type unknown)`.
    """
    if site.kind not in ("assign", "read", "use") or not site.access:
        return ""
    what = {"assign": "write", "read": "read"}.get(site.kind, "use")
    how = {"type": ", matched by struct type", "expr": ", matched by expression",
           "name": "" if site.receiver_type else ", matched by field name (receiver type unknown)"}
    return f"{what} ({site.access}) of {site.receiver_type or '?'}.{site.field}{how.get(site.match, '')}"


def _target_line(site: TargetSite) -> str:
    statement = site.statement or "(function)"
    guards = "".join(f"  after early return if {g['condition']}" for g in site.context.get("guards", []))
    access = access_words(site)
    access = f"  [{access}]" if access else ""
    return f"◆ {statement}  {site.file}:{site.line}{access}{_context(site.context)}{guards}"


def _count_line(result: TargetTrace) -> str:
    count = result.count
    total = f"{bound_words(count.exact, count.method)}{count.total}"
    more = f", {result.omitted} more not shown" if result.omitted else ""
    return f"{total} path{'s' if count.total != 1 else ''} ({count.method}), {len(result.paths)} shown{more}"


def render_trace(cg: GraphLookup, trace: Trace) -> str:
    """Return the whole trace as text: per target site its header, path tree and statement."""
    kinds = trace.query.get("edge_kinds")
    out: list[str] = []
    for count in counts_by_target(trace):  # several targets: each one's count first
        total = f"{bound_words(count['exact'], count['method'])}{count['paths_total']}"
        out.append(f"{count['to']}: {count['sites']} site{'s' if count['sites'] != 1 else ''}, "
                   f"{total} path{'s' if count['paths_total'] != 1 else ''}")
    if out:
        out.append("")
    for number, result in enumerate(trace.targets, 1):
        site = result.site
        spec = f" for {site.target}" if site.target else ""
        out.append(f"[{number}/{len(trace.targets)}] {site.kind} target in {_label(cg, site.function)} "
                   f"({site.file}:{site.line}){spec}: {_count_line(result)}")
        tree = render_tree(cg, result.paths, kinds, _target_line(site))
        if not tree and not result.count.total:
            out.append(f"  no path from {_label(cg, trace.entry)}")
        out.extend("  " + line for line in tree)
        out.append("")
    if trace.diagnostics:
        out.append(f"{len(trace.diagnostics)} indirect call(s) on the way could not be resolved, e.g.:")
        for diagnostic in trace.diagnostics[:5]:
            out.append(f"  {diagnostic['file']}:{diagnostic['line']} {diagnostic['callee']}: {diagnostic['reason']}")
        out.append("")
    if trace.undecided_total:
        out.append(f"{trace.undecided_total} call(s) on the way were not followed: the receiver picks the callee at "
                   "run time and nothing on the path decides which (--undecided follows them); nearest:")
        for door in trace.undecided[:5]:
            out.append(f"  {door['file']}:{door['line']} {door['callee']} in {door['caller'].rsplit('::', 1)[-1]}: "
                       f"{door['targets']} callee(s) lead to the target")
    return "\n".join(out).rstrip() + "\n"
