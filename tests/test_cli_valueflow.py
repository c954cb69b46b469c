"""Function-pointer value flow through the real pipeline: a fixture indexed into a tmp cache, its graph resolved
from the facts as the cache hands them to the resolver (`decode_facts(graph=True)` leaves out what the graph never
reads), asked with `chaintrace callees`. tests/test_graph.py builds the same fixtures' graphs from their full facts."""

from __future__ import annotations

import pytest

from helpers.cli import REPO_ROOT, run_captured

FIXTURES = REPO_ROOT / "fixtures"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def callees(cache, fixture: str, function: str) -> set[str]:
    run = run_captured(["callees", FIXTURES / fixture, function, "--cache", cache])
    assert run.code == 0 and run.err == "", run.err
    return {line.split()[1] for line in run.out.splitlines() if line.strip()}


def test_a_member_returned_whole_reaches_the_local_its_call_initializes(cache):
    # `return klass->build_aml;` is a member read the resolver's facts must keep
    assert callees(cache, "returned_fnptr", "build_all") == {
        "hw/props.c::rtc_build_aml", "qom/prop.c::count_props", "qom/prop.c::get_aml_func"}


def test_a_function_returned_from_a_conditional_reaches_the_member_its_call_is_stored_in(cache):
    assert callees(cache, "returned_fnptr", "prop_get") == {"hw/props.c::field_get"}


def test_a_macros_compound_literal_gives_its_members(cache):
    assert callees(cache, "lockable_literal", "include/lockable.h::lockable_lock") == {
        "include/lockable.h::lockable_mutex_lock", "include/lockable.h::lockable_spin_lock"}
