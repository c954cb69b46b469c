"""QAPI schema files read as the headers the build generates from them (source/qapi_schema.py)."""

from __future__ import annotations

from pathlib import Path

from chaintrace import api
from chaintrace.source.qapi_schema import generated_header, is_schema
from chaintrace.source.scan import scan

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "qapi_enum_str"


def test_each_enum_line_becomes_its_generated_macro_and_every_other_line_blank() -> None:
    schema = (b"# { 'enum': 'InComment' }\n"
              b"{ 'enum': 'RunState',\n"
              b"  'data': [ 'debug' ] }\n"
              b"{ 'command': 'stop' }\n"
              b"{ 'enum' : 'x-dirty-kind', 'data': [] }\n")
    assert generated_header(schema).split(b"\n") == [
        b"",
        b"#define RunState_str(val) qapi_enum_lookup(&RunState_lookup, (val))",
        b"",
        b"",
        b"#define x_dirty_kind_str(val) qapi_enum_lookup(&x_dirty_kind_lookup, (val))",
        b"",
    ]


def test_only_the_schema_folders_are_schema_files() -> None:
    assert [is_schema(p) for p in ("qapi/run-state.json", "storage-daemon/qapi/qapi-schema.json",
                                   "qga/qapi-schema.json", "tests/qapi-schema/enum-clash.json",
                                   "docs/interop/firmware.json", "qapi/run-state.c")] == [
        True, True, True, False, False, False]


def test_a_scan_lists_the_schemas_and_not_the_generators_test_cases() -> None:
    files, skipped = scan(FIXTURE)
    assert [f.path for f in files if f.path.endswith(".json")] == ["qapi/job.json", "qapi/run-state.json"]
    assert skipped == []


def test_the_schemas_macros_are_facts_at_their_enums_lines(tmp_path: Path) -> None:
    with api.open_store(tmp_path / "cache") as store:
        api.index(FIXTURE, store, warn=lambda message: None)
        found = sorted((d.name, d.file, d.line, d.body) for facts in api.load_facts(store, FIXTURE)
                       for d in facts.defines)
    assert found == [
        ("JobStatus_str", "qapi/job.json", 14, "qapi_enum_lookup(&JobStatus_lookup, (val))"),
        ("JobType_str", "qapi/job.json", 8, "qapi_enum_lookup(&JobType_lookup, (val))"),
        ("QAPI_UTIL_H", "include/qapi/util.h", 2, ""),
        ("RunState_str", "qapi/run-state.json", 18, "qapi_enum_lookup(&RunState_lookup, (val))"),
    ]
