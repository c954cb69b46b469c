"""Object sensitivity on paths (query/objects.py), through the real pipeline: fixtures/job_driver indexed into a tmp cache.

backup_start makes its job from backup_job_driver (backup_job_create passes &backup_job_driver.job_driver
to job_create) and then runs it: `job->driver->run(job)` in job_co_entry can only be backup_run on that
path, though the graph, resolved by type, also has the edge to stream_run.
"""

from __future__ import annotations


import pytest

from helpers.cli import REPO_ROOT, trace_json

TREE = REPO_ROOT / "fixtures" / "job_driver"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def trace(cache, source: str, target: str, *options: str) -> tuple[int, dict]:
    return trace_json(TREE, cache, source, target, *options)


def test_the_job_made_on_the_path_runs_its_own_driver(cache):
    code, document = trace(cache, "backup_start", "block/backup.c::backup_run")
    assert code == 0
    assert [path["nodes"] for path in document["paths"]] == [["backup_start", "job_co_entry", "block/backup.c::backup_run"]]
    assert document["undecided"] == {"total": 0, "nearest": []}


def test_another_drivers_run_is_not_reached_and_the_call_left_out_is_named(cache):
    # job->driver->run picks its callee by the job's driver: the path made a backup job, so stream_run is out
    code, document = trace(cache, "backup_start", "block/stream.c::stream_run")
    assert code == 1 and document["paths"] == []
    counts = document["targets"][0]["counts"]
    assert (counts["paths_total"], counts["exact"]) == (0, True)
    assert [(door["caller"], door["callee"], door["member"], door["targets"]) for door in document["undecided"]["nearest"]] \
        == [("job_co_entry", "job->driver->run", "JobDriver.run", 1)]


def test_with_undecided_the_object_check_still_drops_the_other_driver(cache):
    code, document = trace(cache, "backup_start", "block/stream.c::stream_run", "--undecided")
    assert code == 1 and document["paths"] == []
    counts = document["targets"][0]["counts"]
    assert (counts["paths_total"], counts["exact"], counts["method"]) == (
        0, True, "dag, after dropping 1 that dispatch on an object made on the path to a function it does not hold")
    assert document["query"]["undecided"] is True and document["undecided"] == {"total": 0, "nearest": []}


def test_without_an_object_made_on_the_path_the_driver_is_undecided(cache):
    # job_co_entry alone makes no job: which driver it runs cannot be decided; --undecided follows both
    code, document = trace(cache, "job_co_entry", "block/stream.c::stream_run")
    assert code == 1 and document["paths"] == [] and document["undecided"]["total"] == 1
    code, document = trace(cache, "job_co_entry", "block/stream.c::stream_run", "--undecided")
    assert code == 0 and [path["nodes"] for path in document["paths"]] == [["job_co_entry", "block/stream.c::stream_run"]]
    code, document = trace(cache, "stream_start", "block/backup.c::backup_run", "--undecided")
    assert code == 1 and document["paths"] == []
