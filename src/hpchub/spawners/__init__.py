"""hpchub's JupyterHub spawner: one class, HPCSpawner (entry point ``hpchub``), and its presets
SSHSpawner (``hpchub-ssh``) and SlurmSpawner (``hpchub-slurm``). See spawner.py."""

from .spawner import HPCSpawner, SlurmSpawner, SSHSpawner

__all__ = ["HPCSpawner", "SSHSpawner", "SlurmSpawner"]
