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
- designated: 25,000 nested designated initializers `{ .a = { .a = ... } }`;
- chain: a 25,000-long member chain `x->a->a->...->fn()`, traced to `read:fn`.

The machine may be shared: quote medians, and read a slope over 1.3 as
worth a look, over 1.7 as quadratic.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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


# name -> (make the source of size n, the sizes at scale 1, the trace's target)
SHAPES: dict[str, tuple[Callable[[int], str], tuple[int, ...], str]] = {
    "calls": (calls, (25_000, 50_000, 100_000), "f"),
    "line": (line, (25_000, 50_000, 100_000), "f"),  # 50 bytes a call: a 5 MB line at the largest
    "brackets": (brackets, (25_000, 50_000, 100_000), "f"),
    "initializers": (initializers, (25_000, 50_000, 100_000), "f"),
    "designated": (designated, (6_250, 12_500, 25_000), "f"),
    "chain": (chain, (6_250, 12_500, 25_000), "read:fn"),
}


def run_once(tree: Path, target: str, scratch: Path) -> float:
    """Return the seconds `index` then `trace` take on `tree`, in a fresh cache; exit when either fails."""
    cache = scratch / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    for argv in (["index", str(tree), "--cache", str(cache), "-j", "1"],
                 ["trace", str(tree), "--from", "g", "--to", target, "--max-paths", "1", "--cache", str(cache)]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        if code != 0:
            sys.exit(f"slope: `chaintrace {' '.join(argv[:1])}` on {tree.name} exited {code}: {err.getvalue().strip()}")
    return time.perf_counter() - started


def measure(name: str, sizes: list[int], runs: int, scratch: Path) -> list[float]:
    """Return the median seconds of each size of one shape."""
    make, _, target = SHAPES[name]
    medians = []
    for size in sizes:
        tree = scratch / f"{name}-{size}"
        tree.mkdir(parents=True, exist_ok=True)
        (tree / "x.c").write_text(make(size))
        medians.append(statistics.median(run_once(tree, target, scratch) for _ in range(runs)))
        shutil.rmtree(tree)
    return medians


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
        run_once(warm, "f", scratch)  # queries compiled, modules imported: not part of any size's time
        print(f"{'shape':<13} {'size':>10} {'seconds':>9}   slope (time ratio / size ratio)")
        for name in args.only or SHAPES:
            sizes = [max(1, int(size * args.scale)) for size in SHAPES[name][1]]
            seconds = measure(name, sizes, args.runs, scratch)
            steps = [None, *slopes(sizes, seconds)]
            for size, took, step in zip(sizes, seconds, steps):
                print(f"{name:<13} {size:>10,} {took:>9.2f}   {'' if step is None else f'{step:.2f}'}")
            overall = slopes([sizes[0], sizes[-1]], [seconds[0], seconds[-1]])[0]
            print(f"{name:<13} {'overall':>10} {'':>9}   {overall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
