"""Compatibility with NERSC's slurm-magic: `%load_ext slurm_magic` loads hpchub's magics,
so existing notebooks keep working."""

from hpchub.magics import load_ipython_extension

__all__ = ["load_ipython_extension"]
