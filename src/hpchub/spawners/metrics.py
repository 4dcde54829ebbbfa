"""hpchub's Prometheus metrics, served with JupyterHub's own on the hub's `/hub/metrics`.

JupyterHub already counts spawns and their durations overall; these say what an HPC site
needs to know on top: how long each kind of spawn takes and where, how long jobs wait in the
queue, why spawns fail, how many servers run where, and how fast the scheduler answers.
Everything is registered in prometheus_client's default registry, which JupyterHub serves.
"""

from __future__ import annotations

import asyncio
import weakref

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

# Buckets in seconds: a login-node spawn takes seconds, a queued one minutes to hours.
_SPAWN_BUCKETS = (1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, float("inf"))
_QUERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, float("inf"))

SPAWN_DURATION = Histogram(
    "hpchub_spawn_duration_seconds",
    "Seconds from the start of a spawn until the server answered, by kind (login, batch) and target",
    ["kind", "target"], buckets=_SPAWN_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "hpchub_queue_wait_seconds",
    "Seconds a server's batch job waited in the queue before it started running, by target",
    ["target"], buckets=_SPAWN_BUCKETS,
)
SPAWN_FAILURES = Counter(
    "hpchub_spawn_failures",
    "Spawns that failed, by kind and reason (the reason of hpchub's error: ssh, credential, submit, "
    "job-ended, queue, timeout, options, launcher, exited, tunnel, config; 'cancelled' when stopped "
    "while pending; 'error' for anything unexpected)",
    ["kind", "reason"],
)
SCHEDULER_QUERY = Histogram(
    "hpchub_scheduler_query_seconds",
    "Seconds a scheduler command run by the hub took (over SSH on a login node), by command",
    ["command"], buckets=_QUERY_BUCKETS,
)
SCHEDULER_QUERY_FAILURES = Counter(
    "hpchub_scheduler_query_failures",
    "Scheduler commands run by the hub that failed (no login node answered, or a non-zero exit), by command",
    ["command"],
)


class ActiveServers:
    """hpchub_active_servers{kind, target}: counted from the live spawners when scraped, so
    that servers taken up again after a hub restart count too (an increment at each start
    would miss them)."""

    def __init__(self):
        self.spawners: weakref.WeakSet = weakref.WeakSet()

    def track(self, spawner) -> None:
        self.spawners.add(spawner)

    def collect(self):
        family = GaugeMetricFamily("hpchub_active_servers", "Servers running now, by kind and target",
                                   labels=["kind", "target"])
        for (kind, target), count in sorted(count_active(list(self.spawners)).items()):
            family.add_metric([kind, target], count)
        yield family


def count_active(spawners) -> dict[tuple[str, str], int]:
    """{(kind, target): number of ready servers} (pure)."""
    counts: dict[tuple[str, str], int] = {}
    for spawner in spawners:
        if spawner.kind and spawner.ready:
            key = (spawner.kind, spawner.target_name or "")
            counts[key] = counts.get(key, 0) + 1
    return counts


def failure_reason(exc: BaseException) -> str:
    """The reason label of a failed spawn (pure)."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) and reason else "error"


ACTIVE_SERVERS = ActiveServers()
REGISTRY.register(ACTIVE_SERVERS)
