"""Constant objects that carry function pointers, and the functions that hand them on: object sensitivity's facts.

QEMU picks a behaviour by handing a constant table to a constructor:
`block_job_create(..., &backup_job_driver, ...)` stores the driver into the
job, and `job->driver->run(job)` later calls what that table holds. Type-level
value flow lets the call reach every `JobDriver.run` of the tree; a path that
built its job from `backup_job_driver` can only reach `backup_run`.

`object_facts` returns:

* `objects`: each global variable whose initializer stores functions, by
  `file::name`, as `{"struct.member": [function ids]}` with each member
  normalised as value flow normalises it (the innermost struct that holds
  it: `backup_job_driver` has `JobDriver.run`, `JobDriver.clean` and
  `BlockJobDriver.set_speed`);
* `passes`: for each function, the objects it passes to a call as an
  argument (`&backup_job_driver`, `&backup_job_driver.job_driver`,
  `snapshot_save_job_driver`).

The trace uses them as a feasibility check (`query.objects`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from chaintrace.extract.facts import FileFacts
from chaintrace.graph.symbols import Symbols

# `&name`, `&name.member.member`, `name`, `(Type *)&name`: an argument that names a whole object or part of it.
_OBJECT_ARG = re.compile(r"(?:\([^()]*\)\s*)?&?\s*([A-Za-z_]\w*)(?:\s*\.\s*[A-Za-z_]\w*)*")


def object_facts(symbols: Symbols, facts: Iterable[FileFacts],
                 stored: Iterable[tuple[str, str, tuple, str]]) -> tuple[dict[str, dict[str, list[str]]], dict[str, list[str]]]:
    """Return (objects, passes) as the module docstring says.

    `stored` yields (file, variable, location, function id) for every function an initializer of a
    global variable stores, with value flow's location `("f", struct, member)`.
    """
    members: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for file, variable, location, function_id in stored:
        if location[0] == "f" and location[1]:
            members[f"{file}::{variable}"][f"{location[1]}.{location[2]}"].add(function_id)
    objects = {name: {member: sorted(ids) for member, ids in table.items()} for name, table in members.items()}
    by_name: dict[str, list[str]] = defaultdict(list)
    for name in objects:
        by_name[name.rsplit("::", 1)[1]].append(name)
    passes: dict[str, list[str]] = {}
    for file_facts in facts:
        for call in file_facts.calls:
            caller = symbols.id_of(call.file, call.caller) if call.caller else None
            if caller is None:
                continue
            for text in call.args:
                match = _OBJECT_ARG.fullmatch(text.strip())
                if match is None or match.group(1) not in by_name:
                    continue
                own = f"{call.file}::{match.group(1)}"
                candidates = [own] if own in objects else by_name[match.group(1)]
                if len(candidates) == 1 and candidates[0] not in passes.get(caller, ()):
                    passes.setdefault(caller, []).append(candidates[0])
    return objects, passes
