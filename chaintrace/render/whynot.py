"""Why no path joins an entry to a target (`query.whynot.WhyNot`), as text and as JSON."""

from __future__ import annotations

from chaintrace.query.lookup import GraphLookup
from chaintrace.query.whynot import WhyNot


def _where(graph: GraphLookup, node: str) -> str:
    attrs = graph.node(node)
    return f"{attrs['file']}:{attrs['line']}" if attrs.get("file") else "(not defined in the tree)"


def _name(graph: GraphLookup, node: str) -> str:
    return graph.node(node)["name"]


def _steps(hops: int | None) -> str:
    if hops is None:
        return "no calls between them: near by source file"
    return f"{hops} call{'s' if hops != 1 else ''} away"


def render_why_not(graph: GraphLookup, answer: WhyNot) -> str:
    """Return the answer as text: each side's size, its functions nearest the other side, the joins to look at."""
    entry = _name(graph, answer.entry)
    targets = ", ".join(f"{_name(graph, t)} ({_where(graph, t)})" for t in answer.targets)
    if answer.path_exists:
        return f"a path exists from {entry} to {targets}: `chaintrace trace` lists it\n"
    lines = [f"no path from {entry} to {targets}",
             f"{entry} reaches {answer.reached} function(s); {answer.reaching} function(s) reach the target."]
    if answer.filters_cut:
        lines.append("with every edge kind and nothing avoided a path exists: the --edges or --avoid filters cut it.")
    lines.append(f"closest to the target among the functions {entry} reaches:")
    lines += [f"  {_name(graph, node)}  {_where(graph, node)}  ({_steps(hops)})" for node, hops in answer.near_target]
    lines.append(f"closest to {entry} among the functions that reach the target:")
    lines += [f"  {_name(graph, node)}  {_where(graph, node)}  ({_steps(hops)})" for node, hops in answer.near_entry]
    if answer.joins:
        shown = f", {len(answer.joins)} shown" if answer.joins_total > len(answer.joins) else ""
        lines.append(f"unresolved indirect calls in the functions {entry} reaches, closest to the target first "
                     f"({answer.joins_total}{shown}); any could be the missing call:")
        lines += [f"  {d['file']}:{d['line']}  {d.get('caller', '').rpartition('::')[2]} calls {d['callee']}: "
                  f"{d['reason']}" for d in answer.joins]
    else:
        lines.append(f"no unresolved indirect call in the functions {entry} reaches: "
                     "the missing call is one chaintrace does not see at all (a macro, an unknown registrar?)")
    return "\n".join(lines) + "\n"


def why_not_document(graph: GraphLookup, answer: WhyNot) -> dict:
    """Return the answer as a JSON-able object (`chaintrace why-not --json`)."""
    def functions(found: list[tuple[str, int]]) -> list[dict]:
        return [{"id": node, "name": _name(graph, node), "where": _where(graph, node), "distance": hops}
                for node, hops in found]

    return {"entry": answer.entry, "targets": answer.targets, "path_exists": answer.path_exists,
            "reached": answer.reached, "reaching": answer.reaching,
            "near_target": functions(answer.near_target), "near_entry": functions(answer.near_entry),
            "joins": answer.joins, "joins_total": answer.joins_total, "filters_cut": answer.filters_cut}
