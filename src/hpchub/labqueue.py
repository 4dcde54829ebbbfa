"""The single-user server's side of JupyterLab's queue panel (labextension/src/queue.js): the
user's jobs on the cluster this server runs on, and what may be done with them, through the
same scheduler adapter as the hub's, run here on the node as the user.

    GET  /hpchub/queue                      the jobs, and which actions this scheduler offers
    POST /hpchub/queue/JOB/cancel|hold|release
    GET  /hpchub/queue/JOB/output           where the job writes its output (a path in the file browser)
    POST /hpchub/queue       {"path": ...}  submit a script file of the file browser as it is
    GET  /hpchub/queue/kernels              the kernels whose batch jobs wait in the queue
                                            (batch_kernel.WAITING: no scheduler query)

One scheduler query serves every panel of the server for QUEUE_SECONDS (several browser tabs
do not multiply queries); an action empties it. Every command is an argv list from the adapter
with a timeout; a refusal comes back in the scheduler's own words. It imports no JupyterHub.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import time
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from tornado import web

from .cluster import scheduler_here
from .schedulers import SCHEDULERS
from .scheduler_commands import checked
from .schedulers.base import Scheduler, SchedulerError

QUEUE_SECONDS = 5.0
ACTIONS = ("cancel", "hold", "release")


class Queue:
    """The user's jobs, asked of the scheduler at most once per QUEUE_SECONDS."""

    def __init__(self, adapter: Scheduler, user: str):
        self.adapter = adapter
        self.user = user
        self._listing: tuple[float, dict] | None = None
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        self._listing = None

    async def listing(self) -> dict:
        async with self._lock:
            if self._listing is not None and time.monotonic() - self._listing[0] < QUEUE_SECONDS:
                return self._listing[1]
            try:
                stdout = await checked(self.adapter, self.adapter.status_argv(user=self.user))
                jobs = [job_entry(self.adapter, status) for status in self.adapter.parse_status(stdout).values()]
                error = None
            except SchedulerError as exc:
                jobs, error = [], exc.user_message
            listing = {"jobs": jobs, "error": error, "asked_at": time.time()}
            self._listing = (time.monotonic(), listing)
            return listing


def job_entry(adapter: Scheduler, status) -> dict:
    return {"id": status.job_id, "name": status.name, "state": status.state.value,
            "native_state": status.native_state, "reason": status.reason, "nodes": ",".join(status.nodes),
            "start": status.start, "end": status.end, "held": adapter.is_held(status)}


def offered(adapter: Scheduler) -> dict[str, bool]:
    """Which actions this scheduler's adapter offers (the panel shows only those)."""
    probe = ["1"]
    return {"cancel": True, "hold": adapter.hold_argv(probe) is not None,
            "release": adapter.release_argv(probe) is not None,
            "submit": adapter.submit_file_argv("/probe") is not None, "output": adapter.output_argv("1") is not None}


def inside(root: Path, path: Path) -> str | None:
    """path relative to root if it lies inside it (links resolved), else None."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def script_file(root: Path, relative) -> Path:
    """The script a submit names (a path relative to the server's root), resolved; ValueError
    saying what is wrong with it. The one check of that path."""
    if not isinstance(relative, str) or not relative.strip() or "\0" in relative:
        raise ValueError("name the script file to submit")
    shown = relative if len(relative) <= 200 else relative[:200] + "..."
    try:
        script = (root / relative.lstrip("/")).resolve()
        if inside(root, script) is None:
            raise ValueError("only files in the file browser's folders can be submitted")
        if not script.is_file():
            raise ValueError(f"{shown} is not a file")
    except OSError as exc:  # a name too long, a loop of links, ...
        raise ValueError(f"{shown} cannot be read: {exc.strerror}") from None
    return script


class QueueHandler(APIHandler):
    """Shared by the panel's requests: the adapter of this cluster's scheduler and the one Queue."""

    @property
    def queue(self) -> Queue:
        settings = self.settings
        if "hpchub_queue" not in settings:
            settings["hpchub_queue"] = Queue(SCHEDULERS[scheduler_here()](), getpass.getuser())
        return settings["hpchub_queue"]

    @property
    def root(self) -> Path:
        return Path(self.settings.get("server_root_dir") or os.getcwd()).expanduser()

    def refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"error": message}))

    async def is_listed(self, job_id: str) -> bool:
        """Whether the job is one of the user's that the scheduler lists now; if not, the answer
        (404) is given. Actions are for those only: Slurm's scancel says nothing, and exits 0,
        for a job it does not know."""
        self.queue.forget()
        listing = await self.queue.listing()
        if listing["error"] is not None:
            self.refuse(503, f"the scheduler did not answer: {listing['error']}")
            return False
        if job_id not in {job["id"] for job in listing["jobs"]}:
            self.refuse(404, f"job {job_id} is not one of your jobs in the queue")
            return False
        return True

    def failed(self, exc: SchedulerError) -> None:
        self.log.warning("hpchub queue: %s (command %s, exit %s, stderr %r)", exc.user_message, exc.argv,
                         exc.exit_status, exc.stderr[-500:])
        self.refuse(400, exc.user_message)


class JobsHandler(QueueHandler):
    @web.authenticated
    async def get(self):
        listing = await self.queue.listing()
        self.finish(json.dumps({"scheduler": scheduler_here(), "cluster": os.environ.get("HPCHUB_CLUSTER", ""),
                                "user": self.queue.user, "can": offered(self.queue.adapter), **listing}))

    @web.authenticated
    async def post(self):
        """Submit a script file of the file browser (a path relative to the server's root)."""
        try:
            relative = json.loads(self.request.body or b"{}").get("path")
        except (ValueError, AttributeError):
            relative = None
        try:
            script = script_file(self.root, relative)
        except ValueError as exc:
            return self.refuse(400, f"path: {exc}")
        adapter = self.queue.adapter
        try:
            argv = adapter.submit_file_argv(str(script))
            if argv is None:
                return self.refuse(400, f"submitting script files is not offered on this cluster ({scheduler_here()})")
            job_id = adapter.parse_submit(await checked(adapter, argv, cwd=str(script.parent)))
        except SchedulerError as exc:
            return self.failed(exc)
        self.queue.forget()
        self.log.info("hpchub queue: submitted %s as job %s", relative, job_id)
        self.finish(json.dumps({"job_id": job_id}))


class JobActionHandler(QueueHandler):
    @web.authenticated
    async def post(self, job_id: str, action: str):
        if not await self.is_listed(job_id):
            return
        adapter = self.queue.adapter
        build = {"cancel": adapter.cancel_argv, "hold": adapter.hold_argv, "release": adapter.release_argv}[action]
        try:
            argv = build([job_id])
            if argv is None:
                return self.refuse(400, f"{action} is not offered on this cluster ({scheduler_here()})")
            await checked(adapter, argv)
        except SchedulerError as exc:
            return self.failed(exc)
        self.queue.forget()
        self.finish(json.dumps({"job_id": job_id, "done": action}))


class JobOutputHandler(QueueHandler):
    @web.authenticated
    async def get(self, job_id: str):
        if not await self.is_listed(job_id):
            return
        adapter = self.queue.adapter
        try:
            argv = adapter.output_argv(job_id)
            if argv is None:
                return self.refuse(400, f"finding a job's output is not offered on this cluster ({scheduler_here()})")
            path = adapter.parse_output(job_id, await checked(adapter, argv))
        except SchedulerError as exc:
            return self.failed(exc)
        if path is None:
            return self.refuse(404, f"the scheduler does not say where job {job_id} writes its output")
        try:
            relative, exists = inside(self.root, Path(path)), Path(path).exists()
        except OSError:  # a path the scheduler gave that cannot be looked at here
            relative, exists = None, False
        self.finish(json.dumps({"job_id": job_id, "path": relative, "absolute": path, "exists": exists,
                                "message": None if relative is not None else
                                f"its output, {path}, is outside the file browser's folders"}))


class WaitingKernelsHandler(APIHandler):
    @web.authenticated
    async def get(self):
        try:
            from .batch_kernel import WAITING
        except ImportError:  # a jupyter_client without provisioners: no batch kernels here
            WAITING = {}
        now = time.time()
        self.finish(json.dumps({"waiting": [
            {"kernel_id": kernel_id, "job_id": job["job_id"], "reason": job["reason"],
             "waited": round(now - job["since"])} for kernel_id, job in list(WAITING.items())]}))


def handlers(base_url: str) -> list[tuple]:
    from jupyter_server.utils import url_path_join

    job = r"(?P<job_id>[0-9]{1,12}(?:_[0-9]{1,9})?)"
    return [
        (url_path_join(base_url, "hpchub", "queue"), JobsHandler),
        (url_path_join(base_url, "hpchub", "queue", "kernels"), WaitingKernelsHandler),
        (url_path_join(base_url, "hpchub", "queue", job, f"(?P<action>{'|'.join(ACTIONS)})"), JobActionHandler),
        (url_path_join(base_url, "hpchub", "queue", job, "output"), JobOutputHandler),
    ]
