"""IPython extension: `%load_ext hpchub.magics` (NERSC's `%load_ext slurm_magic` works too)."""

import importlib.util
import os
import shutil
import sys

from .gridengine import GridEngineJob, GridEngineMagics
from .slurm import Job, Records, SlurmError, SlurmMagics

__all__ = ["GridEngineJob", "GridEngineMagics", "Job", "Records", "SlurmError", "SlurmMagics",
           "load_ipython_extension", "scheduler_here"]


def scheduler_here() -> str:
    """The batch system of the cluster this kernel runs on: what the hub told the server
    (HPCHUB_SCHEDULER: "slurm" or "sge"), else what is installed (Slurm where sbatch is)."""
    told = os.environ.get("HPCHUB_SCHEDULER", "")
    if told in ("slurm", "sge"):
        return told
    return "sge" if shutil.which("qsub") and not shutil.which("sbatch") else "slurm"


def load_ipython_extension(ipython) -> None:
    if scheduler_here() == "sge":
        ipython.register_magics(GridEngineMagics)
    else:
        ipython.register_magics(SlurmMagics)
        answer_for_slurm_magic()


def answer_for_slurm_magic() -> None:
    """NERSC's notebooks say `%load_ext slurm_magic`. Where NERSC's slurm-magic is not installed,
    that name answers with hpchub's magics in this process (the site's kernels load hpchub's
    magics first). No module of that name is installed, so NERSC's package, where a site has it,
    is never overwritten and is what that line loads."""
    if "slurm_magic" not in sys.modules and importlib.util.find_spec("slurm_magic") is None:
        sys.modules["slurm_magic"] = sys.modules[__name__]
