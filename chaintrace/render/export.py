"""The whole resolved call graph for other tools: JSON Lines (`chaintrace.graph/1`) and GraphML.

JSON Lines (`docs/graph-schema.md`, validated by `docs/graph-schema.json`)
is one object per line: a header first, then every node, every edge and
every diagnostic, each with a `type`. Edges carry what a trace document's
edges carry (kind, sites, proof, proofs, confidence, ...). Lines are
written as rows are read, so the whole graph is never held in memory.

GraphML is networkx's writer, for networkx, Gephi or yEd: a directed
multigraph whose edge keys are the edge kinds. GraphML holds scalars only,
so lists and objects (sites, proof, proofs, ambiguous) are JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

SCHEMA = "chaintrace.graph/1"
FORMATS = (".jsonl", ".graphml")

NodeRow = tuple  # (id, name, file, line, end_line, static, external)
EdgeRow = tuple  # (src, dst, kind, data)


def node_object(row: NodeRow) -> dict:
    """Return a node row as the `node` line of the JSON Lines (and the attributes of a GraphML node)."""
    node_id, name, file, line, end_line, static, external = row
    return {"type": "node", "id": node_id, "name": name, "file": file, "line": line, "end_line": end_line,
            "static": bool(static), "external": bool(external)}


def edge_object(row: EdgeRow) -> dict:
    """Return an edge row as its `edge` line: the fields of a trace document's edge."""
    src, dst, kind, data = row
    edge = {"type": "edge", "src": src, "dst": dst, "kind": kind, "sites": data.get("sites", []),
            "proof": data.get("proof"), "proofs": data.get("proofs", []), "confidence": data.get("confidence", "high")}
    edge.update({key: value for key, value in data.items() if key not in edge})
    return edge


def write_jsonl(path: Path, header: dict, nodes: Iterable[NodeRow], edges: Iterable[EdgeRow],
                diagnostics: Iterable[dict]) -> tuple[int, int, int]:
    """Write the graph as JSON Lines; return how many nodes, edges and diagnostics were written."""
    counts = [0, 0, 0]
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "header", "schema": SCHEMA, **header}, ensure_ascii=False) + "\n")
        for index, (rows, make) in enumerate(((nodes, node_object), (edges, edge_object),
                                              (diagnostics, lambda d: {"type": "diagnostic", **d}))):
            for row in rows:
                out.write(json.dumps(make(row), ensure_ascii=False) + "\n")
                counts[index] += 1
    return counts[0], counts[1], counts[2]


def write_graphml(path: Path, header: dict, nodes: Iterable[NodeRow], edges: Iterable[EdgeRow]) -> tuple[int, int]:
    """Write the graph as GraphML with networkx; return how many nodes and edges were written."""
    import networkx as nx

    graph = nx.MultiDiGraph(**{key: value for key, value in header.items() if isinstance(value, (str, int))})
    for row in nodes:
        attrs = node_object(row)
        del attrs["type"]
        graph.add_node(_scalar(attrs.pop("id")), **{key: _scalar(value) for key, value in attrs.items()})
    for row in edges:
        attrs = edge_object(row)
        del attrs["type"]
        src, dst = _scalar(attrs.pop("src")), _scalar(attrs.pop("dst"))
        graph.add_edge(src, dst, key=attrs["kind"], **{key: _scalar(value) for key, value in attrs.items()})
    nx.write_graphml(graph, path)
    return graph.number_of_nodes(), graph.number_of_edges()


# XML 1.0 has no way to hold these (not even as &#1;): a file name or a line of source with one would make the
# whole document unreadable. They are written as `\x01`.
_NOT_XML = {code: f"\\x{code:02x}" for code in (*range(9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF)}


def _scalar(value: object) -> str | int | float | bool:
    """Return a GraphML-able value: scalars as they are (text XML can hold), None as "", lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.translate(_NOT_XML)
    if isinstance(value, (int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False).translate(_NOT_XML)
