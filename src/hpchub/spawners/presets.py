"""hpchub-ssh and hpchub-slurm: presets of the one spawner (spawner.py), each with one implicit
target and no form, so that the configurations of their users keep working."""

from __future__ import annotations

from traitlets import default

from .spawner import HPCSpawner
from .targets import FIELDS


class SSHSpawner(HPCSpawner):
    """Jupyter on a login node over SSH (entry point ``hpchub-ssh``): HPCSpawner with one
    implicit login-node target and no form."""

    def target_specs(self) -> list[dict]:
        # Implicit, whatever c.HPCSpawner.targets says (that setting is the one-page spawner's).
        return [{"name": "login", "title": "Login node", "kind": "login"}]

    @default("options_form")
    def _default_options_form(self):
        return ""

    @default("start_timeout")
    def _default_start_timeout(self):
        return 60  # JupyterHub's own default: no batch queue to wait for

    @default("login_start_timeout")
    def _default_login_start_timeout(self):
        return float(self.start_timeout)  # hpchub-ssh always took JupyterHub's start_timeout


class SlurmSpawner(HPCSpawner):
    """Jupyter in a Slurm job (entry point ``hpchub-slurm``): HPCSpawner with one implicit
    batch target made of the job settings (partition, walltime, ...) and no form; users may
    change any job field, and Slurm judges the values."""

    @default("check_against_scheduler")
    def _default_check_against_scheduler(self):
        return False

    def target_specs(self) -> list[dict]:
        # Implicit, whatever c.HPCSpawner.targets says (that setting is the one-page spawner's).
        settings = {"partition": self.partition, "account": self.account, "qos": self.qos, "walltime": self.walltime,
                    "nodes": self.nodes, "cores": self.cores, "memory_mb": self.memory_mb, "gpus": self.gpus,
                    "constraint": self.constraint, "reservation": self.reservation}
        return [{"name": "job", "title": "this server", "kind": "batch", "choose": list(FIELDS),
                 "defaults": {key: value for key, value in settings.items() if value not in ("", 0)}}]

    @default("options_form")
    def _default_options_form(self):
        return ""
