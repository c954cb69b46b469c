"""Trace specs as data (`queries/qemu/*.toml`): the one loader, and what a spec asks of one tree version.

A spec file holds one spec (see docs/checks.md):

    name = "migrate-threshold-size"
    from = "qmp:migrate"
    to = "assign:threshold_size"
    [options]   max_paths, max_depth, via, avoid, edges, sites, undecided
    [expect]    reach, through, through_all, edges_allowed, edges_required,
                max_length, min_paths, max_paths, statement, target_file
    [versions.">=10.0"]   note, skip, from, to, [..options], [..expect]

Version tables apply, in file order, to the trees whose VERSION matches
their selector: `7.2` (that release family), `10.0.13` (that release),
`>=10.0`, `<10.0`, `>7.2,<=10.0` (every comparison must hold).  A selector
compares as many version parts as it names.

`load_spec` is strict: an unknown key, a wrong type, a bad regular
expression or edge kind is a UsageError naming the file and the key, before
any tree is read.  `check`, `doc`, `snapshot` and `diff` all read specs
here; `Spec.resolve(version)` gives the `api.TraceQuery` to run.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from chaintrace.api import TraceQuery
from chaintrace.errors import UsageError

KEYS = {"name", "description", "from", "to", "options", "expect", "versions"}
OPTION_KEYS = {"max_paths": int, "max_depth": int, "via": list, "avoid": list, "edges": list, "sites": str,
               "undecided": bool}
EXPECT_KEYS = {"reach": bool, "through": list, "through_all": list, "edges_allowed": list, "edges_required": list,
               "max_length": int, "min_paths": int, "max_paths": int, "statement": str, "target_file": str,
               "paths": list}
VERSION_KEYS = {"note", "skip", "from", "to", "options", "expect"}
_SELECTOR = re.compile(r"(>=|<=|==|!=|>|<|=)?\s*(\d+(?:\.\d+)*)")


@dataclass
class Spec:
    """A trace spec read from a TOML file; `resolve(version)` gives what to run and expect on one tree."""

    name: str
    path: Path
    source: str
    target: str
    description: str = ""
    options: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)
    versions: list[tuple[str, dict]] = field(default_factory=list)

    def resolve(self, version: str) -> Resolved:
        """Return the query, expectations and notes for a tree of `version` (version tables applied in order)."""
        source, target, options, expect = self.source, self.target, dict(self.options), dict(self.expect)
        notes, skip = [], ""
        for selector, table in self.versions:
            if not version_matches(selector, version):
                continue
            source, target = table.get("from", source), table.get("to", target)
            options.update(table.get("options", {}))
            expect.update(table.get("expect", {}))
            if table.get("note"):
                notes.append(f"[{selector}] {table['note']}")
            if table.get("skip"):
                skip = table["skip"] if isinstance(table["skip"], str) else f"not for QEMU {version} ({selector})"
        return Resolved(self, TraceQuery.from_dict({"from": source, "to": target, **options}), expect, notes, skip)


@dataclass
class Resolved:
    """A spec as it applies to one version: the query to run, the expectations, notes and a skip reason."""

    spec: Spec
    query: TraceQuery
    expect: dict
    notes: list[str]
    skip: str = ""


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in text.strip().split("."))


def version_matches(selector: str, version: str) -> bool:
    """Return True when `version` ("10.2.2") satisfies `selector` ("10.2", ">=10.0", ">7.2,<10.0")."""
    if not version:
        return False
    for clause in selector.split(","):
        match = _SELECTOR.fullmatch(clause.strip())
        if match is None:
            raise UsageError(f"bad version selector {selector!r} (e.g. \"7.2\", \">=10.0\", \">=7.2,<10.0\")")
        op, wanted = match.group(1) or "==", _version_key(match.group(2))
        have = (_version_key(version) + (0,) * len(wanted))[:len(wanted)]
        ok = {"==": have == wanted, "=": have == wanted, "!=": have != wanted, ">=": have >= wanted,
              "<=": have <= wanted, ">": have > wanted, "<": have < wanted}[op]
        if not ok:
            return False
    return True


def _checked(table: object, allowed: dict, where: str) -> dict:
    """Return `table` when its keys are among `allowed` with the types it names; raise UsageError otherwise."""
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table")
    for key, value in table.items():
        if key not in allowed:
            raise UsageError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        kind = allowed[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UsageError(f"{where}: {key} must be {kind.__name__}, not {type(value).__name__}")
        if key == "paths":  # the hand-verified path set: lists of node ids
            if not all(isinstance(path, list) and path and all(isinstance(n, str) for n in path) for path in value):
                raise UsageError(f"{where}: paths must be a list of paths, each a list of node ids")
        elif kind is list and not all(isinstance(item, str) for item in value):
            raise UsageError(f"{where}: {key} must be a list of strings")
    for key in ("statement", "target_file"):
        try:
            re.compile(table.get(key, ""))
        except re.error as error:
            raise UsageError(f"{where}: {key} is not a regular expression: {error}") from None
    return dict(table)


def _options(table: object, where: str) -> dict:
    """Return a table of trace options, checked as a TraceQuery checks them (edge kinds, counts, `sites`)."""
    options = _checked(table, OPTION_KEYS, where)
    try:
        TraceQuery.from_dict({"from": "", "to": "", **options})
    except UsageError as error:
        raise UsageError(f"{where}: {error}") from None
    return options


def _version_table(selector: str, table: object, where: str) -> dict:
    version_matches(selector, "0")  # validates the selector
    if not isinstance(table, dict) or set(table) - VERSION_KEYS:
        raise UsageError(f"{where}: keys must be among {', '.join(sorted(VERSION_KEYS))}")
    for key in ("note", "from", "to"):
        if not isinstance(table.get(key, ""), str):
            raise UsageError(f"{where}: {key} must be a string")
    if not isinstance(table.get("skip", ""), (str, bool)):
        raise UsageError(f"{where}: skip must be a string (why) or true")
    return {**table, "options": _options(table.get("options", {}), f"{where}.options"),
            "expect": _checked(table.get("expect", {}), EXPECT_KEYS, f"{where}.expect")}


def _read_toml(path: Path) -> dict:
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a spec file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read spec {path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: {error}") from None


_PLAIN_NAME = re.compile(r"(?!\.\.?$)[A-Za-z0-9._-]{1,128}")


def load_spec(path: Path) -> Spec:
    """Return the spec in a TOML file; raises UsageError (one line, naming file and key) when it is malformed."""
    path = Path(path)
    data = _read_toml(path)
    for key in data:
        if key not in KEYS:
            raise UsageError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(KEYS))})")
    for key in ("from", "to"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise UsageError(f"{path}: `{key}` is required (a string)")
    versions = data.get("versions", {})
    if not isinstance(versions, dict):
        raise UsageError(f"{path}: versions must be tables: [versions.\"SELECTOR\"]")
    name = data.get("name") or path.stem
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        # the name is a folder of `doc --spec`'s output: `../../x` would write outside it
        raise UsageError(f"{path}: name must be a plain name (letters, digits, '.', '_', '-'), not {name!r}")
    return Spec(
        name=name, path=path, source=data["from"], target=data["to"],
        description=str(data.get("description", "")),
        options=_options(data.get("options", {}), f"{path}: [options]"),
        expect=_checked(data.get("expect", {}), EXPECT_KEYS, f"{path}: [expect]"),
        versions=[(selector, _version_table(selector, table, f"{path}: [versions.{selector!r}]"))
                  for selector, table in versions.items()],
    )


def is_spec(path: Path) -> bool:
    """Return False for a TOML file with none of `from`, `to`, `expect` (macros.toml, registrars.toml): not a spec.

    A file that cannot be read or parsed counts as a spec, so that `load_spec` reports it.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    return bool({"from", "to", "expect"} & set(data))


def spec_files(paths: list[Path]) -> tuple[list[Spec], list[str]]:
    """Return the specs among `paths` (folders: their *.toml), and notes on the TOML files that are not specs.

    Raises UsageError for a malformed spec, or two specs of one name.
    """
    files: list[Path] = []
    for path in paths:
        files += sorted(Path(path).glob("*.toml")) if Path(path).is_dir() else [Path(path)]
    specs, skipped = [], []
    for file in files:
        if is_spec(file):
            specs.append(load_spec(file))
        else:
            skipped.append(f"{file}: not a trace spec (no from/to), skipped")
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"two specs are named {name!r}: give each spec file its own `name`")
    return specs, skipped
