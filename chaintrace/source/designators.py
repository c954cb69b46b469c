"""`#if` lines that tree-sitter glues to the designated initializer member after them.

tree-sitter-c knows preprocessor conditionals among statements, declarations,
struct members and enumerators, but not inside an initializer list, and the
line after an `#if`'s condition is read as the condition's continuation:

```
static const DisplayChangeListenerOps ops = {
    .dpy_refresh = egl_refresh,
#ifdef CONFIG_GBM
    .dpy_gl_scanout_dmabuf = egl_scanout_dmabuf,
#endif
```

parses as the assignment `CONFIG_GBM.dpy_gl_scanout_dmabuf = egl_scanout_dmabuf`,
so the member is lost (about 100 such members in QEMU 10.2, function
pointers among them). An `#else` or `#endif` line parses as an error node
of its own, and the members after it are read; so are positional elements.
Only the conditional directive followed by a designator needs blanking: the
member it guards is then read like the members of an `#else` branch, which
this parser never tied to their condition either (every branch is in the
graph).
"""

from __future__ import annotations

import re

_CONDITIONAL = re.compile(rb"#[ \t]*(?:if|ifdef|ifndef|elif)\b")
# `.member =`, `[INDEX] =`, or a chain of them (`.valid.accepts =`, `[0].f =`); not `==`.
_DESIGNATOR = re.compile(rb"[ \t]*(?:\.[A-Za-z_]\w*|\[[^\]\n]*\])(?:[ \t]*(?:\.[A-Za-z_]\w*|\[[^\]\n]*\]))*[ \t]*=(?!=)")


def conditionals_before_designators(source: bytes) -> list[tuple[int, int]]:
    """Return the (start, end) byte spans of the `#if`/`#ifdef`/`#ifndef`/`#elif` lines, continuation lines
    included and newlines excluded, that the next line's designated member (`.f =`, `[I] =`) follows."""
    spans = []
    for match in _CONDITIONAL.finditer(source):
        start = source.rfind(b"\n", 0, match.start()) + 1
        if source[start:match.start()].strip(b" \t"):
            continue  # not a directive: `#` inside a line
        end = source.find(b"\n", match.end())
        while end > 0 and source[end - 1:end] == b"\\" or end > 1 and source[end - 2:end] == b"\\\r":
            end = source.find(b"\n", end + 1)
        if end < 0:
            continue
        if _DESIGNATOR.match(source, end + 1):
            spans.append((start, end))
    return spans
