"""What code outside the tree does with the function pointers the tree hands it, as data (graph/valueflow).

QEMU hands functions to glib, whose source the tree does not hold, so the
value flow cannot read what glib does with them. `queries/qemu/registrars.toml`
says it:

* `[[layout]]`: the members, in order, of a struct the tree fills but does not
  define (`GSourceFuncs qio_channel_fd_source_funcs = { prepare, check,
  dispatch, finalize };` puts `qio_channel_fd_source_dispatch` in
  `GSourceFuncs.dispatch`);
* `[[later]]`: a call the library makes later through such a member, with
  what a registrar was given (glib's main loop calls
  `source_funcs->dispatch(source, callback, user_data)` with the `callback`
  `g_source_set_callback` stored): each function stored in the member has
  that parameter bound to what the registrar's argument received. It is the
  event loop's call of a registration (a `dispatch` edge, which traces do not
  follow: the registering call's `callback` edge stands for it);
* `[[load]]`: a macro whose value is what its argument points to
  (`qatomic_read(&bql_mutex_lock_func)` reads `bql_mutex_lock_func`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaintrace.graph.valueflow import Location, ValueFlow


@dataclass(frozen=True)
class Library:
    """The library idioms of a registrar table: struct layouts, later calls through members, loading macros."""

    layouts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # struct -> its members in order
    # (struct, member, ((parameter index, registrar, argument index), ...))
    later: tuple[tuple[str, str, tuple[tuple[int, str, int], ...]], ...] = ()
    loads: dict[str, int] = field(default_factory=dict)  # macro -> the argument whose pointee it yields

    def registrars_later(self) -> set[tuple[str, int]]:
        """Return the (registrar, argument index) pairs whose argument some later call passes on."""
        return {(registrar, arg) for _, _, binds in self.later for _, registrar, arg in binds}


def library_of(table: dict) -> Library:
    """Return the Library of a parsed registrar TOML table (its `layout`, `later` and `load` entries)."""
    layouts = {entry["struct"]: tuple(entry["members"]) for entry in table.get("layout", [])}
    later = []
    for entry in table.get("later", []):
        struct, _, member = entry["member"].partition(".")
        binds = tuple((int(bind["param"]), bind["registrar"], int(bind["arg"])) for bind in entry["args"])
        later.append((struct, member, binds))
    loads = {entry["name"]: int(entry["arg"]) for entry in table.get("load", [])}
    return Library(layouts, tuple(later), loads)


def bind_later_calls(flow: ValueFlow, library: Library) -> set[Location]:
    """Bind, for each later call, the parameters of every function its member holds to what the registrar's
    argument received (a copy from the registrar's sink `("x", registrar, index)`); solve; return the parameters
    bound (the hand-offs whose calls are the event loop's)."""
    bound: set[Location] = set()
    for struct, member, binds in library.later:
        for function_id in sorted(flow.points_to.get(flow.field_location(struct, member), ())):
            for parameter_index, registrar, arg in binds:
                parameter = flow.parameter_location(function_id, parameter_index)
                if parameter is not None:
                    flow.add_copy(("x", registrar, arg), parameter, {"how": "parameter flow"})
                    bound.add(parameter)
    flow.solve()
    return bound
