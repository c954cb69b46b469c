"""The macro expander (`chaintrace.source.expand`) against what cpp does, and the scope that feeds it."""

from __future__ import annotations

import re
import subprocess

import pytest

from chaintrace.extract.facts import Define, FileFacts, Include
from chaintrace.graph.scope import MacroScope, foreign
from chaintrace.source.expand import Expander, calls_made, definition

DEFINES = {
    "xglue": "#define xglue(a, b) a##b",
    "glue": "#define glue(a, b) xglue(a, b)",
    "le_swab": "#define le_swab(v, size) glue(swab, size)(v)",
    "CPU_CONVERT": "#define CPU_CONVERT(endian, size, type) "
                   "static inline type endian ## size ## _to_cpu(type v) { return glue(endian, _swab)(v, size); }",
    "error_setg": "#define error_setg(errp, fmt, ...) error_setg_internal((errp), (fmt), ## __VA_ARGS__)",
    "str": "#define str(x) #x",
    "tcg_gen_shri_tl": "#define tcg_gen_shri_tl tcg_gen_shri_i64",
    "lock": "#define lock(m) lock(m, 0)",
    # an invocation whose expansion ends in a macro's name takes the arguments that follow it
    "late": "#define late(x) callee_m",
    "callee_m": "#define callee_m(y) callee_fn(y)",
    "outer_late": "#define outer_late(x) late(x)(x) + late(x)(x + 1)",
}


def _lookup(name: str):
    text = DEFINES.get(name)
    if text is None:
        return []
    match = re.match(r"#define \w+(?:\(([^)]*)\))? (.*)", text)
    params = match.group(1)
    if params is None:
        return [definition(None, match.group(2))]
    return [definition(tuple(p.strip() for p in params.split(",") if p.strip()), match.group(2))]


def _text(name: str, *args: str) -> list[str]:
    return [" ".join(t[0] for t in tokens) for tokens in Expander(_lookup).expand_use(name, args)]


def test_pasting_through_glue_rescans_with_cpps_hide_sets() -> None:
    # glue is expanded again inside le_swab's body: the closing `)` did not come from glue
    assert _text("CPU_CONVERT", "le", "16", "uint16_t") == [
        "static inline uint16_t le16_to_cpu ( uint16_t v ) { return swab16 ( v ) ; }"]


def test_gnu_comma_is_dropped_with_no_variadic_arguments() -> None:
    assert _text("error_setg", "errp", '"x"') == ['error_setg_internal ( ( errp ) , ( "x" ) )']
    assert _text("error_setg", "errp", '"%d"', "n") == [
        'error_setg_internal ( ( errp ) , ( "%d" ) , n )']


def test_stringify_object_like_and_self_reference() -> None:
    assert _text("str", "a + b") == ['"a + b"']
    assert _text("tcg_gen_shri_tl", "a", "b", "c") == ["tcg_gen_shri_i64 ( a , b , c )"]
    assert _text("lock", "m") == ["lock ( m , 0 )"]  # a macro never expands inside itself
    assert _text("not_a_macro", "x") == []


def test_calls_written_in_the_arguments_are_not_the_macros() -> None:
    expansion = Expander(_lookup).expand_use("error_setg", ("errp", '"%d"', "count(x)"))[0]
    assert calls_made(expansion, frozenset()) == ["error_setg_internal"]


def test_each_definition_of_a_macro_defined_twice_is_tried() -> None:
    defs = {"module_init": [definition(("f",), "static void init_ ## f(void) { register_dso(f); }"),
                            definition(("f",), "static void init_ ## f(void) { register_init(f); }")],
            "type_init": [definition(("f",), "module_init(f)")]}
    expansions = Expander(lambda n: defs.get(n, [])).expand_use("type_init", ("types",))
    assert sorted(calls_made(e, frozenset())[-1] for e in expansions) == ["register_dso", "register_init"]


def test_an_expansion_ending_in_a_macro_name_is_rescanned_with_what_follows() -> None:
    assert _text("outer_late", "a") == ["callee_fn ( a ) + callee_fn ( a + 1 )"]


def test_one_expander_expands_each_use_as_a_fresh_one_does() -> None:
    # An expander remembers its invocations (uses repeat them, and so do the runs of one use, each run
    # taking another definition of a macro defined twice): what it remembers must never be another's.
    defs = {"pick": [definition(("x",), "first_fn(x)"), definition(("x",), "second_fn(x)")],
            "inner": [definition(("x",), "inner_fn(x, pick(x))")],
            "wrap": [definition(("x",), "pick(x) + inner(x) + late(x)(x)")],
            "twice": [definition(("x",), "wrap(x); wrap(x); inner(x)")],
            "late": [definition(("x",), "pick")]}
    uses = [("twice", ("a",)), ("wrap", ("a",)), ("pick", ("a",)), ("inner", ("a",)), ("twice", ("b",)),
            ("wrap", ("a",)), ("pick", ("a",))]
    shared = Expander(lambda n: defs.get(n, []))
    remembered = [[[t[0] for t in e] for e in shared.expand_use(name, args)] for name, args in uses]
    fresh = [[[t[0] for t in e] for e in Expander(lambda n: defs.get(n, [])).expand_use(name, args)]
             for name, args in uses]
    assert remembered == fresh
    assert sorted(" ".join(e) for e in fresh[2]) == ["first_fn ( a )", "second_fn ( a )"]
    assert len(fresh[0]) == 2 and "second_fn ( a )" in " ".join(fresh[0][1])


def test_scope_follows_includes_but_not_other_hosts() -> None:
    facts = [
        FileFacts("a.c", includes=(Include("qemu/osdep.h", False, "a.c", 1),)),
        FileFacts("b.c", includes=(Include("qemu/osdep.h", False, "b.c", 1), Include("dec.h", False, "b.c", 2))),
        FileFacts("include/qemu/osdep.h",
                  includes=(Include("win32.h", False, "include/qemu/osdep.h", 3, ("defined(_WIN32)",)),),
                  defines=(Define("glue", ("a", "b"), "a##b", "include/qemu/osdep.h", 2),)),
        FileFacts("include/win32.h", defines=(Define("close", None, "wrap_close", "include/win32.h", 1),)),
        FileFacts("dec.h", defines=(Define("free", ("p",), "dec_free(p)", "dec.h", 1),)),
    ]
    scope = MacroScope(facts)
    assert scope.prelude == {"include/qemu/osdep.h"}
    assert scope.sees("a.c", "glue") and scope.sees("dec.h", "glue")  # the prelude: every file may assume it
    assert not scope.sees("a.c", "free") and scope.sees("b.c", "free")
    assert not scope.sees("a.c", "close") and not scope.sees("include/qemu/osdep.h", "close")
    assert foreign(["defined(_WIN32)"]) and not foreign(["!(defined(_WIN32))", "defined(CONFIG_LINUX)"])


@pytest.mark.parametrize("name", sorted(DEFINES))
def test_expansions_agree_with_cpp(name: str, tmp_path) -> None:
    args = {"CPU_CONVERT": ("le", "16", "uint16_t"), "error_setg": ("errp", '"x"'), "str": ("a + b",),
            "tcg_gen_shri_tl": ("a", "b", "c"), "lock": ("m",), "glue": ("a", "b"), "xglue": ("a", "b"),
            "le_swab": ("v", "16"), "late": ("a",), "callee_m": ("a",), "outer_late": ("a",)}[name]
    source = tmp_path / "t.c"
    source.write_text("\n".join(DEFINES.values()) + f"\nEXPANSION: {name}({', '.join(args)})\n")
    try:
        out = subprocess.run(["gcc", "-E", "-P", str(source)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no gcc")
    cpp = out.split("EXPANSION:", 1)[1].split()
    ours = Expander(_lookup).expand_use(name, args)
    assert ours and [t[0] for t in ours[0]] == _tokens(" ".join(cpp)), (cpp, ours)


def _tokens(text: str) -> list[str]:
    from chaintrace.source.expand import tokenize
    return list(tokenize(text))


def test_cleanup_attributes_and_parenthesised_names_are_calls() -> None:
    tokens = [(t, frozenset(), False) for t in "int x __attribute__ ( ( cleanup ( free_x ) ) ) ; if ( p ) { ( fn ) ( p ) ; }".split()]
    assert calls_made(tokens, frozenset({"__attribute__", "if"})) == ["free_x", "fn"]


def test_glib_cleanup_macros_define_and_call_their_functions() -> None:
    from chaintrace.extract.context import EMPTY
    from chaintrace.extract.facts import CallSite, FunctionDef, MacroUse
    from chaintrace.graph.build import build_graph

    header = FileFacts("foo.h", macro_uses=(MacroUse("G_DEFINE_AUTOPTR_CLEANUP_FUNC", ("Foo", "foo_unref"), "foo.h", 7, 1),))
    user = FileFacts("user.c", functions=(FunctionDef("use_foo", "user.c", 3, 9, False, False, "void", ()),),
                     includes=(Include("foo.h", False, "user.c", 1),),
                     calls=(CallSite("use_foo", "user.c", 5, 5, "g_autoptr", "macro", ("Foo",), EMPTY),))
    unref = FileFacts("foo.c", functions=(FunctionDef("foo_unref", "foo.c", 1, 4, False, False, "void", ()),))
    graph = build_graph([header, user, unref]).graph
    assert graph.has_edge("use_foo", "foo.h::glib_autoptr_cleanup_Foo")  # at the declaration (user.c:5)
    assert graph.has_edge("foo.h::glib_autoptr_cleanup_Foo", "foo.h::glib_autoptr_clear_Foo")
    assert graph.has_edge("foo.h::glib_autoptr_clear_Foo", "foo_unref")


def _marked_tokens(text: str) -> list:
    from chaintrace.source.expand import tokenize
    return [(t, frozenset(), False) for t in tokenize(text)]


def test_names_passed_reads_bare_cast_parenthesised_and_address_of_arguments() -> None:
    from chaintrace.source.expansion_tokens import names_passed

    tokens = _marked_tokens("f(a, (b), (GFunc) c, &d, e + 1, g(h), (x)->y)")
    assert names_passed(tokens) == [("f", 0, "a"), ("f", 1, "b"), ("f", 2, "c"), ("f", 3, "d"), ("g", 0, "h")]


def test_initialized_reads_the_top_level_designators_of_file_scope_initializers() -> None:
    from chaintrace.source.expansion_tokens import initialized

    tokens = _marked_tokens("static void foo_init(void); static const TypeInfo foo_info = { .name = \"foo\", "
                     ".class_init = foo_class_init, .size = sizeof(Foo), .interfaces = (InterfaceInfo[]) "
                     "{ { .name = bar } }, .instance_init = foo_init }; static void f(void) { x = (S) { .cb = g }; }")
    assert initialized(tokens) == [("TypeInfo", "foo_info", "class_init", "foo_class_init"),
                                   ("TypeInfo", "foo_info", "instance_init", "foo_init")]


def test_a_macro_forwards_only_the_arguments_its_expansion_passes_whole() -> None:
    from chaintrace.graph.symbols import Symbols

    header = FileFacts("aio.h", defines=(
        Define("bh_new", ("cb", "opaque"), "bh_new_full((cb), (opaque), #cb)", "aio.h", 1),
        Define("bh_named", ("cb", "opaque"), "bh_new_full(cb ## _bh, opaque, 0)", "aio.h", 2)))
    user = FileFacts("user.c", includes=(Include("aio.h", False, "user.c", 1),))
    symbols = Symbols([header, user])
    assert symbols.macro_forwards("user.c", "bh_new", 2) == ((0, "bh_new_full", 0), (1, "bh_new_full", 1))
    # an argument pasted into another name is not passed on (`cb ## _bh` names some other function)
    assert symbols.macro_forwards("user.c", "bh_named", 2) == ((1, "bh_new_full", 1),)
