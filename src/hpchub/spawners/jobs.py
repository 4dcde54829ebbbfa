"""The hub's job watchers: one per cluster, shared by every batch spawner in the hub process.

The scheduler's commands run on a login node over SSH as the hub's service account (see
CredentialIssuingAuthenticator.service_account), so that one query sees every user's jobs
even where the scheduler hides other users' jobs (Slurm's PrivateData).
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from ..credentials import SSHCredential
from ..remote import Host, SSHError, SSHPool
from ..schedulers.watcher import JobWatcher
from . import metrics

_watchers: dict[tuple, JobWatcher] = {}


def service_runner(pool: SSHPool, hosts: list[Host], credential: Callable[[], Awaitable[SSHCredential]],
                   timeout: float = 60):
    """run(argv) for a JobWatcher: the first login node that answers, as the service account."""

    async def run(argv: list[str]) -> tuple[int, str, str]:
        failures = []
        began = time.monotonic()
        for host in hosts:
            try:
                result = await pool.run(host, await credential(), argv, timeout=timeout, check=False,
                                        what="the scheduler query")
            except SSHError as exc:
                failures.append(exc.log_detail)
                continue
            metrics.SCHEDULER_QUERY.labels(command=argv[0]).observe(time.monotonic() - began)
            if result.exit_status != 0:
                metrics.SCHEDULER_QUERY_FAILURES.labels(command=argv[0]).inc()
            return result.exit_status, str(result.stdout or ""), str(result.stderr or "")
        metrics.SCHEDULER_QUERY_FAILURES.labels(command=argv[0]).inc()
        raise SSHError("no login node answered the scheduler query", "; ".join(failures))

    return run


def watcher_for(key: tuple, make: Callable[[], JobWatcher]) -> JobWatcher:
    """The hub's watcher for one cluster (key: the scheduler and its login nodes)."""
    if key not in _watchers:
        _watchers[key] = make()
    return _watchers[key]
