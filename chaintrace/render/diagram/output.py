"""Write a trace document's diagram to a file, in the format its extension names.

Its own module, so that `layout` (the drawing model) does not import the
writers (`dot`, `mermaid`) that import it: the one way round is writer ->
layout.
"""

from __future__ import annotations

from pathlib import Path

from chaintrace.errors import UsageError
from chaintrace.render.diagram import dot
from chaintrace.render.diagram.mermaid import render_mermaid
from chaintrace.render.diagram.options import FORMATS, DiagramOptions


def write(document: dict, path: Path, options: DiagramOptions | None = None) -> None:
    """Write the diagram of `document` to `path`, in the format its extension names.

    `.dot`/`.gv` (Graphviz source), `.svg`, `.png`, `.pdf` (laid out by Graphviz),
    `.mmd` (Mermaid).  Raises UsageError for another extension and
    ChaintraceError when no Graphviz can lay the diagram out (the `.dot` is
    then written next to `path`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"cannot write {path.name}: unknown format {suffix or '(none)'} "
                         f"(known: .json, .txt, {', '.join(FORMATS)})")
    options = options or DiagramOptions()
    if suffix == ".mmd":
        path.write_text(render_mermaid(document, options), encoding="utf-8")
        return
    source = dot.render_dot(document, options)
    if suffix in (".dot", ".gv"):
        path.write_text(source, encoding="utf-8")
    else:
        dot.draw(source, path, suffix[1:])
