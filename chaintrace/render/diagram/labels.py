"""The words of a diagram: edge labels and tooltips, the title, wrapped and clipped text, source links.

Everything is read from the trace document's edges and sites (see
docs/trace-schema.md); a label is short, a tooltip says everything.
"""

from __future__ import annotations

from urllib.parse import quote

import posixpath
import textwrap

from chaintrace.render.diagram.drawing import Arrow

def where_in_cluster(file: str, line: int, mode: str) -> str:
    """Return `file:line` shortened by what the cluster's title already says."""
    if not file:
        return "(not in the tree)"
    shown = posixpath.basename(file) if mode in ("file", "dir") else file
    return f"{shown}:{line}"


def link(template: str, file: str, line: int) -> str:
    if not template or not file:
        return ""
    # the file name percent-encoded: a quote or a newline in it cannot leave the URL (Mermaid, DOT, SVG)
    return template.replace("{file}", quote(file, safe="/")).replace("{line}", str(int(line)))


def _site_where(site: dict, src_file: str) -> str:
    """Return `L123` for a site in the caller's file, `file:123` otherwise (a macro from a header)."""
    return f"L{site['line']}" if site.get("file") == src_file else f"{site.get('file', '?')}:{site['line']}"


def _site_context(site: dict) -> list[str]:
    lines = [f"  in {loop['condition']} (line {loop['line']})" for loop in site.get("loops", [])]
    lines += [f"  #if {condition}" for condition in site.get("conditions", [])]
    return lines


def _how(edge: dict) -> str:
    """Return what makes a non-direct edge, shortly: the registrar, the struct field or the called pointer."""
    kind, site, proof = edge["kind"], edge["sites"][0], edge.get("proof") or {}
    if kind in ("thread", "callback"):
        return site.get("registrar") or proof.get("registrar") or proof.get("field") or "?"
    if kind == "ops":
        return f".{proof['field']}" if proof.get("field") else site.get("callee", "?")
    if kind == "fnptr":
        return site.get("callee") or proof.get("lhs") or "?"
    return ""


def _edge_label(edge: dict, src_file: str) -> str:
    sites = edge["sites"]
    wheres = [_site_where(site, src_file) for site in sites[:2]]
    more = f" +{len(sites) - 2}" if len(sites) > 2 else ""
    parts = [_how(edge)] if edge["kind"] != "direct" else []
    parts.append(",".join(wheres) + more)
    if edge.get("confidence") == "low":
        parts.append("?")
    if any(site.get("loops") for site in sites):
        parts.insert(0, "↻")
    if any(site.get("conditions") for site in sites):
        parts.append("#if")
    return " ".join(part for part in parts if part)


def _edge_tooltip(edge: dict, names: dict[str, str]) -> str:
    kind = edge["kind"]
    head = f"{names.get(edge['src'], edge['src'])} → {names.get(edge['dst'], edge['dst'])}: {kind}"
    if edge.get("detail"):
        head += f" ({edge['detail']})"
    lines = [head]
    for site in edge["sites"]:
        what = _how({**edge, "sites": [site]}) if kind != "direct" else ""
        lines.append(f"{site.get('file', '?')}:{site['line']}" + (f" via {what}" if what else "")
                     + (f" (in macro {site['macro']})" if site.get("macro") else ""))
        lines += _site_context(site)
    proof = edge.get("proof")
    if proof and kind in ("ops", "fnptr"):
        stored = f"{proof.get('struct_type') or '?'}.{proof['field']}" if proof.get("field") else proof.get("lhs", "?")
        lines.append(f"{stored} set at {proof.get('file', '?')}:{proof.get('line', '?')} ({proof.get('how', '')})")
    if edge.get("confidence") == "low":
        lines.append("low confidence: receiver type unknown, resolved by field name")
    if edge.get("ambiguous"):
        lines.append(f"{len(edge['ambiguous'])} definitions: {edge.get('preferred', '')}")
    return "\n".join(lines)


def merge_arrows(edges: list[dict], src: str, dst: str, kind: str, names: dict[str, str], src_file: str,
                 link_template: str) -> Arrow:
    """Return one arrow for the edges of one kind between two boxes (several when a box is a folded group)."""
    if len(edges) == 1:
        edge = edges[0]
        site = edge["sites"][0]
        return Arrow(src, dst, kind, _edge_label(edge, src_file), _edge_tooltip(edge, names),
                     edge.get("confidence") == "low", link(link_template, site.get("file", ""), site["line"]))
    marks = ("↻ " if any(s.get("loops") for e in edges for s in e["sites"]) else "") + f"{len(edges)} calls"
    if any(s.get("conditions") for e in edges for s in e["sites"]):
        marks += " #if"
    shown = [_edge_tooltip(edge, names) for edge in edges[:8]]
    if len(edges) > 8:
        shown.append(f"... and {len(edges) - 8} more")
    low = all(edge.get("confidence") == "low" for edge in edges)
    return Arrow(src, dst, kind, marks, "\n".join(shown), low)


def title(document: dict) -> str:
    query = document.get("query", {})
    what = f"{query.get('from', query.get('entry', '?'))} → {query.get('to', '?')}"
    version = document.get("version") or posixpath.basename(str(document.get("tree", "")).rstrip("/"))
    counts = document.get("counts", {})
    total, listed = counts.get("paths_total"), counts.get("enumerated", len(document["paths"]))
    if total is None:
        paths = f"{listed} path{'s' if listed != 1 else ''}"
    else:
        bound = "" if counts.get("exact", True) else "≥ "
        paths = f"{bound}{total} path{'s' if total != 1 else ''}" + (f", {listed} drawn" if listed != total else "")
    return "  ·  ".join(part for part in (what, version, paths) if part)


def wrap(text: str, width: int, most: int) -> list[str]:
    """Return `text` in lines of about `width` characters, at most `most` lines (the last one clipped with `…`)."""
    lines = textwrap.wrap(" ".join(text.split()), width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > most:
        lines = lines[: most - 1] + [clip(" ".join(lines[most - 1:]), width)]
    return lines


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
