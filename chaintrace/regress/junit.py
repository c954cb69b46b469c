"""Check results as JUnit XML, as CI servers read it (docs/checks.md; tests/test_check_junit.py validates it).

One <testsuite> per tree (properties `tree` and `version`), one <testcase>
per spec or snapshot, with <failure>, <error> or <skipped>, and a
<system-out> holding the query and the summary.
"""

from __future__ import annotations

import json
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from chaintrace.errors import ChaintraceError
from chaintrace.regress.check import CheckResult, columns


def _counts(items: list[CheckResult]) -> dict[str, str]:
    return {"tests": str(len(items)), "failures": str(sum(r.status == "fail" for r in items)),
            "errors": str(sum(r.status == "error" for r in items)),
            "skipped": str(sum(r.status == "skip" for r in items))}


def _testcase(suite: ET.Element, result: CheckResult, classname: str) -> None:
    case = ET.SubElement(suite, "testcase", {"name": result.name, "classname": classname,
                                             "time": f"{result.seconds:.3f}", "file": result.source})
    if result.status in ("fail", "error"):
        first = result.failures[0]
        element = ET.SubElement(case, "failure" if result.status == "fail" else "error",
                                {"message": f"{first.expectation}: {first.message}", "type": first.expectation})
        element.text = "\n".join(f"{f.expectation}: {f.message}" for f in result.failures)
    elif result.status == "skip":
        ET.SubElement(case, "skipped", {"message": result.notes[-1] if result.notes else "skipped"})
    out = [f"query: {json.dumps(result.query)}", f"summary: {json.dumps(result.summary)}", *result.notes]
    ET.SubElement(case, "system-out").text = "\n".join(out)


def junit_tree(results: list[CheckResult], seconds: float = 0.0) -> ET.ElementTree:
    """Return the results as JUnit XML: one <testsuite> per tree, one <testcase> per spec or snapshot."""
    root = ET.Element("testsuites", {"name": "chaintrace check", **_counts(results), "time": f"{seconds:.3f}"})
    labels = columns(results)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for index, tree in enumerate(labels):
        items = [r for r in results if r.tree == tree]
        suite = ET.SubElement(root, "testsuite", {
            "name": f"chaintrace check {labels[tree]}", **_counts(items), "id": str(index),
            "time": f"{sum(r.seconds for r in items):.3f}", "timestamp": stamp, "hostname": socket.gethostname()})
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", {"name": "tree", "value": tree})
        ET.SubElement(properties, "property", {"name": "version", "value": items[0].version})
        classname = "chaintrace.regress.check." + (labels[tree].replace(".", "_").replace(" ", "_") or "tree")
        for result in items:
            _testcase(suite, result, classname)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, results: list[CheckResult], seconds: float = 0.0) -> None:
    """Write the JUnit XML of the results to `path`."""
    try:
        junit_tree(results, seconds).write(path, encoding="UTF-8", xml_declaration=True)
    except OSError as error:
        raise ChaintraceError(f"cannot write {path}: {error.strerror}") from None
