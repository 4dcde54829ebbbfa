"""hpchub's JupyterHub spawner: one class, HPCSpawner (entry point ``hpchub``), and its presets
SSHSpawner (``hpchub-ssh``) and SlurmSpawner (``hpchub-slurm``). See spawner.py."""

from .presets import SlurmSpawner, SSHSpawner
from .spawner import HPCSpawner

__all__ = ["HPCSpawner", "SSHSpawner", "SlurmSpawner"]
