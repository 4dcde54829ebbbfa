"""What the hub keeps for each cluster, shared by every spawner of it (one Cluster per cluster in
the hub process): SSH connections (one per user and login node), the job watcher (one status
query for every job), the scheduler's answers for the spawn form (cached), and how many of
this hub's servers run on each login node. And the hub's tunnel service, which holds every
tunnel outside the hub process.

`CONTEXTS` is the hub process's one registry of them, in place of a module-level dict per
concern. The multi-cluster configuration builds on this: a cluster is found by its key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from ..credentials import SSHCredential
from ..remote import Host, SSHError, SSHPool
from ..remote.detach import spawn_detached
from ..remote.tunnels import TunnelClient
from ..schedulers import SCHEDULERS, Scheduler
from ..schedulers.watcher import JobWatcher
from . import metrics
from .targets import Choices

ServiceCredential = Callable[[], Awaitable[SSHCredential]]


AVAILABILITY_TTL = 15.0  # seconds the form's "free now" figures are reused


class SchedulerUnavailable(Exception):
    """The scheduler could not be asked (no login node answered, or its command failed)."""

    def __init__(self, user_message: str, log_detail: str):
        super().__init__(user_message)
        self.user_message = user_message
        self.log_detail = log_detail


@dataclass(frozen=True)
class ClusterKey:
    scheduler: str
    known_hosts: str
    login_hosts: tuple[Host, ...]
    scheduler_options: tuple = ()  # the adapter's keyword arguments, as sorted (name, value) pairs
    service_account: str = ""  # the account its status queries run as ("": the authenticator's)
    issuer: str = ""  # the issuer of the service account's certificate ("": the main one)


class Cluster:
    def __init__(self, key: ClusterKey, *, connect_timeout: float, service_credential: ServiceCredential,
                 log: logging.Logger):
        self.key = key
        self.hosts = list(key.login_hosts)
        self.adapter: Scheduler = SCHEDULERS[key.scheduler](**dict(key.scheduler_options))
        self.pool = SSHPool(key.known_hosts, connect_timeout=connect_timeout)
        self.service_credential = service_credential
        self.log = log
        self.servers_per_host: Counter = Counter()  # this hub's login-node servers, by node name
        self._watcher: JobWatcher | None = None
        self._cached: dict[tuple, tuple[float, object]] = {}
        self._cache_locks: dict[tuple, asyncio.Lock] = {}
        self.unanswered: dict[str, str] = {}  # login node -> why it did not answer the last time it was asked

    def scheduler_trouble(self) -> str:
        """Why the cluster's last status query failed ("" if it answered, or none was made)."""
        return self._watcher.last_error if self._watcher is not None else ""

    def note_host(self, host: Host, error: str | None) -> None:
        """What the hub last saw of a login node (None: it answered), for the cluster's state."""
        if error is None:
            self.unanswered.pop(host.name, None)
        else:
            self.unanswered[host.name] = error

    def state(self) -> str:
        """The cluster as the spawn page says it: "up", "degraded: ..." (a login node did not
        answer) or "unreachable: ..." (none did), from what the hub saw when it last asked."""
        down = [host.name for host in self.hosts if host.name in self.unanswered]
        if not down:
            return "up"
        if len(down) == len(self.hosts):
            return "unreachable: no login node answered the hub just now"
        return f"degraded: login node {', '.join(down)} did not answer the hub just now"

    def watcher(self, *, interval: float, urgent_interval: float, grace: float) -> JobWatcher:
        """The cluster's one job watcher (made with the settings of the first spawner that asks)."""
        if self._watcher is None:
            self._watcher = JobWatcher(self.adapter, self.run_as_service, interval=interval,
                                       urgent_interval=urgent_interval, grace=grace, log=self.log)
        return self._watcher

    async def run_as_service(self, argv: list[str], timeout: float = 60) -> tuple[int, str, str]:
        """argv on the first login node that answers, as the hub's service account (so that one
        query sees every user's jobs, even with Slurm's PrivateData). In UTC: the scheduler's
        clients print times in their session's zone, which need not be the hub's; every time the
        hub reads is UTC (JobStatus.start/end), whatever the cluster's zone."""
        command = argv
        argv = ["env", "TZ=UTC", *argv]
        failures = []
        began = time.monotonic()
        for host in self.hosts:
            try:
                result = await self.pool.run(host, await self.service_credential(), argv, timeout=timeout, check=False,
                                             what="the scheduler query")
            except SSHError as exc:
                failures.append(exc.log_detail)
                self.note_host(host, exc.log_detail)
                continue
            self.note_host(host, None)
            metrics.SCHEDULER_QUERY.labels(command=command[0]).observe(time.monotonic() - began)
            if result.exit_status != 0:
                metrics.SCHEDULER_QUERY_FAILURES.labels(command=command[0]).inc()
            return result.exit_status, str(result.stdout or ""), str(result.stderr or "")
        metrics.SCHEDULER_QUERY_FAILURES.labels(command=command[0]).inc()
        raise SSHError("no login node answered the scheduler query", "; ".join(failures))

    async def choices(self, user: str, ttl: float) -> Choices:
        """What the scheduler lets this user ask for: partitions, the user's associations,
        reservations (each cached ttl seconds)."""
        adapter = self.adapter
        partitions = await self._ask(("partitions",), adapter.partitions_argv(), adapter.parse_partitions, ttl)
        associations = await self._ask(("associations", user), adapter.associations_argv(user),
                                       adapter.parse_associations, ttl)
        reservations = await self._ask(("reservations",), adapter.reservations_argv(), adapter.parse_reservations, ttl)
        return Choices(partitions, associations, tuple(reservations), await self.availability(ttl))

    async def availability(self, ttl: float) -> dict:
        """What each partition has free now (cached for at most AVAILABILITY_TTL: it changes
        with every job). {} when the scheduler does not say or did not answer: the form is
        offered without it."""
        argv = self.adapter.availability_argv()
        if argv is None:
            return {}
        try:
            return await self._ask(("availability",), argv, self.adapter.parse_availability,
                                   min(ttl, AVAILABILITY_TTL))
        except SchedulerUnavailable as exc:
            self.log.warning("What is free on the cluster is not shown: %s", exc.log_detail)
            return {}

    async def reservation(self, name: str, ttl: float):
        """A reservation by name, from the same cached query as the form's (None: not known)."""
        adapter = self.adapter
        reservations = await self._ask(("reservations",), adapter.reservations_argv(), adapter.parse_reservations, ttl)
        return next((r for r in reservations if r.name == name), None)

    async def ask_text(self, argv: list[str], ttl: float) -> str:
        """Any query's output as the service account, cached ttl seconds (pre-spawn checks)."""
        return await self._ask(("text", *argv), argv, str, ttl)

    async def _ask(self, key: tuple, argv: list[str], parse, ttl: float):
        async with self._cache_locks.setdefault(key, asyncio.Lock()):
            hit = self._cached.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
            try:
                exit_status, stdout, stderr = await self.run_as_service(argv)
            except SSHError as exc:
                raise SchedulerUnavailable("the scheduler cannot be reached just now; try again shortly",
                                           exc.log_detail) from None
            if exit_status != 0:
                raise SchedulerUnavailable(f"the scheduler did not answer ({self.adapter.error_message(stderr)})",
                                           f"{' '.join(argv)} exited {exit_status}: {stderr.strip()[-500:]}")
            value = parse(stdout)
            self._cached[key] = (time.monotonic(), value)
            return value


class TunnelService:
    """The hub's tunnel service (`hpchub tunnels serve`): it holds every tunnel to and from
    users' servers outside the hub process, so that a hub restart does not cut open notebooks.
    Started by the hub when nothing answers on its socket, in a session of its own."""

    def __init__(self, socket_path: str, known_hosts: str, log: logging.Logger, start: bool = True):
        self.socket_path = os.path.abspath(socket_path)
        self.known_hosts = known_hosts
        self.log = log
        self.start = start  # False: a supervisor runs it (a unit, a container); it is waited for
        self.client = TunnelClient(self.socket_path)
        self._lock = asyncio.Lock()

    async def call(self, op: str, **fields) -> dict:
        return await self.client.call(op, **fields)

    async def ensure(self, timeout: float = 10) -> bool:
        """Running (started now if it was not); False if it did not come up within timeout."""
        async with self._lock:
            if await self.client.alive():
                return True
            if not self.start:
                return await self._answers_within(timeout)
            command = [str(Path(sys.executable).with_name("hpchub")), "tunnels", "serve",
                       "--socket", self.socket_path, "--known-hosts", self.known_hosts]
            self.log.info("Starting the tunnel service: %s", " ".join(command))
            # Not the hub's environment: it holds the hub's secrets (crypt key, proxy token).
            env = {k: v for k, v in os.environ.items()
                   if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") or k.startswith("HPCHUB_")}
            spawn_detached(command, self.socket_path + ".log", env)
            return await self._answers_within(timeout)

    async def _answers_within(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.client.alive():
                return True
            await asyncio.sleep(0.1)
        return False


class Contexts:
    """The hub process's clusters and tunnel services, each made once when first needed."""

    def __init__(self):
        self.clusters: dict[ClusterKey, Cluster] = {}
        self.tunnel_services: dict[str, TunnelService] = {}

    def cluster(self, key: ClusterKey, **settings) -> Cluster:
        if key not in self.clusters:
            self.clusters[key] = Cluster(key, **settings)
        return self.clusters[key]

    def tunnel_service(self, socket_path: str, known_hosts: str, log: logging.Logger, start: bool = True
                       ) -> TunnelService:
        path = os.path.abspath(socket_path)
        if path not in self.tunnel_services:
            self.tunnel_services[path] = TunnelService(path, known_hosts, log, start)
        return self.tunnel_services[path]


CONTEXTS = Contexts()
