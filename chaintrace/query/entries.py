"""Entry points of a trace: `FUNC`, `qmp:COMMAND` (from `qapi/*.json`) and `hmp:COMMAND` (from `hmp-commands*.hx`).

QMP commands map to `qmp_<c_name(command)>` the way QEMU's QAPI generator
names them (`scripts/qapi/common.py`, `c_name`): every character other than
a letter, digit or `_` becomes `_`, and a C keyword, a polluted name or a
name starting with a digit gets the prefix `q_`.  A command with
`'gen': false` is hand-written but still named `qmp_NAME`.

HMP commands come from the `{ .name = "...", ..., .cmd = hmp_x, }` blocks
of `hmp-commands.hx` (`migrate`) and `hmp-commands-info.hx` (`info migrate`);
a name like `"quit|q"` gives both `quit` and `q`.
"""

from __future__ import annotations

import re
from pathlib import Path

from chaintrace.errors import NotFound, close_matches
from chaintrace.query.lookup import GraphLookup, find_function
from chaintrace.source.qapi_schema import c_name
from chaintrace.source.scan import read_tree_text


_QAPI_TOKEN = re.compile(r"\s+|#[^\n]*|'([^'\n]*)'|([{}\[\]:,])|(true|false)")
_HX_BLOCK = re.compile(r"\{([^{}]*)\}")


class UnknownCommand(NotFound, LookupError):
    """A `qmp:` or `hmp:` command the tree does not define; the message is one line with close matches."""


def parse_qapi(text: str) -> list:
    """Return the top-level expressions of a QAPI schema file (JSON with `#` comments and single quotes).

    Raises ValueError on a syntax error, naming the offset.
    """
    tokens: list[tuple[str, object]] = []
    pos = 0
    while pos < len(text):
        match = _QAPI_TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"QAPI syntax error at offset {pos}: {text[pos:pos + 20]!r}")
        if match.group(1) is not None:
            tokens.append(("str", match.group(1)))
        elif match.group(2):
            tokens.append((match.group(2), None))
        elif match.group(3):
            tokens.append(("bool", match.group(3) == "true"))
        pos = match.end()
    expressions = []
    index = 0
    while index < len(tokens):
        value, index = _qapi_value(tokens, index)
        expressions.append(value)
    return expressions


def _qapi_value(tokens: list[tuple[str, object]], index: int) -> tuple[object, int]:
    kind, value = tokens[index]
    if kind in ("str", "bool"):
        return value, index + 1
    if kind not in ("{", "["):
        raise ValueError(f"QAPI syntax error: unexpected {kind!r}")
    closing = "}" if kind == "{" else "]"
    items: list = []
    index += 1
    while tokens[index][0] != closing:
        item, index = _qapi_value(tokens, index)
        if kind == "{":
            if tokens[index][0] != ":":
                raise ValueError("QAPI syntax error: expected ':'")
            member, index = _qapi_value(tokens, index + 1)
            item = (item, member)
        items.append(item)
        if tokens[index][0] == ",":
            index += 1
    return (dict(items) if kind == "{" else items), index + 1


def _text(root: Path, path: Path) -> str:
    """Return the text of a tree file, "" when it is not a regular file of the tree (bounded: `read_tree_text`)."""
    return read_tree_text(root, path.relative_to(root)) or ""


def qmp_commands(root: Path) -> dict[str, str]:
    """Return {QMP command: C function} for every `'command'` in the tree's `qapi/*.json`."""
    commands: dict[str, str] = {}
    for path in sorted((Path(root) / "qapi").glob("*.json")):
        for expression in parse_qapi(_text(root, path)):
            if isinstance(expression, dict) and isinstance(expression.get("command"), str):
                commands[expression["command"]] = "qmp_" + c_name(expression["command"])
    return commands


def _qmp_command_defined(root: Path, command: str) -> bool:
    """Return True when a `qapi/*.json` file holds `'command': 'COMMAND'` outside a comment."""
    pattern = re.compile(r"^[^#\n]*'command'\s*:\s*'" + re.escape(command) + "'", re.M)
    for path in sorted((Path(root) / "qapi").glob("*.json")):
        if pattern.search(_text(root, path)):
            return True
    return False


def hmp_commands(root: Path) -> dict[str, str]:
    """Return {HMP command: C function}; commands of `hmp-commands-info.hx` are `info NAME`."""
    commands: dict[str, str] = {}
    for path in sorted(Path(root).glob("hmp-commands*.hx")):
        prefix = "info " if path.name == "hmp-commands-info.hx" else ""
        text = re.sub(r"^SRST$.*?^ERST$", "", _text(root, path), flags=re.M | re.S)
        for block in _HX_BLOCK.findall(text):
            name = re.search(r'\.name\s*=\s*"([^"]*)"', block)
            cmd = re.search(r"\.cmd\s*=\s*([A-Za-z_]\w*)", block)
            if name and cmd:
                for alias in name.group(1).split("|"):
                    commands.setdefault(prefix + alias, cmd.group(1))
    return commands


def entry_function(spec: str, root: Path | None = None) -> str:
    """Return the C function an entry spec names: `qmp:migrate` -> `qmp_migrate`, `FUNC` -> `FUNC`.

    Raises UnknownCommand (one line, close matches) for a command the tree lacks.
    """
    protocol, _, command = spec.partition(":")
    if protocol not in ("qmp", "hmp") or not command:
        return spec
    if root is None:
        raise ValueError(f"{spec}: reading {protocol} commands needs the source tree")
    if protocol == "qmp" and _qmp_command_defined(root, command):
        return "qmp_" + c_name(command)  # found without parsing every schema file (what a trace pays for)
    table = qmp_commands(root) if protocol == "qmp" else hmp_commands(root)
    if command not in table:
        hint = close_matches(command, table) or f" ({len(table)} {protocol.upper()} commands known)"
        raise UnknownCommand(f"unknown {protocol.upper()} command {command!r}{hint}")
    return table[command]


def entry_node(cg: GraphLookup, spec: str, root: Path | None = None) -> str:
    """Return the graph node an entry spec starts from (see `entry_function`, `query.find_function`)."""
    return find_function(cg, entry_function(spec, root))
