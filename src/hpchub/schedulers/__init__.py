"""Batch schedulers as pure adapters: they build job scripts and argv and parse machine
formats; they run nothing themselves. One small module per scheduler over base.py, shared
by the batch spawner and the notebook magics. Imports no JupyterHub."""

from .base import JobRequest, JobState, JobStatus, Scheduler, SchedulerError, ValidationError
from .sge import GridEngine
from .slurm import Slurm

SCHEDULERS: dict[str, type[Scheduler]] = {"slurm": Slurm, "sge": GridEngine}
"""Adapters by name; a new scheduler is one module here (on the contract of base.Scheduler)
and one entry in this table."""

__all__ = ["SCHEDULERS", "JobRequest", "JobState", "JobStatus", "Scheduler", "SchedulerError", "ValidationError"]
