"""Slurm magics for IPython, NERSC's slurm-magic whole: %sacct, %sacctmgr, %salloc, %sbatch,
%%sbatch, %sbcast, %scancel, %scontrol, %sdiag, %sinfo, %slurm, %sprio, %squeue, %sreport,
%srun, %sshare, %sstat, %strigger.

Each runs the Slurm command of its name where the kernel runs (a login or compute node), with
the arguments passed through unchanged (parsed like a shell would: quotes work; an argv list,
never a shell). As in slurm-magic, `%slurm display pandas` (the default) gives the table
commands' output as a DataFrame with the command's own columns, for whatever format the user
asked (tables.py), and `%slurm display raw` gives the text as the command printed it. On top
of slurm-magic: `%sbatch` returns a job handle (`job.id`, `job.state`, `job.wait()`,
`job.cancel()`, `job.output()`) that prints as sbatch does, `%scontrol show job ID` a dict.

A failure (a non-zero exit) raises SlurmError with Slurm's own words, which the cell shows as
that text alone (show_scheduler_error, installed by `%load_ext`): no traceback, and code that
catches the exception still can. Job states are parsed by the scheduler adapter
(hpchub.schedulers.slurm): one parser for the magics and the spawner.
"""

from __future__ import annotations

import html
import shlex
import subprocess
import sys
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from ..schedulers import JobState
from ..schedulers.slurm import Slurm
from .tables import parse

slurm = Slurm()


class SlurmError(UsageError):
    """A scheduler command failed: its own words. (A UsageError, for code that catches those;
    IPython shows only UsageError itself without a traceback, hence show_scheduler_error.)"""


def show_scheduler_error(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler for SlurmError: the scheduler's words alone, on the
    cell's stderr; the cell still counts as failed (nbclient, "run all" stop there)."""
    print(str(value), file=sys.stderr)


class Text(str):
    """A command's output as it printed it: a str, shown without quotes."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))


def run(argv: list[str], input: str | None = None, timeout: float = 120, stderr_errors: bool = False,
        words=None) -> str:
    """Run argv; a non-zero exit (or, with stderr_errors, an "error:" line on stderr from a
    command that exits 0 regardless, like scancel) raises SlurmError (the magics' error, for
    every scheduler) with the scheduler's words: stderr, or words(stderr) where an adapter
    picks them out (Grid Engine's "Unable to run job: ... Exiting.")."""
    try:
        # (no input: nothing of the kernel's stdin, so salloc without a command ends at once)
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              **({} if input is not None else {"stdin": subprocess.DEVNULL}))
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


def table(rows: list[dict], columns: list[str] | None = None):
    try:
        import pandas
    except ImportError:
        return Records(rows)
    return pandas.DataFrame(rows, columns=columns)


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

        handle = display(Text(f"job {self.id}: waiting"), display_id=True)
        start = time.monotonic()
        while True:
            status = self.status()
            state = status.state if status else JobState.UNKNOWN
            line = f"job {self.id}: {status.native_state if status else 'UNKNOWN'}"
            if status and status.reason and state is JobState.PENDING:
                line += f" ({status.reason})"
            line += f" - {time.monotonic() - start:.0f} s"
            if handle is not None:
                handle.update(Text(line))
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


# The table commands: a DataFrame in pandas mode. The others print what the command printed.
TABLES = ("sacct", "sacctmgr", "sinfo", "sprio", "squeue", "sreport", "sshare", "sstat")
# Commands that run a job step or wait for one get longer than a query (seconds).
LONG = {"salloc": 3600, "srun": 3600, "sbcast": 600}
# Commands whose -p/-P print "|"-separated fields (for squeue, sinfo, sprio -p is a partition).
PARSABLE = ("sacct", "sacctmgr", "sreport", "sshare", "sstat")


@magics_class
class SlurmMagics(Magics):
    def __init__(self, shell=None, **kwargs):
        super().__init__(shell, **kwargs)
        self.display = "pandas"  # `%slurm display raw|pandas`, as in NERSC's slurm-magic

    @line_magic
    def slurm(self, line: str):
        """`%slurm display raw` (text as the commands print it) or `%slurm display pandas`
        (tables as DataFrames, the default); `%slurm display` says which."""
        words = line.lower().split()
        if not words or words[0] != "display" or len(words) > 2:
            raise SlurmError("usage: %slurm display [raw|pandas]")
        if len(words) == 2:
            if words[1] not in ("raw", "pandas"):
                raise SlurmError(f"unknown display mode {words[1]!r}: raw or pandas")
            self.display = words[1]
        return Text(self.display)

    def command(self, name: str, line: str, input: str | None = None):
        """Run Slurm's `name` with the line's arguments; its output as the display mode says."""
        args = split(line)
        output = run([name, *args], input=input, timeout=LONG.get(name, 120))
        if self.display == "pandas" and name in TABLES:
            delimited = name in PARSABLE and has_option(args, "-p", "--parsable", "-P", "--parsable2")
            found = parse(output, delimited=delimited)
            return table(found.rows, found.columns)
        return Text(output)

    @line_cell_magic
    def sbatch(self, line: str, cell: str | None = None):
        """Submit a batch job: `%sbatch ARGS` (e.g. --wrap "..." or a script file), or
        `%%sbatch ARGS` with the cell as the script. Returns a job handle."""
        args = split(line)
        argv = ["sbatch", *([] if has_option(args, "--parsable") else ["--parsable"]), *args]
        return Job(slurm.parse_submit(run(argv, input=cell)))

    @line_magic
    def scancel(self, line: str):
        """Cancel jobs (scancel's options work); an unknown job id is reported."""
        scancel(split(line))

    @line_magic
    def scontrol(self, line: str):
        """`%scontrol show job ID`: a dict in pandas mode; anything else as scontrol prints it."""
        args = split(line)
        if self.display == "pandas" and args[:2] == ["show", "job"] and len(args) == 3:
            return scontrol_fields(run(["scontrol", "--oneliner", *args]))
        return Text(run(["scontrol", *args]))

    @line_magic
    def sacct(self, line: str):
        """Accounting data of jobs and steps."""
        return self.command("sacct", line)

    @line_magic
    def sacctmgr(self, line: str):
        """View (and, for administrators, modify) accounts and associations."""
        return self.command("sacctmgr", line)

    @line_magic
    def salloc(self, line: str):
        """An allocation for a command (`%salloc -N 1 hostname`); its output."""
        return self.command("salloc", line)

    @line_magic
    def sbcast(self, line: str):
        """Copy a file to the nodes of the job the kernel runs in."""
        return self.command("sbcast", line)

    @line_magic
    def sdiag(self, line: str):
        """The scheduler's diagnostics, as sdiag prints them."""
        return self.command("sdiag", line)

    @line_magic
    def sinfo(self, line: str):
        """Partitions and nodes."""
        return self.command("sinfo", line)

    @line_magic
    def sprio(self, line: str):
        """The factors of pending jobs' priorities."""
        return self.command("sprio", line)

    @line_magic
    def squeue(self, line: str):
        """The queue, with squeue's own columns (`-o`/`--format` included)."""
        return self.command("squeue", line)

    @line_magic
    def sreport(self, line: str):
        """Reports from accounting (the table, without sreport's title lines)."""
        return self.command("sreport", line)

    @line_magic
    def srun(self, line: str):
        """A job step (in an allocation, or a new one): its output."""
        return self.command("srun", line)

    @line_magic
    def sshare(self, line: str):
        """Fair-share and usage of associations."""
        return self.command("sshare", line)

    @line_magic
    def sstat(self, line: str):
        """Status of a running job's steps."""
        return self.command("sstat", line)

    @line_magic
    def strigger(self, line: str):
        """Event triggers."""
        return self.command("strigger", line)
