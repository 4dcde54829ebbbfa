"""Jupyter on a login node over SSH (entry point ``hpchub-ssh``).

The user's single-user server is started on one of the site's login nodes, as that user,
with the SSH certificate from their login (see hpchub.auth). It listens on a Unix socket
in a 0700 directory of its own; the hub reaches it through an SSH tunnel, and it reaches
the hub's API through a reverse forward on the login node: the same in every network mode.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.spawner import Spawner, SpawnException
from traitlets import Dict, Float, Integer, List, Unicode, default

from ..credentials import CredentialError, CredentialSet, SSHCredential
from ..remote import Host, SSHError, SSHPool
from ..remote.detach import spawn_detached
from ..remote.launcher import launcher_argv, launcher_input, parse_answer
from ..remote.tunnels import TunnelClient

def spawn_error(message: str, *, reason: str, log_message: str) -> SpawnException:
    """A SpawnException whose user message is what the user sees everywhere.

    JupyterHub 6.1's progress stream formats a failure with utils.format_exception, which
    reads `jupyterhub_message` and otherwise falls back to str(exc) - the log message, with
    commands and addresses in it. Setting the attribute keeps those details in the log.
    """
    exc = SpawnException(message, reason=reason, log_message=log_message)
    exc.jupyterhub_message = message
    return exc


# One pool for the hub process: connections are per (user, host) and shared by spawners.
_pools: dict[str, SSHPool] = {}
_servers_per_host: Counter = Counter()
_tunnel_service_lock = asyncio.Lock()


class SSHSpawner(Spawner):
    """Start the single-user server on a login node over SSH, reached through a tunnel."""

    login_nodes = List(
        Dict(),
        config=True,
        help="""The login nodes servers may run on, in order of preference:
        `[{"name": "login1", "address": "login1.example.org", "port": 22}, ...]`.
        A spawn goes to a reachable node with the fewest of this hub's servers; if a node
        cannot be reached the next one is tried, and the user is told which node was used.""",
    )

    known_hosts = Unicode(
        config=True,
        help="""known_hosts file with the login nodes' host keys (or a `@cert-authority` line for
        a host CA). Host keys are always verified: a mismatch stops the spawn.""",
    )

    launcher_python = Unicode(
        "python3",
        config=True,
        help="""Python on the login nodes that runs hpchub's launcher (3.6 or newer, standard
        library only; it is sent over the SSH channel, nothing is installed on the cluster).""",
    )

    launcher_wait = Float(
        30,
        config=True,
        help="""Seconds the launcher waits on the node for the server to open its socket before
        answering (the hub then keeps waiting up to `http_timeout`).""",
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
        help="""Shell lines run on the login node before the server starts, e.g.
        `["module load python/3.11", "export OMP_NUM_THREADS=1"]`. They come from this
        configuration only (never from users) and run in bash, which then execs the server.""",
    )

    kernel_transport = Unicode(
        "ipc",
        config=True,
        help="""ZeroMQ transport between the server and its kernels. `ipc` (the default) uses
        Unix sockets in the server's private runtime directory, so no TCP port of a kernel is
        open to the other users of a shared login node; `tcp` is Jupyter's own default.""",
    )

    @default("cmd")
    def _default_cmd(self):
        return ["jupyterhub-singleuser"]

    @default("env_keep")
    def _default_env_keep(self):
        # The node's own login environment (PATH, LANG, ...) comes from the SSH session;
        # nothing of the hub's environment is passed on.
        return []

    # ----- helpers -----------------------------------------------------------------
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

    @staticmethod
    def _host(node: dict) -> Host:
        return Host(node["name"], node.get("address", node["name"]), int(node.get("port", 22)))

    def _hosts(self) -> list[Host]:
        hosts = [self._host(n) for n in self.login_nodes]
        if not hosts:
            raise spawn_error("no login nodes are configured for this hub", reason="config",
                                 log_message="SSHSpawner.login_nodes is empty")
        # Fewest of our servers first; the configured order breaks ties.
        return sorted(hosts, key=lambda h: _servers_per_host[h.name])

    async def _credential(self) -> SSHCredential:
        try:
            credentials = CredentialSet.from_auth_state(await self.user.get_auth_state())
        except CredentialError as exc:
            raise spawn_error(exc.user_message, reason="credential", log_message=exc.log_detail) from None
        if credentials is None or credentials.ssh is None or credentials.ssh.expired():
            raise spawn_error("your login credentials are missing or expired: log out and log in again",
                                 reason="credential", log_message=f"no valid SSH credential for {self.user.name}")
        return credentials.ssh

    def _event(self, message: str, progress: int) -> None:
        self._events.append({"progress": progress, "message": message})
        self._new_event.set()  # wake progress() at once: JupyterHub stops reading when the spawn ends
        self.log.info("%s: %s", self._log_name, message)

    def _state_host(self) -> Host | None:
        if not self.host_name:
            return None
        for node in self.login_nodes:
            if node["name"] == self.host_name:
                return self._host(node)
        return None

    # ----- state ----------------------------------------------------------------------
    host_name = Unicode("")
    server_id = Unicode("")
    remote_pid = Integer(0)

    def get_state(self):
        state = super().get_state()
        if self.server_id:
            state.update(host=self.host_name, server_id=self.server_id, pid=self.remote_pid)
        return state

    def load_state(self, state):
        super().load_state(state)
        self.host_name = state.get("host", "")
        self.server_id = state.get("server_id", "")
        self.remote_pid = state.get("pid", 0)
        if self.host_name and not getattr(self, "_counted", False):
            _servers_per_host[self.host_name] += 1  # a server found again after a hub restart
            self._counted = True

    def clear_state(self):
        super().clear_state()
        self.host_name = ""
        self.server_id = ""
        self.remote_pid = 0

    # ----- the Spawner contract -------------------------------------------------------
    async def start(self):
        self._events = []
        self._new_event = asyncio.Event()
        credential = await self._credential()
        host, conn = await self._choose_host(credential)
        return await self._start_on(host, conn, credential)

    async def _choose_host(self, credential: SSHCredential):
        """A reachable login node with the fewest of this hub's servers, then the lowest load."""
        hosts = self._hosts()
        self._event("Connecting to the login nodes: " + ", ".join(h.name for h in hosts), 10)
        probes = await asyncio.gather(*(self._probe(host, credential) for host in hosts))
        usable = [(host, conn, load) for host, conn, load, error in probes if error is None]
        if not usable:
            failures = [error for *_, error in probes]
            raise spawn_error("no login node could be reached: " + "; ".join(e.user_message for e in failures),
                              reason="ssh", log_message="; ".join(e.log_detail for e in failures))
        host, conn, load = min(usable, key=lambda u: (_servers_per_host[u[0].name], u[2]))
        self._event(f"Chose login node {host.name} (load {load:.2f}, "
                    f"{_servers_per_host[host.name]} other servers of this hub there)", 20)
        return host, conn

    async def _probe(self, host: Host, credential: SSHCredential):
        try:
            conn = await self.pool.connection(host, credential)
            result = await self.pool.run_on(conn, host, ["cat", "/proc/loadavg"], timeout=10, what="reading the load")
            return host, conn, float(str(result.stdout).split()[0]), None
        except SSHError as exc:
            self.log.warning("%s: %s", self._log_name, exc.log_detail)
            return host, None, float("inf"), exc
        except (ValueError, IndexError):
            return host, conn, float("inf"), None  # no load figure: usable, ranked last

    async def _tunnel(self, op: str, **fields) -> dict:
        try:
            return await self.tunnels.call(op, id=self.server_id, **fields)
        except SSHError as exc:
            raise spawn_error(exc.user_message, reason="tunnel", log_message=exc.log_detail) from None

    async def _start_on(self, host: Host, conn, credential: SSHCredential):
        await self._ensure_tunnel_service()
        hub_api = urlparse(self.hub.api_url)
        self.server_id = f"{self.user.name}-{self.name or 'default'}-{secrets.token_hex(4)}".lower()
        # The server reaches the hub's API through a forward on the login node's loopback.
        opened = await self._tunnel("open", host=asdict(host), credential=credential.to_dict(),
                                    hub_api=[hub_api.hostname or "127.0.0.1", hub_api.port])
        env = self.get_env()
        env["JUPYTERHUB_API_URL"] = f"http://127.0.0.1:{opened['remote_port']}{hub_api.path}"
        # The server listens on a socket; the single-user extension still copies this URL's
        # port into ServerApp.port, which jupyter_server accepts beside --sock only as 8888.
        env["JUPYTERHUB_SERVICE_URL"] = f"http://127.0.0.1:8888{self.server.base_url}"
        request = {"action": "start", "server_id": self.server_id, "argv": self.server_argv(),
                   "env": env, "wait": self.launcher_wait}
        self._event(f"Starting your server on {host.name}", 40)
        answer = await self._launcher(host, credential, request, "starting your server")
        if answer.get("status") not in ("listening", "starting"):
            await self._tunnel("close")
            detail = answer.get("log_tail") or answer.get("error") or str(answer)
            raise spawn_error(f"your server on {host.name} stopped right after starting: {detail[-500:]}",
                                 reason="exited", log_message=f"launcher on {host.name}: {answer}")
        self.host_name, self.remote_pid = host.name, int(answer["pid"])
        _servers_per_host[host.name] += 1
        self._counted = True
        forwarded = await self._tunnel("forward", remote_socket=answer["socket"])
        self._event(f"Server started on {host.name} (pid {self.remote_pid}); waiting for it to answer", 70)
        return ("127.0.0.1", forwarded["local_port"])

    def server_argv(self) -> list[str]:
        argv = [*self.cmd, *self.get_args(), f"--KernelManager.transport={self.kernel_transport}"]
        if self.setup_lines:
            # The admin's lines, then exec of the server with its arguments passed as "$@" (never spliced).
            argv = ["/bin/bash", "-c", "\n".join([*self.setup_lines, 'exec "$@"']), "hpchub-setup", *argv]
        return argv

    async def _launcher(self, host: Host, credential: SSHCredential | None, request: dict, what: str) -> dict:
        """Run the launcher with the user's credential or, without one, over the connection
        the tunnel service keeps for this server (already authenticated: a certificate that
        expired since does not matter to an open connection)."""
        argv, stdin = launcher_argv(self.launcher_python), launcher_input(request)
        try:
            if credential is not None:
                result = await self.pool.run(host, credential, argv, input=stdin,
                                             timeout=self.launcher_wait + 30, what=what)
                stdout = str(result.stdout)
            else:
                reply = await self.tunnels.call("exec", id=self.server_id, argv=argv, input=stdin,
                                                timeout=self.launcher_wait + 30)
                stdout = reply["stdout"]
        except SSHError as exc:
            raise spawn_error(exc.user_message, reason="ssh", log_message=exc.log_detail) from None
        try:
            return parse_answer(stdout)
        except ValueError as exc:
            raise spawn_error(f"{what} on {host.name} failed", reason="launcher",
                              log_message=f"launcher answer {stdout!r}: {exc}") from None

    async def _credential_or_none(self) -> SSHCredential | None:
        try:
            return await self._credential()
        except SpawnException as exc:
            self.log.info("%s: %s; using the tunnel's connection", self._log_name, exc.log_message)
            return None

    async def poll(self):
        host = self._state_host()
        if host is None or not self.server_id:
            return 0
        try:
            credential = await self._credential_or_none()
            answer = await self._launcher(host, credential, {"action": "poll", "server_id": self.server_id,
                                                             "pid": self.remote_pid}, "checking your server")
        except SpawnException as exc:
            # Unsure is not gone: a failed check never drops a live server.
            self.log.warning("%s: poll inconclusive: %s", self._log_name, exc.log_message)
            return None
        return None if answer.get("status") == "running" else 1

    async def stop(self, now=False):
        host = self._state_host()
        if host is not None and self.server_id:
            credential = await self._credential_or_none()
            answer = await self._launcher(host, credential, {"action": "stop", "server_id": self.server_id,
                                                             "pid": self.remote_pid}, "stopping your server")
            if answer.get("status") != "stopped":
                self.log.error("%s: stop on %s left %s", self._log_name, host.name, answer)
            if getattr(self, "_counted", False):
                _servers_per_host[host.name] -= 1
                self._counted = False
            try:
                await self.tunnels.call("close", id=self.server_id)
            except SSHError as exc:
                self.log.warning("%s: closing its tunnels: %s", self._log_name, exc.log_detail)
        self.clear_state()

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
