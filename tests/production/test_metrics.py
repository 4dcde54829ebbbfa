"""hpchub's metrics on the hub's real /hub/metrics, after real spawns of each kind and one
whose job an admin cancels while it waits in the queue."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ..integration.test_credentials import login_ok
import pytest

from ..integration.test_slurm_spawner import block_debug_partition, request_spawn
from ..site_handle import check, clean_hub, spawn, stop


@pytest.fixture
def hub(loopback_site):
    yield from clean_hub(loopback_site)


def scrape(hub) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of every hpchub sample."""
    response = hub.admin("GET", "/metrics")
    assert response.status_code == 200, response.text[:300]
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) if family.name.startswith("hpchub_")
            for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_spawns_failures_queue_wait_active_servers_and_scheduler_latency_are_measured(loopback_site, hub):
    login_ok(hub, "alice")
    before = scrape(hub)
    # A job cancelled by an admin while it waits in the queue (bob holds the debug partition).
    blocker = block_debug_partition(loopback_site)
    waiting = request_spawn(hub, "alice", "q", {"target": "custom", "partition": "debug", "walltime": "00:10:00"})
    job_id = waiting.wait_for("Submitted job")["job_id"]
    check(loopback_site.in_node("head", ["scancel", job_id]))
    assert waiting.final()["failed"]
    check(loopback_site.in_node("head", ["scancel", blocker]))
    spawn(hub, "alice", "l", options={"target": "login"})
    spawn(hub, "alice", "j", options={"target": "compute"})
    after = scrape(hub)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "hpchub_active_servers", kind="login", target="login") == 1
    assert value(after, "hpchub_active_servers", kind="batch", target="compute") == 1
    assert grew("hpchub_spawn_duration_seconds_count", kind="login", target="login") == 1
    assert grew("hpchub_spawn_duration_seconds_count", kind="batch", target="compute") == 1
    assert 0 < grew("hpchub_spawn_duration_seconds_sum", kind="login", target="login") < 60
    assert grew("hpchub_queue_wait_seconds_count", target="compute") == 1
    assert grew("hpchub_spawn_failures_total", kind="batch", reason="job-ended") == 1
    assert grew("hpchub_scheduler_query_seconds_count", command="squeue") >= 1

    stop(hub, "alice", "l")
    stop(hub, "alice", "j")
    stopped = scrape(hub)
    assert value(stopped, "hpchub_active_servers", kind="login", target="login") == 0
    assert value(stopped, "hpchub_active_servers", kind="batch", target="compute") == 0
