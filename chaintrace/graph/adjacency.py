"""A compact integer form of a call graph, for walks that must be fast on all of QEMU.

A trace walks forward from its entry and backward from its targets over a graph of ~100,000
functions and ~280,000 edges. networkx is where the graph is built and resolved (`build.py`), but
loading it whole takes seconds and importing networkx alone a third of a second; so each resolved
graph state also keeps this form: node ids sorted (a node's index is its rank), and the edges in
both directions as CSR arrays (per node, an offset into one array of neighbours and one of flags),
sorted by neighbour. A flag is `kind code * 4 + undecided * 2 + low`, `low` being 1 for a
low-confidence edge and `undecided` 1 for a call whose receiver picks among several targets
(`kinds.undecided`: a trace takes it only where its path decides which). A third CSR (`simple_*`)
has each successor once, without self-loops: the chop of an unfiltered trace is read from it. Each
node also keeps the rank of its strongly connected component (over every edge), ranks ordered sinks
first: a chop of an unfiltered trace holds whole components (a cycle through one of its nodes stays
inside it), so counting its paths needs no component search of its own. The components themselves
form a DAG, kept too (`comp_*`: each component's members, the components before and after it, the
edges inside it): an unfiltered chop is found on that DAG (`chop_components`) in a few milliseconds,
where walking its nodes would visit tens of thousands.

It round-trips through `to_bytes` / `from_bytes` (a header of lengths, then
the ids as one UTF-8 string and the int32 arrays as they are in memory: no
marshal or pickle, which can be made to misbehave by crafted bytes) and
imports nothing heavy. `from_bytes` checks every length and every index
against the node and component counts, so damaged bytes raise ValueError
and are never walked; the store keeps a checksum of the blob, and once that
matches it reads the blob without the per-index pass.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from itertools import accumulate, chain
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from chaintrace.graph.components import strongly_connected
from chaintrace.graph.csr import csr, edge_csr
from chaintrace.graph.kinds import EDGE_KINDS

FORMAT = 7  # bump when the byte layout changes: old blobs are rebuilt, never misread
_MAGIC = b"ctad"


@dataclass
class Adjacency:
    """Node ids and the edges between them as CSR arrays, forward (`out_*`) and backward (`in_*`)."""

    ids: list[str]
    out_offsets: array
    out_nodes: array
    out_flags: array
    in_offsets: array
    in_nodes: array
    in_flags: array
    simple_offsets: array
    simple_nodes: array
    components: array
    comp_offsets: array  # members of component r: comp_nodes[comp_offsets[r]:comp_offsets[r + 1]]
    comp_nodes: array
    comp_in_offsets: array  # the components with an edge into component r (CSR, each once)
    comp_in: array
    comp_out_offsets: array  # the components component r has an edge into
    comp_out: array
    comp_inner_edges: array  # simple edges between two members of component r
    _index: dict[str, int] | None = field(default=None, repr=False)

    _ARRAY_CODES = ("i", "i", "b", "i", "i", "b", "i", "i", "i", "i", "i", "i", "i", "i", "i", "i")

    @classmethod
    def from_edges(cls, ids: Iterable[str], edges: Iterable[tuple]) -> Adjacency:
        """Return the adjacency of the nodes `ids` and the edges (src, dst, kind, low[, undecided]); edge ends
        join the nodes."""
        names, out, back = edge_csr(ids, edges)
        index = {node: i for i, node in enumerate(names)}
        successors = [[other for other in dict.fromkeys(out[1][out[0][i]:out[0][i + 1]]) if other != i]
                      for i in range(len(names))]
        simple = array("i", accumulate([0] + [len(nodes) for nodes in successors])), array("i", chain.from_iterable(successors))
        components = array("i", [0] * len(names))
        ranked = strongly_connected(successors, range(len(names)))
        for rank, component in enumerate(ranked):
            for node in component:
                components[node] = rank
        members = array("i", accumulate([0] + [len(component) for component in ranked])), \
            array("i", chain.from_iterable(sorted(component) for component in ranked))
        after: list[set[int]] = [set() for _ in ranked]
        inner = array("i", [0] * len(ranked))
        for node, nodes in enumerate(successors):
            rank = components[node]
            for other in nodes:
                if components[other] == rank:
                    inner[rank] += 1
                else:
                    after[rank].add(components[other])
        before = sorted((other, rank) for rank, others in enumerate(after) for other in others)
        comp_in = csr(len(ranked), [(other, rank, 0) for other, rank in before])[:2]
        comp_out = csr(len(ranked), [(rank, other, 0) for rank, others in enumerate(after) for other in sorted(others)])[:2]
        return cls(names, *out, *back, *simple, components, *members, *comp_in, *comp_out, inner, _index=index)

    def _arrays(self) -> tuple[array, ...]:
        return (self.out_offsets, self.out_nodes, self.out_flags, self.in_offsets, self.in_nodes, self.in_flags,
                self.simple_offsets, self.simple_nodes, self.components, self.comp_offsets, self.comp_nodes,
                self.comp_in_offsets, self.comp_in, self.comp_out_offsets, self.comp_out, self.comp_inner_edges)

    def to_bytes(self) -> bytes:
        """Return the adjacency as bytes for `from_bytes`."""
        # the ids as one string: decoding one string and splitting it beats 100,000 strings
        parts = ["\0".join(self.ids).encode("utf-8", "surrogatepass"), *(a.tobytes() for a in self._arrays())]
        # one join, the header included: a header added to the joined parts copied QEMU's 16 MB once more
        return b"".join([struct.pack(f"<4sII{len(parts)}Q", _MAGIC, FORMAT, len(parts), *map(len, parts)), *parts])

    @classmethod
    def from_bytes(cls, data: bytes, every_index: bool = True) -> Adjacency:
        """Return the adjacency stored by `to_bytes`; ValueError when the bytes are not one (or an older format).

        Lengths and offsets' ends are always checked; `every_index` also
        reads every index of every array against its limit (2.5 million on
        QEMU: a fifth of a warm trace) and the order of the ids. The store skips
        that for a blob whose checksum it has just verified: damage cannot
        pass the checksum, and a blob crafted with a valid one can at worst
        give wrong answers or an internal error, as a crafted facts blob can.
        """
        count = len(cls._ARRAY_CODES) + 1
        head = struct.calcsize(f"<4sII{count}Q")
        if len(data) < head or data[:4] != _MAGIC:
            raise ValueError("not an adjacency")
        magic, version, parts, *lengths = struct.unpack_from(f"<4sII{count}Q", data)
        if version != FORMAT or parts != count:
            raise ValueError(f"adjacency format {version!r}, expected {FORMAT}")
        if head + sum(lengths) != len(data):
            raise ValueError("adjacency of the wrong length")
        chunks, start = [], head
        for length in lengths:
            chunks.append(data[start:start + length])
            start += length
        arrays = [array(code) for code in cls._ARRAY_CODES]
        try:
            joined = chunks[0].decode("utf-8", "surrogatepass")
            for target, chunk in zip(arrays, chunks[1:]):
                target.frombytes(chunk)
        except ValueError as error:
            raise ValueError(f"not an adjacency: {error}") from None
        ids = joined.split("\0") if joined else []
        # a node's index is its rank (`index` bisects): checked with every index, for the same reason
        if every_index and any(map(str.__ge__, ids, ids[1:])):
            raise ValueError("adjacency ids are not sorted")
        _check(len(ids), arrays, every_index)
        return cls(ids, *arrays)

    # -- lookups ------------------------------------------------------------
    def index(self, node_id: str) -> int | None:
        """Return the index of a node id, or None (a binary search: the ids are sorted)."""
        if self._index is not None:
            return self._index.get(node_id)
        i = bisect_left(self.ids, node_id)
        return i if i < len(self.ids) and self.ids[i] == node_id else None

    def __len__(self) -> int:
        return len(self.ids)

    def allowed(self, kinds: Iterable[str] | None = None, min_confidence: str = "low", undecided: bool = True) -> bytes:
        """Return a table flag -> 1 when an edge with that flag passes the filter (kinds, confidence, and
        whether undecided edges do)."""
        wanted = set(kinds or EDGE_KINDS)
        return bytes(int(EDGE_KINDS[flag // 4] in wanted and (min_confidence == "low" or not flag % 2)
                         and (undecided or not flag & 2))
                     for flag in range(4 * len(EDGE_KINDS)))

    def neighbours(self, node: int, forward: bool, allowed: bytes) -> Iterator[int]:
        """Yield the successors (or predecessors) of `node` along allowed edges, in index order, once each."""
        offsets, nodes, flags = self._side(forward)
        last = -1
        for j in range(offsets[node], offsets[node + 1]):
            other = nodes[j]
            if other != last and allowed[flags[j]]:
                last = other
                yield other

    def kinds_by_callee(self, src: str) -> dict[str, list[str]]:
        """Return {callee id: [kinds of the edges to it]} of the edges out of `src` (empty when it has none)."""
        grouped: dict[str, list[str]] = {}
        node = self.index(src)
        if node is not None:
            ids, nodes, flags = self.ids, self.out_nodes, self.out_flags
            for j in range(self.out_offsets[node], self.out_offsets[node + 1]):
                grouped.setdefault(ids[nodes[j]], []).append(EDGE_KINDS[flags[j] // 4])
        return grouped

    # -- walks --------------------------------------------------------------
    def reach(self, starts: Iterable[int], forward: bool, allowed: bytes, banned: frozenset[int] = frozenset(),
              depth: int | None = None, within: dict | set | None = None,
              extra: Mapping[int, Iterable[int]] | None = None) -> dict[int, int]:
        """Return {node: distance} of the nodes reachable from `starts` (distance 0) in breadth-first order.

        Walks along the edges (`forward`) or against them, over allowed edges
        only, never entering `banned`; with `depth`, no further than that;
        with `within`, only among those nodes; `extra` adds edges of the walk's
        direction (node -> nodes) that the flags leave out.
        """
        if within is not None:
            banned = _Outside(within, banned)
        offsets, nodes, flags = self._side(forward)
        distance: dict[int, int] = {}
        frontier = []
        for start in starts:
            if start not in distance and start not in banned:
                distance[start] = 0
                frontier.append(start)
        hops = 0
        if all(allowed) and not banned and not extra:  # no filter: whole slices, the simple CSR forward
            offsets, nodes = (self.simple_offsets, self.simple_nodes) if forward else (offsets, nodes)
            while frontier and (depth is None or hops < depth):
                hops += 1
                following = []
                for node in frontier:
                    for other in nodes[offsets[node]:offsets[node + 1]]:
                        if other not in distance:
                            distance[other] = hops
                            following.append(other)
                frontier = following
            return distance
        while frontier and (depth is None or hops < depth):
            hops += 1
            following = []
            for node in frontier:
                for j in range(offsets[node], offsets[node + 1]):
                    other = nodes[j]
                    if other not in distance and allowed[flags[j]] and other not in banned:
                        distance[other] = hops
                        following.append(other)
                for other in extra.get(node, ()) if extra else ():
                    if other not in distance and other not in banned:
                        distance[other] = hops
                        following.append(other)
            frontier = following
        return distance

    def members(self, rank: int) -> array:
        """Return the nodes of the component of that rank, in index order."""
        return self.comp_nodes[self.comp_offsets[rank]:self.comp_offsets[rank + 1]]

    def chop_components(self, source: int, target: int) -> list[int]:
        """Return the ranks, ascending (sinks first), of the components on the paths from `source` to `target` over every edge.

        Ranks fall along every edge between components, so only components
        ranked between the target's and the source's can lie on such a path:
        a walk back from the target's component among those, then forward
        from the source's among the components found.
        """
        first, last = self.components[target], self.components[source]
        if first > last:
            return []
        reaching = _walk_ranks(first, self.comp_in_offsets, self.comp_in, last)
        if last not in reaching:
            return []
        return sorted(_walk_ranks(last, self.comp_out_offsets, self.comp_out, last, within=reaching))

    def components_reaching(self, targets: Iterable[int]) -> set[int]:
        """Return the ranks of the components from which one of `targets` is reached over every edge."""
        found: set[int] = set()
        highest = len(self.comp_offsets) - 2
        for target in targets:
            if self.components[target] not in found:
                found |= _walk_ranks(self.components[target], self.comp_in_offsets, self.comp_in, highest)
        return found

    def successors_among(self, members: dict[int, object] | set[int], allowed: bytes,
                         extra: Mapping[int, Iterable[int]] | None = None) -> dict[int, list[int]]:
        """Return {node: its successors inside `members`, self-loops and repeats dropped} for every member
        (`extra`: more successors the flags leave out)."""
        offsets, nodes, flags = self.out_offsets, self.out_nodes, self.out_flags
        succ: dict[int, list[int]] = {}
        if extra:
            for node, found in self.successors_among(members, allowed).items():
                more = [other for other in extra.get(node, ()) if other in members and other != node]
                succ[node] = sorted(set(found) | set(more)) if more else found
            return succ
        if all(allowed):  # no filter: a slice per node of the simple CSR
            offsets, nodes = self.simple_offsets, self.simple_nodes
            for node in sorted(members):
                succ[node] = [other for other in nodes[offsets[node]:offsets[node + 1]] if other in members]
            return succ
        for node in sorted(members):
            found: list[int] = []
            for j in range(offsets[node], offsets[node + 1]):
                other = nodes[j]
                if other in members and other != node and allowed[flags[j]] and (not found or found[-1] != other):
                    found.append(other)
            succ[node] = found
        return succ

    def _side(self, forward: bool) -> tuple[array, array, array]:
        if forward:
            return self.out_offsets, self.out_nodes, self.out_flags
        return self.in_offsets, self.in_nodes, self.in_flags


class _Outside:
    """The nodes a walk may not enter: those not `within`, and those `banned`."""

    def __init__(self, within: dict | set, banned: frozenset[int]) -> None:
        self.within, self.banned = within, banned

    def __contains__(self, node: int) -> bool:
        return node not in self.within or node in self.banned


def _walk_ranks(start: int, offsets: array, neighbours: array, highest: int, within: set[int] | None = None) -> set[int]:
    """Return the components reached from `start` over a component CSR, none ranked above `highest`, only `within`."""
    found, frontier = {start}, [start]
    while frontier:
        following = []
        for rank in frontier:
            for other in neighbours[offsets[rank]:offsets[rank + 1]]:
                if other <= highest and other not in found and (within is None or other in within):
                    found.add(other)
                    following.append(other)
        frontier = following
    return found


def _check(nodes: int, arrays: list[array], every_index: bool = True) -> None:
    """Raise ValueError unless the arrays fit `nodes` nodes: lengths, offsets' ends, and (`every_index`) every
    index in range."""
    (out_offsets, out_nodes, out_flags, in_offsets, in_nodes, in_flags, simple_offsets, simple_nodes, components,
     comp_offsets, comp_nodes, comp_in_offsets, comp_in, comp_out_offsets, comp_out, inner) = arrays
    ranks = len(comp_offsets) - 1

    def within(values: array, limit: int) -> bool:
        # In C, not per element in Python (min and max took a quarter of a warm trace): signed bytes are
        # checked by deleting the allowed ones; ints are read as unsigned, so a negative one is huge.
        if not values or not every_index:
            return True
        if values.typecode == "b":
            return not values.tobytes().translate(None, bytes(range(max(0, min(limit, 128)))))
        return max(memoryview(values).cast("B").cast("I")) < limit

    def csr(offsets: array, values: array, rows: int, limit: int) -> bool:
        return (len(offsets) == rows + 1 and offsets[0] == 0 and offsets[-1] == len(values)
                and within(offsets, len(values) + 1) and within(values, limit))

    if not (ranks >= 0 and csr(out_offsets, out_nodes, nodes, nodes) and csr(in_offsets, in_nodes, nodes, nodes)
            and csr(simple_offsets, simple_nodes, nodes, nodes) and len(out_flags) == len(out_nodes)
            and len(in_flags) == len(in_nodes) and within(out_flags, 4 * len(EDGE_KINDS))
            and within(in_flags, 4 * len(EDGE_KINDS)) and len(components) == nodes and within(components, ranks)
            and csr(comp_offsets, comp_nodes, ranks, nodes) and len(comp_nodes) == nodes
            and csr(comp_in_offsets, comp_in, ranks, ranks) and csr(comp_out_offsets, comp_out, ranks, ranks)
            and len(inner) == ranks and within(inner, len(simple_nodes) + 1)):
        raise ValueError("adjacency arrays do not match its nodes")
