"""graph/type_identity: one type or two, as gcc decides whether it converts an argument (checked in w.c-style
files against `gcc -fcallgraph-info`: a converted argument keeps its own line, fixtures/argument_conversion)."""

from __future__ import annotations

import pytest

from chaintrace.graph.alternatives import load_types
from chaintrace.graph.type_identity import TypeNames, converted, promoted


@pytest.fixture
def names() -> TypeNames:
    tree = {"u32": {"unsigned int"}, "Queue": {"struct Queue"}, "Anon": {"struct"}, "Other": {"struct"},
            "Color": {"enum Color"}, "hwaddr": {"uint64_t"}, "target_ulong": {"uint32_t", "uint64_t"},
            "twice": {"int", "long"}}
    return TypeNames(tree, load_types())


@pytest.mark.parametrize("argument, parameter", [
    ("u32", "unsigned int"), ("unsigned", "unsigned int"), ("long int", "long"), ("long unsigned int", "unsigned long"),
    ("Queue", "struct Queue"), ("const char *", "const char*"), ("uint64_t", "hwaddr"), ("gpointer", "void *"),
    ("const int", "int"), ("char * const", "char *"), ("signed int", "int"),
    ("uint32_t", "unsigned int"), ("target_ulong", "uint64_t"), ("MadeByAMacro *", "struct MadeByAMacro *"),
])
def test_one_type_by_two_names_is_not_converted(names, argument, parameter) -> None:
    assert converted(names.resolve(argument), names.resolve(parameter)) is False


@pytest.mark.parametrize("argument, parameter", [
    ("char *", "const char *"), ("u32", "size_t"), ("unsigned long long", "uint64_t"), ("Queue *", "void *"),
    ("Anon", "Other"), ("signed char", "char"), ("int", "long"), ("Color", "int"),
])
def test_two_types_are_converted(names, argument, parameter) -> None:
    assert converted(names.resolve(argument), names.resolve(parameter)) is True


def test_unreadable_types_are_unknown(names) -> None:
    assert names.resolve("void (*)(int)") is None
    assert names.resolve("twice") is None  # two typedefs of one name, none of them the build table's
    assert converted(names.resolve("twice"), names.resolve("int")) is None


def test_default_promotions_through_an_ellipsis(names) -> None:
    assert promoted(names.resolve("bool")) and promoted(names.resolve("Color")) and promoted(names.resolve("uint8_t"))
    assert not promoted(names.resolve("int")) and not promoted(names.resolve("const char *"))
    assert promoted(None) is None
