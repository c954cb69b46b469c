"""Worded text, as `chaintrace doc` pages hold it: a string with two kinds of markup.

`` `code` `` spans and `[label](#anchor)` links; `segments` splits them for
renderers, `code` makes a span.
"""

from __future__ import annotations

import re

Text = str  # worded text: `code` and [label](#anchor) markup, see `segments`
_SEGMENT = re.compile(r"`([^`]*)`|\[([^\]]*)\]\((#[^)\s]*)\)")


def segments(text: Text) -> list[tuple[str, str, str]]:
    """Return `text` split into (kind, text, href): kind "text", "code" (a `code` span) or "link" ([label](#x))."""
    parts, pos = [], 0
    for match in _SEGMENT.finditer(text):
        if match.start() > pos:
            parts.append(("text", text[pos:match.start()], ""))
        if match.group(1) is not None:
            parts.append(("code", match.group(1), ""))
        else:
            parts.append(("link", match.group(2), match.group(3)))
        pos = match.end()
    if pos < len(text):
        parts.append(("text", text[pos:], ""))
    return parts


def code(text: str) -> Text:
    """Return `text` as a code span of worded `Text` (a backtick in it becomes `'`)."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def bound_words(exact: bool, method: str = "") -> str:
    """Return the words before a path count: "" when exact, else "at least ", "at most " or "about " as `method` says."""
    if exact:
        return ""
    if method.endswith("upper bound"):
        return "at most "
    if method.endswith("an estimate"):
        return "about "
    return "at least "
