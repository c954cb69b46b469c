"""The edge kinds of a call graph, in the order edges are listed, drawn and stored.

`direct` (a plain call), `thread` (`qemu_thread_create`), `callback` (QIO,
bottom halves, timers, coroutines, GSources), `ops` (a call through a
registered ops table), `fnptr` (any other function pointer). A kind's rank
is also its code in `Adjacency`'s flags, so a new kind goes at the end (and
bumps `adjacency.FORMAT`). Imports nothing: the warm trace and the drawing
code both read it.
"""

from __future__ import annotations

EDGE_KINDS = ("direct", "thread", "callback", "ops", "fnptr", "dispatch")
# What a trace follows unless told otherwise: every kind but `dispatch`, the call an event loop or a
# thread trampoline makes through a hand-off member (`bh->cb(...)`), for which the `thread` or
# `callback` edge from the registering function stands.
TRACE_KINDS = EDGE_KINDS[:-1]


def kind_order(kind: str) -> int:
    """Return a kind's rank in EDGE_KINDS (unknown kinds last): the order edges are listed in."""
    return EDGE_KINDS.index(kind) if kind in EDGE_KINDS else len(EDGE_KINDS)



def undecided(kind: str, data: dict) -> bool:
    """Return True for an `ops` edge every site of which lets the receiver's run-time value pick among several
    targets (site `choice` "receiver", see `graph.indirect`): a path takes it only where the path decides it.
    A loop over a collection the path filled (`built`) is not: the object check narrows it where it can."""
    sites = data.get("sites") or ()
    return kind == "ops" and bool(sites) and all(site.get("choice") == "receiver" for site in sites)


# Bump whenever resolution changes which edges a graph has: stored graphs of another version are
# never read (the facts stay; only the graph is resolved again).
RESOLVER_VERSION = 32  # 9: macros scoped and expanded (graph/scope, graph/macro_functions); 10, 11 (never landed), 12: a template calls its includers' statics, macro-defined functions pass functions by name, a macro's arguments flow to the calls it passes them to, a function pointer declared with a member as its value, the initializers a macro writes (OBJECT_DEFINE_TYPE's TypeInfo), a #define after a function (its #else) does not rename it; 13: graph blobs and sums checksummed with xxh3-128; 14: the build's alternatives (queries/qemu/build.toml), a header's static inline beside the external definition; 15: a local declared again in another block has its own block's type at a call through it; 16: calls through pointers inside a macro's expansion (`_l->begin(...)`, a local the expansion declares) are indirect sites, not direct calls to the member's or local's name; 17: a macro a file or its headers define hides a function it does not see (cpp expands it first); a template included several times is resolved once per inclusion, under the macros defined before it (graph/templates); 18: the default build's configuration values (build.toml [config]) decide #if branches of macros, includes and calls; a template's #if decided per inclusion for its functions and calls; a template a template includes calls the statics of its includer's includer; 19: a call inside a function-like macro's arguments at the macro's use (graph/placement), a template instance's macro calls through pointers kept; 20: a call passed as an argument gcc converts keeps its own line (graph/placement, graph/type_identity); 21: a member initialized from a local or parameter holds what it holds, a macro used as an initializer element writes the members its expansion does, an array of function pointers holds its elements (a call through `tbl[i]`), a call of a name defined under an #if also binds to the other branch's definition (external function or macro); 22: every file sees the macros generated from the QAPI schemas (`RunState_str`); 23: a function pointer local assigned a member whole (`cb = ts->cb;`) holds what the member holds; a `T *` local of a function typedef T is a function pointer; 24, 25 (never landed), 26: a .c file's static under an #if binds beside a header's function of its name, a header read under any header's macros never takes a C keyword's, a header only generated files include expands the tree's one macro of a name, a definition under an #if the build's configuration rules out is dropped from a call's alternatives (CONFIG_ATOMIC64, CONFIG_PLUGIN in build.toml), a header's own macro over its includers' macros is read under theirs; 24: what a function returning a function pointer returns (`return c ? f : NULL;`, `return k->m;`) flows to its calls' values, an array's element copied whole (`s->f = tbl[i]`) holds what the array holds, a struct written out in place (`struct { ... } valid;`, `static struct { ... } *s;`) names its members' types, a QOM checker a macro defines is typed by its name; 25: the members a macro's compound literal is given (`(QemuLockable){ .lock = f }` in QEMU_MAKE_LOCKABLE's _Generic); 26: (CONFIG_USER_ONLY undefined in build.toml, left out at landing: a call binds to both configurations' helpers); 27: an array of a struct written out in its declaration holds its elements' functions in that struct's members (`ide_cmd_table[val].handler`); 28: a function declared `static inline T f(...)` returns a function pointer when T is one; 29: the graph's facts keep the member reads a `return` returns whole (store/codec), so `return klass->build_dev_aml;` flows (landed as 30); 31: what glib does with pointers, as data (graph/library: GSourceFuncs' layout, its dispatch called with g_source_set_callback's callback, loading macros such as qatomic_read), and the copies of extractor 29 (a member given a member read, a variable an array's element, a local another local); 32: an object-like macro named as a value is the call its expansion makes (`NO_DEST`), a table entry's name an undecided #if's #define renames is also the function (gen_RDMSR), a class_init a macro defines stores into its local's members (`mc->init = ...`), a macro's typedefs (`typedef struct ArchCPU X86CPU;`) type their names
