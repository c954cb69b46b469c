"""Guards of the package's shape (docs/architecture.md): no import cycle, no module over 400 lines, no function over 60.

The imports are read with `ast` from every module of `chaintrace/`, at any
depth (an import inside a function is a cycle held apart, not a cycle
avoided), except under `if TYPE_CHECKING:`, which never runs.  Each failure
names the modules or functions and where they are.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "chaintrace"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    """Return the dotted name of a module file of the package ("chaintrace.graph.build")."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    """Return True for the test of `if TYPE_CHECKING:` (bare or as `typing.TYPE_CHECKING`)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Yield every import statement of `tree` at any depth, leaving out the bodies of `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                yield from runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from runtime_imports(node)


def imported_modules(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """Return the chaintrace modules an import statement of `module` names (a submodule when `from P import m` names one)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    found = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    if len(found) < len(node.names) and base in MODULES:
        found.add(base)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """Return {module: {imported module: line of the first import}} over the package."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges = graph.setdefault(module, {})
        for node in runtime_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in imported_modules(module, node):
                if target != module:
                    edges.setdefault(target, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module, each sorted (networkx, an
    implementation independent of chaintrace's own)."""
    import networkx as nx

    digraph = nx.DiGraph((module, target) for module, targets in graph.items() for target in targets)
    return sorted(sorted(c) for c in nx.strongly_connected_components(digraph) if len(c) > 1)


def describe_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    """Return the imports inside one cycle, one per line, as `module (file:line) -> module`."""
    members = set(component)
    lines = [f"  {source} ({MODULES[source].relative_to(PACKAGE.parent)}:{line}) -> {target}"
             for source in component for target, line in sorted(graph[source].items()) if target in members]
    return "cycle between " + ", ".join(component) + ":\n" + "\n".join(lines)


def test_the_walk_sees_imports_inside_functions_and_skips_type_checking() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import chaintrace.api\n"
                     "def f():\n    from chaintrace.graph import build\n")
    names = {name for node in runtime_imports(tree) for name in imported_modules("chaintrace.cli", node)}
    assert names == {"chaintrace.graph.build"}
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_modules() -> None:
    graph = import_graph()
    assert len(graph) > 30 and any(graph.values()), "the walk found no modules or no imports"
    found = cycles(graph)
    assert not found, "\n".join(describe_cycle(graph, component) for component in found)


def test_no_module_over_400_lines() -> None:
    sizes = {module: len(path.read_text(encoding="utf-8").splitlines()) for module, path in MODULES.items()}
    over = {module: lines for module, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not over, "\n".join(f"  {MODULES[m].relative_to(PACKAGE.parent)}: {n} lines" for m, n in sorted(over.items()))


def long_functions() -> list[str]:
    """Return `file:line name (N lines)` for every function or method over the limit, nested ones included."""
    over = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    over.append(f"  {path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({length} lines)")
    return sorted(over)


def test_no_function_over_60_lines() -> None:
    over = long_functions()
    assert not over, "\n".join(over)


@pytest.mark.parametrize("module", ["chaintrace.api", "chaintrace.cli", "chaintrace.graph.adjacency"])
def test_the_walk_knows_the_package(module: str) -> None:
    assert module in MODULES
