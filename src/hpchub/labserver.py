"""The single-user server's side of hpchub's JupyterLab extension (labextension/): a
jupyter_server extension with the walltime notice's endpoint, GET /hpchub/walltime, and the
queue panel's (labqueue.py).

Inside a Slurm or Grid Engine job it answers with the job's end (asked of the scheduler on the
node, at most once a minute, so an administrator's change of the time limit shows) and the warning threshold the
hub's admin set (HPCHUB_WALLTIME_WARNING_MINUTES, passed by the batch spawner). Elsewhere
it answers {"end": null}. It runs on the cluster and imports nothing of JupyterHub.
"""

from __future__ import annotations

import json
import os
import time

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .cluster import scheduler_here, time_left_in_this_job

CACHE_SECONDS = 60
_cache: dict[str, tuple[float, float | None]] = {}


def job_end(job_id: str) -> float | None:
    """The job's end as a Unix time, from the scheduler on this node; None if unknown."""
    hit = _cache.get(job_id)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    left = time_left_in_this_job(job_id)  # a duration, not an end printed in the user's time zone
    end = time.time() + left if left is not None else started_with_end(job_id)
    _cache[job_id] = (time.monotonic(), end)
    return end


def started_with_end(job_id: str) -> float | None:
    """The end the batch launcher read for this server's own job as it started (HPCHUB_JOB_END):
    where the scheduler cannot be asked from here (a server inside a container image), the
    notice still comes, though a later change of the job's time limit does not show."""
    told = os.environ.get("HPCHUB_JOB_END", "")
    return float(told) if told.isdigit() and job_id == os.environ.get("SLURM_JOB_ID") else None


class WalltimeHandler(APIHandler):
    @web.authenticated
    async def get(self):
        # The job this server runs in: Slurm's SLURM_JOB_ID, or Grid Engine's JOB_ID there.
        job_id = os.environ.get("SLURM_JOB_ID") or (os.environ.get("JOB_ID", "") if scheduler_here() == "sge" else "")
        end = job_end(job_id) if job_id.isdigit() else None
        warn = os.environ.get("HPCHUB_WALLTIME_WARNING_MINUTES", "10")
        self.finish(json.dumps({"job_id": job_id or None, "end": end,
                                "warn_minutes": int(warn) if warn.isdigit() else 10}))


def _jupyter_server_extension_points():
    return [{"module": "hpchub.labserver"}]


def _load_jupyter_server_extension(server_app):
    from .labqueue import handlers as queue_handlers  # the queue panel's endpoints

    base = server_app.web_app.settings["base_url"]
    server_app.web_app.add_handlers(".*$", [(url_path_join(base, "hpchub", "walltime"), WalltimeHandler),
                                            *queue_handlers(base)])


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "hpchub-walltime"}]
