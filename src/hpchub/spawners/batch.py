"""A server in a batch job on compute nodes (the targets of kind `batch`; all of `hpchub-slurm`).

The job is submitted as the user, on a login node over SSH with the user's certificate; the
hub host has no scheduler client and no cluster membership. How a spawn goes:

1. The job request comes checked from the one path of options (options.job_request); its
   script is the admin's template, every value quoted by the adapter. The server's token is
   not in it: the batch launcher runs the submit command with the token in its environment,
   which the job inherits.
2. The job id is saved to the hub's database as soon as the scheduler answers, before
   `start()` returns, so that a hub restart finds the job and resumes its spawn (`resume`,
   called by hpchub.hubapp through the spawner).
3. The job is followed by the pure JobFollower (following.py) on the hub's one shared status
   query: the user sees its state, reason and expected start; a Stop cancels the job.
4. On its first node the job starts the server on a free port of the node's address and
   reports it through the user's (shared) home directory; the hub reaches that port directly
   or through the login node, and the server reaches the hub's API through a forward on the
   login node's cluster-side address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from urllib.parse import urlparse

import jinja2
from jupyterhub.spawner import SpawnException

from ..credentials import SSHCredential
from ..remote import Host, SSHError
from ..remote.launcher import BATCH, launcher_source
from ..schedulers.base import JobRequest, JobState, JobStatus, ValidationError, quote
from ..schedulers.watcher import JobWatcher, WatchedJob
from . import metrics
from .following import AskNode, Connect, Fail, JobFollower, WaitForQueue
from .launch import Launch, cluster_label, new_server_id, spawn_error, with_hub_api_at
from .cluster import SchedulerUnavailable
from .messages import outcome_message
from .options import stored_options
from .state import BatchServer
from .tokens import seal, unseal

DEFAULT_JOB_TEMPLATE = """\
{% for line in setup_lines %}{{ line }}
{% endfor -%}
exec {{ launcher_python | q }} - serve {{ launcher_config | q }} <<'HPCHUB_LAUNCHER_EOF'
{{ launcher_source }}
HPCHUB_LAUNCHER_EOF
"""


class BatchLaunch(Launch):
    kind = "batch"

    def __init__(self, owner, server: BatchServer | None = None, request: JobRequest | None = None):
        super().__init__(owner)
        self.server = server or BatchServer()
        self.request = request  # the checked job; None for a job found again after a restart
        self.resuming = False
        self.waiting_in_queue = False  # read by hpchub.hubapp: queued jobs do not count as spawning

    def saved(self) -> BatchServer:
        return self.server

    @property
    def gpus_asked(self) -> int:
        return self.request.gpus if self.request is not None else 0

    def resume(self) -> None:
        """The next start() follows the saved job instead of submitting a new one."""
        self.resuming = True

    @property
    def where(self) -> str:
        return self.server.node

    def hosts_used(self) -> set[str]:
        return {self.server.submit_host} if self.server.submit_host else set()

    @property
    def job_id(self) -> str:
        return self.server.job_id

    @property
    def end_time(self) -> str:
        return self.server.end_time

    @property
    def watcher(self) -> JobWatcher:
        owner = self.owner
        return owner.cluster.watcher(interval=owner.cluster_config.status_interval, urgent_interval=owner.spawn_status_interval,
                                     grace=owner.gone_grace)

    # ----- start ----------------------------------------------------------------------------
    async def start(self):
        if self.resuming:
            self.resuming = False
            await self._resume()
        else:
            await self._submit()
        return await self._follow()

    def job_body(self) -> str:
        source = launcher_source(BATCH)
        assert "HPCHUB_LAUNCHER_EOF" not in source.replace("'HPCHUB_LAUNCHER_EOF'", "")
        config = {"server_id": self.server_id, "argv": self.server_argv()}
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
        env.filters["q"] = quote
        return env.from_string(self.owner.job_template).render(
            setup_lines=self.owner.all_setup_lines, launcher_python=self.owner.launcher_python,
            launcher_config=json.dumps(config), launcher_source=source.rstrip("\n"))

    def job_request(self) -> JobRequest:
        """The checked request, completed with this server's name, script and output file."""
        target = self.owner.target
        return self.owner.cluster.adapter.validate(dataclasses.replace(
            self.request, name=f"jupyter-{cluster_label(self.owner.name or 'default', 50)}", script=self.job_body(),
            output=f".hpchub/jobs/{self.server_id}/job.out", extra=target.scheduler_args if target else ()))

    async def _submit(self) -> None:
        owner = self.owner
        credential = await self.credential()
        self.server = BatchServer(server_id=new_server_id(owner.user.name, owner.name))
        try:
            request = self.job_request()
        except ValidationError as exc:
            raise spawn_error(f"the job cannot be submitted: {exc}", reason="options",
                              log_message=f"invalid job for {owner._log_name}: {exc}") from None
        host = await self.reachable_login_node(credential)
        await self.ensure_tunnel_service()
        files, grid_env = await self.grid_delivery()  # before the tunnel opens: it may refuse
        env = await self._server_env(host, credential)
        env.update(grid_env)
        adapter = owner.cluster.adapter
        submit = {"action": "submit", "server_id": self.server_id, "argv": adapter.submit_argv(),
                  "script": adapter.job_script(request), "env": env, "files": files,
                  "env_file": not adapter.private_environment}
        owner.event(f"Submitting your job from {host.name}", 15)
        # A Stop while sbatch runs must not leave a job behind: the submission finishes under
        # a shield, and a cancelled spawn cancels the job as soon as its id is known.
        task = asyncio.ensure_future(self.run_launcher(host, credential, submit, "submitting your job", module=BATCH))
        try:
            answer = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: asyncio.ensure_future(self._cancel_orphan(host, t)))
            raise
        if answer.get("status") != "submitted":
            await self.close_tunnels()
            message = adapter.error_message(answer.get("stderr") or answer.get("error") or str(answer))
            raise spawn_error(f"the scheduler refused the job: {message}", reason="submit",
                              log_message=f"submit on {host.name}: {answer}")
        self.server.job_id = adapter.parse_submit(answer["stdout"])
        self.server.submit_host, self.server.phase = host.name, "queued"
        self.server.submitted_at = time.time()
        self.server.sealed_token = await seal(owner.api_token)
        owner.save_state()  # now, not when start() returns: the job may wait for hours
        owner.event(f"Submitted job {self.job_id}", 20, job_id=self.job_id, **self._submitted())

    def tunnel_plan(self):
        host = self.host_named(self.server.submit_host)
        if host is None or not self.server.remote_port:
            return None  # (compute nodes reach the hub directly: no tunnel)
        bind = (self.login_node(host.name) or {}).get("cluster_address") or "127.0.0.1"
        forward = {"remote_address": [self.server.address, self.server.port], "local_port": self.server.local_port} \
            if self.server.local_port else None
        return host, {"remote_port": self.server.remote_port, "bind": bind}, forward

    async def _resume(self) -> None:
        """Take up a queued job again after a hub restart (see hpchub.hubapp)."""
        await self.ensure_tunnels()  # the job, when it starts, reaches the hub on its saved port
        token = await unseal(self.server.sealed_token)
        if token:
            # JupyterHub sees a token it did not make, keeps this one (which the queued job
            # carries), drops the new one and points the OAuth client at it.
            self.owner.api_token = token
        self.owner.save_state()
        self.owner.event(f"The hub restarted; following job {self.job_id} again", 20, job_id=self.job_id)

    async def _server_env(self, host: Host, credential: SSHCredential) -> dict:
        owner = self.owner
        env = owner.get_env()
        env["HPCHUB_WALLTIME_WARNING_MINUTES"] = str(owner.walltime_warning_minutes)
        if owner.hub_connect_url:
            return env  # compute nodes reach the hub directly: get_env used hub_connect_url
        hub_api = urlparse(owner.hub.api_url)
        bind = (self.login_node(host.name) or {}).get("cluster_address") or "127.0.0.1"
        opened = await self.tunnel("open", host=host.to_dict(), credential=credential.to_dict(),
                                   hub_api=[hub_api.hostname or "127.0.0.1", hub_api.port], bind=bind)
        self.server.remote_port = opened["remote_port"]
        return with_hub_api_at(env, f"http://{bind}:{opened['remote_port']}{hub_api.path}")

    # ----- following the job (the decisions are JobFollower's) -----------------------------
    async def _follow(self):
        """Follow the job until its server answers, it fails, or it waits too long."""
        owner, watcher, job_id = self.owner, self.watcher, self.job_id
        watched = watcher.watch(job_id, urgent=True)
        host = self.host_named(self.server.submit_host)
        # Waits count from the submission (saved), also for a job taken up after a hub restart.
        since_submission = max(0.0, time.time() - self.server.submitted_at) if self.server.submitted_at else 0.0
        follower = JobFollower(job_id, now=time.monotonic() - since_submission, max_queue_wait=owner.max_queue_wait,
                               ready_timeout=owner.ready_timeout, launcher_wait=owner.launcher_wait,
                               reservation_start=await self._reservation_start())
        try:
            while True:
                step = follower.on_queue(watched.status, watched.final, time.monotonic())
                self._tell(follower)
                if isinstance(step, WaitForQueue):
                    await watcher.next_poll(timeout=watcher.current_interval() + 5)
                    continue
                if isinstance(step, AskNode):
                    credential = await self.credential_or_none()  # read each time: it is renewed
                    report = await self.run_launcher(host, credential, {"action": "await", "server_id": self.server_id,
                                                                        "timeout": step.wait},
                                                     "waiting for your job", module=BATCH)
                    step = follower.on_report(report, watched.final, time.monotonic())
                    self._tell(follower)
                    if step is None:
                        continue
                if isinstance(step, Connect):
                    return await self._connect(step.report, watched.status)
                raise await self._failure(step, host)
        finally:
            self.waiting_in_queue = False
            watcher.set_urgent(job_id, False)

    async def _reservation_start(self) -> str | None:
        """The start of the reservation this job asked for, if it has not begun (None otherwise,
        or when the scheduler cannot say just now: the page then has no expected start)."""
        name = self.request.reservation if self.request else stored_options(self.owner.user_options).get("reservation")
        if not name:
            return None
        try:
            reservation = await self.owner.cluster.reservation(str(name), self.owner.choices_ttl)
        except SchedulerUnavailable:
            return None
        return reservation.start if reservation is not None and not reservation.active else None

    def _tell(self, follower: JobFollower) -> None:
        self.waiting_in_queue = follower.waiting_in_queue
        for event in follower.events():
            self.owner.event(event.message, event.progress, **event.fields, **self._submitted())
        waited = follower.take_queue_wait()
        if waited is not None:
            metrics.QUEUE_WAIT.labels(target=self.owner.target_name).observe(waited)

    @property
    def submitted_at(self) -> str:
        """When the job was submitted, ISO in UTC ("" if not known): the pages count the wait from it."""
        if not self.server.submitted_at:
            return ""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.server.submitted_at))

    def _submitted(self) -> dict:
        return {"submitted_at": self.submitted_at} if self.submitted_at else {}

    async def _failure(self, step: Fail, host: Host | None) -> SpawnException:
        if step.reason != "job-ended":
            return spawn_error(step.message, reason=step.reason, log_message=f"job {self.job_id}: {step.message}")
        # The job ended before its server answered: its end in the scheduler's words, and the
        # end of its output.
        output = (step.report or {}).get("output_tail")
        if output is None and host is not None:
            try:
                answer = await self.run_launcher(host, await self.credential_or_none(),
                                                 {"action": "tail", "server_id": self.server_id},
                                                 "reading your job's output", module=BATCH)
                output = answer.get("output_tail", "")
            except SpawnException:
                output = ""
        if step.final is not None:
            what = outcome_message(step.final)
        else:
            what = f"job {self.job_id} ended (its server exited with code {(step.report or {}).get('code')})"
        message = f"{what} before your server answered"
        if output:
            message += ". The end of its output:\n" + output[-1500:]
        self.owner.record_outcome(what, job_id=self.job_id)
        return spawn_error(message, reason="job-ended", log_message=f"job {self.job_id}: {step.final} {step.report}")

    async def _connect(self, report: dict, status: JobStatus | None):
        server = self.server
        server.node, server.address, server.port = report["host"], report["address"], int(report["port"])
        server.end_time = (status.end if status else "") or ""
        if self.owner.connect_to_server == "direct":
            url = (server.address, server.port)
        else:
            forwarded = await self.tunnel("forward", remote_address=[server.address, server.port])
            server.local_port = forwarded["local_port"]
            url = ("127.0.0.1", server.local_port)
        server.phase = "ready"
        self.owner.save_state()
        if not server.end_time:
            # The job was quicker than the shared query: learn its end (for the pages) from the
            # next polls, without holding up the spawn.
            self._end_time_task = asyncio.ensure_future(self._learn_end_time())
        self.owner.event(f"Your server is up on {server.node} (job {self.job_id}); connecting", 90,
                         job_id=self.job_id)
        return url

    async def _learn_end_time(self, timeout: float = 60) -> None:
        job_id = self.job_id

        def known(watched: WatchedJob) -> bool:
            return job_id != self.job_id or watched.final is not None or bool(watched.status and watched.status.end)

        await self.watcher.wait_until(job_id, known, timeout)
        watched = self.watcher.jobs.get(job_id)
        if job_id == self.job_id and watched is not None and watched.status is not None and watched.status.end:
            self.server.end_time = watched.status.end
            self.owner.save_state()

    async def _cancel_orphan(self, host: Host, task: asyncio.Future) -> None:
        """A job submitted after its spawn was cancelled: cancel it."""
        if task.cancelled() or task.exception() is not None:
            return
        answer = task.result()
        if answer.get("status") == "submitted":
            job_id = self.owner.cluster.adapter.parse_submit(answer["stdout"])
            self.log.warning("%s: cancelling job %s, submitted after its spawn was cancelled", self.owner._log_name,
                             job_id)
            await self._cancel_job(host, job_id)

    # ----- poll and stop --------------------------------------------------------------------
    async def poll(self):
        if not self.job_id:
            return 0
        watched = self.watcher.watch(self.job_id)
        if watched.status is None and watched.final is None:
            # First look since a hub restart: wait for the shared query rather than guess.
            await self.watcher.next_poll(timeout=15)
        if watched.final is not None:
            message = outcome_message(watched.final)
            self.owner.record_outcome(message, job_id=self.job_id, state=watched.final.native_state)
            self.log.warning("%s: %s", self.owner._log_name, message)
            return watched.final.exit_code if watched.final.exit_code else 1
        if watched.status is not None and watched.status.end and watched.status.end != self.server.end_time:
            self.server.end_time = watched.status.end  # e.g. first known, or changed by an admin's scontrol
            self.owner.save_state()
        # Not ended: its tunnels held (rebuilt if the tunnel service restarted) - at a hub start,
        # before JupyterHub's check asks the server to answer.
        await self.ensure_tunnels()
        return None

    async def stop(self):
        if not self.job_id:
            if self.server_id:  # a spawn that failed before its job was accepted: its tunnels only
                await self.close_tunnels()
            return
        watched = self.watcher.watch(self.job_id)
        host = self.host_named(self.server.submit_host)
        if watched.final is None:
            await self._cancel_job(host, self.job_id)
            await self._wait_job_gone(watched)
        elif watched.final.state is JobState.ERROR:  # ended for the user, still held by the scheduler
            await self._cancel_job(host, self.job_id)
        if self.server.phase != "ready" and host is not None:
            # What the job left (its output, if it ran, stays for the user to read).
            try:
                await self.run_launcher(host, await self.credential_or_none(),
                                        {"action": "remove", "server_id": self.server_id}, "cleaning up", module=BATCH)
            except SpawnException as exc:
                self.log.warning("%s: %s", self.owner._log_name, exc.log_message)
        self.watcher.forget(self.job_id)
        await self.close_tunnels()

    async def _wait_job_gone(self, watched: WatchedJob) -> None:
        """Stopped means the job's nodes are free: wait (within stop_timeout) until the
        scheduler reports the job ended, watching it closely meanwhile."""
        timeout = self.owner.stop_timeout
        if not await self.watcher.wait_until(watched.job_id, lambda job: job.final is not None, timeout):
            self.log.warning("%s: job %s still not ended %s s after it was cancelled", self.owner._log_name,
                             watched.job_id, timeout)

    async def _cancel_job(self, host: Host | None, job_id: str) -> None:
        """Cancel as the user; with the service account if the user's credential is gone."""
        cluster = self.owner.cluster
        argv = cluster.adapter.cancel_argv([job_id])
        credential = await self.credential_or_none() or await cluster.service_credential()
        for candidate in [host] if host is not None else self.login_hosts():
            try:
                await cluster.pool.run(candidate, credential, argv, timeout=60, what="cancelling your job")
                self.log.info("%s: cancelled job %s", self.owner._log_name, job_id)
                return
            except SSHError as exc:
                self.log.error("%s: cancelling job %s: %s", self.owner._log_name, job_id, exc.log_detail)
