"""Extraction of every fact kind from `fixtures/extract/sample.c` (C of our own that compiles)."""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import pytest

from chaintrace.extract.extractor import extract
from chaintrace.extract.facts import Context, Guard, Loop, Param
from chaintrace.extract.syntax import bare_type
from chaintrace.store.codec import decode_facts, encode_facts

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "extract" / "sample.c"
GUARD = Guard("(!s)", "if (!s) { return -1; }", 47)
LOOP = Loop("for", "for (i = 0; i < n; i++)", 50)


@pytest.fixture(scope="module")
def facts():
    return extract("sample.c", SAMPLE.read_bytes())


def by_name(items, name):
    found = [item for item in items if item.name == name]
    assert len(found) == 1, found
    return found[0]


def test_sample_compiles(tmp_path: Path, gcc: str) -> None:
    result = subprocess.run(["gcc", "-c", "-Wall", "-o", str(tmp_path / "s.o"), str(SAMPLE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_parse_errors(facts) -> None:
    assert facts.errors == ()


def test_functions(facts) -> None:
    assert [f.name for f in facts.functions] == ["stop", "count", "start"]
    stop, count, start = facts.functions
    assert (stop.line, stop.end_line, stop.is_static, stop.is_inline) == (36, 39, True, False)
    assert (count.is_static, count.is_inline, count.return_type) == (True, True, "int")
    assert count.params == (Param("s", "State *"), Param("n", "int"), Param("...", "..."))
    assert count.comment == "/* Count up to n; the comment right above a function is kept. */"
    assert stop.comment == ""
    assert (start.is_static, start.params) == (False, (Param("opaque", "void *"), Param("n", "int")))
    assert all(f.file == "sample.c" and f.conditions == () for f in facts.functions)


def test_function_conditions() -> None:
    source = b"#ifndef CONFIG_X\nint f(void) { return 0; }\n#else\nint g(void) { return 1; }\n#endif\n"
    functions = extract("x.c", source).functions
    assert [(f.name, f.conditions) for f in functions] == [
        ("f", ("!defined(CONFIG_X)",)),
        ("g", ("!(!defined(CONFIG_X))",)),
    ]


def test_prototypes(facts) -> None:
    assert [(p.name, p.line, p.is_static, p.return_type) for p in facts.prototypes] == [
        ("start", 23, False, "int"),
        ("stop", 24, True, "int"),
        ("spawn", 25, False, "void"),
    ]
    assert [p.name for p in by_name(facts.prototypes, "spawn").params] == ["name", "fn", "opaque", "flags"]


def test_prototype_in_a_body_is_not_a_prototype() -> None:
    facts = extract("x.c", b"int f(void) { int g(int); return g(1); }\n")
    assert facts.prototypes == ()


def test_calls_by_name_local_field_expr(facts) -> None:
    calls = {(c.caller, c.line, c.callee): c for c in facts.calls}
    assert calls["count", 51, "h"].via == "local"
    run = calls["count", 52, "s->ops->run"]
    assert (run.via, run.field, run.receiver, run.args, run.col) == ("field", "run", "s->ops", ("s", "i"), 9)
    assert calls["start", 70, "fp"].via == "local"
    assert calls["start", 72, "count"].via == "name"
    assert calls["start", 72, "handlers[0]"].via == "expr"
    worker = calls["start", 68, "spawn"]
    assert worker.args == ('"worker"', "(int (*)(void *))stop", "s", "1")


def test_call_via_param() -> None:
    facts = extract("x.c", b"int f(int (*cb)(int)) { return cb(1) + (*cb)(2); }\n")
    assert [(c.callee, c.via) for c in facts.calls] == [("cb", "param"), ("cb", "param")]


def test_call_context_loops_conditions_guards(facts) -> None:
    calls = {(c.line, c.callee): c for c in facts.calls}
    assert calls[51, "h"].context == Context((LOOP,), (), (GUARD,))
    assert calls[55, "spawn"].context == Context((), ("defined(CONFIG_EXTRA)",), (GUARD,))
    assert calls[68, "spawn"].context == Context()


def test_loop_macro_and_do_while_kinds() -> None:
    source = b"void f(int n) {\n    do {\n        g(n);\n    } while (n--);\n    while (n) h(n);\n}\n"
    calls = {c.callee: c for c in extract("x.c", source).calls}
    assert calls["g"].context.loops == (Loop("do", "(n--)", 2),)
    assert calls["h"].context.loops == (Loop("while", "while (n)", 5),)
    rewritten = b"void f(L *l) {\n    while        (e, l, next) {\n        g(e);\n    }\n}\n"
    original = b"void f(L *l) {\n    QLIST_FOREACH(e, l, next) {\n        g(e);\n    }\n}\n"
    loop = extract("x.c", original, rewritten).calls[0].context.loops[0]
    assert (loop.kind, loop.condition) == ("macro", "QLIST_FOREACH(e, l, next)")


def test_refs_of_every_usage(facts) -> None:
    refs = {(r.name, r.line, r.col): r for r in facts.refs}
    run = refs["start", 30, 12]
    assert (run.usage, run.function, run.struct_type, run.field, run.cast) == ("initializer", "", "ops", "run", "")
    assert refs["stop", 31, 13].field == "stop"
    assert (refs["start", 34, 31].arg_index, refs["start", 34, 31].cast) == (0, "")
    assert (refs["start", 34, 47].arg_index, refs["start", 34, 47].cast) == (1, "Handler")
    assignment = refs["start", 45, 17]
    assert (assignment.usage, assignment.lhs, assignment.function) == ("assignment", "h", "count")
    assert refs["stop", 66, 25].lhs == "fp"
    argument = refs["stop", 55, 20]
    assert (argument.usage, argument.call, argument.arg_index) == ("argument", "spawn", 1)
    assert argument.context == Context((), ("defined(CONFIG_EXTRA)",), (GUARD,))
    assert refs["stop", 68, 38].cast == "int (*)(void *)"
    assert refs["stop", 69, 19].cast == "&"


def test_locals_and_params_are_never_refs(facts) -> None:
    assert not [r for r in facts.refs if r.name in ("s", "i", "n", "opaque", "local")]


def test_assignment_to_a_field_records_lhs_and_field() -> None:
    facts = extract("x.c", b"int cb(void);\nvoid f(struct o *o) { o->fn = cb; }\n")
    ref = facts.refs[0]
    assert (ref.name, ref.usage, ref.lhs, ref.field) == ("cb", "assignment", "o->fn", "fn")


def test_field_writes(facts) -> None:
    writes = {(w.line, w.field): w for w in facts.writes}
    threshold = writes[57, "threshold_size"]
    assert (threshold.function, threshold.base, threshold.base_type, threshold.operator, threshold.rhs) == (
        "count", "s", "State", "=", "TWICE(LIMIT)"
    )
    assert threshold.statement == "s->threshold_size = TWICE(LIMIT);"
    assert threshold.context == Context((), (), (GUARD,))
    assert (writes[51, "count"].operator, writes[51, "count"].context.loops) == ("+=", (LOOP,))
    increment = writes[58, "count"]
    assert (increment.operator, increment.rhs, increment.lhs) == ("++", "", "s->count")
    assert writes[71, "ops"].rhs == "(struct ops *)&table"


def test_structs_with_function_pointer_fields(facts) -> None:
    ops = by_name(facts.structs, "ops")
    assert [(f.name, f.type, f.is_fnptr) for f in ops.fields] == [
        ("name", "const char *", False),
        ("run", "Handler", False),
        ("stop", "int", True),
    ]


def test_typedefs_including_an_anonymous_struct(facts) -> None:
    assert [(t.name, t.type, t.is_fnptr) for t in facts.typedefs] == [
        ("Handler", "int", True),
        ("State", "struct", False),
        ("Named", "struct Named", False),
    ]
    state = by_name(facts.structs, "State")  # the anonymous struct, named by its typedef
    assert [f.name for f in state.fields] == ["threshold_size", "count", "ops"]


def test_variables_locals_params_globals(facts) -> None:
    variables = {(v.function, v.name): v for v in facts.variables}
    assert variables["count", "s"].is_param and variables["count", "s"].type == "State *"
    assert not variables["count", "i"].is_param
    assert variables["", "table"].type == "const struct ops"
    assert variables["start", "fp"].is_fnptr
    assert variables["start", "local"].type == "State"
    assert ("", "spawn") not in variables  # a prototype is not a variable


def test_defines(facts) -> None:
    assert [(d.name, d.params, d.body, d.line) for d in facts.defines] == [
        ("LIMIT", None, "8", 4),
        ("TWICE", ("x",), "((x) * 2)", 5),
    ]


def test_parse_errors_are_listed() -> None:
    facts = extract("bad.c", b"int f( {\n")
    assert facts.errors and {e.kind for e in facts.errors} <= {"ERROR", "MISSING"}


def test_non_ascii_source_keeps_byte_columns() -> None:
    source = "/* é */ int f(void) { return g(1); }\n".encode()
    call = extract("u.c", source).calls[0]
    assert (call.callee, call.col) == ("g", source.index(b"g(") + 1)


def test_facts_survive_the_store_encoding(facts) -> None:
    assert decode_facts(encode_facts(facts)) == facts
    assert pickle.loads(pickle.dumps(facts)) == facts


def test_either_arm_of_a_conditional_is_a_reference() -> None:
    source = (
        b"typedef void (*H)(int);\nvoid a(int x);\nvoid c(int x);\nvoid reg(H h);\n"
        b"void choose(int flag) {\n    H h = flag ? a : &c;\n    h = flag ? (H)c : h;\n    reg(flag ? a : c);\n}\n"
    )
    refs = [(r.name, r.line, r.usage, r.lhs, r.call, r.arg_index, r.cast) for r in extract("x.c", source).refs]
    assert refs == [
        ("a", 6, "assignment", "h", "", -1, ""),
        ("c", 6, "assignment", "h", "", -1, "&"),
        ("c", 7, "assignment", "h", "", -1, "H"),
        ("h", 7, "local copy", "h", "", -1, ""),  # the other arm, `h`, is a local: h holds what h holds (no-op)
        ("a", 8, "argument", "", "reg", 0, ""),
        ("c", 8, "argument", "", "reg", 0, ""),
    ]


def test_a_typedef_of_several_names_is_read_once() -> None:
    found = extract("a.c", b"typedef struct { int x; } Pair, *PairPtr;\n")
    assert [(t.name, t.type) for t in found.typedefs] == [("Pair", "struct"), ("PairPtr", "struct *")]
    assert [s.name for s in found.structs] == ["Pair"]


@pytest.mark.parametrize("text, name", [
    ("const struct Foo *", "Foo"),
    ("Foo[4]", "Foo"),
    ("Foo * restrict", "Foo"),
    ("enum Kind", "Kind"),
    ("unsigned long", "long"),
    ("const", ""),
])
def test_bare_type_drops_qualifiers_stars_and_array_sizes(text: str, name: str) -> None:
    assert bare_type(text) == name


def test_array_elements_designated_by_index_keep_their_struct_type() -> None:
    # 7.2's blockdev.c: `static const BlkActionOps actions[] = { [KIND] = { .commit = ... }, ... }`
    source = b"""typedef struct Ops { int (*commit)(void); int (*prepare)(void); } Ops;
static int a_commit(void) { return 0; }
static int b_commit(void) { return 1; }
static const Ops actions[] = {
    [0] = {
        .commit = a_commit,
    },
    [1] = { .commit = b_commit, .prepare = a_commit },
};
static const Ops mixed[] = { [0].commit = a_commit };
"""
    refs = [(r.name, r.line, r.field, r.struct_type, r.lhs) for r in extract("a.c", source).refs]
    assert [ref for ref in refs if ref[1] < 10] == [
        ("a_commit", 6, "commit", "Ops", "actions"), ("b_commit", 8, "commit", "Ops", "actions"),
        ("a_commit", 8, "prepare", "Ops", "actions")]
    assert all(not struct for _, line, _, struct, _ in refs if line == 10)  # `[0].commit`: not guessed
