"""One status query per cluster per interval, for every job of every user.

Each spawner registers its job here instead of polling on its own. A single loop asks the
scheduler about all registered jobs at once (for Slurm: `squeue --jobs=1,2,3 --states=all`,
run with the hub's service account so that sites with PrivateData see every job), with
jitter so that restarted hubs do not poll in step, and backoff when the scheduler is slow
or failing. A job is declared gone only when it has been missing from the queue for a grace
period (no grace where the status query never lists ended jobs: Grid Engine's) and accounting
agrees - for a job that ran, only once accounting has it or the grace is over; a failed query
is never taken as "gone".

While a spawn is in progress its job may be marked urgent: the loop then runs at the short
interval, so that a job that dies in the queue ends its spawn within seconds.

The scheduler commands run through `run(argv) -> (exit_status, stdout, stderr)`, which the
caller provides (over SSH for the hub); nothing here knows about SSH or JupyterHub.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from .base import JobState, JobStatus, Scheduler

Runner = Callable[[list[str]], Awaitable[tuple[int, str, str]]]


@dataclass
class WatchedJob:
    job_id: str
    status: JobStatus | None = None  # the latest known status; None before the first answer
    final: JobStatus | None = None  # set once the job is known to have ended (or vanished)
    missing_since: float | None = None
    urgent: bool = False


class JobWatcher:
    def __init__(self, adapter: Scheduler, run: Runner, *, interval: float = 30, urgent_interval: float = 2,
                 grace: float = 30, jitter: float = 0.2, slow_after: float = 10, max_interval: float = 300,
                 clock: Callable[[], float] = time.monotonic, log: logging.Logger | None = None):
        self.adapter = adapter
        self.log = log or logging.getLogger("hpchub.watcher")  # the hub passes its own log
        self.run = run
        self.interval = interval
        self.urgent_interval = urgent_interval
        self.grace = grace
        self.jitter = jitter
        self.slow_after = slow_after
        self.max_interval = max_interval
        self.clock = clock
        self.jobs: dict[str, WatchedJob] = {}
        self.backoff = 1.0  # multiplies the interval while the scheduler is slow or failing
        self.queries = 0
        self.last_error: str = ""
        self._polled = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ----- what spawners use ---------------------------------------------------------
    def watch(self, job_id: str, urgent: bool = False) -> WatchedJob:
        new = job_id not in self.jobs
        job = self.jobs.setdefault(job_id, WatchedJob(job_id))
        job.urgent = job.urgent or urgent
        if new or urgent:
            self._wake.set()  # poll soon: a new job (or a spawn) wants news
        self.start()
        return job

    def forget(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    def set_urgent(self, job_id: str, urgent: bool) -> None:
        if job_id in self.jobs:
            self.jobs[job_id].urgent = urgent
            if urgent:
                self._wake.set()

    async def next_poll(self, timeout: float) -> None:
        """Return after the next completed poll, or after timeout seconds."""
        event = self._polled
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except asyncio.TimeoutError:
            pass

    async def wait_until(self, job_id: str, done: Callable[[WatchedJob], bool], timeout: float) -> bool:
        """Watch one job closely (at the urgent interval) until done(job) holds; False if
        timeout seconds pass first."""
        job = self.watch(job_id, urgent=True)
        deadline = self.clock() + timeout
        try:
            while not done(job):
                left = deadline - self.clock()
                if left <= 0:
                    return False
                await self.next_poll(timeout=min(self.current_interval() + 5, left))
            return True
        finally:
            self.set_urgent(job_id, False)

    # ----- the loop ------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def current_interval(self) -> float:
        base = self.urgent_interval if any(j.urgent for j in self.jobs.values()) else self.interval
        return min(base * self.backoff, self.max_interval)

    async def _loop(self) -> None:
        # A first poll after a random part of the interval: hubs restarted together spread out.
        await self._sleep(self.current_interval() * random.uniform(0, 1))
        while True:
            if self.jobs:
                try:
                    await self.poll_once()
                except asyncio.CancelledError:
                    raise
                except Exception:  # the loop must survive anything; the next poll retries
                    self.log.exception("job status poll failed")
            interval = self.current_interval()
            await self._sleep(interval * random.uniform(1 - self.jitter, 1 + self.jitter))

    async def _sleep(self, seconds: float) -> None:
        # A wake-up that came during the last poll ends this sleep at once, on purpose.
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def poll_once(self) -> None:
        """One query for all watched jobs; accounting only for jobs that ended or vanished."""
        job_ids = list(self.jobs)  # in the order they were registered: ids are opaque ("123.server")
        if not job_ids:
            return
        started = self.clock()
        seen = await self._query(self.adapter.status_argv(job_ids), self.adapter.parse_status,
                                 missing_ok=True)
        elapsed = self.clock() - started
        if seen is None:
            self.backoff = min(self.backoff * 2, self.max_interval / max(self.interval, 1))
            self._notify()
            return
        self.backoff = min(self.backoff * 2, 16.0) if elapsed > self.slow_after else 1.0
        now = self.clock()
        to_account = []
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is None or job.final is not None:
                continue
            status = seen.get(job_id)
            if status is not None:
                job.status, job.missing_since = status, None
                if status.state.finished:
                    to_account.append(job_id)
                continue
            if job.missing_since is None:
                job.missing_since = now
            if now - job.missing_since >= (self.grace if self.adapter.ended_jobs_listed else 0):
                to_account.append(job_id)
        await self._explain([j for j in self.jobs.values() if j.final is None and j.status is not None
                             and not j.status.reason and j.job_id in seen
                             and ((j.urgent and j.status.state is JobState.PENDING)
                                  or j.status.state is JobState.ERROR)])
        if to_account:
            await self._settle(to_account)
        self._notify()

    async def _explain(self, jobs: list[WatchedJob]) -> None:
        """Why the jobs a spawn waits on wait, or why a listed job failed, where the status query
        does not say (Grid Engine): one more query, for those jobs only, only while a spawn waits
        on them (or one failed in the queue)."""
        argv = self.adapter.reasons_argv([job.job_id for job in jobs]) if jobs else None
        if argv is None:
            return
        reasons = await self._query(argv, self.adapter.parse_reasons)
        for job in jobs:
            if reasons and reasons.get(job.job_id) and job.status is not None:
                job.status = dataclasses.replace(job.status, reason=reasons[job.job_id])

    async def _settle(self, job_ids: list[str]) -> None:
        """Ask accounting about jobs the queue says ended or no longer lists."""
        accounted = await self._query(self.adapter.accounting_argv(job_ids), self.adapter.parse_accounting,
                                      missing_ok=True)
        if accounted is None:
            return  # unsure: ask again at the next poll
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is None:
                continue
            record = accounted.get(job_id)
            if record is not None and record.state.finished:
                job.final = record
            elif record is not None and record.state in (JobState.PENDING, JobState.RUNNING):
                # The queue did not list it, accounting says it lives: they disagree, so wait.
                job.missing_since = None
            elif job.status is not None and job.status.state.finished:
                job.final = job.status  # the queue saw it end; accounting has not caught up
            elif job.missing_since is not None:
                if (job.status is not None and job.status.state in (JobState.RUNNING, JobState.COMPLETING)
                        and self.clock() - job.missing_since < self.grace):
                    continue  # it ran, so accounting will have it (Grid Engine writes it a moment later)
                # Neither the queue nor accounting knows it any more.
                job.final = JobStatus(job_id=job_id, state=JobState.UNKNOWN, native_state="GONE",
                                      reason="the job is no longer known to the scheduler")

    async def _query(self, argv: list[str], parse, missing_ok: bool = False):
        self.queries += 1
        try:
            exit_status, stdout, stderr = await self.run(argv)
        except Exception as exc:  # transport failures: unsure, never "gone"
            self.last_error = f"{argv[0]}: {exc!r}"
            self.log.warning("scheduler query failed: %s", self.last_error)
            return None
        if exit_status != 0:
            if missing_ok and self.adapter.only_unknown_jobs(stderr):
                return {}
            self.last_error = f"{' '.join(argv)} exited {exit_status}: {stderr.strip()[-500:]}"
            self.log.warning("scheduler query failed: %s", self.last_error)
            return None
        self.last_error = ""
        try:
            return parse(stdout)
        except ValueError as exc:
            self.last_error = f"unreadable output of {argv[0]}: {exc}"
            self.log.warning("%s", self.last_error)
            return None

    def _notify(self) -> None:
        event, self._polled = self._polled, asyncio.Event()
        event.set()
