"""The macro normaliser: classes derived from #defines, and rewrites that keep every byte offset."""

from __future__ import annotations

import pytest

from chaintrace.source import normalize

from chaintrace.source import parse
from chaintrace.extract.extractor import extract
from chaintrace.extract.syntax import errors


def classes_of(*sources: bytes) -> dict[str, str]:
    """Return the classes derived from the #defines of `sources` (plus the builtin table)."""
    return normalize.derive_classes([d for source in sources for d in normalize.scan_defines(source)])


def rewrite(source: bytes, *headers: bytes) -> bytes:
    """Return `source` normalised with the classes of its own and `headers`' #defines; checks offsets are kept."""
    classes = normalize.local_classes(source, classes_of(source, *headers))
    result = normalize.normalize(source, classes, normalize.used_macros(source, classes))
    assert len(result) == len(source)
    assert [i for i, c in enumerate(result) if c == 10] == [i for i, c in enumerate(source) if c == 10]
    return result


def parses_cleanly(text: bytes) -> bool:
    return not errors(parse.parse(text).root_node)


HEADER = b"""\
#ifdef __clang__
#define QEMU_ANNOTATE(x) __attribute__((annotate(x)))
#else
#define QEMU_ANNOTATE(x)
#endif
#define coroutine_fn QEMU_ANNOTATE("coroutine_fn")
#define QEMU_PACKED __attribute__((packed))
#define G_GNUC_PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#define QEMU_NOTHING
#define QLIST_FOREACH(var, head, field) for ((var) = (head)->lh_first; (var); (var) = (var)->field.le_next)
#define QLIST_FOREACH_ALIAS(v, h, f) QLIST_FOREACH(v, h, f)
#define WITH_GUARD_(x, var) for (int var = lock(x); var; var = unlock(x))
#define WITH_GUARD(x) WITH_GUARD_((x), guard_var)
#define WITH_RCU() for (int rcu_ = 1; rcu_; rcu_ = 0)
#define FIELD(reg, field, shift, length) enum { R_ ## reg ## _ ## field ## _SHIFT = (shift)};
#define REG32(reg, addr) enum { A_ ## reg = (addr) };
#define module_init(function, type) static void __attribute__((constructor)) do_init_ ## function(void) { register_module_init(function, type); }
#define type_init(function) module_init(function, 1)
#define QTAILQ_HEAD(name, type) struct name { struct type *tqh_first; }
#define container_of(ptr, type, member) ((type *) ((char *)(ptr) - __builtin_offsetof(type, member)))
"""


def test_attribute_chain_through_a_function_like_macro_and_an_empty_alternative() -> None:
    classes = classes_of(HEADER)
    assert classes["QEMU_ANNOTATE"] == normalize.ATTRIBUTE_FN
    assert classes["coroutine_fn"] == normalize.ATTRIBUTE
    assert classes["QEMU_PACKED"] == normalize.ATTRIBUTE
    assert classes["QEMU_NOTHING"] == normalize.ATTRIBUTE


def test_attribute_is_blanked() -> None:
    source = b"int coroutine_fn f(void) { return 0; }\nstruct QEMU_PACKED s { int a; };\n"
    result = rewrite(source, HEADER)
    assert result == source.replace(b"coroutine_fn", b" " * 12).replace(b"QEMU_PACKED", b" " * 11)
    assert parses_cleanly(result)


def test_attribute_fn_is_blanked_with_its_arguments() -> None:
    source = b"void log_it(const char *fmt, ...) G_GNUC_PRINTF_LIKE(1,\n 2);\n"
    result = rewrite(source, HEADER)
    assert result == b"void log_it(const char *fmt, ...)                      \n   ;\n"
    assert parses_cleanly(result)


def test_builtin_table_classes() -> None:
    classes = normalize.builtin_classes()
    assert classes["G_GNUC_PRINTF"] == normalize.ATTRIBUTE_FN
    assert classes["g_autofree"] == normalize.ATTRIBUTE
    assert classes["g_autoptr"] == normalize.AUTOPTR
    assert classes["g_auto"] == normalize.AUTO
    assert classes["g_new"] == normalize.TYPE_ARG
    assert classes["g_array_index"] == f"{normalize.TYPE_ARG}:1"
    assert classes["g_assert_cmpint"] == normalize.OPERATOR_ARG


def test_loop_macro_becomes_while() -> None:
    source = b"void f(L *h) {\n    QLIST_FOREACH(e, h, next) {\n        use(e);\n    }\n}\n"
    result = rewrite(source, HEADER)
    assert b"    while        (e, h, next) {" in result
    assert parses_cleanly(result)


def test_loop_class_is_transitive() -> None:
    classes = classes_of(HEADER)
    assert classes["QLIST_FOREACH_ALIAS"] == normalize.LOOP
    assert classes["WITH_GUARD_"] == normalize.LOOP
    assert classes["WITH_GUARD"] == normalize.LOOP
    result = rewrite(b"void f(void) {\n    WITH_GUARD(&m) {\n        g();\n    }\n}\n", HEADER)
    assert b"    while     (&m) {" in result
    assert parses_cleanly(result)


def test_loop_with_empty_arguments_gets_a_condition() -> None:
    result = rewrite(b"void f(void) {\n    WITH_RCU() {\n        g();\n    }\n}\n", HEADER)
    assert b"    while(1)   {" in result
    assert parses_cleanly(result)


def test_autoptr_and_auto_declare_a_variable_of_the_type() -> None:
    source = b"void f(void) {\n    g_autoptr(Error) err = NULL;\n    g_auto(GStrv) names = NULL;\n}\n"
    result = rewrite(source)
    assert b"              Error* err = NULL;" in result
    assert b"           GStrv  names = NULL;" in result
    facts = extract("f.c", source, result)
    assert [(v.function, v.name, v.type) for v in facts.variables] == [("f", "err", "Error *"), ("f", "names", "GStrv")]


def test_decl_macro_alone_on_its_line_is_blanked_but_not_in_an_expression() -> None:
    classes = classes_of(HEADER)
    assert classes["FIELD"] == normalize.DECL
    assert classes["REG32"] == normalize.DECL
    source = b"REG32(CTRL, 0x10)\n    FIELD(CTRL, EN, 0, 1)\nint x;\nint y = REG32(A, 1);\n"
    result = rewrite(source, HEADER)
    assert result.startswith(b"                 \n                         \nint x;\n")
    assert result.endswith(b"int y = REG32(A, 1);\n")


def test_decl_macro_passing_a_parameter_to_a_function_is_not_blanked() -> None:
    classes = classes_of(HEADER)
    assert "module_init" not in classes  # register_module_init(function, ...) takes the function
    assert "type_init" not in classes
    source = b"static void register_types(void) {}\ntype_init(register_types)\n"
    assert rewrite(source, HEADER) == source


def test_type_head_keeps_its_last_argument() -> None:
    assert classes_of(HEADER)["QTAILQ_HEAD"] == normalize.TYPE_HEAD
    source = b"struct s {\n    QTAILQ_HEAD(, Entry) entries;\n};\n"
    result = rewrite(source, HEADER)
    assert b"    QTAILQ_HEAD(  Entry) entries;" in result
    assert parses_cleanly(result)


def test_type_arguments_become_identifiers() -> None:
    assert classes_of(HEADER)["container_of"] == f"{normalize.TYPE_ARG}:1"
    source = b"void f(void *p) {\n    S *s = container_of(p, struct S, m);\n    char **v = g_new(char *, 4);\n}\n"
    result = rewrite(source, HEADER)
    assert b"container_of(p,        S, m)" in result
    assert b"g_new(x     , 4)" in result
    assert parses_cleanly(result)


def test_operator_argument_becomes_a_value() -> None:
    source = b"void t(int r) {\n    g_assert_cmpint(r, ==, -1);\n}\n"
    result = rewrite(source)
    assert b"g_assert_cmpint(r, 0 , -1);" in result
    assert parses_cleanly(result)


def test_a_file_s_own_definition_decides_its_classes() -> None:
    header = b"#define INSN(a, b) do_insn(a, b)\n"  # a call elsewhere
    source = b"#define INSN(name, kind) static int trans_##name(int kind) { return 0; }\nINSN(add, x)\nINSN(sub, y)\n"
    global_classes = classes_of(header, b"#define INSN(a, b) int a##b;\n")
    assert "INSN" not in global_classes  # two files disagree
    local = normalize.local_classes(source, global_classes)
    assert local["INSN"] == normalize.DECL
    assert normalize.local_classes(b"int x;\n", global_classes) is global_classes


def test_directives_are_untouched() -> None:
    source = b"#define WRAP coroutine_fn\n#if defined(coroutine_fn)\nint coroutine_fn f(void);\n#endif\n"
    result = rewrite(source, HEADER)
    assert result.split(b"\n")[:2] == source.split(b"\n")[:2]
    assert result.split(b"\n")[2] == b"int              f(void);"


def test_comments_inside_multi_line_defines_are_blanked() -> None:
    source = b"#define A(x) \\\n  switch (x) { /* c */ \\\n  case 1: break; \\\n  }\nint f(void) { return 0; }\n"
    assert not parses_cleanly(source)  # tree-sitter-c loses the definition
    result = rewrite(source)
    assert result == source.replace(b"/* c */", b"       ")
    assert parses_cleanly(result)
    assert [d.name for d in extract("a.c", source, result).defines] == ["A"]


def test_classes_signature_depends_only_on_the_used_macros() -> None:
    one = {"A": normalize.ATTRIBUTE, "B": normalize.LOOP}
    two = {"A": normalize.ATTRIBUTE, "B": normalize.DECL}
    assert normalize.classes_signature(one, {"A"}) == normalize.classes_signature(two, {"A"})
    assert normalize.classes_signature(one, {"B"}) != normalize.classes_signature(two, {"B"})


def test_disagreeing_definitions_leave_a_name_unclassified() -> None:
    classes = classes_of(b"#define MAYBE __attribute__((x))\n", b"#define MAYBE 1\n")
    assert "MAYBE" not in classes


@pytest.mark.parametrize("text", [b"", b"no macros here\n", b"\n\n\n"])
def test_nothing_to_do_returns_the_source(text: bytes) -> None:
    assert normalize.normalize(text, {}, set()) == text


HX = b"""\
HXCOMM Use DEFHEADING() to define headings in both help text and rST.
HXCOMM Text between SRST and ERST is copied to the rST version.

    {
        .name       = "help|?",
        .args_type  = "name:S?",
        .cmd        = hmp_help,
    },

SRST
``help`` or ``?`` [*cmd*]
  Show the help for all commands or just for command *cmd*.
ERST

    {
        .name       = "commit",
        .cmd        = hmp_commit,
    },
"""


def test_hx_to_c_keeps_entries_at_their_lines() -> None:
    text = normalize.hx_to_c(HX)
    assert text.startswith(b"static int hx[]={")
    assert text.endswith(b"\n};\n")
    assert text.split(b"\n")[:len(HX.split(b"\n")) - 1][4] == HX.split(b"\n")[4]
    facts = extract("hmp-commands.hx", HX, text)
    refs = {(r.name, r.line, r.field) for r in facts.refs}
    assert ("hmp_help", 7, "cmd") in refs
    assert ("hmp_commit", 17, "cmd") in refs
    assert not facts.errors


SPLIT_SIGNATURE = b"""\
#ifdef CONFIG_LINUX
static void handler(int signal, void *info)
#else /* CONFIG_LINUX */
static void handler(int signal)
#endif
{
    report(signal);
}
"""


def test_a_signature_split_by_ifdef_keeps_its_else_branch() -> None:
    text = rewrite(SPLIT_SIGNATURE)
    assert parses_cleanly(text)
    assert b"static void handler(int signal)\n" in text and b"#" not in text and b"info" not in text
    facts = extract("a.c", SPLIT_SIGNATURE, text)
    assert [(f.name, f.line, len(f.params)) for f in facts.functions] == [("handler", 4, 1)]
    assert [(c.caller, c.callee, c.line) for c in facts.calls] == [("handler", "report", 7)]


@pytest.mark.parametrize("text", [
    # statements, not signatures: both branches stay
    b"void f(void)\n{\n#ifdef X\n    a();\n#else\n    b();\n#endif\n    {\n        c();\n    }\n}\n",
    # indented conditions of an `if`: not at column 0
    b"void f(int x)\n{\n#ifdef X\n    if (a(x))\n#else\n    if (b(x))\n#endif\n    {\n        c();\n    }\n}\n",
    # no `{` after the #endif
    b"#ifdef X\nint f(int a)\n#else\nint f(void)\n#endif\n;\n",
    # a positional element after #ifdef parses: left alone
    b"static Fn tbl[] = {\n    a,\n#ifdef X\n    b,\n#endif\n};\n",
    # a comparison, not a designator
    b"int f(int x)\n{\n    return x\n#ifdef X\n    .y == 1\n#endif\n    ;\n}\n",
    # `#` inside a line is no directive
    b"#define S(x) #if\n    .a = 1,\n",
])
def test_other_ifdef_else_blocks_are_left_alone(text: bytes) -> None:
    assert rewrite(text) == text


GUARDED_MEMBERS = b"""static const Ops ops = {
#ifdef CONFIG_GBM
    .scan = egl_scan,
#endif
#if defined(A) && \\
    defined(B)
    [KIND_B] = b_f,
#elif X > 1
    .valid.accepts = x_accepts,
#else
    .other = other,
#endif
};
"""


def test_a_directive_before_a_designated_member_is_blanked() -> None:
    text = rewrite(GUARDED_MEMBERS)
    assert len(text) == len(GUARDED_MEMBERS) and text.count(b"\n") == GUARDED_MEMBERS.count(b"\n")
    kept = [line.strip() for line in text.split(b"\n") if line.strip().startswith(b"#")]
    assert kept == [b"#endif", b"#else", b"#endif"]  # parsed as error nodes of their own, the members after them read
    assert b"CONFIG_GBM" not in text and b"defined" not in text and b"X > 1" not in text
    facts = extract("a.c", GUARDED_MEMBERS, text)
    assert sorted((r.name, r.line) for r in facts.refs) == [
        ("b_f", 7), ("egl_scan", 3), ("other", 11), ("x_accepts", 9)]
