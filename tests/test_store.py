"""The SQLite fact store: blobs, per-tree file lists, damage handling."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from chaintrace.extract.extractor import extract
from chaintrace.extract.facts import FileFacts
from chaintrace.store.cache import FileRow, Store
from chaintrace.store.codec import decode_facts, encode_facts


@pytest.fixture
def warnings() -> list[str]:
    return []


@pytest.fixture
def store(tmp_path: Path, warnings: list[str]):
    with Store(tmp_path / "cache", warn=warnings.append) as opened:
        yield opened


FACTS = extract("a.c", b"int g(int);\nint f(void) { return g(1); }\n")


def test_encode_decode_round_trip() -> None:
    assert decode_facts(encode_facts(FACTS)) == FACTS
    assert decode_facts(encode_facts(FileFacts("empty.c"), "k"), "k") == FileFacts("empty.c")


@pytest.mark.parametrize("blob", [b"", b"\x00garbage", encode_facts(FACTS)[:-5], encode_facts(FACTS) + b"\0"])
def test_damaged_blob_raises_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="damaged facts"):
        decode_facts(blob)


def test_every_flipped_byte_of_a_blob_is_caught() -> None:
    blob = encode_facts(FACTS, "k")
    for i in range(len(blob)):
        damaged = blob[:i] + bytes([blob[i] ^ 0x10]) + blob[i + 1:]
        with pytest.raises(ValueError, match="damaged facts"):
            decode_facts(damaged, "k")


def test_a_blob_stored_under_another_key_is_foreign() -> None:
    with pytest.raises(ValueError, match="checksum"):
        decode_facts(encode_facts(FACTS, "key-a"), "key-b")


def test_a_well_checksummed_blob_of_the_wrong_shape_is_damaged() -> None:
    import zlib

    import msgpack

    from chaintrace.store import codec

    for payload in ({"not": "facts"}, ("a.c", [], []), ("a.c", [(1, [[1], []])] * 10, []), [1] * 100_000):
        data = zlib.compress(msgpack.packb(payload))
        with pytest.raises(ValueError, match="damaged facts"):
            decode_facts(codec.MAGIC + codec._digest("k", data) + data, "k")


def test_a_pickle_in_the_cache_runs_no_code(tmp_path: Path) -> None:
    """The format of old caches, and of a payload a hostile user of a shared cache writes: never loaded."""
    import pickle
    import zlib

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("pwned",))

    for blob in (pickle.dumps(Payload()), zlib.compress(pickle.dumps(Payload()))):
        with pytest.raises(ValueError, match="damaged facts"):
            decode_facts(blob)
    assert not marker.exists()


def test_facts_are_stored_once_per_key(store: Store) -> None:
    store.put_facts([("k1", encode_facts(FACTS, "k1"), (1, 1, 0, 0))])
    store.put_facts([("k1", b"other", (9, 9, 9, 9))])  # same key: kept as first stored
    assert store.has_facts(["k1", "k2"]) == {"k1"}
    assert store.counts(["k1"]) == (1, 1, 0, 0)
    assert list(store.iter_facts(["k1"])) == [("k1", FACTS)]


def test_missing_and_damaged_entries_yield_none_and_damage_is_dropped(store: Store, warnings: list[str]) -> None:
    store.put_facts([("bad", b"\x00\x01", (0, 0, 0, 0))])
    assert list(store.iter_facts(["bad", "absent"])) == [("bad", None), ("absent", None)]
    assert warnings and "damaged" in warnings[0]
    assert store.has_facts(["bad"]) == set()


def test_the_words_stored_facts_mention_are_found_in_them(store: Store) -> None:
    other = extract("b.c", b"void h(void) { k_init(); }\n")
    store.put_facts([("k1", encode_facts(FACTS, "k1"), (1, 1, 0, 0)), ("k2", encode_facts(other, "k2"), (1, 1, 0, 0))])
    assert store.mentioned(["k1", "k2"], ["g", "k_init", "k", "absent_name"]) == {"g", "k_init", "k"}
    assert store.mentioned(["k1"], ["k_init", "absent_name"]) == set()
    # an entry that is missing or damaged may name anything: every word counts as found
    store.put_facts([("bad", encode_facts(other, "another key"), (0, 0, 0, 0))])
    assert store.mentioned(["k1", "bad"], ["absent_name"]) == {"absent_name"}
    assert store.mentioned(["k1", "missing"], ["absent_name"]) == {"absent_name"}


def test_tree_file_list_is_replaced_whole(store: Store) -> None:
    rows = [FileRow("a.c", 10, 1, "sha-a", "ka"), FileRow("b.c", 20, 2, "sha-b", "kb")]
    store.replace_tree("/t", rows, "state1", "classes1")
    assert store.tree_files("/t") == {r.path: r for r in rows}
    assert store.tree_state("/t") == ("state1", "classes1")
    store.replace_tree("/t", rows[:1], "state2", "classes1")
    assert list(store.tree_files("/t")) == ["a.c"]
    assert store.tree_state("/other") is None


def test_defines_and_derived_data(store: Store) -> None:
    store.put_defines([("sha1", [["A", "", "1"]])])
    assert store.defines(["sha1", "sha2"]) == {"sha1": [["A", "", "1"]]}
    store.put_derived("state", "graph", b"data")
    assert store.derived("state", "graph") == b"data"
    assert store.derived("state", "other") is None


def test_a_corrupt_database_is_moved_aside_and_rebuilt(tmp_path: Path, warnings: list[str]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with Store(cache, warn=warnings.append) as store:
        assert store.tree_files("/t") == {}
        store.put_facts([("k", encode_facts(FACTS, "k"), (1, 1, 0, 0))])
    assert len(warnings) == 1 and "moved aside" in warnings[0]
    assert len(list(cache.glob("index.sqlite.broken-*"))) == 1
    with Store(cache, warn=warnings.append) as store:
        assert store.has_facts(["k"]) == {"k"}
    assert len(warnings) == 1


def test_a_store_of_another_schema_is_rebuilt(tmp_path: Path, warnings: list[str]) -> None:
    cache = tmp_path / "cache"
    with Store(cache, warn=warnings.append):
        pass
    db = sqlite3.connect(cache / "index.sqlite")
    db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    db.commit()
    db.close()
    with Store(cache, warn=warnings.append) as store:
        assert store.tree_files("/t") == {}
    assert warnings and "schema 0" in warnings[0]


def test_an_uncreatable_cache_folder_is_a_one_line_error(tmp_path: Path) -> None:
    from chaintrace.errors import ChaintraceError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ChaintraceError, match="cannot create cache folder"):
        Store(blocker / "cache")


def test_equal_argument_lists_read_back_are_one_tuple_and_the_sharing_table_goes_after_a_read(store: Store) -> None:
    from chaintrace.store import codec

    source = b"void g(int a, int b);\nvoid f(int s) { g(s, 1); g(s, 1); g(s, 2); }\nvoid h(int s) { g(s, 1); }\n"
    facts = extract("a.c", source)
    store.put_facts([("k", encode_facts(facts, "k"), (1, 1, 0, 0))])
    (_, read), = store.iter_facts(["k"], graph=True)
    assert read.calls == facts.calls  # equal values, whatever is shared
    calls = {(call.caller, call.line, call.col): call.args for call in read.calls}
    ones = [args for args in calls.values() if args == ("s", "1")]
    assert len(ones) == 3 and all(args is ones[0] for args in ones)
    assert codec._ARGS == {} and codec._PARAMS == {}  # iter_facts is done: what was read keeps what it shares
