"""A graph's direct edges while it is built: the calls that make them, not networkx attribute dicts.

A direct edge of QEMU's graph (290,000 of them, 390,000 sites) held as
networkx data costs about 1.1 KB: the key dict, the data dict, the list of
sites, a dict per site and its line's int. Every site is a `CallSite` the
facts hold anyway (plus the macro's name when a macro made the call), so
`DirectEdges` keeps just that, and makes the data dicts only when the graph
is read: `CallGraph` puts them in networkx once the graph is built, or
`iter_rows` yields them one at a time to a graph being saved, which never
holds them all (a third of the resolver's peak memory on QEMU).

The rows come out exactly as `CallGraph.add_site` made them: sites in call
order, an equal site (same position, `#if` conditions, loops and macro)
kept once, the first call's extra data (`ambiguous`, `preferred`), and the
edges in the order networkx lists them (`merged`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from chaintrace.extract.facts import CallSite
from chaintrace.graph.sites import call_site

_SCANNED = 8  # sites of an edge compared one by one before the edge gets a set of them (as CallGraph does)

Site = tuple[CallSite, str]  # the call and the macro that made it ("" for none)


def _key(site: Site) -> tuple:
    """Return what makes two sites equal as site dicts: position, conditions, loops, macro."""
    call, macro = site
    return call.file, call.line, call.col, call.context.conditions, call.context.loops, macro


class DirectEdges:
    """The direct edges of a graph: src -> dst -> [its extra data, then its sites], in insertion order."""

    def __init__(self) -> None:
        self._out: dict[str, dict[str, list]] = {}
        self._seen: dict[int, set[tuple]] = {}  # id(an edge's list) -> keys of its sites, past _SCANNED of them

    def add(self, src: str, dst: str, call: CallSite, macro: str = "", data: dict | None = None) -> None:
        """Add the site of `call` (made by `macro`) to the edge src -> dst, created with `data` if new; returns None."""
        targets = self._out.get(src)
        if targets is None:
            targets = self._out[src] = {}
        entry = targets.get(dst)
        site = (call, macro)
        if entry is None:
            targets[dst] = [data or None, site]
            return
        seen = self._seen.get(id(entry))
        if seen is None:
            key = _key(site)
            if any(_key(old) == key for old in entry[1:]):
                return
            entry.append(site)
            if len(entry) > _SCANNED:
                self._seen[id(entry)] = {_key(old) for old in entry[1:]}
            return
        key = _key(site)
        if key not in seen:
            seen.add(key)
            entry.append(site)

    def __len__(self) -> int:
        return sum(map(len, self._out.values()))

    def targets(self, src: str) -> dict[str, list]:
        """Return {dst: entry} of the direct edges out of `src` (empty when none)."""
        return self._out.get(src, {})

    def sources(self) -> Iterable[str]:
        """Return the sources of direct edges, in the order their first edge was added."""
        return self._out.keys()


def edge_data(entry: list) -> dict:
    """Return the data dict of a direct edge's entry, as `CallGraph.add_site` makes it."""
    data: dict = {"sites": [call_site(call, **({"macro": macro} if macro else {})) for call, macro in entry[1:]],
                  "confidence": "high"}
    if entry[0]:
        data.update(entry[0])
    return data


def merged(nodes: Iterable[str], direct: DirectEdges, succ, with_data: bool = True
           ) -> Iterator[tuple[str, str, str, dict | None]]:
    """Yield (src, dst, kind, data) of the direct edges and of the networkx adjacency `succ` (src -> dst -> kind
    -> data, the other kinds), in the order networkx would list them had the direct edges been added first;
    `with_data=False` gives None as the data of the direct edges (all high confidence, never undecided) instead of
    making it.

    networkx lists the edges of each source by the order their callee was first joined to it, then by the order
    of their kinds: every direct edge came first, so its callee comes before the callees only other kinds reach,
    and its kind before theirs.
    """
    for src in nodes:
        others = succ.get(src, {})
        targets = direct.targets(src)
        for dst, entry in targets.items():
            yield src, dst, "direct", edge_data(entry) if with_data else None
            for kind, data in others.get(dst, {}).items():
                yield src, dst, kind, data
        for dst, keyed in others.items():
            if dst not in targets:
                for kind, data in keyed.items():
                    yield src, dst, kind, data
