"""`hpchub check`: an admin's test of a configured site, run where the hub runs, as the hub's
user, with the hub's configuration and environment. Each check says what it found and, when it
fails, how to fix it. Nothing is left behind: test jobs are cancelled and their files removed.

1. the auth_state key (JUPYTERHUB_CRYPT_KEY) is set and valid;
2. the SSH CA key (local-ca) is readable by the hub's user only;
3. each login node is reached and its host key matches known_hosts;
4. a certificate from the configured issuer runs a command there, as the check's account;
5. a held test job is submitted, seen in the queue, and cancelled;
6. a compute node reaches the hub's API (directly, or through a forward on a login node as
   the batch spawner opens it) - this one runs a short job, so it waits for the queue;
7. each container image of the cluster's targets runs a command through its runtime, on a
   login node (hpchub.containers).

Checks 3 to 7 run for every cluster of the hub (HPCSpawner.clusters), each with its login
nodes, host keys and scheduler; with more than one, each result names its cluster.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path
from urllib.parse import urlparse

from .remote import Host, SSHError, SSHPool
from .schedulers import SCHEDULERS
from .schedulers.base import JobRequest, JobState, Scheduler, quote

if TYPE_CHECKING:  # (imported where used: the spawners package imports JupyterHub)
    from .spawners.cluster_config import ClusterConfig

OK, FAIL, SKIP = "ok", "FAIL", "skip"
NO_OUTPUT = "left no output file"


@dataclass
class Result:
    status: str
    name: str
    detail: str
    fix: str = ""


def render(results: list[Result]) -> str:
    """The report (pure)."""
    lines = []
    for result in results:
        lines.append(f"  {result.status:<4}  {result.name}: {result.detail}")
        if result.fix and result.status != OK:
            lines.append(f"        fix: {result.fix}")
    failed = sum(result.status == FAIL for result in results)
    lines.append(f"{len(results)} checks, {failed} failed, {sum(r.status == SKIP for r in results)} skipped")
    return "\n".join(lines)


def check_crypt_key(value: str | None) -> Result:
    """JupyterHub's auth_state key: one or more 32-byte keys (hex or base64), `;`-separated."""
    name = "auth_state key"
    fix = "export JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32) in the hub's environment, and keep it"
    if not value:
        return Result(FAIL, name, "JUPYTERHUB_CRYPT_KEY is not set: credentials cannot be kept in auth_state", fix)
    from jupyterhub.crypto import _validate_key

    try:
        keys = [_validate_key(key) for key in value.split(";") if key.strip()]
    except ValueError as exc:
        return Result(FAIL, name, f"JUPYTERHUB_CRYPT_KEY is not valid: {exc}", fix)
    return Result(OK, name, f"JUPYTERHUB_CRYPT_KEY holds {len(keys)} valid key(s)")


def check_ca_key(path: str) -> Result:
    """The CA's private key: a regular file of this user's, unreadable by anyone else."""
    name = f"SSH CA key {path}"
    fix = f"chown {_me()} {path} && chmod 600 {path}"
    try:
        info = os.stat(path)
    except OSError as exc:
        return Result(FAIL, name, f"cannot be read: {exc.strerror}",
                      "set CredentialIssuingAuthenticator.ssh_ca_key to the CA key's path")
    if not stat.S_ISREG(info.st_mode):
        return Result(FAIL, name, "is not a regular file", "point ssh_ca_key at the key file itself")
    if info.st_uid != os.geteuid():
        return Result(FAIL, name, f"is owned by uid {info.st_uid}, not by the hub's user ({_me()})", fix)
    if info.st_mode & 0o077:
        return Result(FAIL, name, f"is open to others (mode {stat.S_IMODE(info.st_mode):04o}): "
                                  "anyone who reads it can log in as any user", fix)
    if not os.access(path, os.R_OK):
        return Result(FAIL, name, "is not readable by the hub's user", fix)
    return Result(OK, name, f"mode {stat.S_IMODE(info.st_mode):04o}, owned by {_me()}")


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


_SSH_FIXES = {
    "host-key": "compare the node's host key (ssh-keyscan -p PORT HOST) with HPCSpawner.known_hosts; "
                "update known_hosts only if the change is expected",
    "auth": "the login node must trust the CA: its sshd_config needs TrustedUserCAKeys with the CA's public "
            "key, and the account must exist there",
    "unreachable": "check the address and port in HPCSpawner.login_nodes, that sshd runs, and that "
                   "the hub host may connect (firewall)",
}


@dataclass
class SiteSettings:
    """What the check needs from the hub's configuration."""

    clusters: list[ClusterConfig]  # the default cluster first
    known_hosts: str
    partition: str  # the default cluster's
    launcher_python: str
    hub_api_url: str  # where the hub's API listens, as the hub host sees it
    hub_connect_url: str  # where compute nodes reach it directly ("" : through a login node)
    credential_issuer: str
    ssh_ca_key: str
    clusters_error: str = ""  # HPCSpawner.clusters could not be read (then: the default cluster only)
    images: tuple[tuple[str, str, str], ...] = ()  # (cluster, runtime, image) of the targets' containers

    @classmethod
    def from_config(cls, config) -> "SiteSettings":
        from .spawners import HPCSpawner, SlurmSpawner
        from .spawners.cluster_config import ClusterConfigError, cluster_configs

        def setting(section: str, key: str, default=None):
            value = config[section].get(key) if section in config else None
            return default if value is None else value

        # The hub's spawner, made from the configuration, reads its settings as in the hub:
        # traitlets applies the sections (Spawner ... HPCSpawner) and the defaults.
        slurm_only = setting("JupyterHub", "spawner_class") in ("hpchub-slurm", "hpchub.spawners.SlurmSpawner")
        spawner = (SlurmSpawner if slurm_only else HPCSpawner)(config=config)
        hub_bind = setting("JupyterHub", "hub_bind_url") or (
            f"http://{setting('JupyterHub', 'hub_ip') or '127.0.0.1'}:{setting('JupyterHub', 'hub_port') or 8081}")
        # Not made from the configuration: the authenticator signs with the CA key as it starts,
        # and the key's permissions are checked before that.
        authenticators = ("PAMCredentialAuthenticator", "CredentialIssuingAuthenticator")

        def authenticator_setting(key: str, default: str) -> str:
            return next((setting(a, key) for a in authenticators if setting(a, key) is not None), default)

        from .spawners.targets import TargetConfigError

        images: list[tuple[str, str, str]] = []
        try:
            targets = spawner.all_targets()
        except TargetConfigError:  # (the hub says so as it starts; the rest can still be checked)
            targets = []
        for target in targets:
            for image in target.container.all_images if target.container else ():
                if (target.cluster, target.container.runtime, image) not in images:
                    images.append((target.cluster, target.container.runtime, image))
        default = spawner.default_cluster_config()
        try:
            clusters, clusters_error = list(cluster_configs(spawner.clusters, default).values()), ""
        except ClusterConfigError as exc:
            clusters, clusters_error = [default], str(exc)
        return cls(
            clusters=clusters,
            clusters_error=clusters_error,
            known_hosts=spawner.known_hosts,
            partition=spawner.partition,
            launcher_python=spawner.launcher_python,
            hub_api_url=hub_bind.rstrip("/") + "/hub/api/",
            hub_connect_url=spawner.hub_connect_url or setting("JupyterHub", "hub_connect_url", ""),
            credential_issuer=authenticator_setting("credential_issuer", "local-ca"),
            ssh_ca_key=authenticator_setting("ssh_ca_key", ""),
            images=tuple(images),
        )


class SiteCheck:
    def __init__(self, settings: SiteSettings, make_authenticator, account: str | None, job_timeout: float = 120,
                 connect_timeout: float = 15):
        self.settings = settings
        self.make_authenticator = make_authenticator  # made inside the run: its errors are findings
        self.account = account or ""
        self.job_timeout = job_timeout
        self.pool = SSHPool(settings.known_hosts, connect_timeout=connect_timeout)
        self.results: list[Result] = []

    def add(self, result: Result) -> Result:
        self.results.append(result)
        return result

    async def run(self) -> list[Result]:
        try:
            await self._run()
        finally:
            await self.pool.close()
        return self.results

    async def _run(self) -> None:
        s = self.settings
        self.add(check_crypt_key(os.environ.get("JUPYTERHUB_CRYPT_KEY")))
        if s.credential_issuer == "local-ca":
            self.add(check_ca_key(s.ssh_ca_key))
        try:
            authenticator = self.make_authenticator()
        except Exception as exc:  # an unusable issuer configuration is a finding, not a crash
            self._no_certificate(self.account, exc)
            return
        self.account = self.account or authenticator.service_account
        credentials = {("", self.account): await self._certificate(authenticator, self.account)}
        if s.clusters_error:
            self.add(Result(FAIL, "clusters", s.clusters_error, "see HPCSpawner.clusters in the settings "
                                                                "reference; only the default cluster was checked"))
        for index, cluster in enumerate(s.clusters):
            # --account names the default account; a cluster may name one of its own, and the
            # issuer of the CA its login nodes trust.
            account = cluster.service_account or self.account
            key = (cluster.issuer, account)
            if key not in credentials:
                credentials[key] = await self._certificate(authenticator, account, cluster.issuer)
            if credentials[key] is not None:
                await ClusterCheck(self, cluster, account, named=len(s.clusters) > 1,
                                   default=index == 0).run(credentials[key])

    async def _certificate(self, authenticator, account: str, issuer: str = ""):
        """The account's certificate from the configured issuer (or the site's static one), as
        the hub gets it; None, with the finding reported, if there is none."""
        try:
            credential = await authenticator.service_account_credential(account, issuer)
        except Exception as exc:  # any issuer failure is a finding to report, not a crash
            self._no_certificate(account, exc)
            return None
        source = f"extra issuer {issuer!r}" if issuer else self.settings.credential_issuer
        self.add(Result(OK, f"certificate for {account}" + (f" ({issuer})" if issuer else ""),
                        f"issued by {source}: {credential.key_id}"))
        return credential

    def _no_certificate(self, account: str, exc: Exception) -> None:
        detail = getattr(exc, "user_message", None) or repr(exc)
        if getattr(exc, "log_detail", ""):
            detail += f" ({exc.log_detail})"
        self.add(Result(FAIL, f"certificate for {account or 'the service account'}",
                        f"no certificate could be issued: {detail}",
                        "check CredentialIssuingAuthenticator's issuer settings (ssh_ca_key or the CA service)"))


class ClusterCheck:
    """Checks 3 to 6 on one cluster: its login nodes, its scheduler, its compute nodes' way to
    the hub. Results go to the site check's list."""

    def __init__(self, site: SiteCheck, cluster: ClusterConfig, account: str, named: bool, default: bool):
        self.site, self.cluster, self.account, self.default = site, cluster, account, default
        self.settings, self.pool = site.settings, site.pool
        self.adapter: Scheduler = SCHEDULERS[cluster.scheduler](**cluster.scheduler_options)
        self.prefix = f"{cluster.title}: " if named else ""

    def add(self, result: Result) -> Result:
        return self.site.add(Result(result.status, self.prefix + result.name, result.detail, result.fix))

    async def run(self, credential) -> None:
        if not self.cluster.login_nodes:
            self.add(Result(FAIL, "login nodes", "HPCSpawner.login_nodes is empty",
                            'set c.HPCSpawner.login_nodes = [{"name": ..., "address": ..., "port": 22}]'))
            return
        reachable = [node for node in self.cluster.login_nodes if await self._check_node(node, credential)]
        if not reachable:
            self.add(Result(SKIP, "test job", "no login node could be used"))
            return
        node = reachable[0]
        host = Host.from_node(node)
        await self._check_images(host, credential)
        if await self._check_held_job(host, credential):
            await self._check_hub_from_compute_node(host, node, credential)
        else:
            self.add(Result(SKIP, "hub API from a compute node", "the scheduler check failed"))

    async def _check_node(self, node: dict, credential) -> bool:
        host = Host.from_node(node)
        name = f"login node {host.name} ({host.address}:{host.port})"
        try:
            await self.pool.connection(host, credential)
        except SSHError as exc:
            self.add(Result(FAIL, name, exc.log_detail, _SSH_FIXES.get(exc.cause, "")))
            return False
        self.add(Result(OK, name, "reached; its host key matches known_hosts"))
        try:
            result = await self.pool.run(host, credential, ["id", "-un"], timeout=30, what="id -un")
        except SSHError as exc:
            self.add(Result(FAIL, f"command on {host.name}", exc.log_detail))
            return False
        who = str(result.stdout).strip()
        if who != self.account:
            self.add(Result(FAIL, f"command on {host.name}", f"ran as {who!r}, not {self.account!r}",
                            "the certificate's principal must map to the account of that name"))
            return False
        self.add(Result(OK, f"command on {host.name}", f"`id -un` ran as {who} with the certificate"))
        return True

    async def _check_images(self, host: Host, credential) -> None:
        from .containers import runtime_named

        for cluster, runtime, image in self.settings.images:
            if cluster != self.cluster.name:
                continue
            name = f"container image {image} ({runtime}, on {host.name})"
            argv = runtime_named(runtime).wrap(image, ["true"])
            try:
                await self.pool.run(host, credential, argv, timeout=60, what=f"running {image}")
            except SSHError as exc:
                # The runtime's own words (the wrapper's script is no use to the reader)
                words = (getattr(exc, "stderr", "") or "").strip()
                self.add(Result(FAIL, name, words[-500:] or exc.log_detail,
                                f"the image must be readable on every node and {runtime_named(runtime).program} "
                                "on the nodes' PATH (HPCSpawner.setup_lines may load its module)"))
                continue
            self.add(Result(OK, name, "runs a command"))

    def _request(self, name: str, script: str, output: str) -> JobRequest:
        # HPCSpawner.partition is the default cluster's; another cluster's test job goes to its
        # scheduler's default queue.
        partition = self.settings.partition if self.default else ""
        return JobRequest(name=name, script=script, queue=partition or None, walltime=60, output=output)

    async def _check_held_job(self, host: Host, credential) -> bool:
        name = f"test job ({self.cluster.scheduler}, from {host.name})"
        adapter = self.adapter
        script = adapter.job_script(self._request("hpchub-check", "true", "/dev/null"))
        try:
            submitted = await self.pool.run(host, credential, adapter.held_submit_argv(), input=script,
                                            timeout=60, what="submitting a held test job")
            job_id = adapter.parse_submit(str(submitted.stdout))
            listed = await self.pool.run(host, credential, adapter.status_argv([job_id]), timeout=60,
                                         what="the queue query")
            seen = job_id in adapter.parse_status(str(listed.stdout))
            await self.pool.run(host, credential, adapter.cancel_argv([job_id]), timeout=60, what="cancelling")
        except SSHError as exc:
            self.add(Result(FAIL, name, exc.log_detail,
                            "the account must be allowed to submit (Slurm: an association, sacctmgr; Grid Engine: "
                            "the queue's user lists) and the partition or queue must accept it; set "
                            "HPCSpawner.partition if the default partition is not the one to use"))
            return False
        if not seen:
            self.add(Result(FAIL, name, f"job {job_id} was submitted but the queue does not list it",
                            "check that squeue on the login nodes talks to the same controller as sbatch"))
            return False
        self.add(Result(OK, name, f"held job {job_id} submitted, seen in the queue, cancelled"))
        return True

    async def _check_hub_from_compute_node(self, host: Host, node: dict, credential) -> None:
        s = self.settings
        name = "hub API from a compute node"
        try:
            conn = await self.pool.connection(host, credential)
        except SSHError as exc:
            self.add(Result(FAIL, name, exc.log_detail, _SSH_FIXES.get(exc.cause, "")))
            return
        listener = None
        if s.hub_connect_url:
            url, how = s.hub_connect_url.rstrip("/") + "/hub/api/", "directly"
        else:
            hub = urlparse(s.hub_api_url)
            bind = node.get("cluster_address") or "127.0.0.1"
            try:
                listener = await conn.forward_remote_port(bind, 0, hub.hostname or "127.0.0.1", hub.port or 80)
            except Exception as exc:  # asyncssh refusals come in several types; each is a finding
                self.add(Result(FAIL, name, f"{host.name} refused a forward to the hub: {exc!r}",
                                "sshd on the login nodes needs AllowTcpForwarding (remote) for the hub's users"))
                return
            url, how = f"http://{bind}:{listener.get_port()}{hub.path}", f"through a forward on {host.name}"
        marker = f"hpchub-check-{secrets.token_hex(4)}"
        output = f"{marker}.out"
        probe = ("import sys, urllib.request\n"
                 "answer = urllib.request.urlopen(sys.argv[1], timeout=20)\n"
                 "print('HPCHUB-CHECK', answer.status, answer.read(200).decode(errors='replace'))\n")
        script = f"{quote(s.launcher_python)} -c {quote(probe)} {quote(url)}"
        adapter = self.adapter
        job_id = None
        try:
            submitted = await self.pool.run(host, credential, adapter.submit_argv(),
                                            input=adapter.job_script(self._request(marker, script, output)),
                                            timeout=60, what="submitting the probe job")
            job_id = adapter.parse_submit(str(submitted.stdout))
            text = await self._await_output(host, credential, job_id, output)
        except SSHError as exc:
            self.add(Result(FAIL, name, exc.log_detail))
            return
        finally:
            if job_id is not None:
                await self._quietly(host, credential, adapter.cancel_argv([job_id]))
            await self._quietly(host, credential, ["rm", "-f", "--", output])
            if listener is not None:
                listener.close()
        if text is None:
            self.add(Result(SKIP, name, f"probe job {job_id} did not run within {self.site.job_timeout:.0f} s "
                                        "(busy queue?); it has been cancelled", "run again with a longer --job-timeout"))
        elif text.startswith(NO_OUTPUT):
            self.add(Result(FAIL, name, f"probe job {job_id} {text}",
                            "the job writes its output to the account's home: it must be the same directory on "
                            "the login and compute nodes (a shared file system)"))
        elif "HPCHUB-CHECK 200" in text:
            self.add(Result(OK, name, f"job {job_id} reached {url} ({how})"))
        else:
            self.add(Result(FAIL, name, f"job {job_id} could not reach {url} ({how}): {text.strip()[-300:]}",
                            "is the hub running? Compute nodes must reach it: set Spawner.hub_connect_url to an "
                            "address they can route to, or leave it empty to go through a login node"))

    async def _await_output(self, host: Host, credential, job_id: str, output: str) -> str | None:
        """The job's output once it has ended (or, if it left none, what the scheduler says of
        it); None if it did not end within job_timeout."""
        adapter = self.adapter
        deadline = time.monotonic() + self.site.job_timeout
        while time.monotonic() < deadline:
            listed = await self.pool.run(host, credential, adapter.status_argv([job_id]), timeout=60,
                                         what="the queue query")
            status = adapter.parse_status(str(listed.stdout)).get(job_id)
            if status is None or status.state.finished:
                shown = await self.pool.run(host, credential, ["cat", "--", output], timeout=30, check=False)
                if shown.exit_status == 0:
                    return str(shown.stdout or "")
                return f"{NO_OUTPUT} ({output}): {await self._why_ended(host, credential, job_id, status)}"
            await asyncio.sleep(1)
        return None

    async def _why_ended(self, host: Host, credential, job_id: str, status) -> str:
        """The scheduler's words on a job that ended without output: why it is held in error, or
        how accounting records its end."""
        adapter = self.adapter
        try:
            if status is not None and status.state is JobState.ERROR and adapter.reasons_argv([job_id]):
                answer = await self.pool.run(host, credential, adapter.reasons_argv([job_id]), timeout=60,
                                             check=False)
                return adapter.parse_reasons(str(answer.stdout)).get(job_id) or f"job {job_id} is in error state"
            answer = await self.pool.run(host, credential, adapter.accounting_argv([job_id]), timeout=60, check=False)
            final = adapter.parse_accounting(str(answer.stdout)).get(job_id)
        except SSHError as exc:
            return exc.log_detail
        if final is None:
            return f"the scheduler has no record of how job {job_id} ended"
        return f"job {job_id} ended {final.state.value} ({final.native_state}, exit code {final.exit_code})"

    async def _quietly(self, host: Host, credential, argv: list[str]) -> None:
        try:
            await self.pool.run(host, credential, argv, timeout=30, check=False)
        except SSHError:
            pass  # clean-up on a node that just failed a check: the report already says why


def load_config(path: str):
    from traitlets.config.loader import PyFileConfigLoader

    resolved = Path(path).resolve()
    return PyFileConfigLoader(resolved.name, str(resolved.parent)).load_config()


async def check_site(config, account: str | None, job_timeout: float) -> list[Result]:
    from .auth import CredentialIssuingAuthenticator

    settings = SiteSettings.from_config(config)
    return await SiteCheck(settings, lambda: CredentialIssuingAuthenticator(config=config), account,
                           job_timeout).run()
