"""hpchub's metrics: the pure parts (what counts as an active server, a failure's reason)."""

import asyncio
from types import SimpleNamespace

from jupyterhub.spawner import SpawnException
from prometheus_client import REGISTRY

from hpchub.spawners import metrics


def _spawner(kind, target, ready):
    return SimpleNamespace(kind=kind, target_name=target, ready=ready)


def test_active_servers_are_counted_by_kind_and_target_and_only_when_ready():
    spawners = [_spawner("login", "login", True), _spawner("login", "login", True), _spawner("batch", "gpu", True),
                _spawner("batch", "gpu", False), _spawner("", "", True)]
    assert metrics.count_active(spawners) == {("login", "login"): 2, ("batch", "gpu"): 1}


def test_failure_reason_comes_from_the_spawn_error_or_names_the_cancellation():
    assert metrics.failure_reason(SpawnException("no", reason="submit")) == "submit"
    assert metrics.failure_reason(asyncio.CancelledError()) == "cancelled"
    assert metrics.failure_reason(RuntimeError("boom")) == "error"


def test_the_gauge_is_in_the_registry_that_jupyterhub_serves():
    class Live:
        kind, target_name, ready = "batch", "compute", True

    live = Live()
    metrics.ACTIVE_SERVERS.track(live)
    assert REGISTRY.get_sample_value("hpchub_active_servers", {"kind": "batch", "target": "compute"}) == 1
    del live  # tracked weakly: a spawner that is gone is not counted
    assert REGISTRY.get_sample_value("hpchub_active_servers", {"kind": "batch", "target": "compute"}) is None


def test_the_servers_own_start_time_is_taken_off_the_queue_wait():
    from hpchub.spawners.following import server_start_seconds

    assert server_start_seconds({"job_began": 100.0, "started": 103.5}) == 3.5
    assert server_start_seconds({"started": 103.5}) == 0.0  # a launcher from before this field
    assert server_start_seconds({"job_began": 105.0, "started": 103.5}) == 0.0
