"""Grid Engine (Son of Grid Engine 8.1, Debian's gridengine): job scripts and argv for qsub,
qstat, qacct and qdel, and parsers of their output (qstat's XML; qacct's key-value blocks).

What differs from Slurm, and how this adapter meets the shared contract (schedulers/base.py):
- qstat has no filter by job id in its list form, so the status query lists every user's jobs
  (`qstat -u '*' -xml`) and the caller picks its own; its XML carries states, owners, queues
  and start times but not why a job waits. The reasons come from `qstat -xml -j IDS` (the
  scheduler's messages per job, and a job's error in state E), asked only for the jobs a spawn
  is waiting on (`reasons_argv`).
- Finished jobs leave qstat at once; qacct answers for them, one job id per call (its -j takes
  a single id or a name pattern), or all jobs of the accounting file when several are asked.
  A job deleted before it started is never in qacct: `only_unknown_jobs` reads "not found".
- Cores are slots of a parallel environment (`-pe smp N`, allocation rule $pe_slots: one node);
  walltime is `h_rt`; the account is a project (`-P`); queues are cluster queues (`-q`).
  Memory is asked for as `mem_free` (a scheduling request): `h_vmem`, the usual hard limit,
  counts virtual memory, of which a JupyterLab reserves gigabytes it never uses.
- Job names may not start with a digit, nor hold whitespace or non-ASCII characters (qmaster
  then answers only "Error reading answer list"); `validate` says so before qsub is run.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta

from .base import (SET_BY_HPCHUB, Association, Availability, JobRequest, JobState, JobStatus, Partition,
                   Reservation, Scheduler, SchedulerError, ValidationError, quote)

# Queue instance states (qstat's letters) in which it takes no job: alarm, Alarm, unknown,
# disabled, Disabled (calendar), suspended (and by subordination, calendar), Error, configuration
# ambiguous, orphaned.
UNUSABLE_QUEUE_STATES = set("aAudDsSCEco")
JOB_ID = re.compile(r"[0-9]{1,12}")


def _checked_ids(job_ids: list[str]) -> list[str]:
    if not job_ids or not all(isinstance(j, str) and JOB_ID.fullmatch(j) for j in job_ids):
        raise SchedulerError(f"not job ids: {job_ids!r}")
    return job_ids
# qmaster's object names: no whitespace, none of the characters it reserves, ASCII, not led by a digit.
JOB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]{0,63}")
QSTAT_RESOURCES = "h_rt,mem_total,num_proc"

# qstat's state letters (qstat(1)): the first that applies wins.
_STATE_LETTERS = (
    ("E", JobState.ERROR),  # error state: it will never start (the reason says why) until deleted
    ("d", JobState.COMPLETING),  # deletion in progress
    ("h", JobState.PENDING),  # held
    ("s", JobState.PENDING), ("S", JobState.PENDING), ("T", JobState.PENDING),  # suspended
    ("t", JobState.PENDING),  # being transferred to its execution host: the server is not up yet
    ("r", JobState.RUNNING),
    ("q", JobState.PENDING),
)
_FAILED_TIMEOUT = "37"  # qacct's "failed 37 : qmaster enforced h_rt, h_cpu, or h_vmem limit"
_FAILED_AFTER_JOB = "100"  # "failed 100 : assumedly after job": ended by a signal, as by qdel


def format_walltime(seconds: int) -> str:
    """Seconds as Grid Engine's HH:MM:SS (hours may exceed 24)."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def parse_walltime(text: str) -> int | None:
    """h_rt as qstat prints it (HH:MM:SS, or seconds); None for INFINITY."""
    text = text.strip()
    if text.upper() in ("INFINITY", "NONE", ""):
        return None
    if not re.fullmatch(r"[0-9]{1,9}(?::[0-9]{1,9}){0,2}", text):
        raise ValueError(f"not a Grid Engine time: {text!r}")
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def parse_memory_mb(text: str) -> int:
    """A memory value as qstat prints it ("23.541G", "512.000M", "1024") in MB."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([KkMmGgTt]?)", text.strip())
    if not match:
        raise ValueError(f"not a Grid Engine memory value: {text!r}")
    number, unit = float(match.group(1)), match.group(2).upper()
    factor = {"": 1 / (1 << 20), "K": 1 / 1024, "M": 1, "G": 1024, "T": 1 << 20}[unit]
    return int(number * factor)


def state_of(letters: str) -> JobState:
    for letter, state in _STATE_LETTERS:
        if letter in letters:
            return state
    return JobState.UNKNOWN


def _xml(stdout: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(stdout.strip() or "<empty/>")
    except ElementTree.ParseError as exc:
        raise ValueError(f"qstat's XML does not parse: {exc}") from None


def _text(element: ElementTree.Element, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None and found.text else ""


def _ctime(text: str) -> str | None:
    """qacct's times ("Mon Nov 30 16:19:14 2026", or "-/-" for never) as ISO."""
    text = " ".join(text.split())
    if not text or text == "-/-":
        return None
    try:
        return datetime.strptime(text, "%a %b %d %H:%M:%S %Y").isoformat()
    except ValueError:
        return None


def _accounting_blocks(stdout: str) -> list[dict[str, str]]:
    blocks, current = [], {}
    for line in stdout.split("\n"):
        if line.startswith("====="):
            if current:
                blocks.append(current)
            current = {}
            continue
        key, _, value = line.partition(" ")
        if key:
            current[key] = value.strip()
    if current:
        blocks.append(current)
    return blocks


class GridEngine(Scheduler):
    """The Grid Engine adapter (the contract: schedulers/base.py, Scheduler)."""

    name = "sge"
    controlled_options = {
        **dict.fromkeys(("-N", "-o", "-e", "-j", "-r", "-S", "-cwd", "-wd", "-V", "-v", "-h", "-t", "-terse", "-now",
                         "-notify", "-b"), SET_BY_HPCHUB),
        **dict.fromkeys(("-q", "-P", "-ar", "-pe"), "is a job field: give it in the target's `defaults` "
                                                     "(and `choose`, `limits`)"),
    }
    private_environment = False  # qstat -j shows every job's environment to every user
    ended_jobs_listed = False  # qstat lists waiting and running jobs only

    def __init__(self, parallel_environment: str = "smp", gpu_resource: str | None = None):
        self.parallel_environment = parallel_environment
        self.gpu_resource = gpu_resource  # a consumable complex ("gpu") where the site has one

    # ----- submitting -----------------------------------------------------------------
    def validate(self, request: JobRequest) -> JobRequest:
        """The shared checks, then what Grid Engine cannot take (the contract: Scheduler.validate)."""
        request.validate()
        if not JOB_NAME.fullmatch(request.name):
            raise ValidationError(f"the job name {request.name!r} is not a valid Grid Engine name "
                                  "(letters, digits, _.+-, not starting with a digit)", "name")
        if request.nodes != 1:
            raise ValidationError("a Grid Engine job of this site runs on one node", "nodes")
        if request.qos is not None:
            raise ValidationError("Grid Engine has no QOS; choose a queue or project", "qos")
        if request.constraint is not None:
            raise ValidationError("Grid Engine has no node features to constrain a job to", "constraint")
        if request.gpus and not self.gpu_resource:
            raise ValidationError("this Grid Engine cluster has no GPUs", "gpus")
        if request.reservation is not None and not JOB_ID.fullmatch(request.reservation):
            raise ValidationError(f"the reservation {request.reservation!r} is not a Grid Engine "
                                  "advance reservation id", "reservation")
        return request

    def job_script(self, request: JobRequest) -> str:
        """A batch script: #$ lines from validated values, each through the one quoting filter,
        then the request's script. Never rerun (-r n): a second server with the first one's
        token is worse than an ended one. No -V: the submitting session's environment stays out."""
        self.validate(request)
        options = [["-N", request.name], ["-S", "/bin/bash"], ["-r", "n"], ["-cwd"]]
        for flag, value in (("-q", request.queue), ("-P", request.account), ("-ar", request.reservation)):
            if value is not None:
                options.append([flag, value])
        if request.output is not None:
            options += [["-o", request.output], ["-j", "y"]]
        if request.walltime is not None:
            options.append(["-l", f"h_rt={format_walltime(request.walltime)}"])
        if request.cores is not None:
            options.append(["-pe", self.parallel_environment, str(request.cores)])
        if request.memory_mb is not None:
            options.append(["-l", f"mem_free={request.memory_mb}M"])
        if request.gpus:
            options.append(["-l", f"{self.gpu_resource}={request.gpus}"])
        lines = ["#!/bin/bash"]
        lines += ["#$ " + " ".join(quote(word) for word in option) for option in [*options, *request.extra]]
        lines.append(request.script.rstrip("\n"))
        return "\n".join(lines) + "\n"

    def submit_argv(self) -> list[str]:
        """qsub reading the script from stdin; -terse prints the job id alone."""
        return ["qsub", "-terse"]

    def held_submit_argv(self) -> list[str]:
        return ["qsub", "-terse", "-h"]

    def parse_submit(self, stdout: str) -> str:
        """The job id from `qsub -terse` ("47", or "47.1-10:1" for an array job)."""
        line = stdout.strip().split("\n")[-1].strip() if stdout.strip() else ""
        job_id = line.split(".")[0]
        if not JOB_ID.fullmatch(job_id):
            raise SchedulerError("Grid Engine did not return a job id", self.submit_argv(), None, stdout)
        return job_id

    # ----- watching -------------------------------------------------------------------
    def status_argv(self, job_ids: list[str] | None = None, user: str | None = None,
                    all_states: bool = True) -> list[str]:
        """Every job of every user (or of one user): qstat lists jobs by owner, not by id.
        Finished jobs are never listed (all_states changes nothing): accounting has them."""
        return ["qstat", "-xml", "-r", "-u", user or "*"]  # -r: the requests, h_rt among them

    def parse_status(self, stdout: str) -> dict[str, JobStatus]:
        jobs = {}
        for entry in _xml(stdout).iter("job_list"):
            job_id = _text(entry, "JB_job_number")
            if not job_id:
                continue
            if job_id in jobs:
                continue  # another task of an array job (magics may submit them): the first stands for it
            letters = _text(entry, "state")
            queue = _text(entry, "queue_name")
            host = queue.split("@", 1)[1] if "@" in queue else ""
            start = _text(entry, "JAT_start_time") or None
            end = None
            h_rt = next((r.text for r in entry.findall("hard_request") if r.get("name") == "h_rt"), None)
            if start and h_rt and h_rt.strip().isdigit():  # a running job ends at its start plus h_rt
                try:
                    end = (datetime.fromisoformat(start) + timedelta(seconds=int(h_rt))).isoformat()
                except ValueError:
                    end = None
            # qstat writes "<" in a name as "%lt;" (its own escape, beside XML's &gt; and &amp;), so
            # a name that holds "%lt;" itself reads back as "<": shown to users only, never matched.
            name = _text(entry, "JB_name").replace("%lt;", "<")
            jobs[job_id] = JobStatus(job_id=job_id, state=state_of(letters), native_state=letters,
                                     nodes=(host,) if host else (), start=start, end=end, name=name,
                                     user=_text(entry, "JB_owner"))
        return jobs

    def reasons_argv(self, job_ids: list[str]) -> list[str] | None:
        """Why these jobs wait (the scheduler's messages) or failed to start (state E)."""
        if not job_ids or not all(JOB_ID.fullmatch(j) for j in job_ids):
            return None
        return ["qstat", "-xml", "-j", ",".join(job_ids)]

    def parse_reasons(self, stdout: str) -> dict[str, str]:
        """Job id -> the reasons in Grid Engine's words, "; "-joined."""
        root = _xml(stdout)
        found: dict[str, list[str]] = {}
        for job in root.iter("djob_info"):
            for element in job.findall("element"):
                job_id = _text(element, "JB_job_number")
                for message in element.iter("QIM_message"):
                    # "11/30/2026 16:20:45 [1001:123]: error: can't open output file ...": its words only
                    text = re.sub(r"^.*?\]: (error: )?", "", (message.text or "").strip())
                    found.setdefault(job_id, []).append(text)
        for element in root.iter("SME_message_list"):
            for message in element.findall("element"):
                text = _text(message, "MES_message")
                for number in message.iter("ULNG_value"):
                    job_reasons = found.setdefault((number.text or "").strip(), [])
                    if text and text not in job_reasons:
                        job_reasons.append(text)
        return {job_id: "; ".join(texts) for job_id, texts in found.items() if job_id and texts}

    def only_unknown_jobs(self, stderr: str) -> bool:
        """qacct exits 1 for a job it has no record of (one deleted before it started), and
        when no job has ended since the cell was made (it has no accounting file yet)."""
        return bool(re.search(r"job id \S+ not found", stderr)) or (
            "accounting: No such file or directory" in stderr and "no jobs running since startup" in stderr)

    def accounting_argv(self, job_ids: list[str] | None = None, user: str | None = None) -> list[str]:
        if job_ids and len(job_ids) == 1:
            if not JOB_ID.fullmatch(job_ids[0]):
                raise SchedulerError(f"not a job id: {job_ids[0]!r}")
            return ["qacct", "-j", job_ids[0]]
        return ["qacct", *(["-o", user] if user else []), "-j"]

    def parse_accounting(self, stdout: str) -> dict[str, JobStatus]:
        jobs = {}
        for block in _accounting_blocks(stdout):
            job_id = block.get("jobnumber", "")
            if not JOB_ID.fullmatch(job_id):
                continue
            failed = block.get("failed", "0")
            code, _, why = failed.partition(":")
            code, why = code.strip(), why.strip()
            exit_text = block.get("exit_status", "").split()
            exit_status = int(exit_text[0]) if exit_text and exit_text[0].isdigit() else None
            if code == "0":
                state = JobState.DONE if exit_status == 0 else JobState.FAILED
            elif code == _FAILED_TIMEOUT:
                state = JobState.TIMEOUT
            elif code == _FAILED_AFTER_JOB and exit_status == 137:
                state = JobState.CANCELLED
            else:
                state = JobState.FAILED
            native = f"failed {code}" + (f" ({why})" if why else "") if code != "0" else f"exit {exit_status}"
            jobs[job_id] = JobStatus(
                job_id=job_id, state=state, native_state=native, reason=why,
                nodes=(block["hostname"],) if block.get("hostname") else (),
                start=_ctime(block.get("start_time", "")), end=_ctime(block.get("end_time", "")),
                exit_code=exit_status, name=block.get("jobname", ""), user=block.get("owner", ""),
            )
        return jobs

    def cancel_argv(self, job_ids: list[str]) -> list[str]:
        return ["qdel", *_checked_ids(job_ids)]

    def hold_argv(self, job_ids: list[str]) -> list[str]:
        return ["qhold", *_checked_ids(job_ids)]

    def release_argv(self, job_ids: list[str]) -> list[str]:
        return ["qrls", *_checked_ids(job_ids)]

    def is_held(self, status: JobStatus) -> bool:
        return status.state == JobState.PENDING and "h" in status.native_state  # hqw, hRq, ...

    def submit_file_argv(self, path: str) -> list[str]:
        if not path.startswith("/"):  # never read as an option
            raise SchedulerError(f"not an absolute path: {path!r}")
        # -cwd: the job runs where the script is (and writes its output there), as sbatch's do.
        return ["qsub", "-terse", "-cwd", path]

    def output_argv(self, job_id: str) -> list[str]:
        return ["qstat", "-j", _checked_ids([job_id])[0]]

    def parse_output(self, job_id: str, stdout: str) -> str | None:
        """From `qstat -j`: the -o path ([host:]path; a directory gets NAME.oID in it), else
        NAME.oID in the job's working directory (-cwd) or the home directory."""
        fields = {}
        for line in stdout.splitlines():
            key, sep, value = line.partition(":")
            if sep and key and " " not in key:
                fields.setdefault(key, value.strip())
        name = fields.get("job_name")
        if not name or fields.get("job_number") != job_id:
            return None
        default = f"{name}.o{job_id}"
        path = fields.get("stdout_path_list", "").split(",")[0].rsplit(":", 1)[-1]
        if path:
            return path if not path.endswith("/") else path + default
        directory = fields.get("cwd") or fields.get("sge_o_home")
        return f"{directory.rstrip('/')}/{default}" if directory else None

    def error_message(self, stderr: str) -> str:
        """Grid Engine's own words ("Unable to run job: job rejected: the requested project
        "x" does not exist" -> the part after the prefixes), for the user."""
        lines = [line.strip() for line in stderr.split("\n") if line.strip() and line.strip() != "Exiting."]
        words = [re.sub(r"^(Unable to run job: )?(job rejected: )?(denied: )?(error: )?", "", line) for line in lines]
        return "; ".join(w for w in words if w) or "the Grid Engine command failed without a message"

    # ----- what users may ask for (the spawn form's choices) ------------------------------
    def partitions_argv(self) -> list[str]:
        """Every queue instance (queue@host) with its slots, walltime limit, memory and cores."""
        return ["qstat", "-f", "-F", QSTAT_RESOURCES, "-xml"]

    def parse_partitions(self, stdout: str) -> dict[str, Partition]:
        """A cluster queue sums its queue instances (one per host)."""
        hosts: dict[str, list[dict]] = {}
        for instance in _xml(stdout).iter("Queue-List"):
            queue, _, host = _text(instance, "name").partition("@")
            if not queue:
                continue
            resources = {r.get("name"): (r.text or "").strip() for r in instance.findall("resource")}
            hosts.setdefault(queue, []).append({
                "host": host, "slots": int(_text(instance, "slots_total") or 0),
                "h_rt": resources.get("h_rt", ""), "memory": resources.get("mem_total", ""),
                "cpus": resources.get("num_proc", ""),
            })
        found = {}
        for queue, instances in hosts.items():
            limits = [parse_walltime(i["h_rt"]) for i in instances]
            memory = [parse_memory_mb(i["memory"]) for i in instances if i["memory"]]
            found[queue] = Partition(
                name=queue, max_walltime=None if None in limits else max(limits),
                nodes=len({i["host"] for i in instances}),
                cores_per_node=max(i["slots"] for i in instances),
                memory_mb_per_node=max(memory, default=0),
            )
        return found

    def availability_argv(self) -> list[str]:
        return ["qstat", "-f", "-xml"]

    def parse_availability(self, stdout: str) -> dict[str, Availability]:
        """Per cluster queue, its instances that take jobs (no state among UNUSABLE_QUEUE_STATES:
        disabled, unknown, error, alarm, suspended, ...): slots free, and hosts with none used."""
        totals: dict[str, list[int]] = {}
        for instance in _xml(stdout).iter("Queue-List"):
            queue, _, _host = _text(instance, "name").partition("@")
            if not queue or set(_text(instance, "state")) & UNUSABLE_QUEUE_STATES:
                continue
            total = int(_text(instance, "slots_total") or 0)
            busy = int(_text(instance, "slots_used") or 0) + int(_text(instance, "slots_resv") or 0)
            counts = totals.setdefault(queue, [0, 0, 0, 0])
            counts[0] += busy == 0
            counts[1] += 1
            counts[2] += max(0, total - busy)
            counts[3] += total
        return {queue: Availability(*counts) for queue, counts in totals.items()}

    def associations_argv(self, user: str) -> list[str]:
        """The projects (Grid Engine's accounts). Their access lists are not read: a project
        closed to the user is refused by qsub, in Grid Engine's words."""
        return ["qconf", "-sprjl"]

    def parse_associations(self, stdout: str) -> dict[str, Association]:
        return {line.strip(): Association(line.strip()) for line in stdout.split("\n")
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.+-]{0,63}", line.strip())}

    def reservations_argv(self) -> list[str]:
        return ["qrstat", "-u", "*", "-xml"]

    def parse_reservations(self, stdout: str) -> list[Reservation]:
        """Advance reservations by id (what `qsub -ar` takes). The summary does not list who
        may use one, so none is offered to users (users=frozenset()) until a site names them."""
        reservations = []
        for summary in _xml(stdout).iter("ar_summary"):
            ar_id = _text(summary, "id")
            if not JOB_ID.fullmatch(ar_id):
                continue
            users = frozenset(a.get("user") for a in summary.iter("acl") if a.get("user"))
            # state: w(aiting) until its start, r(unning) from then (qrstat(1))
            reservations.append(Reservation(ar_id, users, frozenset(), _text(summary, "end_time") or None,
                                            _text(summary, "start_time") or None, active=_text(summary, "state") == "r"))
        return reservations
