"""The contract between the spawner and what it holds to run a server (a `Launch`), and what
both launches share: reaching the login nodes with the user's credential, the remote
launchers, the tunnel service, and the names and messages a server needs.

    LoginLaunch  (login.py)  a server on a login node, over SSH, reached through a tunnel
    BatchLaunch  (batch.py)  a server in a batch job on compute nodes

A launch owns start/poll/stop and its own part of the saved state (state.LoginServer or
state.BatchServer). It reads its spawner's settings (login_nodes, launcher_python, ...) and
JupyterHub's spawner interface (user, get_env, api_token, server), and tells its spawner about
progress (`event`), state to save now (`save_state`) and how a server ended (`record_outcome`).
It never reads another launch's state, and the spawner never reads a launch's internals.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from jupyterhub.spawner import SpawnException

from ..containers import runtime_named
from ..credentials import CredentialError, CredentialSet, SSHCredential
from ..remote import Host, SSHError
from ..remote.launcher import NODE, launcher_argv, launcher_input, parse_answer
from .cluster_config import usable_certificate

if TYPE_CHECKING:  # the spawner that holds a launch (not imported at run time: it imports this)
    from .spawner import HPCSpawner


def cluster_label(text: str, limit: int) -> str:
    """A name for the cluster's side (a server id, a job name) of [a-z0-9-] only: hub user
    names ("alice@example.org") and server names may hold anything JupyterHub allows."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "x"


def new_server_id(user: str, server: str) -> str:
    """This server's name on the cluster: its directory, its processes' marker, its tunnels."""
    label = cluster_label(f"{user}-{server or 'default'}", 60)
    return f"{label}-{secrets.token_hex(4)}"


def spawn_error(message: str, *, reason: str, log_message: str) -> SpawnException:
    """A SpawnException whose user message is what the user sees everywhere.

    JupyterHub 6.1's progress stream formats a failure with utils.format_exception, which
    reads `jupyterhub_message` and otherwise falls back to str(exc) - the log message, with
    commands and addresses in it. Setting the attribute keeps those details in the log.
    """
    exc = SpawnException(message, reason=reason, log_message=log_message)
    exc.jupyterhub_message = message
    return exc


def with_hub_api_at(env: dict, api_url: str) -> dict:
    """The server's environment with every URL of the hub's API moved to api_url, where the
    server reaches the hub from where it runs (a forward on the login node): the API URL
    itself, and every other JUPYTERHUB_* URL under it (the activity URL, ...) - not only the
    one that happens to be known today. Pure."""
    old = env["JUPYTERHUB_API_URL"].rstrip("/")
    new = api_url.rstrip("/")
    moved = dict(env)
    for key, value in env.items():
        if key.startswith("JUPYTERHUB_") and isinstance(value, str) and (value == old or value.startswith(old + "/")):
            moved[key] = new + value[len(old):]
    return moved


class Launch:
    kind = ""

    def __init__(self, owner: HPCSpawner):
        self.owner = owner
        self.log = owner.log
        # Set when a stop begins (HPCSpawner.stop): a poll still running then must not rebuild
        # the tunnels the stop closes, or they would be left open with nobody to close them.
        self.stopping = False
        self.released = False  # what an ended server held has been released (HPCSpawner._release)
        self.ended_with = 1  # and the exit status poll() gave then

    # ----- the contract (each launch fills it) ------------------------------------------
    async def start(self) -> tuple[str, int]:
        """Start the server; the (ip, port) the hub's proxy reaches it at. Raises SpawnException."""
        raise NotImplementedError

    async def poll(self) -> int | None:
        """None while the server runs or nobody can tell; an exit status once it surely ended."""
        raise NotImplementedError

    async def stop(self) -> None:
        """End the server and whatever it left (job, processes, tunnels)."""
        raise NotImplementedError

    def saved(self):
        """This launch's part of the saved state (state.LoginServer or state.BatchServer)."""
        raise NotImplementedError

    @property
    def server_id(self) -> str:
        return self.saved().server_id

    # What the pages show (hpchub's home page); a launch has what it knows.
    where = ""
    job_id = ""
    end_time = ""
    submitted_at = ""
    waiting_in_queue = False

    # ----- the login nodes --------------------------------------------------------------
    def login_hosts(self, undrained: bool = False) -> list[Host]:
        """The configured login nodes; with undrained, those that take new servers and jobs."""
        target = self.owner.target
        hosts = [Host.from_node(n) for n in self.owner.cluster_config.login_nodes
                 if target is None or not target.login_nodes or n["name"] in target.login_nodes]
        if not hosts:
            raise spawn_error("no login nodes are configured for this hub", reason="config",
                              log_message="HPCSpawner.login_nodes is empty")
        if undrained:
            drained = self.owner.drained_login_nodes()
            hosts = [host for host in hosts if host.name not in drained]
            if not hosts:
                raise spawn_error("every login node is being drained for maintenance just now; try again later",
                                  reason="config", log_message=f"all login nodes drained: {sorted(drained)}")
        return hosts

    def hosts_used(self) -> set[str]:
        """The login nodes this server depends on (where it runs, or its job was submitted from)."""
        return set()

    def login_node(self, name: str) -> dict | None:
        return next((node for node in self.owner.cluster_config.login_nodes if node["name"] == name), None)

    def host_named(self, name: str) -> Host | None:
        node = self.login_node(name) if name else None
        return Host.from_node(node) if node else None

    # ----- the user's credentials -------------------------------------------------------
    async def _credentials(self) -> CredentialSet | None:
        try:
            return CredentialSet.from_auth_state(await self.owner.user.get_auth_state())
        except CredentialError as exc:
            raise spawn_error(exc.user_message, reason="credential", log_message=exc.log_detail) from None

    async def credential(self) -> SSHCredential:
        """The user's certificate for this server's cluster (from the issuer it trusts)."""
        credentials = await self._credentials()
        config = self.owner.cluster_config
        credential, problem = usable_certificate(credentials, config)
        if credential is None:
            raise spawn_error(problem, reason="credential",
                              log_message=f"no valid SSH credential for {self.owner.user.name} "
                                          f"(cluster {config.name!r}, issuer {config.issuer or 'main'!r})")
        return credential

    async def credential_or_none(self) -> SSHCredential | None:
        """The user's certificate, or None: then the tunnel service's connection is used, which
        stays authenticated (a certificate that expired since does not matter to it)."""
        try:
            return await self.credential()
        except SpawnException as exc:
            self.log.info("%s: %s; using the tunnel's connection", self.owner._log_name, exc.log_message)
            return None

    async def grid_delivery(self) -> tuple[dict, dict]:
        """The user's X.509 credential, if their login got one: the launcher's "files" entry
        (written 0600 beside the server, removed when it stops; its path in X509_USER_PROXY)
        and the environment grid tools need."""
        credentials = await self._credentials()
        grid = credentials.x509 if credentials else None
        if grid is None:
            return {}, {}
        if grid.expired():
            raise spawn_error("your grid certificate has expired: log out and log in again", reason="credential",
                              log_message=f"expired X.509 credential for {self.owner.user.name}: {grid.subject}")
        env = {"X509_CERT_DIR": self.owner.x509_cert_dir} if self.owner.x509_cert_dir else {}
        return {"x509up": {"content": grid.proxy_file(), "env": "X509_USER_PROXY"}}, env

    # ----- the launchers and the tunnel service ----------------------------------------
    async def run_launcher(self, host: Host, credential: SSHCredential | None, request: dict, what: str,
                           module: str = NODE, timeout: float | None = None) -> dict:
        """Run a launcher with the user's credential or, without one, over the connection the
        tunnel service keeps for this server."""
        argv, stdin = launcher_argv(self.owner.launcher_python), launcher_input(request, module)
        timeout = timeout if timeout is not None else self.owner.launcher_wait + 30
        try:
            if credential is not None:
                result = await self.owner.cluster.pool.run(host, credential, argv, input=stdin, timeout=timeout,
                                                           what=what)
                stdout = str(result.stdout)
            else:
                reply = await self.owner.tunnels.call("exec", id=self.server_id, argv=argv, input=stdin,
                                                      timeout=timeout)
                stdout = reply["stdout"]
        except SSHError as exc:
            raise spawn_error(exc.user_message, reason="ssh", log_message=exc.log_detail) from None
        try:
            return parse_answer(stdout)
        except ValueError as exc:
            raise spawn_error(f"{what} on {host.name} failed", reason="launcher",
                              log_message=f"launcher answer {stdout!r}: {exc}") from None

    async def ensure_tunnel_service(self) -> None:
        if not await self.owner.tunnels.ensure():
            raise spawn_error("the hub's tunnel service did not start; the administrators have been told",
                              reason="tunnels", log_message=f"tunnel service at {self.owner.tunnels.socket_path} "
                                                            "did not answer")

    async def tunnel(self, op: str, **fields) -> dict:
        try:
            return await self.owner.tunnels.call(op, id=self.server_id, **fields)
        except SSHError as exc:
            raise spawn_error(exc.user_message, reason="tunnel", log_message=exc.log_detail) from None

    async def close_tunnels(self) -> None:
        try:
            await self.owner.tunnels.call("close", id=self.server_id)
        except SSHError as exc:
            self.log.warning("%s: closing its tunnels: %s", self.owner._log_name, exc.log_detail)

    def tunnel_plan(self) -> tuple[Host, dict, dict | None] | None:
        """The tunnels this server uses, from its saved state: the login node, the `open`
        (the forward to the hub's API, on the port the server was given) and the `forward`
        (to the server, on the port the proxy routes to), or None (no tunnel yet)."""
        return None

    async def ensure_tunnels(self) -> bool:
        """This server's tunnels held by the tunnel service: rebuilt on their saved ports when
        the service has restarted (it keeps nothing on disk) or their SSH connection closed.
        False when they cannot be rebuilt now (no usable credential, or the node refused):
        unsure, never "gone" - the next check tries again."""
        plan = self.tunnel_plan()
        if plan is None or self.stopping:
            return True
        try:
            status = await self.owner.tunnels.call("status", id=self.server_id)
        except SSHError:  # the service itself is gone: start it again, then rebuild
            if not await self.owner.tunnels.ensure():
                return False
            status = {"missing": True}
        if status.get("connected"):
            return True
        credential = await self.credential_or_none()
        if credential is None:
            self.owner.trouble = "your server cannot be reached until you log in again"
            return False
        host, opening, forwarding = plan
        hub_api = urlparse(self.owner.hub.api_url)
        try:
            await self.owner.tunnels.call("open", id=self.server_id, host=host.to_dict(), credential=credential.to_dict(),
                                          hub_api=[hub_api.hostname or "127.0.0.1", hub_api.port], **opening)
            if forwarding is not None and not self.stopping:
                await self._forward_again(forwarding)
        except SSHError as exc:
            self.log.warning("%s: rebuilding its tunnels: %s", self.owner._log_name, exc.log_detail)
            self.owner.trouble = "the hub's connection to your server is being rebuilt"
            return False
        if self.stopping:  # the stop began while they were rebuilt, and may have closed them already
            await self.close_tunnels()
            return True
        self.owner.trouble = ""
        self.log.info("%s: rebuilt its tunnels through %s", self.owner._log_name, host.name)
        return True

    async def _forward_again(self, forwarding: dict) -> None:
        try:
            await self.owner.tunnels.call("forward", id=self.server_id, **forwarding)
        except SSHError:  # its port was taken meanwhile: another one, and the proxy is told
            answer = await self.owner.tunnels.call("forward", id=self.server_id, **{**forwarding, "local_port": 0})
            self.saved().local_port = answer["local_port"]
            self.owner.moved_to(answer["local_port"])

    async def reachable_login_node(self, credential: SSHCredential) -> Host:
        """The first login node that takes a connection (in the configured order), not drained."""
        failures = []
        for host in self.login_hosts(undrained=True):
            try:
                await self.owner.cluster.pool.connection(host, credential)
                return host
            except SSHError as exc:
                failures.append(exc)
        raise spawn_error("no login node could be reached: " + "; ".join(e.user_message for e in failures),
                          reason="ssh", log_message="; ".join(e.log_detail for e in failures))

    gpus_asked = 0  # GPUs per node the job has (a container passes them in)

    def server_argv(self) -> list[str]:
        """The single-user server's command line, in its target's container image if it has one
        (the admin's setup lines, run before it on the node, are the launch's to add)."""
        owner = self.owner
        spec = owner.target.container if owner.target is not None else None
        cmd = list(spec.cmd) if spec is not None and spec.cmd else list(owner.cmd)
        argv = [*cmd, *owner.get_args(), f"--KernelManager.transport={owner.kernel_transport}"]
        if spec is None or not owner.container_image:
            return argv
        return runtime_named(spec.runtime).wrap(owner.container_image, argv, gpus=spec.gpus or self.gpus_asked > 0)
