"""IPython extension: `%load_ext hpchub.magics` (NERSC's `%load_ext slurm_magic` works too)."""

import importlib.util
import sys

from ..cluster import scheduler_here
from .gridengine import GridEngineJob, GridEngineMagics
from .slurm import Job, Records, SlurmError, SlurmMagics, show_scheduler_error

__all__ = ["GridEngineJob", "GridEngineMagics", "Job", "Records", "SlurmError", "SlurmMagics",
           "load_ipython_extension", "scheduler_here"]


def load_ipython_extension(ipython) -> None:
    # A scheduler's refusal shows as its words alone (IPython prints a traceback for every
    # exception but UsageError itself, and SlurmError is a subclass).
    ipython.set_custom_exc((SlurmError,), show_scheduler_error)
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
