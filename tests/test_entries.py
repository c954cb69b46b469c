"""Entry points: QAPI schema parsing and naming, hmp-commands.hx, errors with close matches."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.fixture_trees import FIXTURES

from chaintrace.query.entries import (
    UnknownCommand,
    c_name,
    entry_function,
    entry_node,
    hmp_commands,
    parse_qapi,
    qmp_commands,
)
from chaintrace.errors import NotFound
from chaintrace.query.lookup import UnknownFunction

MINI = FIXTURES / "mini_qemu"


def test_parse_qapi_comments_single_quotes_and_several_expressions():
    text = """# a comment
    { 'enum': 'Mode', 'data': [ 'a', 'b' ] }   # trailing comment
    ##
    # @x-do-it:
    ##
    { 'command': 'x-do-it', 'data': {'*arg': 'str'}, 'gen': false, 'allow-oob': true }
    """
    assert parse_qapi(text) == [
        {"enum": "Mode", "data": ["a", "b"]},
        {"command": "x-do-it", "data": {"*arg": "str"}, "gen": False, "allow-oob": True},
    ]


def test_parse_qapi_rejects_garbage():
    with pytest.raises(ValueError, match="offset"):
        parse_qapi("{ 'command': \"double\" }")


@pytest.mark.parametrize("name, c", [
    ("migrate", "migrate"),
    ("migrate-set-parameters", "migrate_set_parameters"),
    ("x-query.foo", "x_query_foo"),
    ("device_add", "device_add"),
    ("unix", "q_unix"),
    ("if", "q_if"),
    ("3d", "q_3d"),
])
def test_c_name_follows_qapi(name, c):
    assert c_name(name) == c


def test_qmp_commands_of_a_schema(tmp_path: Path):
    (tmp_path / "qapi").mkdir()
    (tmp_path / "qapi" / "a.json").write_text(
        "{ 'command': 'migrate' }\n{ 'command': 'device_add', 'gen': false }\n"
        "{ 'command': 'x-colo-lost-heartbeat', 'if': 'CONFIG_REPLICATION' }\n{ 'struct': 'S', 'data': {} }\n")
    assert qmp_commands(tmp_path) == {
        "migrate": "qmp_migrate",
        "device_add": "qmp_device_add",
        "x-colo-lost-heartbeat": "qmp_x_colo_lost_heartbeat",
    }


def test_hmp_commands_blocks_aliases_and_info(tmp_path: Path):
    (tmp_path / "hmp-commands.hx").write_text(
        'HXCOMM comment\n    {\n        .name       = "quit|q",\n        .args_type  = "",\n'
        '        .cmd        = hmp_quit,\n    },\n\nSRST\n``quit`` { not a block }\nERST\n'
        '    {\n        .name       = "info",\n        .sub_table  = hmp_info_cmds,\n    },\n')
    (tmp_path / "hmp-commands-info.hx").write_text(
        '    {\n        .name       = "migrate",\n        .cmd        = hmp_info_migrate,\n    },\n')
    assert hmp_commands(tmp_path) == {"quit": "hmp_quit", "q": "hmp_quit", "info migrate": "hmp_info_migrate"}


def test_mini_qemu_entries(fixture_trees):
    assert qmp_commands(MINI) == {"migrate-set-parameters": "qmp_migrate_set_parameters", "migrate": "qmp_migrate"}
    assert hmp_commands(MINI) == {"migrate": "hmp_migrate", "migrate_set_parameter": "hmp_migrate_set_parameter"}
    cg, tree = fixture_trees.graph("mini_qemu"), fixture_trees.tree("mini_qemu")
    assert entry_node(cg, "qmp:migrate", tree) == "qmp_migrate"
    assert entry_node(cg, "qmp:migrate-set-parameters", tree) == "qmp_migrate_set_parameters"
    assert entry_node(cg, "hmp:migrate", tree) == "hmp_migrate"
    assert entry_node(cg, "migrate_init", tree) == "migrate_init"
    assert entry_node(cg, "migration_thread") == "migration/migration.c::migration_thread"


def test_unknown_command_is_one_line_with_close_matches():
    with pytest.raises(UnknownCommand) as raised:
        entry_function("qmp:migrat", MINI)
    message = str(raised.value)
    assert "\n" not in message and "'migrat'" in message and "migrate" in message
    assert isinstance(raised.value, NotFound)
    with pytest.raises(UnknownCommand, match="migrate_set_parameter"):
        entry_function("hmp:migrate_set_parameters", MINI)


def test_unknown_function_is_one_line_with_close_matches(fixture_trees):
    cg = fixture_trees.graph("mini_qemu")
    with pytest.raises(UnknownFunction) as raised:
        entry_node(cg, "qmp_migrat")
    assert "\n" not in str(raised.value) and "qmp_migrate" in str(raised.value)


def test_real_qemu_commands(any_qemu_tree):
    qmp, hmp = qmp_commands(any_qemu_tree.path), hmp_commands(any_qemu_tree.path)
    assert qmp["migrate"] == "qmp_migrate"
    assert qmp["migrate-set-parameters"] == "qmp_migrate_set_parameters"
    assert qmp["device_add"] == "qmp_device_add"  # 'gen': false
    assert hmp["migrate"] == "hmp_migrate" and hmp["info migrate"] == "hmp_info_migrate"
    assert len(qmp) > 200 and len(hmp) > 150
