"""Kernels in a batch job while JupyterLab stays where it is: a jupyter_client kernel
provisioner (`KernelProvisionerBase`) that submits the kernel as a job of the cluster's
scheduler, through hpchub's adapter, waits for it in the queue, and connects to it on its
compute node over the cluster's network.

    hpchub kernel add /opt/env --slurm "--partition batch --time 1:00:00" --name batch

registers a kernel spec whose metadata names this provisioner (`hpchub-batch`, an entry point
of jupyter_client) and the submit command's arguments. Opening a notebook on it:

- JupyterLab opens at once; only the kernel waits. While its job waits in the queue the
  server knows why (`WAITING`, read by the queue panel's notice through labqueue.py).
- The job runs `python -m ipykernel_launcher -f FILE --ip=NODE`: ipykernel picks its ports and
  writes the connection file (mode 0600, with the key it made) in ~/.hpchub/kernels, which the
  login node reads through the shared home. The key never passes through the scheduler.
- Interrupts are messages (`interrupt_mode: message`), as a signal cannot reach another node;
  restart submits a new job; shutdown lets the kernel end, and with it the job; the job is
  cancelled if it is still there. A kernel whose job ends is seen dead within `status_interval`.
- The job's environment is the server's minus its secrets (`job_environment`): the hub's API
  token and the like stay on the login node.

It runs where JupyterLab runs (a login node) and imports no JupyterHub.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import KernelProvisionerBase
from traitlets import Float, List, Unicode

from .cluster import scheduler_here
from .kernels import batch_job_script, job_environment, kernels_runtime_dir
from .scheduler_commands import run
from .schedulers import SCHEDULERS
from .schedulers.base import JobRequest, JobState, SchedulerError

PROVISIONER = "hpchub-batch"
WAITING: dict[str, dict] = {}
"""Kernel id -> its job while the job waits in the queue (what JupyterLab's notice shows)."""

class BatchKernelProvisioner(KernelProvisionerBase):
    scheduler = Unicode("", config=True, help="The scheduler (slurm, sge); empty: this cluster's.")
    submit_args = List(Unicode(), config=True,
                       help="Arguments of the submit command (sbatch's, qsub's): partition, time, account ...")
    queue_timeout = Float(
        24 * 3600.0, config=True,
        help="Seconds a kernel may wait in the queue; then its job is cancelled and the start fails.")
    start_timeout = Float(120.0, config=True, help="Seconds from the job's start to the kernel's connection file.")
    status_interval = Float(
        30.0, config=True,
        help="Seconds between asking the scheduler whether the job still runs (the kernel restarter asks every "
             "few seconds; the scheduler is asked at most this often).")

    job_id: str | None = None
    _last_alive: float = 0.0

    @property
    def adapter(self):
        return SCHEDULERS[self.scheduler or scheduler_here()]()

    @property
    def has_process(self) -> bool:
        return self.job_id is not None

    @property
    def connection_path(self) -> Path:
        return kernels_runtime_dir() / f"kernel-{self.kernel_id}.json"

    @property
    def log_path(self) -> Path:
        return kernels_runtime_dir() / f"kernel-{self.kernel_id}.log"

    # ----- start ------------------------------------------------------------------------
    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = await super().pre_launch(**kwargs)
        manager = self.parent
        kernels_runtime_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        self.connection_path.unlink(missing_ok=True)  # ipykernel writes it once it listens
        cmd = manager.format_kernel_cmd(extra_arguments=kwargs.get("extra_arguments"))
        ours = os.path.realpath(manager.connection_file)
        kwargs["cmd"] = [str(self.connection_path) if word == ours else word for word in cmd]
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict:
        adapter = self.adapter
        name = f"jupyter-kernel-{self.kernel_id[:8]}"
        script = adapter.job_script(JobRequest(name=name, script=batch_job_script(cmd, kwargs.get("cwd")),
                                               output=str(self.log_path)))
        argv = [*adapter.submit_argv(), *self.submit_args]
        answer = await run(argv, input=script, env=job_environment(kwargs.get("env") or os.environ))
        code, stdout, stderr = answer.returncode, answer.stdout, answer.stderr
        if code != 0:
            self.log.warning("hpchub batch kernel: %s exited %s: %s", argv, code, stderr.strip()[-500:])
            raise RuntimeError(f"the kernel's job was refused: {adapter.error_message(stderr) or stderr.strip()}")
        self.job_id = adapter.parse_submit(stdout)
        self.log.info("hpchub batch kernel %s: job %s submitted (%s)", self.kernel_id, self.job_id, " ".join(argv))
        try:
            await self._wait_until_listening()
        except BaseException:
            await self._cancel()
            raise
        finally:
            WAITING.pop(self.kernel_id, None)
        info = json.loads(self.connection_path.read_text())
        info["key"] = info["key"].encode()
        self.connection_info = info
        self._last_alive = time.monotonic()
        return info

    async def _status(self):
        adapter = self.adapter
        answer = await run(adapter.status_argv([self.job_id]))
        if answer.returncode != 0 and not adapter.only_unknown_jobs(answer.stderr):
            raise SchedulerError(adapter.error_message(answer.stderr) or answer.stderr.strip(),
                                 exit_status=answer.returncode, stderr=answer.stderr)
        return adapter.parse_status(answer.stdout).get(self.job_id) if answer.returncode == 0 else None

    async def _wait_until_listening(self) -> None:
        queued = time.monotonic()
        started = None
        while True:
            status = await self._status()
            if status is None or status.state.finished:
                raise RuntimeError(f"the kernel's job {self.job_id} ended before the kernel started"
                                   f"{f' ({status.native_state})' if status else ''}: {self._log_tail()}")
            if status.state == JobState.PENDING:
                WAITING[self.kernel_id] = {"job_id": self.job_id, "reason": status.reason,
                                           "since": time.time() - (time.monotonic() - queued)}
                if time.monotonic() - queued > self.queue_timeout:
                    raise RuntimeError(f"the kernel's job {self.job_id} waited {self.queue_timeout:.0f} s in the "
                                       "queue and was cancelled")
            else:
                WAITING.pop(self.kernel_id, None)
                started = started or time.monotonic()
                if self._listening():
                    return
                if time.monotonic() - started > self.start_timeout:
                    raise RuntimeError(f"the kernel in job {self.job_id} did not start within "
                                       f"{self.start_timeout:.0f} s: {self._log_tail()}")
            await asyncio.sleep(1.0 if started else 3.0)

    def _listening(self) -> bool:
        try:
            info = json.loads(self.connection_path.read_text())
        except (OSError, ValueError):
            return False
        return bool(info.get("shell_port")) and bool(info.get("ip"))

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-5:]) or "no output"
        except OSError:
            return "no output"

    # ----- while it runs ----------------------------------------------------------------
    async def poll(self) -> int | None:
        """None while the job runs; the scheduler is asked at most every status_interval."""
        if self.job_id is None:
            return 0
        if time.monotonic() - self._last_alive < self.status_interval:
            return None
        try:
            status = await self._status()
        except (SchedulerError, OSError) as exc:  # the scheduler not answering is not the kernel's death
            self.log.warning("hpchub batch kernel %s: status of job %s unknown: %s", self.kernel_id, self.job_id, exc)
            return None
        if status is not None and not status.state.finished:
            self._last_alive = time.monotonic()
            return None
        return status.exit_code if status is not None and status.exit_code is not None else 0

    async def wait(self) -> int | None:
        while self.job_id is not None:
            self._last_alive = 0.0
            code = await self.poll()
            if code is not None:
                self.job_id = None
                return code
            await asyncio.sleep(1.0)
        return 0

    async def send_signal(self, signum: int) -> None:
        # Interrupts go as messages (interrupt_mode); any other signal means "end it".
        if signum != 0:
            await self._cancel()

    async def kill(self, restart: bool = False) -> None:
        await self._cancel()

    async def terminate(self, restart: bool = False) -> None:
        await self._cancel()

    async def _cancel(self) -> None:
        if self.job_id is None:
            return
        answer = await run(self.adapter.cancel_argv([self.job_id]))
        if answer.returncode != 0 and not self.adapter.only_unknown_jobs(answer.stderr):
            self.log.warning("hpchub batch kernel %s: cancelling job %s: %s", self.kernel_id, self.job_id,
                             answer.stderr.strip())
        self._last_alive = 0.0

    async def cleanup(self, restart: bool = False) -> None:
        WAITING.pop(self.kernel_id, None)
        self.connection_path.unlink(missing_ok=True)
        self.job_id = None

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return max(recommended, 10.0)  # the kernel ends over the network, then its job

    def get_stable_start_time(self, recommended: float = 10.0) -> float:
        return max(recommended, 20.0)

    # ----- a server restart -------------------------------------------------------------
    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info["job_id"] = self.job_id
        return info

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        await super().load_provisioner_info(provisioner_info)
        self.job_id = provisioner_info.get("job_id")


def provisioner_metadata(scheduler: str, submit_args: list[str]) -> dict:
    """The kernel spec's part that names this provisioner and its settings."""
    return {"kernel_provisioner": {"provisioner_name": PROVISIONER,
                                   "config": {"scheduler": scheduler, "submit_args": list(submit_args)}}}

