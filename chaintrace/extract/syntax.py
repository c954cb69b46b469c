"""Helpers of extraction that read one construct: source text, declarators, types, structs, typedefs, defines, errors.

Everything here works on byte offsets of the tree's nodes; text is read from
the original source (the parsed text has macros blanked), which has the same
offsets.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from chaintrace.extract.facts import Define, Param, ParseError, StructDef, StructField, Typedef

_DECLARATOR_WRAPPERS = frozenset({
    "pointer_declarator",
    "array_declarator",
    "parenthesized_declarator",
    "init_declarator",
    "attributed_declarator",
    "function_declarator",
})
_NAME_NODES = frozenset({"identifier", "field_identifier", "type_identifier"})
_SKIPPED_BEFORE_TYPE = frozenset({"storage_class_specifier", "attribute_specifier", "ms_declspec_modifier"})


# The longest expression a fact quotes (a member access, a receiver) before it is cut with `…`.
EXPR_LIMIT = 200


def from_bytes(text: str) -> str:
    """Return a text cut from `Source.by_byte` as the UTF-8 it was (ASCII comes back as it is)."""
    return text if text.isascii() else text.encode("latin-1").decode("utf-8", "replace")


def fold(text: str) -> str:
    """Return `text` with every run of white space folded to one space (and none at either end)."""
    # Most texts (arguments, names) have nothing to fold: checking is cheaper than splitting.
    if (
        text.isascii()
        and "  " not in text
        and "\n" not in text
        and "\t" not in text
        and "\r" not in text
        and "\x0b" not in text
        and "\x0c" not in text
        and text[:1] != " "
        and text[-1:] != " "
    ):
        return text
    return " ".join(text.split())


class Source:
    """The original bytes of one file, read by byte range.

    An ASCII file (nearly all of them) is decoded once and sliced as a str,
    which is much cheaper than slicing and decoding bytes per node.
    """

    def __init__(self, path: str, original: bytes) -> None:
        self.path = path
        self.original = original
        self.ascii = original.isascii()
        self.string = original.decode("ascii") if self.ascii else ""
        self._by_byte: str | None = None
        self.parents: dict[int, Node] | None = None  # node id -> parent in deep constructs (extractor.extract)

    def parent(self, node: Node) -> Node | None:
        """Return a node's parent: from `parents` inside a deep construct, else from tree-sitter (a walk from
        the root, short outside deep constructs)."""
        if self.parents is None:
            return node.parent
        found = self.parents.get(node.id)
        return found if found is not None else node.parent

    @property
    def by_byte(self) -> str:
        """Return the text with one character per byte (Latin-1 beyond ASCII): a regular expression's offsets in
        it are byte offsets, as tree-sitter's are. Decode what it returns with `from_bytes`."""
        if self.ascii:
            return self.string
        if self._by_byte is None:
            self._by_byte = self.original.decode("latin-1")
        return self._by_byte

    def slice(self, start: int, end: int) -> str:
        """Return the source text between two byte offsets."""
        if self.ascii:
            return self.string[start:end]
        return self.original[start:end].decode("utf-8", "replace")

    def text(self, node: Node) -> str:
        """Return a node's source text."""
        if self.ascii:
            return self.string[node.start_byte:node.end_byte]
        return self.original[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def folded(self, node: Node) -> str:
        """Return a node's source text with white space folded (identifiers need no folding)."""
        if node.type == "identifier":
            return self.text(node)
        return fold(self.text(node))

    def folded_head(self, node: Node, limit: int = EXPR_LIMIT) -> str:
        """Return `folded(node)`, or its first `limit` characters and `…` when it is longer.

        A fact per member access quotes its expression, and in `x->a->a->...`
        every access holds the ones before it: quoted whole, n accesses would
        quote n * n characters.
        """
        start, end = node.start_byte, node.end_byte
        if end - start <= limit:
            return self.folded(node)
        text = fold(self.slice(start, start + 4 * limit))
        return text if len(text) <= limit and start + 4 * limit >= end else text[:limit] + "…"


def declarator_name(node: Node | None, source: Source | None = None) -> tuple[str, bool, int]:
    """Return (name, is_function_pointer, pointer depth) of a declarator."""
    fnptr = False
    depth = 0
    seen_function = False
    while node is not None:
        kind = node.type
        if kind not in _DECLARATOR_WRAPPERS:
            if kind in _NAME_NODES:
                return (source.text(node) if source is not None else node.text.decode("utf-8", "replace")), fnptr, depth
            return "", False, 0
        if kind == "function_declarator":
            seen_function = True
        elif kind == "pointer_declarator":
            if seen_function:
                fnptr = True
            else:
                depth += 1
        if kind == "parenthesized_declarator":
            node = node.named_children[0] if node.named_child_count else None
        else:
            node = node.child_by_field_name("declarator")
    return "", False, 0


def is_function_declarator(node: Node | None) -> bool:
    """Return True when a declarator declares a function (not a pointer to one)."""
    while node is not None and node.type in ("pointer_declarator", "attributed_declarator"):
        node = node.child_by_field_name("declarator")
    return node is not None and node.type == "function_declarator"


def type_text(source: Source, declaration: Node, type_node: Node | None) -> str:
    """Return the declared type as text: qualifiers and base type, storage class and attributes left out."""
    if type_node is None:
        return ""
    start = declaration.start_byte
    for child in declaration.children:
        if child.type in _SKIPPED_BEFORE_TYPE:
            start = child.end_byte
        else:
            break
    return fold(source.slice(start, type_node.end_byte))


def full_type(base: str, depth: int) -> str:
    """Return `base` followed by `depth` pointer stars."""
    return base + (" " + "*" * depth if depth else "")


def params(source: Source, declarator: Node | None) -> tuple[tuple[Param, ...], list[tuple[Node, bool]]]:
    """Return a function declarator's parameters, and per named parameter its node and is-function-pointer flag."""
    while declarator is not None and declarator.type != "function_declarator":
        declarator = declarator.child_by_field_name("declarator")
    if declarator is None:
        return (), []
    parameters = declarator.child_by_field_name("parameters")
    found: list[Param] = []
    named: list[tuple[Node, bool]] = []
    for param in parameters.named_children if parameters is not None else ():
        kind = param.type
        if kind == "parameter_declaration":
            name, fnptr, depth = declarator_name(param.child_by_field_name("declarator"), source)
            found.append(Param(name, full_type(type_text(source, param, param.child_by_field_name("type")), depth)))
            if name:
                named.append((param, fnptr))
        elif kind == "variadic_parameter":
            found.append(Param("...", "..."))
    return tuple(found), named


def storage_words(source: Source, node: Node) -> set[str]:
    """Return the storage-class words of a declaration or definition (`static`, `inline`, ...)."""
    words = set()
    for child in node.children:
        if child.type == "storage_class_specifier":
            words.add(source.text(child))
    return words


def comment_above(source: Source, node: Node) -> str:
    """Return the comment that ends on the line right above `node` (or on its line), else ""."""
    previous = node.prev_sibling
    if previous is not None and previous.type == "comment" and node.start_point[0] - previous.end_point[0] <= 1:
        return source.text(previous)
    return ""


_NON_TYPE_WORDS = frozenset({"const", "volatile", "restrict", "struct", "union", "enum", "static"})
_ARRAY_SUFFIX = re.compile(r"\[[^\]]*\]")
_TYPE_PUNCTUATION = re.compile(r"[\s*()]+")


def bare_type(text: str) -> str:
    """Return a type's name without qualifiers, tag keyword, stars and array sizes.

    `const struct Foo *` -> `Foo`, `Foo * restrict` -> `Foo`, `Foo[4]` -> `Foo`,
    `unsigned long` -> `long`; "" when no name is left.
    """
    words = [w for w in _TYPE_PUNCTUATION.split(_ARRAY_SUFFIX.sub(" ", text)) if w and w not in _NON_TYPE_WORDS]
    return words[-1] if words else ""


_PREPROC_BRANCHES = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"})


def struct_fields(source: Source, body: Node | None) -> tuple[StructField, ...]:
    """Return the members of a struct or union body."""
    fields = []
    for member in body.named_children if body is not None else ():
        if member.type in _PREPROC_BRANCHES:
            # members under `#ifdef CONFIG_USER_ONLY ... #else ... #endif` (TCGCPUOps.do_interrupt): every branch's,
            # as everything else is read
            fields += struct_fields(source, member)
            continue
        if member.type != "field_declaration":
            continue
        kind = member.child_by_field_name("type")
        declarators = member.children_by_field_name("declarator")
        if not declarators and kind is not None and kind.type in ("struct_specifier", "union_specifier") \
                and kind.child_by_field_name("name") is None:
            # an anonymous union or struct (`union { X86GenFunc gen; X86DecodeFunc decode; };`): C reads its
            # members as the outer struct's own
            fields += struct_fields(source, kind.child_by_field_name("body"))
            continue
        base = type_text(source, member, kind)
        for declarator in declarators:
            name, fnptr, depth = declarator_name(declarator, source)
            if name:
                fields.append(StructField(name, full_type(base, depth), fnptr))
    return tuple(fields)


def struct_def(source: Source, node: Node, name_node: Node) -> StructDef:
    """Return a named struct or union definition."""
    fields = struct_fields(source, node.child_by_field_name("body"))
    return StructDef(source.text(name_node), source.path, node.start_point[0] + 1, fields)


def typedefs(source: Source, node: Node) -> tuple[list[Typedef], list[StructDef]]:
    """Return the typedefs of one `typedef`, and the anonymous struct it names (`typedef struct { ... } Name;`)."""
    type_node = node.child_by_field_name("type")
    if type_node is None:
        return [], []
    found: list[Typedef] = []
    anonymous: list[StructDef] = []
    line = node.start_point[0] + 1
    base = source.text(type_node)
    body = type_node.child_by_field_name("body")
    tag = type_node.child_by_field_name("name")
    if body is not None:
        base = f"{type_node.type.split('_')[0]} {source.text(tag) if tag else ''}".strip()
    base = fold(base)
    for declarator in node.children_by_field_name("declarator"):
        name, fnptr, depth = declarator_name(declarator, source)
        if not name:
            continue
        found.append(Typedef(name, full_type(base, depth), source.path, line, fnptr or is_function_declarator(declarator)))
        if body is not None and tag is None and type_node.type in ("struct_specifier", "union_specifier") and not depth:
            anonymous.append(StructDef(name, source.path, line, struct_fields(source, body)))
    return found, anonymous


def define(source: Source, node: Node, name_node: Node, conditions: tuple[str, ...] = ()) -> Define:
    """Return one `#define` (under the `#if` `conditions`)."""
    params_node = node.child_by_field_name("parameters")
    names = None
    if params_node is not None:
        names = _macro_params(source, params_node)
    value = node.child_by_field_name("value")
    body = fold(source.text(value).replace("\\\n", " ")) if value is not None else ""
    return Define(source.text(name_node), names, body, source.path, node.start_point[0] + 1, conditions)


def _macro_params(source: Source, params: Node) -> tuple[str, ...]:
    """Return a function-like macro's parameter names, a variadic one as `...` (GNU's `args...` as `args...`)."""
    names: list[str] = []
    after_comma = True
    for child in params.children:
        text = source.text(child).strip()
        if text == "...":
            if after_comma or not names:
                names.append("...")
            else:
                names[-1] += "..."
        elif child.type == "identifier" or (child.type == "ERROR" and text.isidentifier()):
            names.append(text)  # the grammar reads GNU's `x...` as an ERROR `x` and a `...`
        after_comma = child.type in (",", "(")
    return tuple(names)


def errors(root: Node) -> tuple[ParseError, ...]:
    """Return the ERROR and MISSING regions of a tree (outermost only)."""
    if not root.has_error:
        return ()
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error:
            found.append(ParseError("ERROR", node.start_point[0] + 1, node.start_point[1] + 1))
        elif node.is_missing:
            found.append(ParseError("MISSING", node.start_point[0] + 1, node.start_point[1] + 1))
        elif node.has_error:
            stack.extend(reversed(node.children))
    found.sort(key=lambda error: (error.line, error.col))
    return tuple(found)
