"""IPython extension: `%load_ext hpchub.magics` (NERSC's `%load_ext slurm_magic` works too)."""

from .slurm import Job, Records, SlurmError, SlurmMagics

__all__ = ["Job", "Records", "SlurmError", "SlurmMagics", "load_ipython_extension"]


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(SlurmMagics)
