"""Slope benchmark: inputs that grow must cost time linear in their size (issue #17).

    .venv/bin/python bench/slope.py [--runs 3] [--scale 1.0] [--only NAME ...]

Generates one C file per shape and size, and times `index` then `trace` on
it through `chaintrace.cli.main` in this process (interpreter start-up and
imports excluded; a warm-up run first), each in a fresh cache, and prints
the median time of `--runs` runs per size, then the slope between
consecutive sizes: the ratio of their times over the ratio of their sizes.
A slope near 1 is linear; 2 is quadratic (doubling the input quadruples
the time). The shapes, at their largest (`--scale 1`):

- calls: one function calling another 100,000 times, a call per line;
- line: a 5 MB line, a call every 50 bytes;
- brackets: 100,000 nested blocks `{ { ... } }` around a call;
- initializers: 100,000 nested initializer lists `{ { ... f ... } }`;
  both nest deeper than the indexer reads (10,000 levels, `source/parse.MAX_DEPTH`): x.c is skipped,
  saying so, and the trace runs in the tree's other file, h.c (the table says so);
- blocks: 9,600 nested blocks, each holding a call (`{ f(); { f(); ... } }`);
- nestcalls: 4,800 calls nested as arguments `k(k(k(...1)))`;
- tables: 9,600 nested initializer lists naming a function at each level `{ f, { f, ... } }`;
- designated: 4,800 nested designated initializers `{ .a = { .a = ... } }` (two levels each);
- chain: a 9,600-long member chain `x->a->a->...->fn()`, traced to `read:fn`.

The machine may be shared: quote medians, and read a slope over 1.3 as
worth a look, over 1.7 as quadratic.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaintrace.cli import main  # noqa: E402 (the repository's chaintrace, not an installed one)

HEAD = "struct A { struct A *a; void (*fn)(void); };\nvoid f(void) { }\n"


def calls(n: int) -> str:
    return HEAD + "void g(void)\n{\n" + "    f();\n" * n + "}\n"


def line(n: int) -> str:
    return HEAD + "void g(void) {" + " f(/* a call every 50 bytes, on one line */);" * n + " }\n"


def brackets(n: int) -> str:
    return HEAD + "void g(void) " + "{ " * n + "f(); " + "} " * n + "\n"


def initializers(n: int) -> str:
    return HEAD + "void (*t[])(void) = " + "{ " * n + "f" + " }" * n + ";\nvoid g(void) { f(); }\n"


def designated(n: int) -> str:
    return HEAD + "struct A t = " + "{ .a = " * n + "0" + " }" * n + ";\nvoid g(void) { f(); }\n"


def chain(n: int) -> str:
    return HEAD + "void g(struct A *x) { x" + "->a" * n + "->fn(); }\n"


def blocks(n: int) -> str:
    return HEAD + "void g(void) " + "{ f(); " * n + "} " * n + "\n"


def nestcalls(n: int) -> str:
    return HEAD + "int k(int a) { f(); return a; }\nvoid g(void) { " + "k(" * n + "1" + ")" * n + "; }\n"


def tables(n: int) -> str:
    return HEAD + "void (*t[])(void) = " + "{ f, " * n + "f" + " }" * n + ";\nvoid g(void) { f(); }\n"


# Every tree also holds h.c, traced where x.c nests too deep to be read (the index must say it skipped it).
OTHER = "void f2(void) { }\nvoid h(void) { f2(); }\n"

# name -> (make the source of size n, the sizes at scale 1, the trace's target)
SHAPES: dict[str, tuple[Callable[[int], str], tuple[int, ...], str]] = {
    "calls": (calls, (25_000, 50_000, 100_000), "f"),
    "line": (line, (25_000, 50_000, 100_000), "f"),  # 50 bytes a call: a 5 MB line at the largest
    "brackets": (brackets, (25_000, 50_000, 100_000), "f"),
    "initializers": (initializers, (25_000, 50_000, 100_000), "f"),
    "blocks": (blocks, (2_400, 4_800, 9_600), "f"),
    "nestcalls": (nestcalls, (1_200, 2_400, 4_800), "f"),
    "tables": (tables, (2_400, 4_800, 9_600), "f"),
    "designated": (designated, (1_200, 2_400, 4_800), "f"),
    "chain": (chain, (2_400, 4_800, 9_600), "read:fn"),
}


def run_once(tree: Path, target: str, scratch: Path) -> tuple[float, bool]:
    """Return the seconds `index` then `trace` take on `tree`, in a fresh cache, and whether the index skipped
    x.c (nested too deep: the trace then runs in h.c, from `h` to `f2`); exit when either command fails."""
    cache = scratch / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    skipped = False
    for command in ("index", "trace"):
        argv = (["index", str(tree), "--json"] if command == "index" else
                ["trace", str(tree), "--from", "h" if skipped else "g", "--to", "f2" if skipped else target,
                 "--max-paths", "1"])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, "--cache", str(cache), *(["-j", "1"] if command == "index" else [])])
        if code != 0:
            sys.exit(f"slope: `chaintrace {command}` on {tree.name} exited {code}: {err.getvalue().strip()}")
        if command == "index":
            left_out = {item["path"]: item["reason"] for item in json.loads(out.getvalue())["skipped"]}
            if set(left_out) - {"x.c"} or (left_out and "nested" not in left_out["x.c"]):
                sys.exit(f"slope: {tree.name}: files skipped that should not be: {left_out}")
            skipped = bool(left_out)
    return time.perf_counter() - started, skipped


def measure(name: str, sizes: list[int], runs: int, scratch: Path) -> tuple[list[float], list[bool]]:
    """Return the median seconds of each size of one shape, and whether each size's x.c was skipped."""
    make, _, target = SHAPES[name]
    medians: list[float] = []
    skips: list[bool] = []
    for size in sizes:
        tree = scratch / f"{name}-{size}"
        tree.mkdir(parents=True, exist_ok=True)
        (tree / "x.c").write_text(make(size))
        (tree / "h.c").write_text(OTHER)
        done = [run_once(tree, target, scratch) for _ in range(runs)]
        medians.append(statistics.median(seconds for seconds, _ in done))
        skips.append(done[0][1])
        shutil.rmtree(tree)
    return medians, skips


def slopes(sizes: list[int], seconds: list[float]) -> list[float]:
    """Return, per step between consecutive sizes, (time ratio) / (size ratio): 1 linear, 2 quadratic."""
    return [(b / a) / (m / n) for n, m, a, b in zip(sizes, sizes[1:], seconds, seconds[1:])]


def main_bench(argv: list[str] | None = None) -> int:
    """Print the time per size and the slopes of every shape; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the median is shown (default 3)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (0.1 for a quick look)")
    parser.add_argument("--only", nargs="*", choices=sorted(SHAPES), help="the shapes to run (default: all)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chaintrace-slope-") as folder:
        scratch = Path(folder)
        warm = scratch / "warm"
        warm.mkdir()
        (warm / "x.c").write_text(calls(10))
        (warm / "h.c").write_text(OTHER)
        run_once(warm, "f", scratch)  # queries compiled, modules imported: not part of any size's time
        print(f"{'shape':<13} {'size':>10} {'seconds':>9}   slope (time ratio / size ratio)")
        for name in args.only or SHAPES:
            sizes = [max(1, int(size * args.scale)) for size in SHAPES[name][1]]
            seconds, skips = measure(name, sizes, args.runs, scratch)
            steps = [None, *slopes(sizes, seconds)]
            for size, took, step, skipped in zip(sizes, seconds, steps, skips):
                note = "   x.c skipped (nested too deep), traced in h.c" if skipped else ""
                print(f"{name:<13} {size:>10,} {took:>9.2f}   {'' if step is None else f'{step:.2f}'}{note}")
            overall = slopes([sizes[0], sizes[-1]], [seconds[0], seconds[-1]])[0]
            print(f"{name:<13} {'overall':>10} {'':>9}   {overall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
