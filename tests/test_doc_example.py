"""The committed example page (docs/examples/qemu-10.2-migrate-threshold) is what `chaintrace doc` writes today.

Real-QEMU layer: regenerates the page of QEMU 10.2's `qmp:migrate` ->
`assign:threshold_size` and fails when any file differs.  After a change
that alters the page on purpose (or a new 10.2.x tree), rewrite it with

    CHAINTRACE_UPDATE_EXAMPLES=1 .venv/bin/python -m pytest tests/test_doc_example.py
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from helpers.cli import run_cli

from chaintrace.cli import doc as doc_command

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "docs" / "examples" / "qemu-10.2-migrate-threshold"
ARGS = ["--from", "qmp:migrate", "--to", "assign:threshold_size", "--max-paths", "12"]


def _difference(expected: Path, made: Path) -> str:
    """Return the first lines of a unified diff of two text files."""
    old = expected.read_text(encoding="utf-8").splitlines() if expected.exists() else []
    new = made.read_text(encoding="utf-8").splitlines()
    lines = list(difflib.unified_diff(old, new, str(expected), "regenerated", n=1, lineterm=""))
    return "\n".join(line[:200] for line in lines[:40])


def test_example_page_is_up_to_date(indexed_qemu: Callable, index_cache: Path, tmp_path: Path) -> None:
    tree = indexed_qemu("10.2")
    out = tmp_path / "example"
    assert run_cli(["doc", tree.path, *ARGS, "-o", out, "--cache", index_cache]) == 0
    if os.environ.get("CHAINTRACE_UPDATE_EXAMPLES") == "1":
        EXAMPLE.mkdir(parents=True, exist_ok=True)
        for name in doc_command.OUTPUTS:
            shutil.copy(out / name, EXAMPLE / name)
    differ = [name for name in doc_command.OUTPUTS
              if not (EXAMPLE / name).exists() or (EXAMPLE / name).read_bytes() != (out / name).read_bytes()]
    assert not differ, (
        f"{EXAMPLE.relative_to(REPO_ROOT)}: {', '.join(differ)} differ from what chaintrace writes for QEMU {tree.version}; "
        f"if the change is meant, run CHAINTRACE_UPDATE_EXAMPLES=1 pytest tests/test_doc_example.py\n"
        + (_difference(EXAMPLE / differ[0], out / differ[0]) if differ[0].endswith((".md", ".mmd")) else ""))

    text = (out / "index.md").read_text(encoding="utf-8")
    assert f"| QEMU version | {tree.version} |" in text and f"| Tree | `{tree.path.name}` |" in text
    assert "s->threshold_size = expected_bw_per_ms * migrate_downtime_limit();" in text
    assert "`BUFFER_DELAY` is `100` (`#define` at migration/migration-stats.h:" in text
    assert "runs in a new thread started by `qemu_thread_create` at migration/migration.c:" in text
    assert "called back by the QIO channel when the connection completes, registered by `qio_channel_socket_connect_async`" in text
