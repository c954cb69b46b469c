"""The stored form of a file's facts: msgpack, compressed, with a checksum; never a format that can run code.

A cache folder may be shared, copied or damaged, so nothing read back from
it may be able to do more than fail to decode. Pickle (and marshal, which
is documented as unsafe for untrusted data) are out; facts are stored as
msgpack (plain strings, numbers and arrays) and rebuilt by calling their
classes, so a blob can at worst hold wrong values.

Each list of facts is stored by column (one array per field): rebuilding a
list is then one `map(cls, *columns)`, run in C, as fast as pickle was, and
a column of equal values (the file name) compresses to nothing. Contexts
(the loops, `#if`s and guards around a site) are shared by many sites of a
function: they are stored once per file, in a table the sites point into.

A blob is `MAGIC`, a 16-byte BLAKE2b digest and the zlib-compressed
msgpack. The digest covers the fact key the blob is stored under as well as
its bytes, so a damaged blob and a blob moved under another key are both
told apart from a good one (`decode_facts` raises ValueError; the store
drops the entry and the file is extracted again). The digest catches
damage, not an author: the format is what makes a crafted blob harmless.
"""

from __future__ import annotations

import dataclasses
import sys
import zlib
from collections.abc import Callable
from itertools import repeat, starmap
from operator import attrgetter

import msgpack
import xxhash

from chaintrace.extract.copies import returned_whole, variable_assigned
from chaintrace.extract.facts import (Around, CallSite, Context, Define, FieldRead, FieldWrite, FileFacts, FunctionDef,
                                      FunctionRef, Guard, Hop, Include, Loop, MacroUse, Param, ParseError, Prototype,
                                      StructDef, StructField, Typedef, VarDecl)

MAGIC = b"ctf4"  # bump with the layout: a blob of another layout fails its first check
_DIGEST = 16
_MAX_RAW = 256 << 20  # facts of an 8 MB file are far less; a larger blob is damage (or a zip bomb)
_LISTS = (("functions", FunctionDef), ("prototypes", Prototype), ("calls", CallSite), ("refs", FunctionRef),
          ("writes", FieldWrite), ("reads", FieldRead), ("structs", StructDef), ("typedefs", Typedef),
          ("variables", VarDecl), ("defines", Define), ("errors", ParseError), ("includes", Include),
          ("macro_uses", MacroUse))
assert [name for name, _ in _LISTS] == [f.name for f in dataclasses.fields(FileFacts)][1:], "FileFacts changed"
_EMPTY = Context()


def _digest(key: str, payload: bytes, kind: bytes = b"chaintrace-facts") -> bytes:
    import hashlib  # here: its OpenSSL start-up is a sixth of a warm trace's imports, which read no facts

    return hashlib.blake2b(payload, digest_size=_DIGEST, person=kind, key=key.encode()[:64]).digest()


def _seal_digest(key: str, payload: bytes, kind: bytes) -> bytes:
    # xxh3-128, not BLAKE2b: a warm trace unseals the 16 MB adjacency of QEMU, 25 ms of BLAKE2b (a twelfth of the
    # trace) against 2 ms. Both catch damage; neither stops an author (see the module docstring).
    digest = xxhash.xxh3_128()
    digest.update(b"%s\0%s\0" % (kind, key.encode("utf-8", "surrogatepass")))
    digest.update(payload)
    return digest.digest()


def seal(data: bytes, key: str, kind: bytes) -> bytes:
    """Return `data` behind a checksum of itself, the row `key` it is stored under and its `kind`."""
    return _seal_digest(key, data, kind) + data


def unseal(blob: bytes, key: str, kind: bytes) -> bytes:
    """Return the data `seal(data, key, kind)` was given; ValueError when the blob is damaged or foreign."""
    blob = blob if isinstance(blob, bytes) else bytes(blob)
    data = blob[_DIGEST:]
    if len(blob) < _DIGEST or _seal_digest(key, data, kind) != blob[:_DIGEST]:
        raise ValueError(f"damaged {kind.decode()} blob: checksum mismatch")
    return data


def _pairs(items: tuple) -> list:
    return [(item.name, item.type) for item in items]


def _members(items: tuple) -> list:
    return [(item.name, item.type, item.is_fnptr) for item in items]


# One Param object per distinct (name, type) read back (`Error **errp`, `void *opaque` recur in thousands of
# functions: a copy each was 30 MB of QEMU's facts); dropped when it grows past _MOST_PARAMS.
_PARAMS: dict[tuple, Param] = {}
_MOST_PARAMS = 1 << 18


def _param(row: tuple) -> Param:
    found = _PARAMS.get(row)
    if found is None:
        if len(_PARAMS) >= _MOST_PARAMS:
            _PARAMS.clear()
        found = _PARAMS[row] = Param(*map(sys.intern, row))  # TypeError for a row that is not text: damaged
    return found


def _params(rows: tuple) -> tuple[Param, ...]:
    return tuple(map(_param, rows))


def _struct_fields(rows: tuple) -> tuple[StructField, ...]:
    return tuple(starmap(StructField, rows))


def _context_row(context: Context) -> tuple:
    return ([(loop.kind, loop.condition, loop.line) for loop in context.loops], context.conditions,
            [(guard.condition, guard.statement, guard.line) for guard in context.guards])


def _context(row: tuple) -> Context:
    loops, conditions, guards = row
    if not (loops or conditions or guards):
        return _EMPTY
    return Context(tuple(starmap(Loop, loops)), conditions, tuple(starmap(Guard, guards)))


def _arounds(items: tuple) -> list:
    return [(item.name, item.line, item.col) for item in items]


def _within(rows: tuple) -> tuple[Around, ...]:
    if not rows:
        return ()
    found = []
    for name, line, col in rows:
        if type(name) is not str or type(line) is not int or type(col) is not int:
            raise TypeError("an enclosing call is not (name, line, col)")
        found.append(Around(sys.intern(name), line, col))
    return tuple(found)


def _hop_rows(items: tuple) -> list:
    return [(item.name, item.index, item.line, item.col) for item in items]


def _hops(rows: tuple) -> tuple[Hop, ...]:
    if not rows:
        return ()
    found = []
    for name, index, line, col in rows:
        if type(name) is not str or type(index) is not int or type(line) is not int or type(col) is not int:
            raise TypeError("a hop is not (name, index, line, col)")
        found.append(Hop(sys.intern(name), index, line, col))
    return tuple(found)


# One tuple per distinct argument list read back: half of QEMU's 364,000 calls with arguments repeat another's
# (`(s)`, `(errp)`, `(s, errp)`): 12 MB of its graph's facts; dropped when it grows past _MOST_PARAMS.
_ARGS: dict[tuple, tuple[str, ...]] = {}


def _texts(items: tuple) -> tuple[str, ...]:
    if not items:
        return ()
    found = _ARGS.get(items)
    if found is None:
        if len(_ARGS) >= _MOST_PARAMS:
            _ARGS.clear()
        # a call's arguments (`s`, `errp`, `NULL`): each text shared, as other text is (TypeError if not text);
        # the shared tuple is its own key, so the one read is not kept beside it
        found = tuple(map(sys.intern, items))
        _ARGS[found] = found
    return found


def forget_shared() -> None:
    """Drop the tables that share equal parameters and argument lists among the facts decoded (those decoded keep
    what they share; their tables were 5 MB on QEMU, for the whole resolve); returns None."""
    _PARAMS.clear()
    _ARGS.clear()


# Per field that holds facts of its own: (to stored form, from stored form); "context" is the per-file table.
_NESTED: dict[tuple[type, str], tuple[Callable, Callable]] = {
    (FunctionDef, "params"): (_pairs, _params),
    (Prototype, "params"): (_pairs, _params),
    (StructDef, "fields"): (_members, _struct_fields),
    (CallSite, "args"): (tuple, _texts),
    (CallSite, "within"): (_arounds, _within),
    (CallSite, "passed"): (_hop_rows, _hops),
}
_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for _, cls in _LISTS}
# Text fields repeat across a tree's facts (the file's path in every fact, a function's name in each of its
# calls, callee and type names): read back, each is one shared string, not one copy per fact (a third of the
# memory a graph's facts take).
_TEXT = {(cls, f.name) for _, cls in _LISTS for f in dataclasses.fields(cls) if f.type == "str"}
_GETTERS = {cls: tuple(map(attrgetter, names)) for cls, names in _FIELDS.items()}
# Line and column numbers, likewise: msgpack makes a new int object for each one past 256 (28 bytes apiece,
# 45 MB over QEMU's facts); read back, each is the one object of its value.
_NUMBER = {(cls, f.name) for _, cls in _LISTS for f in dataclasses.fields(cls) if f.type == "int"}
_NUMBERS: dict[int, int] = {}
# What the call graph never reads (graph.build), left out of the facts it is given (`decode_facts(graph=True)`):
# the comment above each function, and the early-return guards of every site but the field writes and reads
# (their rows keep them); a third of a function's facts and a fifth of a context's.
_GRAPH_BLANK = {(FunctionDef, "comment")}
_GUARDED = (FieldWrite, FieldRead)


def encode_facts(facts: FileFacts, key: str = "") -> bytes:
    """Return the stored form of a file's facts, checksummed for the fact key `key`."""
    contexts: dict[Context, int] = {_EMPTY: 0}

    def context_index(context: Context) -> int:
        index = contexts.get(context)
        if index is None:
            index = contexts[context] = len(contexts)
        return index

    lists = []
    for name, cls in _LISTS:
        items = getattr(facts, name)
        columns = []
        for field, get in zip(_FIELDS[cls], _GETTERS[cls]):
            column = map(get, items)
            if field == "context":
                column = map(context_index, column)
            elif (cls, field) in _NESTED:
                column = map(_NESTED[cls, field][0], column)
            columns.append(list(column))
        lists.append((len(items), columns))
    payload = (facts.path, lists, [_context_row(context) for context in contexts])
    data = zlib.compress(msgpack.packb(payload), 1)
    return MAGIC + _digest(key, data) + data


def decode_facts(blob: bytes, key: str = "", graph: bool = False, only: frozenset[str] | None = None) -> FileFacts:
    """Return the facts stored by `encode_facts(facts, key)`; ValueError when the blob is damaged, foreign or malformed.

    `graph=True` returns them as the call graph reads them: what it never reads (`_GRAPH_BLANK`, the guards of
    sites other than field writes and reads, the field reads but declarations' initializers, whole assignments to a variable and members returned whole: graph.flowfacts)
    is left out, which the graph resolved from them does not show. `only` names the lists to read (the others
    are left empty).
    """
    raw = packed_facts(blob, key)
    try:
        return _rebuild(msgpack.unpackb(raw, use_list=False, strict_map_key=True), graph, only)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, RecursionError,
            msgpack.UnpackException) as error:
        raise ValueError(f"damaged facts: {type(error).__name__}: {error}") from None


def packed_facts(blob: bytes, key: str = "") -> bytes:
    """Return the msgpack bytes of a facts blob, checked and inflated (every text of the facts is in them as
    UTF-8); ValueError when the blob is damaged, foreign or too large."""
    blob = blob if isinstance(blob, bytes) else bytes(blob)
    if blob[:len(MAGIC)] != MAGIC:
        raise ValueError("damaged facts: not a facts blob of this version")
    start = len(MAGIC) + _DIGEST
    data = blob[start:]
    if _digest(key, data) != blob[len(MAGIC):start]:
        raise ValueError("damaged facts: checksum mismatch")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data, _MAX_RAW)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("truncated or too large")
        return raw
    except (ValueError, zlib.error) as error:
        raise ValueError(f"damaged facts: {type(error).__name__}: {error}") from None


def _rebuild(payload: tuple, graph: bool = False, only: frozenset[str] | None = None) -> FileFacts:
    """Return the facts of an unpacked payload (`graph`: as `decode_facts` says); any shape error raises (the
    caller turns it into ValueError)."""
    path, lists, context_rows = payload
    if not isinstance(path, str) or len(lists) != len(_LISTS):
        raise TypeError("not a facts payload")
    contexts = list(map(_context, context_rows))
    bare = [(Context(c.loops, c.conditions) if c.loops or c.conditions else _EMPTY) if c.guards else c
            for c in contexts] if graph else contexts
    if not _NUMBERS:
        _NUMBERS.update((n, n) for n in range(1 << 16))
    numbers = _NUMBERS.get
    built = []
    for (name, cls), (count, columns) in zip(_LISTS, lists):
        if only is not None and name not in only:
            built.append(())
            continue
        fields = _FIELDS[cls]
        if len(columns) != len(fields) or any(len(column) != count for column in columns):
            raise ValueError(f"{cls.__name__} columns do not match")  # map() would stop at the shortest
        columns = list(columns)
        for i, field in enumerate(fields):
            if field == "context":
                columns[i] = map((contexts if cls in _GUARDED else bare).__getitem__, columns[i])
            elif (cls, field) in _NESTED:
                columns[i] = map(_NESTED[cls, field][1], columns[i])
            elif graph and (cls, field) in _GRAPH_BLANK:
                if not all(type(value) is str for value in columns[i]):
                    raise TypeError(f"{cls.__name__}.{field} is not text")
                columns[i] = repeat("", count)
            elif (cls, field) in _NUMBER:
                columns[i] = map(numbers, columns[i], columns[i])
            elif (cls, field) in _TEXT:
                columns[i] = map(sys.intern, columns[i])  # TypeError for a non-text value: damaged
        items = tuple(map(cls, *columns))
        if graph and cls is FieldRead:  # the rest are rows of the graph tables only, read again to save them
            items = tuple(read for read in items
                          if read.how == "initializer" or variable_assigned(read) or returned_whole(read))
        built.append(items)
    return FileFacts(path, *built)
