"""A seeded robustness suite: mutated C trees and a damaged cache, with the answers checked.

* Mutation fuzzer: every C file of our fixture trees, mutated (byte flips,
  truncation, deletions, deep nesting, long lines, NUL, BOM, CRLF, invalid
  UTF-8), `FUZZ_FILES` files per run, one in ten under an odd name (quotes,
  line breaks, spaces, markup, bytes that are not UTF-8), indexed by the
  real indexer and traced: no exception, every file is either indexed or
  skipped with a reason (a name that is not UTF-8 says so), and at least
  `FUZZ_PARSED` (1,000) were parsed, not skipped unread.
* Cache damage: a clean index of mini_qemu and its headline trace, then
  `DAMAGE_CASES` damaged copies of that cache (flipped, truncated, deleted
  or pickled facts blobs, damaged adjacency and recorded scans): each
  answers exactly as the clean cache did; a third of them damage one row of
  the resolved graph's tables (mostly one the answer reads).

`make fuzz` runs both longer (CHAINTRACE_FUZZ_SCALE=20) with another seed
(CHAINTRACE_FUZZ_SEED).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import sqlite3
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest

from chaintrace import api
from helpers.fixture_trees import FIXTURES, complete_tree

SEED = int(os.environ.get("CHAINTRACE_FUZZ_SEED", "17"))
SCALE = int(os.environ.get("CHAINTRACE_FUZZ_SCALE", "1"))
FUZZ_FILES = 1400 * SCALE  # written; a NUL or a byte that is not UTF-8 has about one in six skipped unparsed,
FUZZ_PARSED = 1000 * SCALE  # so that at least this many reach the parser and the extractor
DAMAGE_CASES = 50 * SCALE
CASE_SECONDS = 10  # the bound on every case (a file of the fuzzer, a damaged cache) on a small tree
QUIET = [].append


def _sources() -> list[bytes]:
    return [path.read_bytes() for path in sorted(FIXTURES.rglob("*")) if path.suffix in (".c", ".h") and path.is_file()]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Return `data` with one to three seeded mutations."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        # NUL (5) and bytes that are not UTF-8 (8) weigh half: each skips its file before the parser
        kind = rng.choices(range(10), weights=(2, 2, 2, 2, 2, 1, 2, 2, 1, 2))[0]
        at = rng.randrange(len(data) + 1)
        if kind == 0 and data:  # byte flips, below the high bit and never to NUL: the file still reaches the parser
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(data))
                data[i] = data[i] ^ (1 << rng.randrange(7)) or 0x41
        elif kind == 1:
            del data[at:]
        elif kind == 2:
            del data[at:at + rng.randint(1, 200)]
        elif kind == 3:
            depth = rng.choice([100, 1000, 5000, 20_000])  # 20,000: past the limit the indexer reads
            opener, closer = rng.choice([(b"{", b"}"), (b"(", b")"), (b"[", b"]")])
            data[at:at] = opener * depth + b"x" + closer * rng.choice([depth, depth // 2])
        elif kind == 4:
            data[at:at] = b"f(a" + b", g(b)" * rng.randint(100, 5000) + b");"
        elif kind == 5:
            data[at:at] = b"\0"
        elif kind == 6:
            data[0:0] = b"\xef\xbb\xbf"
        elif kind == 7:
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
        elif kind == 8:
            data[at:at] = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])
        else:
            data[at:at] = rng.choice([b"#if", b"#endif\n", b"/*", b'"', b"'", b"\\\n", b"#define X(", b"}"]) * rng.randint(1, 50)
    return bytes(data)


# Names a file system allows and a tool may trip on: quotes, line breaks, spaces, markup, bytes that are not UTF-8.
ODD_NAMES = ['q"uote', "it's", "new\nline", "sp ace", "tab\tbed", "<b>&amp;", "back\\slash", "%%{init}%%",
             os.fsdecode(b"latin\xe9"), os.fsdecode(b"\xff\xfe"), "ünïcödé", "-dash"]


def _name(i: int, rng: random.Random) -> str:
    """Return the name of the i-th fuzzed file: mostly plain, one in ten odd."""
    return f"{rng.choice(ODD_NAMES)}{i}.c" if rng.random() < 0.1 else f"f{i}.c"


def test_mutated_fixture_files_index_and_trace_without_an_exception(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    sources = _sources()
    tree = tmp_path / "tree"
    names = []
    for i in range(FUZZ_FILES):
        folder = tree / (f"d{i // 100}" if i % 300 else f"{rng.choice(ODD_NAMES)}{i // 100}")
        folder.mkdir(parents=True, exist_ok=True)
        names.append(str((folder / _name(i, rng)).relative_to(tree)))
        (tree / names[-1]).write_bytes(mutate(rng.choice(sources), rng))
    slowest = max((_extraction_seconds(tree / name), name) for name in names if _encodable(name))
    print(f"fuzz: slowest file to normalise and extract on its own: {slowest[0]:.2f} s ({slowest[1]!r})")
    assert slowest[0] < CASE_SECONDS, slowest  # no hang: every case well under the 10 s
    with api.open_store(tmp_path / "cache", warn=QUIET) as store:
        summary = api.index(tree, store, jobs=2, warn=QUIET)
        assert summary.files + len(summary.skipped) == FUZZ_FILES
        assert summary.files >= FUZZ_PARSED >= 1000  # the floor per run: files parsed, traced, extracted
        reasons = Counter(item.reason.split(" (")[0].split(":")[0] for item in summary.skipped)
        print(f"fuzz: {FUZZ_FILES} mutated files (seed {SEED}): {summary.files} indexed, {len(summary.skipped)} skipped:",
              ", ".join(f"{reason} {count}" for reason, count in reasons.most_common()))
        assert all(item.reason for item in summary.skipped)
        not_utf8 = {name for name in names if not _encodable(name)}
        assert not_utf8 and {item.path for item in summary.skipped if "name is not UTF-8" in item.reason} == not_utf8
        tg = api.tree_graph(store, tree, warn=QUIET)
        names = [row[0] for row in store.db.execute("SELECT id FROM g_nodes WHERE state = ? LIMIT 20", (tg.state,))]
        for name in names[:5]:
            api.neighbours(tg, name, callers=False, depth=3)
            api.neighbours(tg, name, callers=True, depth=3)


def _extraction_seconds(path: Path) -> float:
    """Return the seconds one file takes to normalise and extract by itself (what an index worker does)."""
    from chaintrace.extract.extractor import extract
    from chaintrace.source import normalize

    data = path.read_bytes()
    started = time.perf_counter()
    classes = normalize.local_classes(data, {})
    try:
        extract(str(path), data, normalize.normalize(data, classes, normalize.used_macros(data, classes)))
    except ValueError:  # too deep, not UTF-8 ...: skipped with its reason, as the index does
        pass
    return time.perf_counter() - started


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _headline(tree: Path, cache: Path) -> str:
    with api.open_store(cache, warn=QUIET) as store:
        tg = api.tree_graph(store, tree, jobs=1, warn=QUIET)
        document = api.trace_document(tg, "qmp:migrate", "assign:threshold_size")
    return json.dumps(document, sort_keys=True)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/chaintrace-pickle-ran",))


GRAPH_TABLES = ("g_nodes", "g_edges", "g_writes", "g_reads", "g_diagnostics", "g_objects", "g_passes", "g_sums",
                "g_adjacency", "g_states")


def _flip_text(value: object, rng: random.Random) -> object:
    """Return `value` with one character or byte changed (a number one more)."""
    if isinstance(value, int):
        return value + 1
    data = bytearray(value if isinstance(value, bytes) else value.encode())
    if not data:
        return b"x" if isinstance(value, bytes) else "x"
    i = rng.randrange(len(data))
    data[i] = data[i] ^ (1 << rng.randrange(7)) or 0x41
    return bytes(data) if isinstance(value, bytes) else data.decode("utf-8", "replace")


def _damage_graph(db: sqlite3.Connection, rng: random.Random, used: tuple[str, ...]) -> str:
    """Damage one row of the graph tables: a column changed (a key column too), the row deleted or doubled.

    Mostly a row that names one of the names `used` (what the answer reads), so that the damage matters.
    """
    weighted = [*GRAPH_TABLES, *GRAPH_TABLES[:3] * 3]  # the headline reads nodes, edges and writes most
    table = rng.choice([t for t in weighted if db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]])
    rowid = "rowid" if table != "g_sums" else "(state || part || key)"  # g_sums has no rowid
    rows = {row[0]: " ".join(map(str, row[1:])) for row in db.execute(f"SELECT {rowid}, * FROM {table} ORDER BY {rowid}")}
    mattering = [key for key, text in rows.items() if any(name in text for name in used)]
    row = rng.choice(mattering if mattering and rng.random() < 0.8 else list(rows))
    names = [column[1] for column in db.execute(f"PRAGMA table_info({table})")]
    how = rng.choice(["change", "delete", "double"])
    if how == "delete":
        db.execute(f"DELETE FROM {table} WHERE {rowid} = ?", (row,))
    elif how == "double" and table not in ("g_states", "g_adjacency", "g_objects", "g_passes", "g_sums", "g_nodes"):
        db.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE {rowid} = ?", (row,))
    else:
        how = "change"
        column = rng.choice(names)
        value = db.execute(f"SELECT {column} FROM {table} WHERE {rowid} = ?", (row,)).fetchone()[0]
        try:
            db.execute(f"UPDATE {table} SET {column} = ? WHERE {rowid} = ?", (_flip_text(value, rng), row))
        except sqlite3.IntegrityError:  # the changed key is another row's: delete this one instead
            how = "delete"
            db.execute(f"DELETE FROM {table} WHERE {rowid} = ?", (row,))
        else:
            how = f"change {column}"
    return f"{table} {how}"


def _damage(db: sqlite3.Connection, rng: random.Random, used: tuple[str, ...]) -> str:
    """Damage one thing in the cache; return what (for the failure message)."""
    kind = rng.choice(["flip", "truncate", "delete", "pickle", "swap", "adjacency", "watch", "graph", "graph", "graph"])
    if kind == "graph":
        return _damage_graph(db, rng, used)
    keys = [row[0] for row in db.execute("SELECT key FROM facts ORDER BY key")]
    key = rng.choice(keys)
    data = db.execute("SELECT data FROM facts WHERE key = ?", (key,)).fetchone()[0]
    if kind == "flip":
        i = rng.randrange(len(data))
        db.execute("UPDATE facts SET data = ? WHERE key = ?", (data[:i] + bytes([data[i] ^ 1 << rng.randrange(8)]) + data[i + 1:], key))
    elif kind == "truncate":
        db.execute("UPDATE facts SET data = ? WHERE key = ?", (data[:rng.randrange(len(data))], key))
    elif kind == "delete":
        db.execute("DELETE FROM facts WHERE key = ?", (key,))
    elif kind == "pickle":
        db.execute("UPDATE facts SET data = ? WHERE key = ?", (zlib.compress(pickle.dumps(_Payload())), key))
    elif kind == "swap":
        other = rng.choice(keys)
        db.execute("UPDATE facts SET data = (SELECT data FROM facts WHERE key = ?) WHERE key = ?", (other, key))
    elif kind == "adjacency":
        blob = db.execute("SELECT data FROM g_adjacency").fetchone()[0]
        i = rng.randrange(len(blob))
        db.execute("UPDATE g_adjacency SET data = ?", (blob[:i] + bytes([blob[i] ^ 0xFF]) + blob[i + 1:],))
    else:
        blob = db.execute("SELECT data FROM tree_watch").fetchone()[0]
        i = rng.randrange(len(blob))
        db.execute("UPDATE tree_watch SET data = ?", (blob[:i] + bytes([blob[i] ^ 0xFF]) + blob[i + 1:],))
    if kind not in ("adjacency", "watch"):
        # the resolved graph is kept apart from the facts: drop it so that the damaged facts are read
        for table in ("g_states", "g_nodes", "g_edges", "g_writes", "g_diagnostics", "g_adjacency"):
            db.execute(f"DELETE FROM {table}")
    return f"{kind} {key[:12]}"


def test_a_damaged_cache_answers_as_a_clean_one(tmp_path: Path) -> None:
    tree = complete_tree(FIXTURES / "mini_qemu", tmp_path / "mini_qemu")
    for folder in [tree, *(p for p in tree.rglob("*") if p.is_dir())]:  # long unpacked: its scan is recorded
        stat = folder.stat()
        os.utime(folder, ns=(stat.st_atime_ns, stat.st_mtime_ns - 60_000_000_000))
    clean_cache = tmp_path / "clean"
    clean = _headline(tree, clean_cache)
    used = (*(node["id"].rsplit("::", 1)[-1] for node in json.loads(clean)["nodes"]), "threshold_size")
    rng = random.Random(SEED)
    marker = Path("/tmp/chaintrace-pickle-ran")
    marker.unlink(missing_ok=True)
    wrong = []
    compared: list[str] = []
    slowest = 0.0
    for case in range(DAMAGE_CASES):
        cache = tmp_path / f"case{case}"
        shutil.copytree(clean_cache, cache)
        db = sqlite3.connect(cache / "index.sqlite", isolation_level=None)
        what = _damage(db, rng, used)
        db.close()
        started = time.perf_counter()
        if _headline(tree, cache) != clean:
            wrong.append(what)
        slowest = max(slowest, time.perf_counter() - started)
        compared.append(what.split()[0])
        shutil.rmtree(cache)
    assert len(compared) == DAMAGE_CASES >= 50  # the floor per run
    print(f"cache damage: {len(compared)} cases (seed {SEED}) compared with a clean cache:",
          ", ".join(f"{kind} {compared.count(kind)}" for kind in sorted(set(compared))))
    print(f"cache damage: the slowest case answered in {slowest:.2f} s")
    assert slowest < CASE_SECONDS  # no hang: each damaged cache answers (rebuilding what it must) within the bound
    assert not wrong, f"answers that differ from a clean cache after: {wrong}"
    assert not marker.exists(), "a pickle in the cache ran code"
