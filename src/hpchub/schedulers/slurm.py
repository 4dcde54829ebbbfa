"""Slurm: job scripts and argv for sbatch, squeue, sacct and scancel, and parsers of their
delimited output (formats chosen here, so the parsers know exactly what they read)."""

from __future__ import annotations

import re

from .base import (SET_BY_HPCHUB, Association, Availability, JobRequest, JobState, JobStatus, Partition,
                   Reservation, Scheduler, SchedulerError, quote)

# The job name last: users may put "|" in theirs, and split("|", 7) then keeps it whole.
SQUEUE_FORMAT = "%i|%T|%r|%N|%S|%e|%u|%j"
SINFO_FORMAT = "%R|%l|%D|%c|%m|%G|%f"
SINFO_NODE_FORMAT = "NodeList:|,Partition:|,StateCompact:|,CPUsState:|,Gres:|,GresUsed:|"
# Node states (sinfo's compact names, flags stripped) whose cores and GPUs no job can have now.
UNUSABLE_NODE_STATES = ("down", "drain", "drng", "fail", "maint", "unk", "npc", "futr", "inval", "boot", "resv",
                        "plnd", "reboot", "powering", "pow_dn", "powered")
SACCT_FORMAT = "JobID,State,ExitCode,NodeList,Start,End,Reason,JobName"

_STATES = {
    "PENDING": JobState.PENDING, "CONFIGURING": JobState.PENDING, "REQUEUED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING, "RESV_DEL_HOLD": JobState.PENDING, "SUSPENDED": JobState.PENDING,
    "RUNNING": JobState.RUNNING, "COMPLETING": JobState.COMPLETING, "STAGE_OUT": JobState.COMPLETING,
    "COMPLETED": JobState.DONE,
    "FAILED": JobState.FAILED, "NODE_FAIL": JobState.FAILED, "BOOT_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED, "DEADLINE": JobState.FAILED, "PREEMPTED": JobState.FAILED,
    "REVOKED": JobState.FAILED, "SPECIAL_EXIT": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED, "TIMEOUT": JobState.TIMEOUT,
}
_NOT_A_TIME = {"", "N/A", "Unknown", "None", "NONE"}


WALLTIME = re.compile(r"[0-9]{1,9}(?:-[0-9]{1,9})?(?::[0-9]{1,9}){0,2}")


def format_walltime(seconds: int) -> str:
    """Seconds as Slurm's [D-]HH:MM:SS."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def parse_walltime(text: str) -> int | None:
    """Slurm's time formats (D-HH:MM:SS, HH:MM:SS, MM:SS, MM, D-HH) in seconds; None for UNLIMITED."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "NOT_SET", "N/A", ""):
        return None
    if not WALLTIME.fullmatch(text):  # ASCII digits only: int() would also read "١" or "１"
        raise ValueError(f"not a Slurm time: {text!r}")
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
        parts = [int(p) for p in text.split(":")] + [0, 0]
        hours, minutes, seconds = parts[0], parts[1], parts[2]
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 3:
            hours, minutes, seconds = parts
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        else:
            hours, minutes, seconds = 0, parts[0], 0
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def expand_nodelist(text: str) -> list[str]:
    """Slurm's compressed host lists ("c[1-3,5],gpu01") as names."""
    text = text.strip()
    if text in ("", "None assigned", "(null)"):
        return []
    names = []
    for match in re.finditer(r"([^,\[]+)(?:\[([^\]]+)\])?(?:,|$)", text):
        prefix, ranges = match.group(1), match.group(2)
        if not ranges:
            names.append(prefix)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            width = len(low)
            for number in range(int(low), int(high or low) + 1):
                names.append(f"{prefix}{number:0{width}d}")
    return names


def _time(text: str) -> str | None:
    return None if text.strip() in _NOT_A_TIME else text.strip()


def _gpu_count(gres: str) -> int:
    """GPUs in sinfo's Gres or GresUsed ("gpu:2", "gpu:a100:2(S:0-1)", "gpu:0,shard:4"; "(null)")."""
    return sum(int(m.group(1)) for m in re.finditer(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)", gres))


_JOB_ID = re.compile(r"[0-9]{1,12}(_[0-9]{1,9})?")  # a job, or one task of an array job


def _checked_ids(job_ids: list[str]) -> list[str]:
    if not job_ids or not all(isinstance(j, str) and _JOB_ID.fullmatch(j) for j in job_ids):
        raise SchedulerError(f"not job ids: {job_ids!r}")
    return job_ids


def _lines(stdout: str) -> list[str]:
    """Output lines. Not str.splitlines(), which also splits at \x1e, \x85, \u2028 and more:
    characters a user may put in a job name."""
    return stdout.split("\n")


def state_of(native: str) -> JobState:
    return _STATES.get(native.split()[0].rstrip("+") if native.strip() else "", JobState.UNKNOWN)


class Slurm(Scheduler):
    """The Slurm adapter (the contract: schedulers/base.py, Scheduler)."""

    name = "slurm"
    _SET = SET_BY_HPCHUB
    _FIELD = "is a job field: give it in the target's `defaults` (and `choose`, `limits`)"
    controlled_options = {
        **dict.fromkeys(("--job-name", "-J", "--output", "-o", "--error", "-e", "--requeue", "--no-requeue",
                         "--export", "--uid", "--gid", "--chdir", "-D", "--wrap", "--parsable", "--hold", "-H",
                         "--array", "-a", "--get-user-env", "--open-mode"), _SET),
        **dict.fromkeys(("--partition", "-p", "--account", "-A", "--qos", "-q", "--time", "-t", "--nodes", "-N",
                         "--cpus-per-task", "-c", "--ntasks-per-node", "--mem", "--gres", "--constraint", "-C",
                         "--reservation"), _FIELD),
    }

    # ----- submitting -----------------------------------------------------------------
    def job_script(self, request: JobRequest) -> str:
        """A batch script: #SBATCH lines from validated values, each through the one quoting
        filter, then the request's script. No secret belongs in it."""
        self.validate(request)
        # Never requeued: after a node failure Slurm would start the job again elsewhere, a second
        # server with the first one's token, while the hub has shown the first one ended.
        options = [f"--job-name={request.name}", f"--nodes={request.nodes}", "--no-requeue"]
        for flag, value in (("partition", request.queue), ("account", request.account), ("qos", request.qos),
                            ("constraint", request.constraint), ("reservation", request.reservation),
                            ("output", request.output)):
            if value is not None:
                options.append(f"--{flag}={value}")
        if request.walltime is not None:
            options.append(f"--time={format_walltime(request.walltime)}")
        if request.cores is not None:
            options += ["--ntasks-per-node=1", f"--cpus-per-task={request.cores}"]
        if request.memory_mb is not None:
            options.append(f"--mem={request.memory_mb}M")
        if request.gpus:
            options.append(f"--gres=gpu:{request.gpus}")
        lines = ["#!/bin/bash"]
        lines += [f"#SBATCH {quote(option)}" for option in options]
        lines += ["#SBATCH " + " ".join(quote(word) for word in words) for words in request.extra]
        lines.append(request.script.rstrip("\n"))
        return "\n".join(lines) + "\n"

    def submit_argv(self) -> list[str]:
        """sbatch reading the script from stdin."""
        return ["sbatch", "--parsable"]

    def held_submit_argv(self) -> list[str]:
        """sbatch for a job that must not start (hpchub check's queue test)."""
        return ["sbatch", "--parsable", "--hold"]

    def parse_submit(self, stdout: str) -> str:
        """The job id from `sbatch --parsable` ("123" or "123;cluster")."""
        line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        job_id = line.split(";")[0].strip()
        if not job_id.isdigit():
            raise SchedulerError("Slurm did not return a job id", ["sbatch", "--parsable"], None, stdout)
        return job_id

    # ----- watching -------------------------------------------------------------------
    def status_argv(self, job_ids: list[str] | None = None, user: str | None = None,
                    all_states: bool = True) -> list[str]:
        """One squeue for many jobs (or all of a user's); all_states includes jobs that just ended."""
        argv = ["squeue", "--noheader", *(["--states=all"] if all_states else []), f"--format={SQUEUE_FORMAT}"]
        if job_ids:
            argv.append("--jobs=" + ",".join(job_ids))
        if user:
            argv.append(f"--user={user}")
        return argv

    def parse_status(self, stdout: str) -> dict[str, JobStatus]:
        jobs = {}
        for line in _lines(stdout):
            if not line.strip():
                continue
            fields = line.split("|", 7)
            if len(fields) != 8:
                continue  # the rest of a job name with a newline in it: not a line of its own
            job_id, state, reason, nodes, start, end, user, name = fields
            jobs[job_id] = JobStatus(
                job_id=job_id, state=state_of(state), native_state=state,
                reason="" if reason == "None" else reason, nodes=tuple(expand_nodelist(nodes)),
                start=_time(start), end=_time(end), name=name, user=user,
            )
        return jobs

    def only_unknown_jobs(self, stderr: str) -> bool:
        """squeue exits 1 when every job asked about is unknown to it (ended and purged)."""
        return "Invalid job id specified" in stderr

    def accounting_argv(self, job_ids: list[str] | None = None, user: str | None = None) -> list[str]:
        argv = ["sacct", "--noheader", "--parsable2", "--allocations", f"--format={SACCT_FORMAT}"]
        if job_ids:
            argv.append("--jobs=" + ",".join(job_ids))
        if user:
            argv.append(f"--user={user}")
        return argv

    def parse_accounting(self, stdout: str) -> dict[str, JobStatus]:
        jobs = {}
        for line in _lines(stdout):
            if not line.strip():
                continue
            fields = line.split("|", 7)
            if len(fields) != 8:
                continue  # the rest of a job name with a newline in it: not a line of its own
            job_id, state, exit_code, nodes, start, end, reason, name = fields
            code, _, signal = exit_code.partition(":")
            jobs[job_id] = JobStatus(
                job_id=job_id, state=state_of(state), native_state=state,
                reason="" if reason == "None" else reason, nodes=tuple(expand_nodelist(nodes)),
                start=_time(start), end=_time(end), name=name,
                exit_code=int(code) if code.isdigit() else None,
            )
        return jobs

    def cancel_argv(self, job_ids: list[str]) -> list[str]:
        return ["scancel", *_checked_ids(job_ids)]

    def hold_argv(self, job_ids: list[str]) -> list[str]:
        return ["scontrol", "hold", ",".join(_checked_ids(job_ids))]

    def release_argv(self, job_ids: list[str]) -> list[str]:
        return ["scontrol", "release", ",".join(_checked_ids(job_ids))]

    def is_held(self, status: JobStatus) -> bool:
        return status.state == JobState.PENDING and status.reason in ("JobHeldUser", "JobHeldAdmin")

    def submit_file_argv(self, path: str) -> list[str]:
        if not path.startswith("/"):  # never read as an option
            raise SchedulerError(f"not an absolute path: {path!r}")
        return ["sbatch", "--parsable", path]

    def output_argv(self, job_id: str) -> list[str]:
        # scontrol fills in the path's patterns (%j, %x, ...); squeue's STDOUT field does not (22.05).
        return ["scontrol", "show", "job", "--oneliner", _checked_ids([job_id])[0]]

    def parse_output(self, job_id: str, stdout: str) -> str | None:
        # A path may hold spaces: it runs to the next field (" Key=", a capital first) or the end.
        if not re.search(rf"(^|\s)JobId={re.escape(job_id)}\s", stdout):
            return None
        found = re.search(r"(?:^|\s)StdOut=(/.*?)(?= [A-Z][A-Za-z:/_]*=|\s*$)", stdout, re.MULTILINE)
        return found.group(1) if found else None

    def error_message(self, stderr: str) -> str:
        """Slurm's own words from a failed command ("sbatch: error: ..."), for the user."""
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        errors = [re.sub(r"^\w+: error: (Batch job submission failed: )?", "", line) for line in lines
                  if ": error:" in line or ": fatal:" in line]
        return "; ".join(errors) or (lines[-1] if lines else "the Slurm command failed without a message")

    # ----- what users may ask for (the spawn form's choices) ------------------------------
    def partitions_argv(self) -> list[str]:
        return ["sinfo", "--noheader", f"--format={SINFO_FORMAT}"]

    def parse_partitions(self, stdout: str) -> dict[str, Partition]:
        """sinfo prints one line per group of alike nodes; a partition sums its groups."""
        found: dict[str, Partition] = {}
        for line in _lines(stdout):
            if not line.strip():
                continue
            name, limit, nodes, cpus, memory, gres, features = line.split("|", 6)
            gpus = max((int(m.group(1)) for m in re.finditer(r"gpu(?::[^:,(]+)?:(\d+)", gres)), default=0)
            group = Partition(name=name, max_walltime=parse_walltime(limit), nodes=int(nodes),
                              cores_per_node=int(cpus.rstrip("+")), memory_mb_per_node=int(memory.rstrip("+")),
                              gpus_per_node=gpus,
                              features=frozenset(f for f in features.split(",") if f and f != "(null)"))
            known = found.get(name)
            if known is not None:
                group = Partition(name=name, max_walltime=group.max_walltime, nodes=known.nodes + group.nodes,
                                  cores_per_node=max(known.cores_per_node, group.cores_per_node),
                                  memory_mb_per_node=max(known.memory_mb_per_node, group.memory_mb_per_node),
                                  gpus_per_node=max(known.gpus_per_node, group.gpus_per_node),
                                  features=known.features | group.features)
            found[name] = group
        return found

    def availability_argv(self) -> list[str]:
        # One line per node and partition; CPUsState is allocated/idle/other/total.
        return ["sinfo", "--noheader", "--Node", f"--Format={SINFO_NODE_FORMAT}"]

    def parse_availability(self, stdout: str) -> dict[str, Availability]:
        totals: dict[str, list[int]] = {}
        for line in _lines(stdout):
            if not line.strip():
                continue
            _node, partition, state, cpus, gres, gres_used = line.split("|")[:6]
            base = state.strip().rstrip("*~#!%$@^-+").lower()
            if base.startswith(UNUSABLE_NODE_STATES):
                continue
            allocated, idle, _other, _total = (int(n) for n in cpus.split("/"))
            gpus, used = _gpu_count(gres), _gpu_count(gres_used)
            counts = totals.setdefault(partition.strip().rstrip("*"), [0, 0, 0, 0, 0, 0])
            counts[0] += allocated == 0 and base == "idle"
            counts[1] += 1
            counts[2] += idle
            counts[3] += allocated + idle
            counts[4] += max(0, gpus - used)
            counts[5] += gpus
        return {name: Availability(*counts) for name, counts in totals.items()}

    def associations_argv(self, user: str) -> list[str]:
        return ["sacctmgr", "--noheader", "--parsable2", "show", "associations", f"user={user}",
                "format=account,partition,qos"]

    def parse_associations(self, stdout: str) -> dict[str, Association]:
        found: dict[str, Association] = {}
        for line in _lines(stdout):
            if not line.strip():
                continue
            account, partition, qos = line.split("|", 2)
            known = found.get(account, Association(account))
            partitions = known.partitions | ({partition} if partition else set())
            found[account] = Association(account, frozenset(partitions),
                                         known.qos | frozenset(q for q in qos.split(",") if q))
        return found

    def reservations_argv(self) -> list[str]:
        return ["scontrol", "show", "reservation", "--oneliner"]

    def parse_reservations(self, stdout: str) -> list[Reservation]:
        reservations = []
        for line in _lines(stdout):
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if "ReservationName" not in fields:
                continue  # "No reservations in the system"

            def names(key):
                value = fields.get(key, "")
                return frozenset() if value in ("", "(null)") else frozenset(value.split(","))

            reservations.append(Reservation(fields["ReservationName"], names("Users"), names("Accounts"),
                                            _time(fields.get("EndTime", "")), _time(fields.get("StartTime", "")),
                                            active=fields.get("State") == "ACTIVE"))
        return reservations
