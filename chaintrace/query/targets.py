"""Target specs -> the sites they match: `FUNC`, `assign:`, `read:`, `use:`, `call:FUNC`, `FILE:LINE`, and pickers.

`FUNC` is the function itself; `call:FUNC` every call site of FUNC (direct,
ops and fnptr edges into it); `FILE:LINE` the innermost function holding
that line. The field targets take a FIELD, a TYPE.FIELD or an EXPR:

- `assign:` the writes (`=`, compound assignments, `++`/`--`), `read:` the
  reads (right-hand side, argument, condition, `return`, the left of a
  compound assignment, ...), `use:` both, and `&s->field`;
- `read:threshold_size` matches every access to a member of that name;
  `read:MigrationState.threshold_size` those whose receiver is of struct
  type MigrationState, and those whose receiver type is unknown (matched by
  the field name, and each site says so); `read:s->threshold_size` those
  written so, white space ignored.

Any target may end with site pickers: `@FUNC` keeps the sites in that
function (name or node id), `~TEXT` those whose statement contains TEXT
(`assign:threshold_size@migration_update_counters`,
`assign:threshold_size~downtime_limit`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chaintrace.errors import NotFound
from chaintrace.extract.facts import CallSite, Context, FieldRead, FieldWrite
from chaintrace.query.lookup import GraphLookup, UnknownFunction, find_function, function_at, id_of
from chaintrace.query.results import TargetSite

FIELD_KINDS = ("assign", "read", "use")
_NAME = re.compile(r"[A-Za-z_]\w*")
_TYPED_FIELD = re.compile(r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
_FILE_LINE = re.compile(r".+:\d+")
_SPACE = re.compile(r"\s+")
_PICKERS = re.compile(r"(?P<target>[^@~]+)(?:@(?P<function>[^@~]+))?(?:~(?P<text>.+))?", re.DOTALL)


class NoSitePicked(NotFound):
    """The target matches sites, but the `@FUNC` / `~TEXT` pickers leave none; the message names what was there."""


@dataclass(frozen=True)
class TargetSpec:
    """A target as written, taken apart: `kind` (function, assign, read, use, call, line), `value` and the pickers."""

    spelling: str
    kind: str
    value: str
    function: str = ""  # @FUNC
    text: str = ""  # ~TEXT

    @property
    def field(self) -> str:
        """Return the member name a field target looks up (`threshold_size` of `MigrationState.threshold_size`)."""
        return re.split(r"->|\.", self.value)[-1].strip() if self.kind in FIELD_KINDS else ""


def parse_target(spec: str) -> TargetSpec:
    """Return a target spec taken apart (no lookup: unknown names are found out by `find_targets`)."""
    match = _PICKERS.fullmatch(spec.strip())
    target, function, text = (match.group("target", "function", "text") if match else (spec, None, None))
    target = target.strip()
    kind, _, value = target.partition(":")
    if kind in (*FIELD_KINDS, "call") and value.strip():
        parsed = (kind, value.strip())
    elif _FILE_LINE.fullmatch(target):
        parsed = ("line", target)
    else:
        parsed = ("function", target)
    return TargetSpec(spec, *parsed, (function or "").strip(), text or "")


def find_targets(graph: GraphLookup, spec: str | TargetSpec, writes: Iterable[FieldWrite] = (),
                 calls: Iterable[CallSite] = (), read_line: Callable[[str, int], str] | None = None,
                 reads: Iterable[FieldRead] = ()) -> list[TargetSite]:
    """Return the sites a target spec matches, after its pickers, in file and line order.

    `writes` (for `assign:` and `use:`), `reads` (for `read:` and `use:`) and
    `calls` (statements of `call:` sites) are facts of the tree;
    `read_line(file, line)` gives a `FILE:LINE` target's statement. Raises
    UnknownFunction for an unknown FUNC, NoSitePicked when the pickers leave
    none of the sites the target matches.
    """
    target = parse_target(spec) if isinstance(spec, str) else spec
    if target.kind in FIELD_KINDS:
        sites = _accesses(graph, target, writes if target.kind != "read" else (),
                          reads if target.kind != "assign" else ())
    elif target.kind == "call":
        sites = _call_sites(graph, target.value, calls)
    elif target.kind == "line":
        sites = [_line(graph, target.value, read_line)]
    else:
        function = find_function(graph, target.value)
        attrs = graph.node(function)
        sites = [TargetSite("function", function, attrs["file"], attrs["line"], 0, attrs["name"])]
    sites = sorted(set(sites), key=lambda s: (s.file, s.line, s.col))
    return _pick(graph, target, sites)


def _pick(graph: GraphLookup, target: TargetSpec, sites: list[TargetSite]) -> list[TargetSite]:
    """Return the sites the `@FUNC` and `~TEXT` pickers keep (all without pickers)."""
    picked = sites
    if target.function:
        wanted = target.function
        picked = [s for s in picked if s.function == wanted or graph.node(s.function)["name"] == wanted]
    if target.text:
        picked = [s for s in picked if target.text in s.statement]
    if sites and not picked:
        where = sorted({f"{graph.node(s.function)['name']} ({s.statement})" for s in sites})
        more = f" (and {len(where) - 5} more)" if len(where) > 5 else ""
        raise NoSitePicked(f"{target.spelling!r}: none of the {len(sites)} site(s) of the target is picked; "
                           f"they are in {', '.join(where[:5])}{more}")
    return picked


def _accesses(graph: GraphLookup, target: TargetSpec, writes: Iterable[FieldWrite],
              reads: Iterable[FieldRead]) -> list[TargetSite]:
    """Return the writes and reads a field target matches, each saying how it was matched."""
    value = target.value
    plain = _NAME.fullmatch(value) is not None
    typed = _TYPED_FIELD.fullmatch(value)
    wanted = _SPACE.sub("", value)
    sites = []
    for access in (*writes, *reads):
        if not access.function:
            continue
        expr = access.lhs if isinstance(access, FieldWrite) else access.expr
        if plain:
            matched = "name" if access.field == value else ""
        elif typed and access.field == typed.group(2) and access.base_type in (typed.group(1), ""):
            matched = "type" if access.base_type else "name"
        else:
            matched = "expr" if _SPACE.sub("", expr) == wanted else ""
        if not matched:
            continue
        function = id_of(graph, access.file, access.function)
        if function is None:
            continue
        if isinstance(access, FieldWrite):
            kind, how = "assign", access.operator
        else:
            kind, how = ("use" if access.how in ("address", "member") else "read"), access.how
        if target.kind == "read" and kind != "read":
            continue
        sites.append(TargetSite(kind, function, access.file, access.line,
                                access.col, access.statement, _context(access.context), how, access.field,
                                access.base_type, matched))
    if target.kind == "use":  # `s->n += 1` is a write and a read at one place: keep the write
        seen: set[tuple[str, int, int]] = set()
        unique = []
        for site in sites:
            if (site.file, site.line, site.col) not in seen:
                seen.add((site.file, site.line, site.col))
                unique.append(site)
        sites = unique
    return sites


def _call_sites(graph: GraphLookup, value: str, calls: Iterable[CallSite]) -> list[TargetSite]:
    """Return the sites of the direct, ops and fnptr edges into function `value`."""
    callee = find_function(graph, value)
    texts = {(c.file, c.line, c.col): f"{c.callee}({', '.join(c.args)})" for c in calls}
    sites = []
    for caller, _, edge_kind, data in graph.in_edges(callee):
        if edge_kind in ("direct", "ops", "fnptr"):
            for s in data["sites"]:
                statement = texts.get((s["file"], s["line"], s["col"]), f"{graph.node(callee)['name']}(...)")
                sites.append(TargetSite("call", caller, s["file"], s["line"], s["col"], statement,
                                        {"loops": s["loops"], "conditions": s["conditions"], "guards": []}))
    return sites


def _line(graph: GraphLookup, spec: str, read_line: Callable[[str, int], str] | None) -> TargetSite:
    """Return the site of a `FILE:LINE` spec, in the innermost function that holds the line."""
    file, _, line = spec.rpartition(":")
    function = function_at(graph, file, int(line))
    if function is None:
        raise UnknownFunction(f"no function of the graph holds {spec}")
    statement = read_line(file, int(line)).strip() if read_line else ""
    return TargetSite("line", function, file, int(line), 0, statement)


def _context(context: Context) -> dict:
    """Return a write's context as the trace document has it: loops, `#if` conditions, guards."""
    return {
        "loops": [{"kind": loop.kind, "condition": loop.condition, "line": loop.line} for loop in context.loops],
        "conditions": list(context.conditions),
        "guards": [{"condition": g.condition, "statement": g.statement, "line": g.line} for g in context.guards],
    }
