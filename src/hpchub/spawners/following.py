"""Following a server's batch job until its server answers: the decisions, without the I/O.

The batch launch (spawners/batch.py) feeds a JobFollower what it learns - the scheduler's
latest word on the job (from the hub's one shared status query), the node's report through
the shared home (the batch launcher's `await`), and the time - and does what it is told:

    AskNode(wait)   ask the login node to wait up to `wait` s for the job's report
    WaitForQueue()  wait for the next status query (the job is pending, and has been for a while)
    Connect(report) the server answers: connect to it
    Fail(...)       the spawn ends: the job ended first, never answered, or waited too long

Progress events for the user come out of `events()`, the queue wait (for the metrics) out of
`take_queue_wait()`, once. Pure: no I/O, no clock of its own; unit-tested with a fake clock
(tests/unit/test_following.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..schedulers.base import JobState, JobStatus
from .messages import format_duration, pending_message, state_in_words


EARLY_START_WINDOW = 20.0
"""Seconds after submission in which a job still pending is also asked about at its node: on an
idle cluster it starts within a second or two (Grid Engine's scheduler runs a second after a
submission), sooner than the next status query would say; later, the shared query alone."""


@dataclass(frozen=True)
class Event:
    """A progress event for the user (JupyterHub's progress stream)."""

    message: str
    progress: int
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AskNode:
    wait: float


@dataclass(frozen=True)
class WaitForQueue:
    pass


@dataclass(frozen=True)
class Connect:
    report: dict


@dataclass(frozen=True)
class Fail:
    reason: str  # "job-ended", "timeout" or "queue" (the metrics' reason label too)
    message: str = ""  # for "timeout" and "queue"; a job that ended is described by the caller
    final: JobStatus | None = None  # the scheduler's last word on a job that ended
    report: dict | None = None  # the node's report of a server that ended


def server_start_seconds(report: dict) -> float:
    """How long the server took to answer once its job ran, by the node's own clock (0 if the
    report does not say): taken off the time to ready to estimate the queue wait."""
    try:
        return max(0.0, float(report["started"]) - float(report["job_began"]))
    except (KeyError, TypeError, ValueError):
        return 0.0


class JobFollower:
    def __init__(self, job_id: str, *, now: float, max_queue_wait: float, ready_timeout: float,
                 launcher_wait: float, reservation_start: str | None = None):
        self.job_id = job_id
        # The start of the reservation the job asked for (ISO, UTC): its expected start while
        # the scheduler gives none (Slurm has no estimate for a job in a future reservation).
        self.reservation_start = reservation_start
        self.queued_since = now
        self.max_queue_wait = max_queue_wait
        self.ready_timeout = ready_timeout
        self.launcher_wait = launcher_wait
        self.running_since: float | None = None
        self.waiting_in_queue = False
        self._shown: tuple | None = None
        self._events: list[Event] = []
        self._queue_wait: float | None = None

    # ----- what comes out -----------------------------------------------------------
    def events(self) -> list[Event]:
        """The events since the last call."""
        events, self._events = self._events, []
        return events

    def take_queue_wait(self) -> float | None:
        """How long the job waited in the queue, once it is known (and only once)."""
        wait, self._queue_wait = self._queue_wait, None
        return wait

    # ----- what goes in -------------------------------------------------------------
    def on_queue(self, status: JobStatus | None, final: JobStatus | None, now: float) -> AskNode | WaitForQueue | Fail:
        """The scheduler's latest word (status None: not seen yet; final: the job has ended)."""
        current = final or status
        self.waiting_in_queue = current is not None and current.state is JobState.PENDING
        if final is not None:
            return Fail("job-ended", final=final)
        if status is None or status.state in (JobState.RUNNING, JobState.COMPLETING):
            # Running, or not seen yet (on an idle cluster it starts at once): the node reports
            # through the shared home. A short wait while unseen (it may be queued), longer after.
            if status is not None and self.running_since is None:
                self.running_since = now
                self._queue_wait = max(0.0, now - self.queued_since)
                self._say(f"Job {self.job_id} is running on {', '.join(status.nodes)}; starting your server", 60,
                          job_id=self.job_id)
            return AskNode(min(self.launcher_wait, 10 if status is not None else 3))
        # Waiting in the queue: say so whenever anything the user sees changes.
        if not status.start and self.reservation_start:
            status = replace(status, start=self.reservation_start)
        summary = (status.native_state, status.reason, status.start)
        if summary != self._shown:
            self._shown = summary
            self._say(pending_message(status, now - self.queued_since), 30, job_id=self.job_id,
                      state=status.native_state, state_words=state_in_words(status), reason=status.reason,
                      expected_start=f"{status.start}Z" if status.start else None)  # ISO, UTC
        if now - self.queued_since > self.max_queue_wait:
            return Fail("queue", f"job {self.job_id} waited in the queue for more than "
                                 f"{format_duration(self.max_queue_wait)}; it has been cancelled")
        if now - self.queued_since < EARLY_START_WINDOW:
            return AskNode(3)  # it may start before the next status query says so: ask its node
        return WaitForQueue()

    def on_report(self, report: dict, final: JobStatus | None, now: float) -> Connect | Fail | None:
        """The node's answer to AskNode; None: nothing yet, ask again."""
        status = report.get("status")
        if status == "ready":
            if self.running_since is None:  # it ran and answered between two status queries
                self._queue_wait = max(0.0, now - self.queued_since - server_start_seconds(report))
            return Connect(report)
        if status == "ended":
            return Fail("job-ended", final=final, report=report)
        if self.running_since is not None and now - self.running_since > self.ready_timeout:
            return Fail("timeout", f"job {self.job_id} started, but your server did not answer within "
                                   f"{self.ready_timeout:.0f} s")
        return None

    def _say(self, message: str, progress: int, **fields) -> None:
        self._events.append(Event(message, progress, fields))
