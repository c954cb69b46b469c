"""QAPI schema files read as the headers the build generates from them (`queries/qemu/qapi.toml`).

QEMU's tree calls `RunState_str(state)`, a macro the build writes into
`qapi-types-run-state.h` from `qapi/run-state.json`'s `{ 'enum': 'RunState' }`:
it expands to `qapi_enum_lookup(&RunState_lookup, (state))`. The tree has no
such header. `generated_header` turns a schema file into C text holding, on
the line of each enum, the `#define` the generator makes of it, every other
line blank; the extractor reads it like any header, so the macro's definition
is a fact whose file:line is the schema's enum.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from functools import cache
from importlib import resources

# scripts/qapi/common.py: c_name's protected words.
C_WORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if int long
register return short signed sizeof static struct switch typedef union unsigned void volatile while
inline restrict _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert
_Thread_local asm typeof bool catch class const_cast delete dynamic_cast explicit false friend mutable
namespace new operator private protected public reinterpret_cast static_cast template this throw true try
typeid typename using virtual wchar_t and and_eq bitand bitor compl not not_eq or or_eq xor xor_eq
unix errno mips sparc i386 linux""".split())

SCHEMA_SUFFIX = ".json"
# `'enum': 'NAME'` outside a `#` comment; a schema writes one expression's head on one line
_ENUM = re.compile(rb"^[^#\n]*'enum'\s*:\s*'([^'\n]+)'")


def c_name(name: str, protect: bool = True) -> str:
    """Return QAPI's C identifier for a schema name: `migrate-set-parameters` -> `migrate_set_parameters`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if protect and (name in C_WORDS or name[:1].isdigit()):
        return "q_" + name
    return name


@cache
def _knowledge() -> dict:
    return tomllib.loads((resources.files("chaintrace.queries") / "qemu" / "qapi.toml").read_text())


def is_schema(path: str) -> bool:
    """Return True when the tree path `path` is a QAPI schema file chaintrace indexes (qapi.toml's `files`)."""
    return path.endswith(SCHEMA_SUFFIX) and any(fnmatch.fnmatchcase(path, glob) for glob in _knowledge()["files"])


def generated_header(source: bytes) -> bytes:
    """Return a schema file as C: on each enum's line the `#define` the generator makes of it, other lines blank."""
    template = _knowledge()["enum"]["define"]
    lines = source.split(b"\n")
    out = []
    for line in lines:
        found = _ENUM.match(line)
        out.append(template.format(c_name=c_name(found.group(1).decode("ascii", "replace"))).encode()
                   if found else b"")
    return b"\n".join(out)
