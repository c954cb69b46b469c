"""The facts extracted from one C file: plain frozen dataclasses, nothing else.

Every position is 1-based line and column in the original source (the
normaliser preserves byte offsets, so the parser's positions are the file's).
Texts are the source text with runs of white space folded to one space.

Facts are values: hashable, compared by field, never changed once built.
Frozen costs speed (a frozen dataclass's `__init__` sets each field through
`object.__setattr__`, and an index builds millions of facts); the guarantee
that nothing downstream edits a fact is worth it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bump whenever extraction changes what it produces: cached facts of another
# version are never reused.
EXTRACTOR_VERSION = 29  # 9: FieldRead facts; 10: facts stored as checksummed msgpack, not pickle; 11: nested initializer paths; 12: an initializer names its variable; 13: guards and positional initializer members read without nested query patterns; 14: array elements designated by index ([KIND] = { ... }) keep their struct type; 15: initializers and member accesses captured without child patterns (linear in nesting), quoted expressions cut at 200 characters; 16: #includes, file-scope macro uses and macro sites, macro conditions, a file's own declaration macros blanked, short loop macros kept in place, gcc's line for calls passed as arguments; 17: a file nested over 10,000 levels deep is skipped (tree-sitter's queries lose nodes past 65,535), parents read from one walk in a deep tree; 18: macro uses and macro sites in files with UTF-8 text, a use the parser read as the start of the next function, variadic macro parameters (`...`, GNU's `x...`); 19: a call's enclosing plain-name calls (`within`), so one in a macro's arguments is placed at the macro's use, and the hops of a call passed as an argument (`passed`); 20: an initializer member given a local or parameter (`(QEMUBH){ .cb = cb }`), macro uses as initializer elements, array elements designated by index (`[QTYPE_QNUM] = f`); 21: the members of an anonymous union or struct are the outer struct's (X86OpEntry's `union { gen; decode; }`); 22: QAPI schema files (qapi/*.json) read as the header of the macros the build generates from them; 23 (never landed), 24: a file-scope macro use keeps its #if conditions, one indented alone on its line (` type_init(f)`) or in the span the parser gave the next function before its body is a use, an empty macro without parameters (`#define tpm_cleanup()`, the other branch of a function) is no attribute; 23 (24: a cache that held 23 before its last change): a struct's members under #if/#ifdef/#else branches inside its body (TCGCPUOps.do_interrupt), functions returned (`return c ? f : NULL;`), the elements of an array of a function pointer type (`GenFunc tbl[8] = { f, g }`); 25: a #define of a name the file also defines as a function keeps its #if conditions (`#define gen_RDMSR gen_unreachable` in the #else of the function's #ifndef CONFIG_USER_ONLY) (landed as 26); 27: the member after an `#if`/`#ifdef`/`#elif` line inside an initializer list (`.f = fn` that tree-sitter glued to the directive's condition); 28 (recall5's 27 and 28, landed as 29): either arm of a conditional as an initializer's value (`.out_rr = HAS_X ? tgen_x : NULL`), a member read as an initializer's value (`.instance_init = t->instance_init`, usage "member initializer"), an array's element assigned whole (`fn = table[i]`), a macro's use as a struct declaration's whole value (`X86OpEntry pause = X86_OP_ENTRY0(PAUSE)`), a local that may hold a function given another whole (`QIOChannelFunc func = (QIOChannelFunc)callback;`, usage "local copy")


@dataclass(frozen=True, slots=True)
class Loop:
    """An enclosing loop: `for`, `while`, `do`, or a loop-like macro (`QTAILQ_FOREACH`)."""

    kind: str
    condition: str
    line: int


@dataclass(frozen=True, slots=True)
class Guard:
    """An early return that precedes a site in its function: `if (cond) return ...;`."""

    condition: str
    statement: str
    line: int


@dataclass(frozen=True, slots=True)
class Context:
    """Where a site sits: enclosing loops (outermost first), `#if` conditions, early-return guards."""

    loops: tuple[Loop, ...] = ()
    conditions: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()


@dataclass(frozen=True, slots=True)
class Param:
    """A function parameter; `name` is empty for unnamed ones (`void f(int)`)."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class FunctionDef:
    """A function definition with its line span and the comment right above it."""

    name: str
    file: str
    line: int
    end_line: int
    is_static: bool
    is_inline: bool
    return_type: str
    params: tuple[Param, ...]
    comment: str = ""
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Prototype:
    """A function declaration without a body."""

    name: str
    file: str
    line: int
    is_static: bool
    return_type: str
    params: tuple[Param, ...]


@dataclass(frozen=True, slots=True)
class Around:
    """A plain-name call whose arguments hold a site (`CallSite.within`): its callee's name and its place."""

    name: str
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Hop:
    """One hop of a call passed directly as an argument (`CallSite.passed`): the call at `line`/`col` (the site's
    own, or the call of the hop below) is argument `index` of a call of `name` ("" unless a bare name)."""

    name: str
    index: int
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class CallSite:
    """A call in `caller`.

    `callee` is the called identifier, or the callee expression's text for
    indirect calls. `via` says which: "name" (a plain identifier not declared
    locally), "local" / "param" (an identifier that is a local variable or a
    parameter of the caller: a function pointer, never a global function),
    "field" (`a->b(...)`, `a.b(...)`, `(*a->b)(...)`: `field` and `receiver`
    are set), "expr" (anything else), "macro" (a loop macro's use,
    `QTAILQ_FOREACH(...) {`: only what its expansion calls is called).
    The position is gcc's when every argument takes its call's place: a call
    passed directly as an argument is at the outermost call of that chain.
    `passed` lists the hops of that chain, inner first (`Hop`); the graph stops at a hop whose argument gcc converts to the
    parameter's type (`graph.placement`). `within` lists (`Around`) the
    plain-name calls whose arguments hold the site, outermost first,
    beyond that chain (see `extract.calls.site_climb`): the graph places a call
    written inside a function-like macro's arguments at that macro's use, as
    gcc does.
    """

    caller: str
    file: str
    line: int
    col: int
    callee: str
    via: str
    args: tuple[str, ...]
    context: Context
    field: str = ""
    receiver: str = ""
    within: tuple[Around, ...] = ()
    passed: tuple[Hop, ...] = ()


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A mention of an identifier as a value, not as a call: a candidate address-taken function.

    `usage` is "argument" (argument `arg_index` of a call to `call`),
    "initializer" (`.field = name` in an initializer of struct type
    `struct_type`, or positional member `arg_index`; `field` is a member
    path for nested initializers, `job_driver.run`, and `lhs` names the
    variable initialised), "assignment"
    (`lhs = name`, `lhs->field = name`, also a declaration's initializer),
    "return" (`return name;`, either arm of `return c ? a : b;`), "local initializer" (a member given a local,
    `(QEMUBH){ .cb = cb }`), "member initializer" (a member given a member read, `name` its text:
    `.instance_init = t->instance_init`), "local copy" (a local that may hold a function given another whole,
    `func = (QIOChannelFunc)callback`), "macro element" (a macro's use as an initializer's element or a struct
    declaration's value), or "other". `cast` holds the cast type text (`GSourceFunc`) or "&".
    Whether `name` really is a function is decided later, against all
    definitions of the tree. `function` is empty at file scope.
    """

    name: str
    file: str
    line: int
    col: int
    function: str
    usage: str
    call: str = ""
    arg_index: int = -1
    struct_type: str = ""
    field: str = ""
    lhs: str = ""
    cast: str = ""
    context: Context = Context()


@dataclass(frozen=True, slots=True)
class FieldWrite:
    """A write to a struct field: `s->threshold_size = ...`, `p->n += 1`, `x.y++`.

    `base_type` is the struct type of the written field's base when it can be
    inferred from the function's declarations, else "".
    """

    function: str
    file: str
    line: int
    col: int
    lhs: str
    field: str
    base: str
    base_type: str
    rhs: str
    operator: str
    statement: str
    context: Context


@dataclass(frozen=True, slots=True)
class FieldRead:
    """A member access that is not a plain write: `x = s->threshold_size`, `f(s->n)`, `if (s->n)`, `&s->n`.

    `how` says what the access does: "rhs" (right of an assignment),
    "initializer" (a declaration's value), "argument" (of a call), "condition"
    (of an `if`, loop, `switch` or `?:`), "return", "compound" (the left of
    `+=` and the like: read, then written), "update" (`++`/`--`), "base"
    (`s->next->n` reads `s->next`), "call" (`s->ops->f(...)` reads `f`),
    "address" (`&s->n`: a use, not a read), or "other" (any other expression).
    `base_type` is the struct type of the access's base when the function's
    declarations say it, else "". `statement` is the statement holding the
    access (for a condition, the `if (...)`/loop header alone).
    """

    function: str
    file: str
    line: int
    col: int
    expr: str
    field: str
    base: str
    base_type: str
    how: str
    statement: str
    context: Context


@dataclass(frozen=True, slots=True)
class StructField:
    """A member of a struct or union; `is_fnptr` marks function-pointer members."""

    name: str
    type: str
    is_fnptr: bool


@dataclass(frozen=True, slots=True)
class StructDef:
    """A struct or union definition with its members; `name` is the tag (or typedef name when anonymous)."""

    name: str
    file: str
    line: int
    fields: tuple[StructField, ...]


@dataclass(frozen=True, slots=True)
class Typedef:
    """`typedef TYPE name;` with the aliased type's text (`struct SaveStateEntry`)."""

    name: str
    type: str
    file: str
    line: int
    is_fnptr: bool = False


@dataclass(frozen=True, slots=True)
class VarDecl:
    """A variable or parameter declaration; `function` is empty for globals."""

    function: str
    name: str
    type: str
    file: str
    line: int
    is_param: bool
    is_fnptr: bool = False


@dataclass(frozen=True, slots=True)
class Define:
    """`#define name(params) body`; `params` is None for object-like macros; `conditions`: the `#if`s around it."""

    name: str
    params: tuple[str, ...] | None
    body: str
    file: str
    line: int
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Include:
    """`#include "target"` (`system`: `<target>`), with the `#if` conditions around it."""

    target: str
    system: bool
    file: str
    line: int
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MacroUse:
    """`NAME(args)` starting a line outside any function: a macro that may expand to definitions.

    `args` are the folded texts of the top-level arguments; the graph expands
    the use with the macros the file sees (`graph.macro_functions`). `conditions`: the `#if`s around it
    (`#ifdef CONFIG_USER_ONLY` around translate.c's `STUB_HELPER(inb, ...)`).
    """

    name: str
    args: tuple[str, ...]
    file: str
    line: int
    col: int
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParseError:
    """A region the parser could not make sense of: kind "ERROR" or "MISSING"."""

    kind: str
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class FileFacts:
    """Everything extracted from one file."""

    path: str
    functions: tuple[FunctionDef, ...] = ()
    prototypes: tuple[Prototype, ...] = ()
    calls: tuple[CallSite, ...] = ()
    refs: tuple[FunctionRef, ...] = ()
    writes: tuple[FieldWrite, ...] = ()
    reads: tuple[FieldRead, ...] = ()
    structs: tuple[StructDef, ...] = ()
    typedefs: tuple[Typedef, ...] = ()
    variables: tuple[VarDecl, ...] = ()
    defines: tuple[Define, ...] = ()
    errors: tuple[ParseError, ...] = ()
    includes: tuple[Include, ...] = ()
    macro_uses: tuple[MacroUse, ...] = ()
