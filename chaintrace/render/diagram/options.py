"""How a trace is drawn (`DiagramOptions`) and the values its options take.

Apart from `diagram.py` so that the command line can offer the options
without loading the drawing code.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaintrace.errors import UsageError

CLUSTERS = ("file", "dir", "none")
RANKDIRS = ("LR", "TB")
FORMATS = (".dot", ".gv", ".svg", ".png", ".pdf", ".mmd")


@dataclass(frozen=True)
class DiagramOptions:
    """How a trace is drawn.

    * `cluster`: group functions in boxes per source `"file"`, per `"dir"`, or `"none"`;
    * `max_nodes`: functions drawn one by one (the entry and the target functions
      always are); the others are folded into `+N more` boxes (see `_fold`);
    * `collapse_file`: files or globs (`util/*`) whose functions are drawn as one
      box per file (the entry and target functions stay visible);
    * `rankdir`: `"LR"` (calls go left to right) or `"TB"` (top to bottom);
    * `link_template`: a URL with `{file}` and `{line}`, linked from every box
      and arrow of an SVG (`https://gitlab.com/qemu-project/qemu/-/blob/master/{file}#L{line}`).
    """

    cluster: str = "file"
    max_nodes: int = 60
    collapse_file: tuple[str, ...] = ()
    rankdir: str = "LR"
    link_template: str = ""

    def __post_init__(self) -> None:
        if self.cluster not in CLUSTERS:
            raise UsageError(f"unknown cluster mode {self.cluster!r} (known: {', '.join(CLUSTERS)})")
        if self.rankdir not in RANKDIRS:
            raise UsageError(f"unknown rankdir {self.rankdir!r} (known: {', '.join(RANKDIRS)})")
        if self.link_template:
            from urllib.parse import urlsplit

            try:
                scheme = urlsplit(self.link_template.replace("{file}", "f").replace("{line}", "1")).scheme
            except ValueError as error:
                raise UsageError(f"--link-template is not a URL: {error}") from None
            if scheme.lower() not in ("", "http", "https", "file") or any(c in self.link_template for c in "\0\n\r\"<>"):
                raise UsageError(f"--link-template must be an http(s), file or relative URL, not {self.link_template!r}")
        if self.max_nodes < 1:
            raise UsageError(f"max_nodes must be at least 1, not {self.max_nodes}")
        # a list given by a caller would make the dataclass unhashable and mutable
        object.__setattr__(self, "collapse_file", tuple(self.collapse_file))
