"""Slurm magics for IPython: %sbatch, %%sbatch, %squeue, %scancel, %sacct, %sinfo,
%scontrol, with the names and arguments of NERSC's slurm-magic.

They run Slurm's commands where the kernel runs (a login or compute node), as argv lists
parsed like a shell would (quotes work), and respect exit codes: a failure shows Slurm's own
message, never a traceback. Tables come back as pandas DataFrames when pandas is installed,
as records with an HTML view otherwise. Parsing is the scheduler adapter's
(hpchub.schedulers.slurm): one parser for the magics and the spawner.
"""

from __future__ import annotations

import html
import shlex
import subprocess
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from ..schedulers import JobState
from ..schedulers.slurm import Slurm

slurm = Slurm()


class SlurmError(UsageError):
    """Shown by IPython as its message alone: Slurm's words, no traceback."""


def run(argv: list[str], input: str | None = None, timeout: float = 120, stderr_errors: bool = False,
        words=None) -> str:
    """Run argv; a non-zero exit (or, with stderr_errors, an "error:" line on stderr from a
    command that exits 0 regardless, like scancel) raises SlurmError (the magics' error, for
    every scheduler) with the scheduler's words: stderr, or words(stderr) where an adapter
    picks them out (Grid Engine's "Unable to run job: ... Exiting.")."""
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(f"{argv[0]}: not found here; is this a node of a Slurm cluster?") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        said = proc.stderr.strip() or proc.stdout.strip()
        raise SlurmError((words(said) if words and said else said) or f"{argv[0]} exited {proc.returncode}")
    if stderr_errors:
        errors = [line for line in proc.stderr.splitlines() if ": error:" in line]
        if errors:
            raise SlurmError("\n".join(errors))
    return proc.stdout


def scancel(args: list[str]) -> None:
    # scancel exits 0 even for an unknown job id; --verbose makes it say so on stderr.
    run(["scancel", "--verbose", *args], stderr_errors=True)


def split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise SlurmError(f"cannot parse the arguments: {exc}") from None


class Records(list):
    """Rows as dicts, with an HTML table for the notebook (when pandas is not installed)."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p><i>(no rows)</i></p>"
        columns = list(self[0])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                       for r in self)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def table(rows: list[dict]):
    try:
        import pandas
    except ImportError:
        return Records(rows)
    return pandas.DataFrame(rows)


def delimited(text: str, sep: str = "|") -> list[dict]:
    """Rows of delimited output whose first line is the header."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split(sep)
    return [dict(zip(header, line.split(sep))) for line in lines[1:]]


def has_option(args: list[str], *names: str) -> bool:
    return any(a == n or a.startswith(n + "=") or (len(n) == 2 and a.startswith(n) and len(a) > 2)
               for a in args for n in names)


class JobHandle:
    """What the submit magics return (Job for Slurm, GridEngineJob for Grid Engine): the job's
    id, its state, and a wait with a live status line. A subclass says how to ask (status)."""

    def __init__(self, job_id: str):
        self.id = job_id

    def status(self):
        raise NotImplementedError

    @property
    def state(self) -> str:
        status = self.status()
        return status.native_state if status else "UNKNOWN"

    def wait(self, timeout: float | None = None, poll: float = 2.0) -> str:
        """Wait until the job ends, with a live status line; returns its final state."""
        from IPython.display import display

        handle = display(f"job {self.id}: waiting", display_id=True)
        start = time.monotonic()
        while True:
            status = self.status()
            state = status.state if status else JobState.UNKNOWN
            line = f"job {self.id}: {status.native_state if status else 'UNKNOWN'}"
            if status and status.reason and state is JobState.PENDING:
                line += f" ({status.reason})"
            line += f" - {time.monotonic() - start:.0f} s"
            if handle is not None:
                handle.update(line)
            if state.finished or (status is None and time.monotonic() - start > 30):
                return status.native_state if status else "UNKNOWN"
            if timeout is not None and time.monotonic() - start > timeout:
                raise SlurmError(f"job {self.id} is still {line.split(': ', 1)[1]} after {timeout:.0f} s")
            time.sleep(poll)


class Job(JobHandle):
    """What `%sbatch` returns: prints as slurm-magic did ("Submitted batch job N")."""

    def __repr__(self) -> str:
        return f"Submitted batch job {self.id}"

    def status(self):
        jobs = slurm.parse_status(run(slurm.status_argv([self.id])))
        if self.id in jobs:
            return jobs[self.id]
        # Gone from squeue (MinJobAge): accounting remembers.
        return slurm.parse_accounting(run(slurm.accounting_argv([self.id]))).get(self.id)

    def cancel(self) -> None:
        scancel(slurm.cancel_argv([self.id])[1:])

    def output(self) -> str:
        """The job's output file (StdOut in scontrol), as text."""
        info = scontrol_fields(run(["scontrol", "--oneliner", "show", "job", self.id]))
        path = info.get("StdOut")
        if not path:
            raise SlurmError(f"job {self.id} has no output file")
        try:
            with open(path) as f:
                return f.read()
        except OSError as exc:
            raise SlurmError(f"cannot read {path}: {exc.strerror}") from None


def scontrol_fields(text: str) -> dict[str, str]:
    """`scontrol --oneliner show ...` as a dict (values may not contain spaces in that form)."""
    fields = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


@magics_class
class SlurmMagics(Magics):
    @line_cell_magic
    def sbatch(self, line: str, cell: str | None = None):
        """Submit a batch job: `%sbatch ARGS` (e.g. --wrap "..." or a script file), or
        `%%sbatch ARGS` with the cell as the script. Returns a job handle."""
        args = split(line)
        argv = ["sbatch", *([] if has_option(args, "--parsable") else ["--parsable"]), *args]
        if cell is not None:
            return Job(slurm.parse_submit(run(argv, input=cell)))
        return Job(slurm.parse_submit(run(argv)))

    @line_magic
    def squeue(self, line: str):
        """The queue (squeue's own options work); a table."""
        args = split(line)
        if has_option(args, "-o", "--format", "-O", "--Format"):
            return Records({"output": row} for row in run(["squeue", *args]).splitlines())
        rows = []
        for job in slurm.parse_status(run(slurm.status_argv(all_states=False) + args)).values():
            rows.append({"JOBID": job.job_id, "NAME": job.name, "USER": job.user, "STATE": job.native_state,
                         "REASON": job.reason, "NODELIST": ",".join(job.nodes), "START": job.start or "",
                         "END": job.end or ""})
        return table(rows)

    @line_magic
    def scancel(self, line: str):
        """Cancel jobs (scancel's options work); an unknown job id is reported."""
        scancel(split(line))

    @line_magic
    def sacct(self, line: str):
        """Accounting (sacct's options work); a table."""
        args = split(line)
        return table(delimited(run(["sacct", "--parsable2", *args])))

    @line_magic
    def sinfo(self, line: str):
        """Partitions and nodes (sinfo's options work); a table."""
        args = split(line)
        if has_option(args, "-o", "--format", "-O", "--Format"):
            return Records({"output": row} for row in run(["sinfo", *args]).splitlines())
        return table(delimited(run(["sinfo", "--format=%P|%a|%l|%D|%T|%N", *args])))

    @line_magic
    def scontrol(self, line: str):
        """`%scontrol show job ID` as a dict; other scontrol commands as their text."""
        args = split(line)
        if args[:2] == ["show", "job"] and len(args) == 3:
            return scontrol_fields(run(["scontrol", "--oneliner", *args]))
        output = run(["scontrol", *args])
        print(output, end="")
