"""Call sites of one file -> `CallSite` facts, and `FunctionRef`s for the function names passed as arguments.

This is the hottest loop of extraction (one pass per call site, hundreds of
thousands in QEMU): names are bound to locals and each node attribute is
read once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tree_sitter import Node

from chaintrace.extract.facts import Around, CallSite, Context, FunctionRef, Hop, VarDecl
from chaintrace.extract.scope import FileScope
from chaintrace.extract.syntax import Source, fold

# The calls around a site (`CallSite.within`, outermost first) and the hops of its chain of arguments
# (`CallSite.passed`, innermost first) a fact keeps: past these, a site keeps the place the climb gave it. A bound
# keeps a file nesting calls thousands deep linear (each site would hold every call around it).
MOST_AROUND = 8

# Expression nodes that may name a function as a value: `fn`, `(GSourceFunc) fn`, `&fn`.
VALUE_WRAPPERS = ("cast_expression", "pointer_expression")


def unwrap_callee(node: Node) -> Node:
    """Return the callee expression inside `(*fp)` / `(fp)` / `*fp`."""
    while True:
        kind = node.type
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            node = node.named_children[0]
        elif kind == "pointer_expression" and node.children[0].type == "*":
            node = node.child_by_field_name("argument")
        else:
            return node


def value_name(node: Node) -> tuple[Node, Node | None] | None:
    """Return (identifier, cast or `&` wrapper) when an expression is `fn`, `(T) fn` or `&fn`/`*fn`, else None."""
    kind = node.type
    if kind == "identifier":
        return node, None
    if kind == "cast_expression":
        value = node.child_by_field_name("value")
        return (value, node) if value is not None and value.type == "identifier" else None
    if kind == "pointer_expression":
        value = node.child_by_field_name("argument")
        return (value, node) if value is not None and value.type == "identifier" else None
    return None


def cast_text(source: Source, wrapper: Node | None) -> str:
    """Return the cast type text of a value's wrapper (`GSourceFunc`), "&" for `&fn`, "" for a bare name."""
    if wrapper is None:
        return ""
    if wrapper.type == "cast_expression":
        return fold(source.text(wrapper.child_by_field_name("type")))
    return "&"


def calls(file: FileScope, matches: list[dict]) -> tuple[list[CallSite], list[FunctionRef]]:
    """Return the call sites, and the references of their identifier arguments."""
    text = file.source.text
    path = file.path
    enclosing = file.enclosing
    context_at = file.contexts.at
    all_locals = file.locals
    no_locals: dict[str, VarDecl] = {}
    found = []
    refs: list[FunctionRef] = []
    add_call = found.append
    up = file.source.parent
    outermost: dict[int, tuple] = {}  # call id -> its site_climb: n nested calls climb n levels once, not n times
    indexes: dict[int, dict[int, int]] = {}  # argument list id -> its arguments' indexes
    spans = []  # per call, the byte span of its site_node
    named = []  # (start, -end, node, name) of each call of a bare name (`(f)(x)` is none): a possible macro use
    for captures in matches:
        node = captures["reference.call"][0]
        start_byte = node.start_byte
        end_byte = node.end_byte
        function, function_start = enclosing(start_byte, end_byte)
        function_locals = all_locals.get(function, no_locals) if function else no_locals
        name_node = captures["name"][0]
        callee, via, field, receiver = _callee(text, unwrap_callee(name_node), function_locals)
        if name_node.type == "identifier":
            named.append((start_byte, -end_byte, node, callee))
        context = context_at(start_byte, end_byte, function_start)
        site = _Site(file.source, function, function_locals, callee, context, refs)
        args = site.arguments(captures["arguments"][0].named_children)
        top, hops = site_climb(node, text, up, outermost, indexes)
        spans.append((start_byte, end_byte) if top is node else (top.start_byte, top.end_byte))
        point = top.start_point
        add_call(CallSite(function, path, point[0] + 1, point[1] + 1, callee, via, args, context, field, receiver,
                          passed=hops))
    if len(named) > 1:
        found = _with_enclosing(found, spans, named)
    return found, refs


def _with_enclosing(found: list[CallSite], spans: list[tuple[int, int]], named: list[tuple]) -> list[CallSite]:
    """Return `found` with `within` set: the plain-name calls whose arguments hold each one's site (its
    `site_climb`), outermost first.

    One sweep over the calls in source order with a stack of the open ones (calls nest, never overlap),
    rather than a climb to the function's top from each call; a position is read only for a call some site
    is inside.
    """
    named.sort(key=lambda call: call[:2])
    order = sorted(range(len(found)), key=lambda i: (spans[i][0], -spans[i][1]))
    stack: list[tuple] = []
    pending = iter(named)
    opening = next(pending, None)
    for i in order:
        start, end = spans[i]
        # open every named call that starts before this site (or at it and holds it), closing the ended ones
        while opening is not None and (opening[0] < start or (opening[0] == start and -opening[1] > end)):
            while stack and -stack[-1][1] <= opening[0]:
                stack.pop()
            stack.append(opening)
            opening = next(pending, None)
        while stack and -stack[-1][1] <= start:
            stack.pop()
        if not stack or (len(stack) == 1 and stack[0][0] == start and -stack[0][1] == end):
            continue
        within = tuple(_use(call) for call in stack[:MOST_AROUND + 1] if (call[0] < start or -call[1] > end))
        if within:
            found[i] = replace(found[i], within=within)
    return found


def _use(call: tuple) -> Around:
    """Return the `Around` of a named call of `_with_enclosing`."""
    point = call[2].start_point
    return Around(call[3], point[0] + 1, point[1] + 1)


def site_climb(node: Node, text: Callable[[Node], str], up: Callable[[Node], Node | None] | None = None,
               known: dict[int, tuple[Node, tuple]] | None = None,
               indexes: dict[int, dict[int, int]] | None = None) -> tuple[Node, tuple[Hop, ...]]:
    """Return (the call whose place gcc may give a call, the hops that climb there): the call itself and no hops,
    or, for a call passed as an argument to another call, the outermost call of that chain (`outer(a,\n
    inner(b))` calls inner at outer's line and column) and its `Hop`s, inner first.

    gcc gives an argument the location of the call it is an argument of; a call written directly as the
    argument (in parentheses or not) takes it, unless the argument is converted to the parameter's type, which
    makes the conversion the argument (the graph decides that from the types: `graph.placement`); a call inside
    a larger argument expression (`1 + inner(b)`) keeps its own. `up` returns a node's parent; `known`
    (call id -> answer) keeps the answer of every call the climb passed, `indexes` (argument list id -> argument
    id -> index) the arguments' indexes of every argument list it read, each read once.
    """
    up = up or _tree_parent
    known = {} if known is None else known
    indexes = {} if indexes is None else indexes
    chain = []  # (call, the argument holding it, the argument list, the call it is an argument of)
    current = node
    while True:
        found = known.get(current.id)
        if found is not None:
            break
        child = current
        parent = up(current)
        while parent is not None and parent.type == "parenthesized_expression":
            child = parent
            parent = up(parent)
        outer = up(parent) if parent is not None and parent.type == "argument_list" else None
        if outer is None or outer.type != "call_expression":
            found = known[current.id] = (current, ())
            break
        chain.append((current, child, parent, outer))
        current = outer
    top, hops = found
    for current, child, arguments, outer in reversed(chain):
        hops = ((_hop(current, child, arguments, outer, text, indexes),) + hops)[:MOST_AROUND]
        known[current.id] = (top, hops)
    return top, hops


def _hop(call: Node, argument: Node, arguments: Node, outer: Node, text: Callable[[Node], str],
         indexes: dict[int, dict[int, int]]) -> Hop:
    """Return one `Hop` of `site_climb`: `call` is argument `argument` (in `arguments`) of `outer`."""
    function = outer.child_by_field_name("function")
    name = text(function) if function is not None and function.type == "identifier" else ""
    index_of = indexes.get(arguments.id)
    if index_of is None:  # a call with thousands of arguments that are calls: its list read once, not per argument
        index_of = indexes[arguments.id] = {}
        for child in arguments.named_children:
            if child.type != "comment":
                index_of[child.id] = len(index_of)
    point = call.start_point
    return Hop(name, index_of.get(argument.id, 0), point[0] + 1, point[1] + 1)


def _tree_parent(node: Node) -> Node | None:
    return node.parent


def _callee(text, callee_node: Node, function_locals: dict[str, VarDecl]) -> tuple[str, str, str, str]:
    """Return (callee, via, field, receiver) of a call's unwrapped callee expression (see `CallSite`)."""
    kind = callee_node.type
    if kind == "identifier":
        callee = text(callee_node)
        declaration = function_locals.get(callee)
        via = ("param" if declaration.is_param else "local") if declaration else "name"
        return callee, via, "", ""
    callee = fold(text(callee_node))
    if kind == "field_expression":
        field = text(callee_node.child_by_field_name("field"))
        receiver = fold(text(callee_node.child_by_field_name("argument")))
        return callee, "field", field, receiver
    return callee, "expr", "", ""


class _Site:
    """One call site's arguments being read: each name that may be a function becomes a `FunctionRef`."""

    __slots__ = ("source", "function", "function_locals", "callee", "context", "refs")

    def __init__(self, source: Source, function: str, function_locals: dict[str, VarDecl], callee: str,
                 context: Context, refs: list[FunctionRef]) -> None:
        self.source = source
        self.function = function
        self.function_locals = function_locals  # a local or parameter is never a function
        self.callee = callee
        self.context = context
        self.refs = refs

    def arguments(self, nodes: list[Node]) -> tuple[str, ...]:
        """Return the folded argument texts, recording the references among them."""
        text = self.source.text
        args: list[str] = []
        for arg in nodes:
            arg_kind = arg.type
            if arg_kind == "identifier":
                # a bare identifier argument sits where its call does: same context
                self.reference(arg, None, len(args))
                args.append(text(arg))
                continue
            if arg_kind == "comment":
                continue
            if arg_kind == "conditional_expression":  # `f(flag ? a : &b)`: either arm may be the function
                for arm in (arg.child_by_field_name("consequence"), arg.child_by_field_name("alternative")):
                    found = value_name(arm) if arm is not None else None
                    if found is not None:
                        self.reference(found[0], found[1], len(args))
            elif arg_kind in VALUE_WRAPPERS:
                found = value_name(arg)
                if found is not None:
                    self.reference(found[0], found[1], len(args))
            args.append(fold(text(arg)))
        return tuple(args)

    def reference(self, name_node: Node, wrapper: Node | None, index: int) -> None:
        """Record `name_node` as argument `index` of the call, unless it names a local."""
        name = self.source.text(name_node)
        if name in self.function_locals:
            return
        point = name_node.start_point
        self.refs.append(FunctionRef(
            name, self.source.path, point[0] + 1, point[1] + 1, self.function, "argument", self.callee, index,
            cast=cast_text(self.source, wrapper), context=self.context,
        ))
