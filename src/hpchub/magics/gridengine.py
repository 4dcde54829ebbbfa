"""Grid Engine magics for IPython: %qsub (and %%qsub with the cell as the script), %qstat,
%qdel, on the same footing as the Slurm magics (slurm.py): argv lists parsed like a shell
would, Grid Engine's own words for a failure (no traceback), tables as DataFrames, a job handle
from %qsub. Parsing is the scheduler adapter's (hpchub.schedulers.sge), as for the spawner.

`%load_ext hpchub.magics` registers them where the server runs on a Grid Engine cluster (the
hub says so in HPCHUB_SCHEDULER; without it, where qsub is found and sbatch is not).
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from ..schedulers.sge import GridEngine
from .slurm import JobHandle, SlurmError, split, table
from .slurm import run as run_command

sge = GridEngine()


def run(argv: list[str], input: str | None = None) -> str:
    """argv's output; a failure raises SlurmError (the magics' error) in Grid Engine's words."""
    return run_command(argv, input=input, words=sge.error_message)


class GridEngineJob(JobHandle):
    """What `%qsub` returns: prints as qsub does ("Your job N has been submitted")."""

    def __repr__(self) -> str:
        return f"Your job {self.id} has been submitted"

    def status(self):
        jobs = sge.parse_status(run(sge.status_argv()))
        if self.id in jobs:
            return jobs[self.id]
        try:  # gone from qstat: accounting remembers (a second or so after the job's end)
            return sge.parse_accounting(run(sge.accounting_argv([self.id]))).get(self.id)
        except SlurmError:
            return None  # accounting has no record (deleted before it started) or none yet

    def cancel(self) -> None:
        run(sge.cancel_argv([self.id]))


@magics_class
class GridEngineMagics(Magics):
    @line_cell_magic
    def qsub(self, line: str, cell: str | None = None):
        """Submit a job: `%qsub ARGS` (e.g. `-b y sleep 60` or a script file), or `%%qsub ARGS`
        with the cell as the script. Returns a job handle."""
        args = split(line)
        argv = ["qsub", *([] if "-terse" in args else ["-terse"]), *args]
        return GridEngineJob(sge.parse_submit(run(argv, input=cell if cell is not None else None)))

    @line_magic
    def qstat(self, line: str):
        """The queue (qstat's own options work: `-u '*'`, `-s r`, ...); a table. Options that
        change qstat's output form (-f, -j, -g) print it as qstat does."""
        args = split(line)
        if any(a in ("-f", "-j", "-g", "-F", "-t", "-ext", "-explain") for a in args):
            print(run(["qstat", *args]), end="")
            return None
        rows = [{"JOBID": job.job_id, "NAME": job.name, "USER": job.user, "STATE": job.native_state,
                 "QUEUE_HOST": ",".join(job.nodes), "START": job.start or "", "END": job.end or ""}
                for job in sge.parse_status(run(["qstat", "-xml", "-r", *args])).values()]
        return table(rows)

    @line_magic
    def qdel(self, line: str):
        """Delete jobs (qdel's options work); Grid Engine's answer is printed."""
        print(run(["qdel", *split(line)]), end="")
