"""The errors chaintrace reports as one line and an exit code, never a traceback."""

from __future__ import annotations


class ChaintraceError(Exception):
    """A failure the user can act on; `exit_code` 1."""

    exit_code = 1


class DamagedCache(ChaintraceError):
    """Stored data that does not match its checksum. It has been dropped already: what needs it is made again
    (the CLI runs the command once more, `api` resolves the graph again)."""


class UsageError(ChaintraceError):
    """Bad arguments or a bad path given by the user; `exit_code` 2."""

    exit_code = 2


class NotFound(UsageError):
    """An unknown function, command or target; the message lists close matches."""


def close_matches(word: str, candidates: list[str] | set[str], limit: int = 3) -> str:
    """Return ' (did you mean: a, b?)' for the closest candidates, or '' when none is close."""
    import difflib

    found = difflib.get_close_matches(word, list(candidates), n=limit, cutoff=0.75)
    return f" (did you mean: {', '.join(found)}?)" if found else ""
