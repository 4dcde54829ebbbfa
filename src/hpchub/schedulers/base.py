"""What every scheduler adapter shares: the contract an adapter fills (`Scheduler`), a neutral
job request, neutral job states, the one quoting filter for scripts, and validation of every
value that reaches a script."""

from __future__ import annotations

import abc
import enum
import re
import shlex
from dataclasses import dataclass

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
CONSTRAINT = re.compile(r"[A-Za-z0-9_.&|()\[\]*,!-]{1,200}")


SET_BY_HPCHUB = "is set by hpchub"
"""The reason, in an adapter's controlled_options, of an option hpchub always sets itself."""


class ValidationError(ValueError):
    """A value that may not reach a job script; the message says which and why, `field` names
    the JobRequest field ("queue", "walltime", ...)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class SchedulerError(RuntimeError):
    """A scheduler command failed: the scheduler's own message for the user, details for the log."""

    def __init__(self, user_message: str, argv: list[str] | None = None, exit_status: int | None = None,
                 stderr: str = ""):
        super().__init__(user_message)
        self.user_message = user_message
        self.argv = argv or []
        self.exit_status = exit_status
        self.stderr = stderr


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETING = "completing"
    DONE = "done"  # ended with exit code 0
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    ERROR = "error"  # kept in the queue in an error state (Grid Engine's E): it will never start,
    # and stays until it is deleted - a finished job that still has to be cancelled
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT, JobState.ERROR)


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: JobState
    native_state: str  # the scheduler's own word, e.g. "PENDING" or "CANCELLED by 1001"
    reason: str = ""  # why it waits or ended, in the scheduler's words
    nodes: tuple[str, ...] = ()
    start: str | None = None  # ISO time: actual, or expected while pending
    end: str | None = None
    exit_code: int | None = None
    name: str = ""
    user: str = ""


@dataclass(frozen=True)
class Partition:
    """A partition (queue) as the spawn form offers it."""

    name: str
    max_walltime: int | None  # seconds; None: no limit
    nodes: int
    cores_per_node: int
    memory_mb_per_node: int
    gpus_per_node: int = 0
    features: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Availability:
    """What a partition (queue) has free now, for the spawn form: nodes with nothing running,
    cores and GPUs not in use, of those that can take a job (down and drained nodes count in
    neither). Cores and GPUs of a node in two partitions count in both."""

    nodes_idle: int
    nodes: int
    cores_idle: int
    cores: int
    gpus_idle: int = 0
    gpus: int = 0


@dataclass(frozen=True)
class Association:
    """An account a user may charge, with the partitions (empty: all) and QOS it allows."""

    account: str
    partitions: frozenset[str] = frozenset()
    qos: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Reservation:
    name: str
    users: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    end: str | None = None  # ISO, as asked (the hub asks in UTC)
    start: str | None = None
    active: bool = True  # started: a job in it can run now (one that has not waits for its start)

    def open_to(self, user: str, accounts) -> bool:
        return user in self.users or bool(self.accounts & set(accounts))


@dataclass(frozen=True)
class JobRequest:
    """A batch job in neutral terms; adapters translate it to their scheduler's options."""

    name: str
    script: str  # the commands to run (bash), written by the admin's template, never raw user input
    queue: str | None = None  # Slurm partition, PBS queue
    account: str | None = None
    qos: str | None = None
    walltime: int | None = None  # seconds
    nodes: int = 1
    cores: int | None = None  # per node
    memory_mb: int | None = None  # per node
    gpus: int = 0
    constraint: str | None = None
    reservation: str | None = None
    output: str | None = None  # path of the output file
    extra: tuple[tuple[str, ...], ...] = ()  # the target's scheduler_args (admin's), one directive each

    def validate(self) -> "JobRequest":
        for field, label, value in (("name", "job name", self.name), ("queue", "queue", self.queue),
                                    ("account", "account", self.account), ("qos", "QOS", self.qos),
                                    ("reservation", "reservation", self.reservation)):
            if value is not None and not NAME.fullmatch(value):
                raise ValidationError(f"the {label} {value!r} is not a valid name", field)
        if self.constraint is not None and not CONSTRAINT.fullmatch(self.constraint):
            raise ValidationError(f"the constraint {self.constraint!r} has characters that are not allowed", "constraint")
        for field, label, value, low, high in (("walltime", "walltime", self.walltime, 60, 366 * 86400),
                                               ("nodes", "nodes", self.nodes, 1, 100000),
                                               ("cores", "cores", self.cores, 1, 100000),
                                               ("memory_mb", "memory", self.memory_mb, 1, 1 << 40),
                                               ("gpus", "GPUs", self.gpus, 0, 1024)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
                raise ValidationError(f"the {label} {value!r} is out of range ({low}-{high})", field)
        if self.output is not None and ("\n" in self.output or "\0" in self.output):
            raise ValidationError("the output path may not contain a newline", "output")
        for words in self.extra:
            if not words or not words[0].startswith("-") or any(c in w for w in words for c in "\n\r\0"):
                raise ValidationError(f"the scheduler arguments {list(words)!r} are not one directive", "scheduler_args")
        return self


def quote(value: str) -> str:
    """The one quoting filter for values in job scripts."""
    return shlex.quote(str(value))


class Scheduler(abc.ABC):
    """The contract of a scheduler adapter: everything the hub's job watcher, the batch spawner,
    `hpchub check` and the notebook magics ask of a batch system, and nothing more. An adapter
    is pure: it builds job scripts and argv and parses the commands' machine-readable output;
    it runs nothing (the caller runs the argv, over SSH or locally). One small module per
    scheduler (schedulers/slurm.py, schedulers/sge.py), registered in schedulers.SCHEDULERS.

    Job ids are opaque strings ("123", "123.server", "4711.1"): compared for equality, never
    parsed or ordered as numbers outside the adapter. Statuses are neutral (JobStatus with a
    JobState) and keep the scheduler's own words (native_state, reason) for users.
    """

    name: str = ""
    ended_jobs_listed: bool = True
    """Whether the status query still lists jobs that just ended (Slurm's squeue --states=all).
    Where it does not (Grid Engine's qstat), a job missing from a complete listing has ended:
    the watcher asks accounting at once, rather than after its grace period."""
    private_environment: bool = True
    """Whether the submit command hands its environment to the job and shows it to nobody but
    the job's owner and root (Slurm). False where any user may read a job's environment (Grid
    Engine's `qstat -j`): the server's environment, token included, then reaches the job through
    a private file of the user's (remote/batch_launcher.py), never through the scheduler."""

    controlled_options: dict = {}
    """Options of this scheduler's submit command that hpchub sets itself (or takes from a job
    field): an admin's `scheduler_args` may not give them. Option -> why."""

    # ----- submitting -----------------------------------------------------------------
    def check_scheduler_args(self, directives) -> None:
        """A target's extra directives (HPCSpawner.targets' `scheduler_args`), checked when the
        hub starts: ValidationError for one that hpchub sets itself or takes from a job field."""
        for words in directives:
            option = words[0].split("=", 1)[0]
            if option in self.controlled_options:
                raise ValidationError(f"{option} {self.controlled_options[option]}", "scheduler_args")

    def validate(self, request: JobRequest) -> JobRequest:
        """The request checked for this scheduler: the shared checks (JobRequest.validate), then
        what this scheduler cannot take, as a ValidationError naming the field. The spawner's one
        check of options calls this, so a refusal names the option before anything is submitted."""
        return request.validate()

    @abc.abstractmethod
    def job_script(self, request: JobRequest) -> str:
        """The whole batch script for a validated request: the scheduler's directives, every
        value through `quote`, then request.script. Never a secret."""

    @abc.abstractmethod
    def submit_argv(self) -> list[str]:
        """The submit command, reading the script on stdin and printing the job id."""

    @abc.abstractmethod
    def held_submit_argv(self) -> list[str]:
        """As submit_argv, for a job that must not start (hpchub check's test job)."""

    @abc.abstractmethod
    def parse_submit(self, stdout: str) -> str:
        """The job id from the submit command's output; SchedulerError if there is none."""

    # ----- watching -------------------------------------------------------------------
    @abc.abstractmethod
    def status_argv(self, job_ids: list[str] | None = None, user: str | None = None,
                    all_states: bool = True) -> list[str]:
        """One status query for many jobs (or all of a user's); all_states includes jobs that
        just ended, where the scheduler still lists them."""

    @abc.abstractmethod
    def parse_status(self, stdout: str) -> dict[str, JobStatus]:
        """Job id -> status, from status_argv's output. Lines it cannot read are skipped."""

    def reasons_argv(self, job_ids: list[str]) -> list[str] | None:
        """Where the status query does not say why a job waits (or failed to start): the query
        that does, for these jobs only (the watcher asks it for the jobs a spawn waits on).
        None: the status query's `reason` already says (Slurm)."""
        return None

    def parse_reasons(self, stdout: str) -> dict[str, str]:
        """Job id -> why it waits or failed to start, in the scheduler's words."""
        return {}

    @abc.abstractmethod
    def only_unknown_jobs(self, stderr: str) -> bool:
        """Whether a failed status or accounting query failed only because it knew none of the
        jobs asked about (they ended and were purged, or never started): an answer ("none of
        them"), not a failure."""

    @abc.abstractmethod
    def accounting_argv(self, job_ids: list[str] | None = None, user: str | None = None) -> list[str]:
        """The query of finished jobs (accounting), for jobs the status query no longer lists."""

    @abc.abstractmethod
    def parse_accounting(self, stdout: str) -> dict[str, JobStatus]:
        """Job id -> final status, from accounting_argv's output."""

    @abc.abstractmethod
    def cancel_argv(self, job_ids: list[str]) -> list[str]:
        """The cancel command for these jobs; SchedulerError for ids the scheduler cannot have made."""

    @abc.abstractmethod
    def error_message(self, stderr: str) -> str:
        """The scheduler's own words from a failed command, for the user."""

    # ----- a user's own jobs (JupyterLab's queue panel; optional) -------------------------
    def hold_argv(self, job_ids: list[str]) -> list[str] | None:
        """Keep these pending jobs from starting (None: this scheduler cannot, or it is not offered)."""
        return None

    def release_argv(self, job_ids: list[str]) -> list[str] | None:
        """Let held jobs start again (None: as hold_argv)."""
        return None

    def is_held(self, status: JobStatus) -> bool:
        """Whether a job waits because it is held (by its user or an administrator)."""
        return False

    def submit_file_argv(self, path: str) -> list[str] | None:
        """Submit a batch script file as it is (its own directives), run in the file's directory,
        printing what parse_submit reads. `path` is absolute. None: not offered."""
        return None

    def output_argv(self, job_id: str) -> list[str] | None:
        """The query of where a job writes its standard output (None: not offered)."""
        return None

    def parse_output(self, job_id: str, stdout: str) -> str | None:
        """The job's output file (absolute) from output_argv's answer; None if it does not say."""
        return None

    # ----- what users may ask for (the spawn form's choices) -----------------------------
    @abc.abstractmethod
    def partitions_argv(self) -> list[str]:
        """The query of the partitions (queues) and their limits."""

    @abc.abstractmethod
    def parse_partitions(self, stdout: str) -> dict[str, Partition]:
        ...

    @abc.abstractmethod
    def associations_argv(self, user: str) -> list[str]:
        """The query of the accounts (and their partitions and QOS) a user may charge."""

    @abc.abstractmethod
    def parse_associations(self, stdout: str) -> dict[str, Association]:
        ...

    @abc.abstractmethod
    def reservations_argv(self) -> list[str]:
        """The query of the reservations."""

    @abc.abstractmethod
    def parse_reservations(self, stdout: str) -> list[Reservation]:
        ...

    # ----- what is free now (the spawn form's availability; optional) ---------------------
    def availability_argv(self) -> list[str] | None:
        """The query of what each partition has free now (None: this scheduler does not say)."""
        return None

    def parse_availability(self, stdout: str) -> dict[str, Availability]:
        return {}
