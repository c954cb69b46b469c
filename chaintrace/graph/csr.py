"""CSR arrays (per node an offset into one array of neighbours and one of flags) from a graph's edges.

`adjacency.Adjacency` is made of them. Its edges come from a graph of QEMU's
size (125,000 nodes, 360,000 edges) as it is saved, at the resolver's peak of
memory, so they are read into arrays of ints as they come and sorted as
packed ints, never held as a list of edge tuples and a set of triples.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from itertools import accumulate

from chaintrace.graph.kinds import EDGE_KINDS


def edge_csr(ids: Iterable[str], edges: Iterable[tuple]) -> tuple[list[str], tuple, tuple]:
    """Return the sorted node names (`ids` and the edges' ends) and the forward and backward CSR (offsets,
    neighbours, flags) of the edges, each (node, neighbour, flag) once.

    Each edge is held as three ints while the edges are read, and as one int (node, neighbour and flag packed)
    while they are sorted: QEMU's graph as a list of edge tuples and a set of triples was ~100 MB at the peak of
    saving it, where this is a tenth of that.
    """
    provisional: dict[str, int] = {}
    for node in ids:
        provisional.setdefault(node, len(provisional))
    sources, targets, flags = array("i"), array("i"), array("b")
    for edge in edges:
        src, dst = edge[0], edge[1]
        sources.append(provisional.setdefault(src, len(provisional)))
        targets.append(provisional.setdefault(dst, len(provisional)))
        flags.append(EDGE_KINDS.index(edge[2]) * 4 + bool(len(edge) > 4 and edge[4]) * 2 + bool(edge[3]))
    names = sorted(provisional)
    rank = array("i", [0] * len(names))
    for i, node in enumerate(names):
        rank[provisional[node]] = i
    del provisional
    size = len(names)
    shift = size * _FLAGS  # (node, neighbour, flag) as node * shift + neighbour * _FLAGS + flag: sorts as the triple
    forward = _unique_sorted(rank[s] * shift + rank[d] * _FLAGS + f for s, d, f in zip(sources, targets, flags))
    del sources, targets, flags
    backward = sorted((key % shift) // _FLAGS * shift + key // shift * _FLAGS + key % _FLAGS for key in forward)
    return names, _csr_packed(size, forward, shift), _csr_packed(size, backward, shift)


_FLAGS = 256  # more than any flag (kind code * 4 + 3): packed triples sort as the triples do


def _unique_sorted(keys: Iterable[int]) -> list[int]:
    """Return `keys` sorted, each once (duplicates dropped in place: no set of them beside the list)."""
    ordered = sorted(keys)
    kept = 0
    for key in ordered:
        if not kept or key != ordered[kept - 1]:
            ordered[kept] = key
            kept += 1
    del ordered[kept:]
    return ordered


def _csr_packed(size: int, keys: list[int], shift: int) -> tuple[array, array, array]:
    """Return (offsets, neighbours, flags) of packed (node, neighbour, flag) keys sorted by node then neighbour."""
    return (_offsets(size, (key // shift for key in keys)), array("i", (key % shift // _FLAGS for key in keys)),
            array("b", (key % _FLAGS for key in keys)))


def csr(size: int, triples: list[tuple[int, int, int]]) -> tuple[array, array, array]:
    """Return (offsets, neighbours, flags) of (node, neighbour, flag) triples sorted by node then neighbour."""
    sources, neighbours, flags = zip(*triples) if triples else ((), (), ())
    return _offsets(size, sources), array("i", neighbours), array("b", flags)


def _offsets(size: int, nodes: Iterable[int]) -> array:
    """Return the CSR offsets of `size` nodes from the node of each entry, in order: node n's entries are
    offsets[n]:offsets[n + 1]."""
    counts = [0] * (size + 1)
    for node in nodes:
        counts[node + 1] += 1
    return array("i", accumulate(counts))
