"""Jupyter in a batch job on compute nodes (entry point ``hpchub-slurm``).

The job is submitted as the user, on a login node over SSH with the user's certificate;
the hub host has no scheduler client and no cluster membership. How a spawn goes:

1. The job script is built from a template and the scheduler adapter (schedulers/), every
   value validated and quoted. The server's token is not in it: the batch launcher runs the
   submit command with the token in its environment, which the job inherits.
2. The job id is saved to the hub's database as soon as the scheduler answers, before
   `start()` returns, so that a hub restart finds the job (see hpchub.hubapp).
3. While the job waits, the user sees its state, reason and expected start, from the hub's
   one shared status query (spawners/jobs.py); a Stop cancels the job.
4. On its first node the job starts the server on a free port of the node's address and
   reports it through the user's (shared) home directory; the hub reaches that port directly
   or through the login node, and the server reaches the hub's API through a forward on
   the login node's cluster-side address.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import asdict
from urllib.parse import urlparse

import jinja2
from jupyterhub.spawner import Spawner, SpawnException
from traitlets import Dict, Float, Integer, Unicode, default

from ..credentials import SSHCredential
from ..remote import Host, SSHError
from ..remote.launcher import BATCH, launcher_source
from ..schedulers import SCHEDULERS
from ..schedulers.base import JobRequest, JobState, JobStatus, ValidationError, quote
from ..schedulers.slurm import parse_walltime
from ..schedulers.watcher import JobWatcher
from . import metrics
from .options import FieldError, resolve
from .targets import FIELDS, Target
from .jobs import service_runner, watcher_for
from .remote import RemoteSpawner, cluster_label, new_server_id, spawn_error, with_hub_api_at

DEFAULT_JOB_TEMPLATE = """\
{% for line in setup_lines %}{{ line }}
{% endfor -%}
exec {{ launcher_python | q }} - serve {{ launcher_config | q }} <<'HPCHUB_LAUNCHER_EOF'
{{ launcher_source }}
HPCHUB_LAUNCHER_EOF
"""

class BatchSpawner(RemoteSpawner, Spawner):
    """Start the single-user server inside a batch job on compute nodes."""

    scheduler = Unicode("slurm", config=True, help="The batch scheduler: one of hpchub.schedulers.SCHEDULERS.")

    job_template = Unicode(
        DEFAULT_JOB_TEMPLATE,
        config=True,
        help="""Jinja2 template of the job script's body (the scheduler's directive lines, e.g.
        #SBATCH, come before it from the adapter). Variables: `setup_lines`, `launcher_python`,
        `launcher_config`, `launcher_source`; filter `q` quotes a value for bash, and every
        value that is not the admin's own text must go through it. The body must end by
        running the launcher as the default does.""",
    )

    partition = Unicode("", config=True, help="Partition (queue) for the job; empty for the scheduler's default.")
    account = Unicode("", config=True, help="Account to charge; empty for the user's default account.")
    qos = Unicode("", config=True, help="Quality of service; empty for the default.")
    walltime = Unicode("01:00:00", config=True, help="Time limit, in the scheduler's format ([D-]HH:MM:SS).")
    nodes = Integer(1, config=True, help="Nodes for the job; the server runs on the first, srun reaches all.")
    cores = Integer(0, config=True, help="CPU cores per node (0: the scheduler's default).")
    memory_mb = Integer(0, config=True, help="Memory per node in MB (0: the scheduler's default).")
    gpus = Integer(0, config=True, help="GPUs per node.")
    constraint = Unicode("", config=True, help="Node features the job needs (e.g. `haswell&ib`).")
    reservation = Unicode("", config=True, help="Reservation to run in.")

    connect_to_server = Unicode(
        "via-login-node",
        config=True,
        help="""How the hub reaches the server on the compute node: `via-login-node` (a forward
        over the SSH connection to the login node the job was submitted from; works when
        compute nodes have no route from the hub) or `direct` (the hub has a route to the
        compute nodes' addresses).""",
    )

    status_interval = Float(30, config=True, help="""Seconds between the hub's status queries
        for all jobs (one query for all of them, with jitter; longer while the scheduler is slow).""")
    spawn_status_interval = Float(2, config=True, help="""Seconds between status queries while any
        spawn is in progress, so that a job that fails in the queue ends its spawn quickly.""")
    gone_grace = Float(30, config=True, help="""Seconds a job may be missing from the queue before it is
        taken as ended (and only if accounting agrees).""")
    max_queue_wait = Float(7 * 86400, config=True, help="""Seconds a job may wait in the queue before the
        spawn gives up and cancels it. The queue being slow is not a failure: the default is a week.""")
    ready_timeout = Float(300, config=True, help="""Seconds from the job's start to its server answering,
        after which the spawn fails (and the job is cancelled).""")

    stop_timeout = Float(30, config=True, help="""Seconds stop() waits for the cancelled job to
        end (leave the queue's running and completing states) before it returns anyway.""")

    walltime_warning_minutes = Integer(10, config=True, help="""Minutes before the job's time limit at
        which JupyterLab tells the user to save their work (hpchub's JupyterLab extension).""")

    @default("start_timeout")
    def _default_start_timeout(self):
        # JupyterHub's own limit on start() must not cut a queued job short: the queue wait is
        # bounded by max_queue_wait and the start-up by ready_timeout instead.
        return int(self.max_queue_wait + self.ready_timeout + 600)

    # ----- state ----------------------------------------------------------------------
    job_id = Unicode("")
    submit_host = Unicode("")
    phase = Unicode("")  # "queued" (submitted, server not yet answering) or "ready"
    node = Unicode("")
    server_address = Unicode("")
    server_port = Integer(0)
    end_time = Unicode("")
    sealed_token = Unicode("")  # the server's API token, encrypted with the hub's crypt key
    last_outcome = Dict()  # how the last job ended, kept after stop for the user and admins
    resume_state = Dict()  # set by hpchub.hubapp to resume a queued spawn after a hub restart
    waiting_in_queue = False  # read by hpchub.hubapp: queued jobs do not use up concurrent_spawn_limit

    def get_state(self):
        state = super().get_state()
        if self.job_id:
            state.update(job_id=self.job_id, server_id=self.server_id, submit_host=self.submit_host, phase=self.phase,
                         node=self.node, address=self.server_address, port=self.server_port,
                         end_time=self.end_time, sealed_token=self.sealed_token)
        if self.last_outcome:
            state["last_outcome"] = self.last_outcome
        return state

    def load_state(self, state):
        super().load_state(state)
        self.job_id = state.get("job_id", "")
        self.server_id = state.get("server_id", "")
        self.submit_host = state.get("submit_host", "")
        self.phase = state.get("phase", "")
        self.node = state.get("node", "")
        self.server_address = state.get("address", "")
        self.server_port = state.get("port", 0)
        self.end_time = state.get("end_time", "")
        self.sealed_token = state.get("sealed_token", "")
        self.last_outcome = state.get("last_outcome", {})

    def clear_state(self):
        super().clear_state()
        self.job_id = self.server_id = self.submit_host = self.phase = ""
        self.node = self.server_address = self.end_time = self.sealed_token = ""
        self.server_port = 0

    def _save_state(self) -> None:
        """Write the state to the hub's database now (JupyterHub itself does so only after
        start() returns, which for a queued job may be hours away)."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            self.db.commit()

    # ----- the cluster ------------------------------------------------------------------
    @property
    def adapter(self):
        return SCHEDULERS[self.scheduler]()

    @property
    def watcher(self) -> JobWatcher:
        hosts = self._login_hosts()
        key = (self.scheduler, self.known_hosts, tuple(hosts))
        return watcher_for(key, lambda: JobWatcher(
            self.adapter, service_runner(self.pool, hosts, self.authenticator.service_account_credential),
            interval=self.status_interval, urgent_interval=self.spawn_status_interval, grace=self.gone_grace))

    def _submit_host(self) -> Host | None:
        node = self._login_node(self.submit_host) if self.submit_host else None
        return self._host(node) if node else None

    # ----- the job ------------------------------------------------------------------------
    def job_request(self) -> JobRequest:
        """The job from the admin's settings and the user's options (validated here)."""
        values = {"partition": self.partition, "account": self.account, "qos": self.qos,
                  "walltime": self.walltime, "nodes": self.nodes, "cores": self.cores,
                  "memory_mb": self.memory_mb, "gpus": self.gpus, "constraint": self.constraint,
                  "reservation": self.reservation}
        values.update(self.user_job_values())
        try:
            walltime = parse_walltime(values["walltime"]) if values["walltime"] else None
        except ValueError:
            raise ValidationError(f"the walltime {values['walltime']!r} is not a time like 01:30:00") from None
        return JobRequest(
            name=f"jupyter-{cluster_label(self.name or 'default', 50)}", script=self.job_body(),
            queue=values["partition"] or None, account=values["account"] or None, qos=values["qos"] or None,
            walltime=walltime, nodes=values["nodes"], cores=values["cores"] or None,
            memory_mb=values["memory_mb"] or None, gpus=values["gpus"],
            constraint=values["constraint"] or None, reservation=values["reservation"] or None,
            output=f".hpchub/jobs/{self.server_id}/job.out",
        ).validate()

    def user_job_values(self) -> dict:
        """The user's options as job values, through the one path of options (spawners/options.py)
        with this spawner's one implicit target: the admin's settings as defaults, every field
        the user's to change, the values judged by the scheduler (as hpchub-slurm always did)."""
        return resolve(self.implicit_target(), self.user_options or {}, None)

    def implicit_target(self) -> Target:
        admin = {"partition": self.partition, "account": self.account, "qos": self.qos, "walltime": self.walltime,
                 "nodes": self.nodes, "cores": self.cores, "memory_mb": self.memory_mb, "gpus": self.gpus,
                 "constraint": self.constraint, "reservation": self.reservation}
        return Target(name="job", title="this server", kind="batch", choose=FIELDS,
                      defaults={key: value for key, value in admin.items() if value not in ("", 0)})

    def job_body(self) -> str:
        source = launcher_source(BATCH)
        assert "HPCHUB_LAUNCHER_EOF" not in source.replace("'HPCHUB_LAUNCHER_EOF'", "")
        config = {"server_id": self.server_id, "argv": self.server_argv()}
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
        env.filters["q"] = quote
        return env.from_string(self.job_template).render(
            setup_lines=self.setup_lines, launcher_python=self.launcher_python,
            launcher_config=json.dumps(config), launcher_source=source.rstrip("\n"))

    def server_argv(self) -> list[str]:
        # The batch script runs setup_lines itself, before the launcher; the server is plain.
        return [*self.cmd, *self.get_args(), f"--KernelManager.transport={self.kernel_transport}"]

    # ----- start ----------------------------------------------------------------------------
    async def start(self):
        self._reset_events()
        resume, self.resume_state = self.resume_state, {}
        if resume:
            await self._resume(resume)
        else:
            await self._submit()
        return await self._wait_until_ready()

    async def _submit(self) -> None:
        credential = await self._credential()
        self.server_id = new_server_id(self.user.name, self.name)
        try:
            request = self.job_request()
        except (ValidationError, FieldError) as exc:
            raise spawn_error(f"the job cannot be submitted: {exc}", reason="options",
                              log_message=f"invalid job options for {self._log_name}: {exc}") from None
        host = await self._reachable_login_node(credential)
        await self._ensure_tunnel_service()
        files, grid_env = await self._grid_delivery()  # before the tunnel opens: it may refuse
        env = await self._server_env(host, credential)
        env.update(grid_env)
        adapter = self.adapter
        submit = {"action": "submit", "server_id": self.server_id, "argv": adapter.submit_argv(),
                  "script": adapter.job_script(request), "env": env, "files": files}
        self._event(f"Submitting your job from {host.name}", 15)
        # A Stop while sbatch runs must not leave a job behind: the submission finishes under
        # a shield, and a cancelled spawn cancels the job as soon as its id is known.
        task = asyncio.ensure_future(self._launcher(host, credential, submit, "submitting your job", module=BATCH))
        try:
            answer = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: asyncio.ensure_future(self._cancel_orphan(host, t)))
            raise
        if answer.get("status") != "submitted":
            await self._close_tunnels()
            message = adapter.error_message(answer.get("stderr") or answer.get("error") or str(answer))
            raise spawn_error(f"the scheduler refused the job: {message}", reason="submit",
                              log_message=f"submit on {host.name}: {answer}")
        self.job_id = adapter.parse_submit(answer["stdout"])
        self.submit_host, self.phase = host.name, "queued"
        self.sealed_token = await seal(self.api_token)
        self._save_state()
        self._event(f"Submitted job {self.job_id}", 20, job_id=self.job_id)

    async def _resume(self, state: dict) -> None:
        """Take up a queued job again after a hub restart (see hpchub.hubapp)."""
        self.load_state(state)
        token = await unseal(self.sealed_token)
        if token:
            # JupyterHub sees a token it did not make, keeps this one (which the queued job
            # carries), drops the new one and points the OAuth client at it.
            self.api_token = token
        self._save_state()
        self._event(f"The hub restarted; following job {self.job_id} again", 20, job_id=self.job_id)

    async def _server_env(self, host: Host, credential: SSHCredential) -> dict:
        env = self.get_env()
        env["HPCHUB_WALLTIME_WARNING_MINUTES"] = str(self.walltime_warning_minutes)
        if self.hub_connect_url:
            return env  # compute nodes reach the hub directly: get_env used hub_connect_url
        hub_api = urlparse(self.hub.api_url)
        node = self._login_node(host.name) or {}
        bind = node.get("cluster_address") or "127.0.0.1"
        opened = await self._tunnel("open", host=asdict(host), credential=credential.to_dict(),
                                    hub_api=[hub_api.hostname or "127.0.0.1", hub_api.port], bind=bind)
        return with_hub_api_at(env, f"http://{bind}:{opened['remote_port']}{hub_api.path}")

    async def _reachable_login_node(self, credential: SSHCredential) -> Host:
        failures = []
        for host in self._login_hosts():
            try:
                await self.pool.connection(host, credential)
                return host
            except SSHError as exc:
                failures.append(exc)
        raise spawn_error("no login node could be reached: " + "; ".join(e.user_message for e in failures),
                          reason="ssh", log_message="; ".join(e.log_detail for e in failures))

    async def _wait_until_ready(self):
        """Follow the job until its server answers, it fails, or it waits too long."""
        watcher, job_id = self.watcher, self.job_id
        watched = watcher.watch(job_id, urgent=True)
        host = self._submit_host()
        credential = await self._credential_or_none()
        queued_since, running_since, shown = time.monotonic(), None, None
        try:
            while True:
                status = watched.final or watched.status
                self.waiting_in_queue = status is not None and status.state is JobState.PENDING
                if watched.final is not None:
                    raise await self._ended_error(host, credential, watched.final, None)
                if status is None or status.state in (JobState.RUNNING, JobState.COMPLETING):
                    # Running (or not yet seen: on an idle cluster it starts at once): ask the
                    # login node to wait for the job's report through the shared home.
                    if status is not None and running_since is None:
                        running_since = time.monotonic()
                        self._observe_queue_wait(running_since - queued_since)
                        self._event(f"Job {job_id} is running on {', '.join(status.nodes)}; "
                                    "starting your server", 60, job_id=job_id)
                    # A short wait while the job has not been seen yet (it may be queued), then
                    # longer ones; the credential is read again each time (it is renewed).
                    credential = await self._credential_or_none()
                    wait = min(self.launcher_wait, 10 if status is not None else 3)
                    answer = await self._launcher(host, credential, {"action": "await", "server_id": self.server_id,
                                                                     "timeout": wait},
                                                  "waiting for your job", module=BATCH)
                    if answer.get("status") == "ready":
                        if running_since is None:  # it ran and answered between two polls of the queue
                            self._observe_queue_wait(time.monotonic() - queued_since - server_start_seconds(answer))
                        return await self._connect(host, answer, watched.status)
                    if answer.get("status") == "ended":
                        raise await self._ended_error(host, credential, watched.final, answer)
                    if running_since is not None and time.monotonic() - running_since > self.ready_timeout:
                        raise spawn_error(f"job {job_id} started, but your server did not answer within "
                                          f"{self.ready_timeout:.0f} s", reason="timeout",
                                          log_message=f"job {job_id}: no ready report after {self.ready_timeout} s")
                    continue
                # Waiting in the queue: say so when anything changes, and wait for the next poll.
                summary = (status.native_state, status.reason, status.start)
                if summary != shown:
                    shown = summary
                    self._event(pending_message(status, time.monotonic() - queued_since), 30,
                                job_id=job_id, state=status.native_state, reason=status.reason,
                                expected_start=status.start)
                if time.monotonic() - queued_since > self.max_queue_wait:
                    raise spawn_error(f"job {job_id} waited in the queue for more than "
                                      f"{self.max_queue_wait / 3600:.1f} hours; it has been cancelled",
                                      reason="queue", log_message=f"job {job_id} pending beyond max_queue_wait")
                await watcher.next_poll(timeout=watcher.current_interval() + 5)
        finally:
            self.waiting_in_queue = False
            watcher.set_urgent(job_id, False)

    def _observe_queue_wait(self, seconds: float) -> None:
        metrics.QUEUE_WAIT.labels(target=getattr(self, "target_name", "")).observe(max(0.0, seconds))

    async def _connect(self, host: Host, report: dict, status: JobStatus | None):
        self.node, self.server_address, self.server_port = report["host"], report["address"], int(report["port"])
        self.end_time = (status.end if status else "") or ""
        if self.connect_to_server == "direct":
            url = (self.server_address, self.server_port)
        else:
            forwarded = await self._tunnel("forward", remote_address=[self.server_address, self.server_port])
            url = ("127.0.0.1", forwarded["local_port"])
        self.phase = "ready"
        self._save_state()
        if not self.end_time:
            # The job was quicker than the shared query: learn its end (for the pages) from the
            # next polls, without holding up the spawn.
            self._end_time_task = asyncio.ensure_future(self._learn_end_time())
        self._event(f"Your server is up on {self.node} (job {self.job_id}); connecting", 90, job_id=self.job_id)
        return url

    async def _learn_end_time(self, timeout: float = 60) -> None:
        job_id = self.job_id

        def known(watched) -> bool:
            return job_id != self.job_id or watched.final is not None or bool(watched.status and watched.status.end)

        await self.watcher.wait_until(job_id, known, timeout)
        watched = self.watcher.jobs.get(job_id)
        if job_id == self.job_id and watched is not None and watched.status is not None and watched.status.end:
            self.end_time = watched.status.end
            self._save_state()

    async def _ended_error(self, host, credential, final: JobStatus | None, report: dict | None) -> SpawnException:
        """The spawn's failure when the job ended before its server answered: the job's
        state and reason in the scheduler's words, and the end of its output."""
        output = (report or {}).get("output_tail")
        if output is None and host is not None:
            try:
                answer = await self._launcher(host, credential, {"action": "tail", "server_id": self.server_id},
                                              "reading your job's output", module=BATCH)
                output = answer.get("output_tail", "")
            except SpawnException:
                output = ""
        if final is not None:
            what = outcome_message(final)
        else:
            what = f"job {self.job_id} ended (its server exited with code {report.get('code')})"
        message = f"{what} before your server answered"
        if output:
            message += ". The end of its output:\n" + output[-1500:]
        self.last_outcome = {"job_id": self.job_id, "message": what}
        return spawn_error(message, reason="job-ended", log_message=f"job {self.job_id}: {final} {report}")

    async def _cancel_orphan(self, host: Host, task: asyncio.Future) -> None:
        """A job submitted after its spawn was cancelled: cancel it."""
        if task.cancelled() or task.exception() is not None:
            return
        answer = task.result()
        if answer.get("status") == "submitted":
            job_id = self.adapter.parse_submit(answer["stdout"])
            self.log.warning("%s: cancelling job %s, submitted after its spawn was cancelled", self._log_name, job_id)
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
            self.last_outcome = {"job_id": self.job_id, "message": outcome_message(watched.final),
                                 "state": watched.final.native_state}
            self.log.warning("%s: %s", self._log_name, self.last_outcome["message"])
            return watched.final.exit_code if watched.final.exit_code else 1
        if watched.status is not None and watched.status.end and watched.status.end != self.end_time:
            self.end_time = watched.status.end  # e.g. first known, or changed by an admin's scontrol
            self._save_state()
        return None

    async def stop(self, now=False):
        if self.job_id:
            watched = self.watcher.watch(self.job_id)
            if watched.final is None:
                await self._cancel_job(self._submit_host(), self.job_id)
                await self._wait_job_gone(watched)
            if self.phase != "ready" and self._submit_host() is not None:
                # A job that never ran leaves only an empty directory behind: remove it.
                credential = await self._credential_or_none()
                try:
                    await self._launcher(self._submit_host(), credential, {"action": "remove", "server_id": self.server_id},
                                         "cleaning up", module=BATCH)
                except SpawnException as exc:
                    self.log.warning("%s: %s", self._log_name, exc.log_message)
            self.watcher.forget(self.job_id)
            await self._close_tunnels()
        self.clear_state()

    async def _wait_job_gone(self, watched) -> None:
        """Stopped means the job's nodes are free: wait (within stop_timeout) until the
        scheduler reports the job ended, watching it closely meanwhile."""
        if not await self.watcher.wait_until(watched.job_id, lambda job: job.final is not None, self.stop_timeout):
            self.log.warning("%s: job %s still not ended %s s after scancel", self._log_name, watched.job_id,
                             self.stop_timeout)

    async def _cancel_job(self, host: Host | None, job_id: str) -> None:
        """scancel as the user; with the service account if the user's credential is gone."""
        argv = self.adapter.cancel_argv([job_id])
        credential = await self._credential_or_none()
        if credential is None:
            credential = await self.authenticator.service_account_credential()
        hosts = [host] if host is not None else self._login_hosts()
        for candidate in hosts:
            try:
                await self.pool.run(candidate, credential, argv, timeout=60, what="cancelling your job")
                self.log.info("%s: cancelled job %s", self._log_name, job_id)
                return
            except SSHError as exc:
                self.log.error("%s: cancelling job %s: %s", self._log_name, job_id, exc.log_detail)

    async def _close_tunnels(self) -> None:
        try:
            await self.tunnels.call("close", id=self.server_id)
        except SSHError as exc:
            self.log.warning("%s: closing its tunnels: %s", self._log_name, exc.log_detail)


class SlurmSpawner(BatchSpawner):
    """The batch spawner for Slurm (entry point ``hpchub-slurm``)."""

    scheduler = Unicode("slurm", config=True, help="The batch scheduler (Slurm).")


def server_start_seconds(report: dict) -> float:
    """How long the server took to answer once its job ran, by the node's own clock (0 if
    the report does not say): taken off the time to ready to estimate the queue wait."""
    try:
        return max(0.0, float(report["started"]) - float(report["job_began"]))
    except (KeyError, TypeError, ValueError):
        return 0.0


def pending_message(status: JobStatus, waited: float) -> str:
    parts = [f"Job {status.job_id} is waiting in the queue ({status.native_state.lower()}"]
    if status.reason:
        parts.append(f", reason: {status.reason}")
    parts.append(")")
    if status.start:
        parts.append(f"; expected start {status.start.replace('T', ' ')}")
    parts.append(f"; waited {format_duration(waited)}")
    return "".join(parts)


def outcome_message(status: JobStatus) -> str:
    native = status.native_state
    if status.state is JobState.CANCELLED:
        who = native.split(" by ", 1)[1] if " by " in native else ""
        return f"job {status.job_id} was cancelled" + (f" (by uid {who})" if who else "")
    if status.state is JobState.TIMEOUT:
        return f"job {status.job_id} reached its time limit"
    if status.state is JobState.UNKNOWN:
        return f"job {status.job_id} is no longer known to the scheduler"
    text = f"job {status.job_id} ended: {native}"
    if status.exit_code:
        text += f", exit code {status.exit_code}"
    if status.reason:
        text += f" ({status.reason})"
    return text


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


async def seal(token: str | None) -> str:
    """The token encrypted with the hub's crypt key (JUPYTERHUB_CRYPT_KEY), or "" without one."""
    from jupyterhub.crypto import CryptKeeper, EncryptionUnavailable, encrypt

    if not token or not CryptKeeper.instance().keys:
        return ""
    try:
        return base64.b64encode(await encrypt(token)).decode()
    except EncryptionUnavailable:
        return ""


async def unseal(sealed: str) -> str:
    from jupyterhub.crypto import CryptKeeper, decrypt

    if not sealed or not CryptKeeper.instance().keys:
        return ""
    return await decrypt(base64.b64decode(sealed))
