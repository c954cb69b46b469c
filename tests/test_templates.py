"""Templates included once per set of macros (`chaintrace.graph.templates`): which inclusions there are, what each
sees, and how its `#if` conditions are decided, checked against what cpp does with the same text."""

from __future__ import annotations

import subprocess

import pytest

from chaintrace.extract.facts import Define, FileFacts, Include
from chaintrace.graph.alternatives import load_config
from chaintrace.graph.conditions import BuildConfig
from chaintrace.graph.scope import MacroScope
from chaintrace.graph.templates import Instances, decide, instance_lookup, layered
from chaintrace.source.expand import definition


def _define(name: str, body: str, file: str = "t.c", line: int = 1, params=None, conditions=()) -> Define:
    return Define(name, params, body, file, line, tuple(conditions))


def _lookup(*defines: Define):
    table: dict[str, list] = {}
    for d in defines:
        table.setdefault(d.name, []).append(definition(d.params, d.body))
    return lambda name: table.get(name, [])


CASES = [  # (condition, defines as name=value, what cpp decides)
    ("DEPTH == 8", {"DEPTH": "8"}, True),
    ("DEPTH == 8", {"DEPTH": "16"}, False),
    ("ZYWRLE_ENDIAN == ENDIAN_LITTLE", {"ZYWRLE_ENDIAN": "ENDIAN_LITTLE", "ENDIAN_LITTLE": "0"}, True),
    ("!(ZYWRLE_ENDIAN == ENDIAN_BIG)", {"ZYWRLE_ENDIAN": "ENDIAN_LITTLE", "ENDIAN_LITTLE": "0", "ENDIAN_BIG": "1"}, True),
    ("DATA_SIZE >= 4 && DATA_SIZE != 16", {"DATA_SIZE": "8"}, True),
    ("(SHIFT << 1) + 1 == 0x5 || 0", {"SHIFT": "2"}, True),
    ("SIZE > 2 ? 1 : 010 == 8", {"SIZE": "1"}, True),
    ("defined(OP_NAME) && defined OP_NAME", {"OP_NAME": "add"}, True),
    ("-7 / 2 == -3 && -7 % 2 == -1", {}, True),
    ("-1 < 0 && ~0 == -1 && 7 / 2 == 3 && 7 % 4 == 3", {}, True),
]


@pytest.mark.parametrize("condition,values,cpp", CASES)
def test_decide_agrees_with_cpp(condition: str, values: dict, cpp: bool, gcc: str, tmp_path) -> None:
    # gcc -E is the judge of the expected answer, so the table cannot drift from what cpp does
    source = "".join(f"#define {k} {v}\n" for k, v in values.items()) + f"#if {condition}\nyes\n#else\nno\n#endif\n"
    (tmp_path / "c.c").write_text(source)
    out = subprocess.run([gcc, "-E", "-P", str(tmp_path / "c.c")], capture_output=True, text=True, check=True).stdout
    assert ("yes" in out) is cpp
    env = {k: _define(k, v) for k, v in values.items()}
    assert decide(condition, env, layered(env, lambda name: [])) is cpp


def test_undecided_conditions() -> None:
    env: dict = {}
    lookup = layered(env, lambda name: [])
    assert decide("CONFIG_KVM", env, lookup) is None  # the build's configuration decides
    assert decide("CONFIG_KVM && 0", env, lookup) is False  # ... unless it cannot matter
    assert decide("CONFIG_KVM || 1", env, lookup) is True
    assert decide("defined(CONFIG_KVM)", env, lookup) is None
    assert decide("1 +", env, lookup) is None  # unreadable: undecided, never an exception
    assert decide("1 / 0", env, lookup) is None
    env = {"ZRLE_COMPACT_PIXEL": None}  # an includer defines it, below this inclusion
    assert decide("defined(ZRLE_COMPACT_PIXEL)", env, layered(env, lambda name: [])) is False


def test_a_condition_whose_expansion_runs_past_the_budget_is_undecided() -> None:
    # X0 doubles through 20 macros to 2**20 tokens, past the expander's MAX_TOKENS: cpp would still answer,
    # chaintrace leaves the branch undecided (read both ways) instead of expanding without bound
    chain = {f"X{i}": [definition(None, f"X{i + 1} + X{i + 1}")] for i in range(20)}
    chain["X20"] = [definition(None, "1")]
    env: dict = {}
    assert decide("X0 > 1", env, layered(env, lambda name: chain.get(name, []))) is None
    assert decide("X18 > 1", env, layered(env, lambda name: chain.get(name, []))) is True


def test_build_config_rules_out_only_the_branches_its_values_decide() -> None:
    config = BuildConfig(load_config("[config]\nTARGET_LONG_BITS = 64\nTARGET_BIG_ENDIAN = 0\nCONFIG_USER_ONLY = false\n"))
    assert config.rules_out(["!defined(TCG_OP_H)", "TARGET_LONG_BITS == 32"])
    assert not config.rules_out(["!defined(TCG_OP_H)", "TARGET_LONG_BITS == 64"])
    assert config.rules_out(["TARGET_BIG_ENDIAN"]) and not config.rules_out(["!(TARGET_BIG_ENDIAN)"])
    assert config.rules_out(["defined(CONFIG_USER_ONLY)"]) and not config.rules_out(["!defined(CONFIG_USER_ONLY)"])
    assert not config.rules_out(["CONFIG_KVM", "defined(CONFIG_TRACE)"])  # no value of the table: read both ways
    assert not config.rules_out(["TARGET_LONG_BITS == CONFIG_X"])  # undecided stays in
    # a header's own #define of a configuration macro is not the table's: only the table's values decide
    facts = [_facts("tcg-op.h", [_define("TCG_TEMP", "new_i32", "tcg-op.h", 2, conditions=["TARGET_LONG_BITS == 32"]),
                                 _define("TCG_TEMP", "new_i64", "tcg-op.h", 4, conditions=["!(TARGET_LONG_BITS == 32)"])]),
             _facts("t.c", includes=[Include("tcg-op.h", False, "t.c", 1)])]
    scope = MacroScope(facts, config=config)
    assert [d.body for d in scope.defines["TCG_TEMP"]] == ["new_i64"]
    assert len(MacroScope(facts, config=BuildConfig({})).defines["TCG_TEMP"]) == 2


def _facts(path: str, defines=(), includes=()) -> FileFacts:
    return FileFacts(path=path, defines=tuple(defines), includes=tuple(includes))


def test_instances_of_nested_templates() -> None:
    # cirrus-like: the .c includes ops.h per OP_NAME, ops.h includes tmpl.h per DEPTH; tmpl.h picks PUT by #if
    facts = [
        _facts("dev.c", [_define("OP_NAME", "add", "dev.c", 1), _define("OP_NAME", "sub", "dev.c", 3)],
               [Include("ops.h", False, "dev.c", 2), Include("ops.h", False, "dev.c", 4)]),
        _facts("ops.h", [_define("DEPTH", "8", "ops.h", 1), _define("DEPTH", "16", "ops.h", 3)],
               [Include("tmpl.h", False, "ops.h", 2), Include("tmpl.h", False, "ops.h", 4)]),
        _facts("tmpl.h", [_define("PUT", "put8", "tmpl.h", 2, conditions=["DEPTH == 8"]),
                          _define("PUT", "put16", "tmpl.h", 4, conditions=["!(DEPTH == 8)"])]),
        _facts("other.h"),
    ]
    scope = MacroScope(facts)
    instances = Instances(facts, scope)
    assert instances.templates == {"ops.h", "tmpl.h"}
    assert instances.envs("other.h") == [] and instances.envs("dev.c") == []
    seen = []
    for env in instances.envs("tmpl.h"):
        lookup = instance_lookup(instances, "tmpl.h", env, scope.lookup("tmpl.h"))
        seen.append((lookup("OP_NAME")[0][1], lookup("DEPTH")[0][1], lookup("PUT")[0][1]))
    assert seen == [(("add",), ("8",), ("put8",)), (("add",), ("16",), ("put16",)),
                    (("sub",), ("8",), ("put8",)), (("sub",), ("16",), ("put16",))]


def test_a_header_two_files_include_once_each_is_no_template() -> None:
    facts = [_facts("a.c", includes=[Include("h.h", False, "a.c", 1)]),
             _facts("b.c", includes=[Include("h.h", False, "b.c", 1)]), _facts("h.h")]
    scope = MacroScope(facts)
    assert Instances(facts, scope).templates == set()
