"""What a test does when something it needs is missing: skip here, fail under CI=true.

A skipped test says why; under `CI=true` (what `.ci/run` sets) a skip would
hide that a layer of the suite did not run, so it fails instead.  A tool a
fresh Debian machine lacks (gcc for the oracle, Chromium for the HTML page)
is installed with apt under CI first, the way `make test` expects to run on a
machine with nothing but Python and make.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest


def under_ci() -> bool:
    """Return True under CI=true, where a missing prerequisite is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


def missing(reason: str, why_it_must_run: str) -> NoReturn:
    """Skip the current test with `reason`, or fail it under CI=true saying `why_it_must_run`; never returns."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: {why_it_must_run})", pytrace=False)
    pytest.skip(reason)


def require_tool(commands: tuple[str, ...], package: str, why_it_must_run: str) -> str:
    """Return the path of the first of `commands` found on PATH.

    When none is: skip, saying how to install it; under CI=true install the
    Debian `package` with apt-get, and fail if that did not give one.
    """
    found = next((path for path in map(shutil.which, commands) if path), None)
    if found:
        return found
    if not under_ci():
        pytest.skip(f"no {commands[0]}: apt-get install {package} (CI=true installs it)")
    run = subprocess.run(["apt-get", "install", "-y", package], capture_output=True, text=True, timeout=900)
    found = next((path for path in map(shutil.which, commands) if path), None)
    if not found:
        pytest.fail(f"CI=true: {why_it_must_run}, and `apt-get install -y {package}` did not give "
                    f"{commands[0]}: {run.stderr.strip()[-300:]}", pytrace=False)
    return found
