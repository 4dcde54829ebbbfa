"""A server on a login node (the targets of kind `login`; all of `hpchub-ssh`).

The user's single-user server is started on one of the site's login nodes, as that user, with
the SSH certificate from their login. It listens on a Unix socket in a 0700 directory of its
own; the hub reaches it through an SSH tunnel, and it reaches the hub's API through a reverse
forward on the login node: the same in every network mode.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

from jupyterhub.spawner import SpawnException

from ..credentials import SSHCredential
from ..remote import Host, SSHError
from .launch import Launch, new_server_id, spawn_error, with_hub_api_at
from .state import LoginServer


class LoginLaunch(Launch):
    kind = "login"

    def __init__(self, owner, server: LoginServer | None = None):
        super().__init__(owner)
        self.server = server or LoginServer()
        self._counted = False
        if self.server.host:  # a server found again after a hub restart
            self._count(+1)

    def saved(self) -> LoginServer:
        return self.server

    @property
    def where(self) -> str:
        return self.server.host

    def _count(self, change: int) -> None:
        """This hub's servers per login node, for choosing where the next one goes."""
        if (change > 0) != self._counted:
            self.owner.cluster.servers_per_host[self.server.host] += change
            self._counted = change > 0

    # ----- start ------------------------------------------------------------------------
    async def start(self):
        credential = await self.credential()
        host = await self._choose_host(credential)
        return await self._start_on(host, credential)

    async def _choose_host(self, credential: SSHCredential) -> Host:
        """A reachable login node with the fewest of this hub's servers, then the lowest load;
        never a drained one."""
        hosts = self.login_hosts(undrained=True)
        counts = self.owner.cluster.servers_per_host
        self.owner.event("Connecting to the login nodes: " + ", ".join(h.name for h in hosts), 10)
        probes = await asyncio.gather(*(self._probe(host, credential) for host in hosts))
        usable = [(host, load) for host, load, error in probes if error is None]
        if not usable:
            failures = [error for *_, error in probes]
            raise spawn_error("no login node could be reached: " + "; ".join(e.user_message for e in failures),
                              reason="ssh", log_message="; ".join(e.log_detail for e in failures))
        host, load = min(usable, key=lambda u: (counts[u[0].name], u[1]))
        self.owner.event(f"Chose login node {host.name} (load {load:.2f}, "
                         f"{counts[host.name]} other servers of this hub there)", 20)
        return host

    async def _probe(self, host: Host, credential: SSHCredential):
        cluster = self.owner.cluster
        try:
            conn = await cluster.pool.connection(host, credential)
            result = await cluster.pool.run_on(conn, host, ["cat", "/proc/loadavg"], timeout=10,
                                               what="reading the load")
            cluster.note_host(host, None)
            return host, float(str(result.stdout).split()[0]), None
        except SSHError as exc:
            self.log.warning("%s: %s", self.owner._log_name, exc.log_detail)
            cluster.note_host(host, exc.log_detail)
            return host, float("inf"), exc
        except (ValueError, IndexError):
            return host, float("inf"), None  # no load figure: usable, ranked last

    async def _start_on(self, host: Host, credential: SSHCredential):
        owner = self.owner
        files, grid_env = await self.grid_delivery()  # before anything is opened: it may refuse
        await self.ensure_tunnel_service()
        hub_api = urlparse(owner.hub.api_url)
        self.server = LoginServer(server_id=new_server_id(owner.user.name, owner.name))
        # The server reaches the hub's API through a forward on the login node's loopback.
        opened = await self.tunnel("open", host=host.to_dict(), credential=credential.to_dict(),
                                   hub_api=[hub_api.hostname or "127.0.0.1", hub_api.port])
        self.server.remote_port = opened["remote_port"]
        env = with_hub_api_at(owner.get_env(), f"http://127.0.0.1:{opened['remote_port']}{hub_api.path}")
        # The server listens on a socket; the single-user extension still copies this URL's
        # port into ServerApp.port, which jupyter_server accepts beside --sock only as 8888.
        env["JUPYTERHUB_SERVICE_URL"] = f"http://127.0.0.1:8888{owner.server.base_url}"
        env.update(grid_env)
        request = {"action": "start", "server_id": self.server_id, "argv": self.server_argv(),
                   "env": env, "wait": owner.launcher_wait, "files": files}
        owner.event(f"Starting your server on {host.name}", 40)
        answer = await self.run_launcher(host, credential, request, "starting your server")
        if answer.get("status") not in ("listening", "starting"):
            await self.tunnel("close")
            detail = answer.get("log_tail") or answer.get("error") or str(answer)
            raise spawn_error(f"your server on {host.name} stopped right after starting: {detail[-500:]}",
                              reason="exited", log_message=f"launcher on {host.name}: {answer}")
        self.server.host, self.server.pid, self.server.socket = host.name, int(answer["pid"]), answer["socket"]
        self.server.ssh_address, self.server.ssh_port = host.address, host.port
        self._count(+1)
        forwarded = await self.tunnel("forward", remote_socket=answer["socket"])
        self.server.local_port = forwarded["local_port"]
        owner.event(f"Server started on {host.name} (pid {self.server.pid}); waiting for it to answer", 70)
        return ("127.0.0.1", forwarded["local_port"])

    def server_argv(self) -> list[str]:
        argv = super().server_argv()
        setup_lines = self.owner.all_setup_lines
        if setup_lines:
            # The admin's lines, then exec of the server with its arguments passed as "$@" (never spliced).
            argv = ["/bin/bash", "-c", "\n".join([*setup_lines, 'exec "$@"']), "hpchub-setup", *argv]
        return argv

    def tunnel_plan(self):
        host = self.host_named(self.server.host)
        if host is None or not self.server.remote_port:
            return None
        forward = {"remote_socket": self.server.socket, "local_port": self.server.local_port} \
            if self.server.local_port else None
        return host, {"remote_port": self.server.remote_port}, forward

    def hosts_used(self) -> set[str]:
        return {self.server.host} if self.server.host else set()

    def _removed_host(self) -> Host | None:
        """The login node of this server if it was removed from the configuration (drained, then
        taken out of service), as it was reached when the server started."""
        if self.server.host and self.login_node(self.server.host) is None and self.server.ssh_address:
            return Host(self.server.host, self.server.ssh_address, self.server.ssh_port or 22)
        return None

    # ----- poll and stop ----------------------------------------------------------------
    async def poll(self):
        removed = self._removed_host()
        if removed is not None:
            # Its node was taken out of service: the server there is stopped now, not orphaned.
            await self._stop_on(removed)
            self.owner.record_outcome(f"login node {removed.name} was taken out of service; your server there "
                                      "was stopped: start it again to run it on another login node")
            return 1
        host = self.host_named(self.server.host)
        if host is None or not self.server_id:
            return 0
        try:
            credential = await self.credential_or_none()
            answer = await self.run_launcher(host, credential, {"action": "poll", "server_id": self.server_id,
                                                                "pid": self.server.pid}, "checking your server")
        except SpawnException as exc:
            if await self._node_down():
                self.log.warning("%s: login node %s is down (%s); its server is gone with it", self.owner._log_name,
                                 host.name, exc.log_message)
                self.owner.record_outcome(f"login node {host.name} went down")
                return 1
            # Unsure is not gone: a failed check never drops a live server.
            self.log.warning("%s: poll inconclusive: %s", self.owner._log_name, exc.log_message)
            return None
        if answer.get("status") != "running":
            return 1
        # It runs: its tunnels too (rebuilt if the tunnel service restarted, or their connection
        # closed) - at a hub start, before JupyterHub's check asks the server to answer.
        await self.ensure_tunnels()
        return None

    async def _node_down(self) -> bool:
        """The node cannot be reached now, and the tunnel service's connection to it, which
        carries this server's tunnel, has closed too: the node (not just a new login) is gone."""
        try:
            status = await self.owner.tunnels.call("status", id=self.server_id)
        except SSHError:
            return False  # the tunnel service itself is not answering: unsure
        return status.get("connected") is False

    async def stop(self):
        host = self.host_named(self.server.host) or self._removed_host()
        if host is None or not self.server_id:
            if self.server_id:  # a spawn that failed before its server started: its tunnels only
                await self.close_tunnels()
            return
        await self._stop_on(host)

    async def _stop_on(self, host: Host) -> None:
        credential = await self.credential_or_none()
        try:
            answer = await self.run_launcher(host, credential, {"action": "stop", "server_id": self.server_id,
                                                                "pid": self.server.pid}, "stopping your server")
        except SpawnException as exc:
            if not await self._node_down():
                raise
            answer = {"status": "stopped"}  # its processes went with the node
            self.log.warning("%s: not stopped on %s, which is down: %s", self.owner._log_name, host.name,
                             exc.log_message)
        if answer.get("status") != "stopped":
            self.log.error("%s: stop on %s left %s", self.owner._log_name, host.name, answer)
        self._count(-1)
        await self.close_tunnels()
