"""Mermaid's own parser, for the test that checks chaintrace's `.mmd` output with it.

Mermaid and jsdom (it needs a DOM) are npm packages, pinned in
`tests/data/mermaid-node/` (package.json and its lock).  They are installed
with `npm ci` into `~/.cache/chaintrace/mermaid-node` (under
`$XDG_CACHE_HOME` when set) under `CI=true`, where a missing parser fails
the test instead of skipping it; elsewhere the test skips, saying how to
get it.  `CHAINTRACE_MERMAID_NODE` names another folder that holds them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from helpers.ci import missing, require_tool, under_ci

PINNED = Path(__file__).resolve().parents[1] / "data" / "mermaid-node"
WHY = "chaintrace's Mermaid output must be read by Mermaid's own parser"


def default_folder() -> Path:
    """Return the cache folder the pinned packages are installed into."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "chaintrace" / "mermaid-node"


def _installed(folder: Path) -> bool:
    return all((folder / "node_modules" / name / "package.json").is_file() for name in ("mermaid", "jsdom"))


def _current(folder: Path) -> bool:
    """Return True when `folder` holds exactly the pinned packages (its lock is ours)."""
    lock = folder / "package-lock.json"
    return _installed(folder) and lock.is_file() and lock.read_bytes() == (PINNED / "package-lock.json").read_bytes()


def mermaid_folder() -> Path:
    """Return a folder whose `node_modules` holds mermaid and jsdom; install the pinned ones under CI=true.

    Skips (fails under CI=true) when they are not there and cannot be installed, saying why.
    """
    named = os.environ.get("CHAINTRACE_MERMAID_NODE")
    if named:
        if not _installed(Path(named)):
            missing(f"CHAINTRACE_MERMAID_NODE={named} holds no node_modules/mermaid and jsdom", WHY)
        return Path(named)
    folder = default_folder()
    if _current(folder):
        return folder
    if not under_ci():
        missing(f"Mermaid's parser is not in {folder}: CI=true installs it there with npm "
                "(or set CHAINTRACE_MERMAID_NODE to a folder with `npm install mermaid jsdom`)", WHY)
    npm = require_tool(("npm",), "npm", WHY)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Installed beside, then moved into place: a run killed half-way leaves no half-installed folder behind.
    fresh = folder.parent / f".mermaid-node-{os.getpid()}"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PINNED / name, fresh / name)
    run = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=fresh,
                         capture_output=True, text=True, timeout=900)
    if run.returncode != 0 or not _installed(fresh):
        shutil.rmtree(fresh, ignore_errors=True)
        missing(f"`npm ci` of {PINNED} failed (exit {run.returncode}): {(run.stderr or run.stdout).strip()[-400:]}", WHY)
    old = folder.parent / f".mermaid-node-old-{os.getpid()}"
    if folder.exists():
        folder.rename(old)
    fresh.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder
