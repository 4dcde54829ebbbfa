"""What the SSH and batch spawners share: the login nodes and how to reach them, the user's
credential, the tunnel service, the remote launchers, and progress events.

Both reach the cluster only over SSH with the user's certificate: the hub host is not a
cluster member, and no user code runs on it.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from pathlib import Path

from jupyterhub.spawner import SpawnException
from tornado import web
from traitlets import Dict, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from ..credentials import CredentialError, CredentialSet, SSHCredential
from ..remote import Host, SSHError, SSHPool
from ..remote.detach import spawn_detached
from ..remote.launcher import NODE, launcher_argv, launcher_input, parse_answer
from ..remote.tunnels import TunnelClient
from .options import FieldError, resolve
from .targets import Target


def cluster_label(text: str, limit: int) -> str:
    """A name for the cluster's side (a server id, a job name) of [a-z0-9-] only: hub user
    names ("alice@example.org") and server names may hold anything JupyterHub allows."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "x"


def new_server_id(user: str, server: str) -> str:
    """This server's name on the cluster: its directory, its processes' marker, its tunnels."""
    label = cluster_label(f"{user}-{server or 'default'}", 60)
    return f"{label}-{secrets.token_hex(4)}"


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


def spawn_error(message: str, *, reason: str, log_message: str) -> SpawnException:
    """A SpawnException whose user message is what the user sees everywhere.

    JupyterHub 6.1's progress stream formats a failure with utils.format_exception, which
    reads `jupyterhub_message` and otherwise falls back to str(exc) - the log message, with
    commands and addresses in it. Setting the attribute keeps those details in the log.
    """
    exc = SpawnException(message, reason=reason, log_message=log_message)
    exc.jupyterhub_message = message
    return exc


# One pool per known_hosts file for the hub process: connections are per (user, host) and
# shared by every spawner.
_pools: dict[str, SSHPool] = {}
_tunnel_service_lock = asyncio.Lock()


class RemoteSpawner(LoggingConfigurable):
    """Settings and helpers of hpchub's spawners for reaching the login nodes: mixed in
    before jupyterhub.spawner.Spawner (which insists that its direct subclasses define start,
    stop and poll). Its settings are configured as `c.RemoteSpawner.*` for all of them."""

    login_nodes = List(
        Dict(),
        config=True,
        help="""The login nodes, in order of preference:
        `[{"name": "login1", "address": "login1.example.org", "port": 22}, ...]`.
        The SSH spawner runs servers on them; the batch spawner submits jobs from them.
        An entry may also give `"cluster_address"`: the login node's address as compute
        nodes see it, for servers in batch jobs to reach the hub's API through it.""",
    )

    known_hosts = Unicode(
        config=True,
        help="""known_hosts file with the login nodes' host keys (or a `@cert-authority` line for
        a host CA). Host keys are always verified: a mismatch stops the spawn.""",
    )

    launcher_python = Unicode(
        "python3",
        config=True,
        help="""Python on the cluster that runs hpchub's launcher (3.6 or newer, standard
        library only; it is sent over the SSH channel, nothing is installed on the cluster).""",
    )

    connect_timeout = Integer(15, config=True, help="Seconds to wait for an SSH connection to a login node.")

    tunnel_socket = Unicode(
        "hpchub-tunnels.sock",
        config=True,
        help="""Unix socket of the tunnel service (`hpchub tunnels serve`), which holds the SSH
        tunnels to users' servers outside the hub process so that a hub restart does not cut
        open notebooks. Relative paths are taken from the hub's working directory. If nothing
        answers there, the hub starts the service itself, detached, beside the proxy.""",
    )

    setup_lines = List(
        Unicode(),
        config=True,
        help="""Shell lines run before the server starts, e.g.
        `["module load python/3.11", "export OMP_NUM_THREADS=1"]`. They come from this
        configuration only (never from users) and run in bash, which then starts the server.""",
    )

    kernel_transport = Unicode(
        "ipc",
        config=True,
        help="""ZeroMQ transport between the server and its kernels. `ipc` (the default) uses
        Unix sockets in the server's private runtime directory, so no TCP port of a kernel is
        open to the other users of a shared node; `tcp` is Jupyter's own default.""",
    )

    x509_cert_dir = Unicode(
        "/etc/grid-security/certificates",
        config=True,
        help="""Where grid tools on the nodes find the trusted CA certificates: set as
        `X509_CERT_DIR` for servers of users who have an X.509 credential (from MyProxy at
        login; see `CredentialIssuingAuthenticator.myproxy_server`). Empty: not set.""",
    )

    launcher_wait = Float(
        30,
        config=True,
        help="""Seconds a launcher on the cluster waits for something to happen (the server to
        open its socket, a job to report) before answering; the hub then asks again.""",
    )

    server_id = Unicode("")  # this server's name on the cluster (and its tunnels' id at the hub)

    @default("cmd")
    def _default_cmd(self):
        return ["jupyterhub-singleuser"]

    @default("options_from_form")
    def _default_options_from_form(self):
        return self.form_options

    async def form_options(self, formdata: dict) -> dict:
        """Options posted as `opt-NAME` fields (hpchub's page that confirms a spawn link, for a
        spawner without a form), checked like the REST API's: HTTP 400 naming the field."""
        options = {key[4:]: values[0] for key, values in formdata.items() if key.startswith("opt-") and values}
        await self.check_user_options(options)
        return options

    async def check_user_options(self, options) -> None:
        """HTTP 400 naming the field for options this spawner refuses (asked by hpchub.hubapp
        before a REST spawn, and for every form)."""
        try:
            resolve(self.implicit_target(), options, None)
        except FieldError as exc:
            raise web.HTTPError(400, str(exc)) from None

    def implicit_target(self) -> Target:
        raise NotImplementedError  # each spawner's one target

    @default("env_keep")
    def _default_env_keep(self):
        # The node's own login environment (PATH, LANG, ...) comes from the SSH session or
        # the job; nothing of the hub's environment is passed on.
        return []

    # ----- connections ------------------------------------------------------------
    @property
    def pool(self) -> SSHPool:
        if self.known_hosts not in _pools:
            _pools[self.known_hosts] = SSHPool(self.known_hosts, connect_timeout=self.connect_timeout)
        return _pools[self.known_hosts]

    @property
    def tunnels(self) -> TunnelClient:
        return TunnelClient(os.path.abspath(self.tunnel_socket))

    async def _ensure_tunnel_service(self) -> None:
        async with _tunnel_service_lock:
            if await self.tunnels.alive():
                return
            socket_path = os.path.abspath(self.tunnel_socket)
            command = [str(Path(sys.executable).with_name("hpchub")), "tunnels", "serve",
                       "--socket", socket_path, "--known-hosts", self.known_hosts]
            self.log.info("Starting the tunnel service: %s", " ".join(command))
            # Its own session: a hub killed with SIGKILL leaves it running. Not the hub's
            # environment: it holds the hub's secrets (crypt key, proxy token).
            env = {k: v for k, v in os.environ.items()
                   if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") or k.startswith("HPCHUB_")}
            spawn_detached(command, socket_path + ".log", env)
            for _ in range(100):
                if await self.tunnels.alive():
                    return
                await asyncio.sleep(0.1)
            raise spawn_error("the hub's tunnel service did not start; the administrators have been told",
                              reason="tunnels", log_message=f"tunnel service at {socket_path} did not answer")

    async def _tunnel(self, op: str, **fields) -> dict:
        try:
            return await self.tunnels.call(op, id=self.server_id, **fields)
        except SSHError as exc:
            raise spawn_error(exc.user_message, reason="tunnel", log_message=exc.log_detail) from None

    @staticmethod
    def _host(node: dict) -> Host:
        return Host(node["name"], node.get("address", node["name"]), int(node.get("port", 22)))

    def _login_hosts(self) -> list[Host]:
        hosts = [self._host(n) for n in self.login_nodes]
        if not hosts:
            raise spawn_error("no login nodes are configured for this hub", reason="config",
                              log_message=f"{type(self).__name__}.login_nodes is empty")
        return hosts

    def _login_node(self, name: str) -> dict | None:
        return next((node for node in self.login_nodes if node["name"] == name), None)

    # ----- the user's credential ----------------------------------------------------
    async def _credential(self) -> SSHCredential:
        try:
            credentials = CredentialSet.from_auth_state(await self.user.get_auth_state())
        except CredentialError as exc:
            raise spawn_error(exc.user_message, reason="credential", log_message=exc.log_detail) from None
        if credentials is None or credentials.ssh is None or credentials.ssh.expired():
            raise spawn_error("your login credentials are missing or expired: log out and log in again",
                              reason="credential", log_message=f"no valid SSH credential for {self.user.name}")
        return credentials.ssh

    async def _grid_delivery(self) -> tuple[dict, dict]:
        """The user's X.509 credential, if their login got one: the launcher's "files" entry
        (written 0600 beside the server, removed when it stops; its path in X509_USER_PROXY)
        and the environment grid tools need."""
        try:
            credentials = CredentialSet.from_auth_state(await self.user.get_auth_state())
        except CredentialError as exc:
            raise spawn_error(exc.user_message, reason="credential", log_message=exc.log_detail) from None
        grid = credentials.x509 if credentials else None
        if grid is None:
            return {}, {}
        if grid.expired():
            raise spawn_error("your grid certificate has expired: log out and log in again", reason="credential",
                              log_message=f"expired X.509 credential for {self.user.name}: {grid.subject}")
        env = {"X509_CERT_DIR": self.x509_cert_dir} if self.x509_cert_dir else {}
        return {"x509up": {"content": grid.proxy_file(), "env": "X509_USER_PROXY"}}, env

    async def _credential_or_none(self) -> SSHCredential | None:
        try:
            return await self._credential()
        except SpawnException as exc:
            self.log.info("%s: %s; using the tunnel's connection", self._log_name, exc.log_message)
            return None

    # ----- the launchers ------------------------------------------------------------
    async def _launcher(self, host: Host, credential: SSHCredential | None, request: dict, what: str,
                        module: str = NODE, timeout: float | None = None) -> dict:
        """Run a launcher with the user's credential or, without one, over the connection
        the tunnel service keeps for this server (already authenticated: a certificate that
        expired since does not matter to an open connection)."""
        argv, stdin = launcher_argv(self.launcher_python), launcher_input(request, module)
        timeout = timeout if timeout is not None else self.launcher_wait + 30
        try:
            if credential is not None:
                result = await self.pool.run(host, credential, argv, input=stdin, timeout=timeout, what=what)
                stdout = str(result.stdout)
            else:
                reply = await self.tunnels.call("exec", id=self.server_id, argv=argv, input=stdin, timeout=timeout)
                stdout = reply["stdout"]
        except SSHError as exc:
            raise spawn_error(exc.user_message, reason="ssh", log_message=exc.log_detail) from None
        try:
            return parse_answer(stdout)
        except ValueError as exc:
            raise spawn_error(f"{what} on {host.name} failed", reason="launcher",
                              log_message=f"launcher answer {stdout!r}: {exc}") from None

    def server_argv(self) -> list[str]:
        argv = [*self.cmd, *self.get_args(), f"--KernelManager.transport={self.kernel_transport}"]
        if self.setup_lines:
            # The admin's lines, then exec of the server with its arguments passed as "$@" (never spliced).
            argv = ["/bin/bash", "-c", "\n".join([*self.setup_lines, 'exec "$@"']), "hpchub-setup", *argv]
        return argv

    # ----- progress -----------------------------------------------------------------
    def _reset_events(self) -> None:
        self._events = []
        self._new_event = asyncio.Event()

    def _event(self, message: str, progress: int, **extra) -> None:
        if not hasattr(self, "_events"):
            self._reset_events()
        self._events.append({"progress": progress, "message": message, **extra})
        self._new_event.set()  # wake progress() at once: JupyterHub stops reading when the spawn ends
        self.log.info("%s: %s", self._log_name, message)

    async def progress(self):
        sent = 0
        while True:
            events = getattr(self, "_events", [])
            while sent < len(events):
                yield events[sent]
                sent += 1
            if self._spawn_future is not None and self._spawn_future.done():
                break
            new_event = getattr(self, "_new_event", None)
            if new_event is None:
                await asyncio.sleep(0.2)
                continue
            new_event.clear()
            try:
                await asyncio.wait_for(new_event.wait(), 1)
            except asyncio.TimeoutError:
                pass
