"""Jupyter on a login node over SSH (entry point ``hpchub-ssh``).

The user's single-user server is started on one of the site's login nodes, as that user,
with the SSH certificate from their login (see hpchub.auth). It listens on a Unix socket
in a 0700 directory of its own; the hub reaches it through an SSH tunnel, and it reaches
the hub's API through a reverse forward on the login node: the same in every network mode.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict
from urllib.parse import urlparse

from jupyterhub.spawner import Spawner, SpawnException
from traitlets import Integer, Unicode

from ..credentials import SSHCredential
from ..remote import Host, SSHError
from .remote import RemoteSpawner, new_server_id, spawn_error, with_hub_api_at
from .targets import Target

_servers_per_host: Counter = Counter()


class SSHSpawner(RemoteSpawner, Spawner):
    """Start the single-user server on a login node over SSH, reached through a tunnel."""

    def _hosts(self) -> list[Host]:
        hosts = self._login_hosts()
        # Fewest of our servers first; the configured order breaks ties.
        return sorted(hosts, key=lambda h: _servers_per_host[h.name])

    def _state_host(self) -> Host | None:
        node = self._login_node(self.host_name) if self.host_name else None
        return self._host(node) if node else None

    def implicit_target(self) -> Target:
        return Target(name="login", title="a login node", kind="login")

    # ----- state ----------------------------------------------------------------------
    host_name = Unicode("")
    remote_pid = Integer(0)

    def get_state(self):
        state = super().get_state()
        if self.server_id:
            state.update(host=self.host_name, server_id=self.server_id, pid=self.remote_pid)
        return state

    def load_state(self, state):
        super().load_state(state)
        if "pid" not in state:
            return  # not a login-node server's state (hpchub's combined spawner keeps both kinds)
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
        self._reset_events()
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

    async def _start_on(self, host: Host, conn, credential: SSHCredential):
        files, grid_env = await self._grid_delivery()  # before anything is opened: it may refuse
        await self._ensure_tunnel_service()
        hub_api = urlparse(self.hub.api_url)
        self.server_id = new_server_id(self.user.name, self.name)
        # The server reaches the hub's API through a forward on the login node's loopback.
        opened = await self._tunnel("open", host=asdict(host), credential=credential.to_dict(),
                                    hub_api=[hub_api.hostname or "127.0.0.1", hub_api.port])
        env = with_hub_api_at(self.get_env(), f"http://127.0.0.1:{opened['remote_port']}{hub_api.path}")
        # The server listens on a socket; the single-user extension still copies this URL's
        # port into ServerApp.port, which jupyter_server accepts beside --sock only as 8888.
        env["JUPYTERHUB_SERVICE_URL"] = f"http://127.0.0.1:8888{self.server.base_url}"
        env.update(grid_env)
        request = {"action": "start", "server_id": self.server_id, "argv": self.server_argv(),
                   "env": env, "wait": self.launcher_wait, "files": files}
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

    async def poll(self):
        host = self._state_host()
        if host is None or not self.server_id:
            return 0
        try:
            credential = await self._credential_or_none()
            answer = await self._launcher(host, credential, {"action": "poll", "server_id": self.server_id,
                                                             "pid": self.remote_pid}, "checking your server")
        except SpawnException as exc:
            if await self._node_down(host):
                self.log.warning("%s: login node %s is down (%s); its server is gone with it", self._log_name,
                                 host.name, exc.log_message)
                if hasattr(self, "last_outcome"):  # hpchub's combined spawner shows it on the home page
                    self.last_outcome = {"message": f"login node {host.name} went down"}
                return 1
            # Unsure is not gone: a failed check never drops a live server.
            self.log.warning("%s: poll inconclusive: %s", self._log_name, exc.log_message)
            return None
        return None if answer.get("status") == "running" else 1

    async def _node_down(self, host) -> bool:
        """The node cannot be reached now, and the tunnel service's connection to it, which
        carries this server's tunnel, has closed too: the node (not just a new login) is gone."""
        try:
            status = await self.tunnels.call("status", id=self.server_id)
        except SSHError:
            return False  # the tunnel service itself is not answering: unsure
        return status.get("connected") is False

    async def stop(self, now=False):
        host = self._state_host()
        if host is not None and self.server_id:
            credential = await self._credential_or_none()
            try:
                answer = await self._launcher(host, credential, {"action": "stop", "server_id": self.server_id,
                                                                 "pid": self.remote_pid}, "stopping your server")
            except SpawnException as exc:
                if not await self._node_down(host):
                    raise
                answer = {"status": "stopped"}  # its processes went with the node
                self.log.warning("%s: not stopped on %s, which is down: %s", self._log_name, host.name,
                                 exc.log_message)
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
