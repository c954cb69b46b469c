"""The start-up promise: a warm `chaintrace trace` imports neither networkx nor drawing code.

A warm trace reads the resolved graph's compact tables from the cache; only
`index` (or the first trace of a tree state not indexed yet) resolves the graph (networkx), and only `-o
chain.svg` and friends draw.  Each check runs `chaintrace.cli.main` in a fresh
interpreter (what the `chaintrace` script runs) and lists `sys.modules` when
it is done, so an `import networkx` added anywhere on the trace path fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MINI = Path(__file__).resolve().parent.parent / "fixtures" / "mini_qemu"
HEADLINE = ["--from", "qmp:migrate", "--to", "assign:threshold_size"]

# Top-level packages a warm trace must not load, and chaintrace's own drawing code.
HEAVY = ("networkx", "graphviz", "pygraphviz", "matplotlib")
DRAWING = "chaintrace.render.diagram"
# The diagram options are the command line's vocabulary (`trace --rankdir`), kept apart from the
# drawing code so that offering them costs nothing; whatever they import is still checked.
NOT_DRAWING = frozenset({DRAWING, f"{DRAWING}.options"})

# Runs the command line as the console script does, then prints the modules it loaded as JSON on stderr's last line.
WRAPPER = """
import json, sys
from chaintrace.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def run_cli(*argv: str) -> tuple[int, set[str]]:
    """Run `chaintrace ARGV` in a fresh interpreter; return its exit code and the modules it imported."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def heavy_modules(modules: set[str]) -> list[str]:
    """Return the modules of `modules` a warm trace must not import."""
    return sorted(name for name in modules
                  if name.split(".")[0] in HEAVY or (name.startswith(DRAWING + ".") and name not in NOT_DRAWING))


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a cache where mini_qemu is indexed and its graph resolved (`index` does both)."""
    cache = tmp_path_factory.mktemp("warm-cache")
    code, cold = run_cli("index", str(MINI), "--cache", str(cache))
    assert code == 0
    assert "networkx" in cold, "index resolves the graph with networkx: is this check still measuring anything?"
    return cache


@pytest.mark.parametrize("options", [[], ["--json"], ["--max-paths", "0"]], ids=["text", "json", "count-only"])
def test_a_warm_trace_imports_neither_networkx_nor_drawing_code(warm_cache, options):
    code, modules = run_cli("trace", str(MINI), "--cache", str(warm_cache), *HEADLINE, *options)
    assert code == 0
    assert heavy_modules(modules) == []


def test_a_warm_trace_to_a_text_file_draws_nothing(warm_cache, tmp_path):
    code, modules = run_cli("trace", str(MINI), "--cache", str(warm_cache), *HEADLINE, "-o", str(tmp_path / "chain.txt"))
    assert code == 0 and (tmp_path / "chain.txt").read_text(encoding="utf-8")
    assert heavy_modules(modules) == []


def test_the_guard_sees_drawing_code_when_a_diagram_is_asked_for(warm_cache, tmp_path):
    # The check above would pass vacuously if the wrapper lost track of imports: here drawing code must show.
    code, modules = run_cli("trace", str(MINI), "--cache", str(warm_cache), *HEADLINE, "-o", str(tmp_path / "chain.mmd"))
    assert code == 0 and (tmp_path / "chain.mmd").is_file()
    assert any(name.startswith(DRAWING) for name in heavy_modules(modules))
