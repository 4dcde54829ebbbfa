"""The tunnel service: SSH tunnels that outlive the hub process.

A restarted hub must find its users' servers where it left them, so the tunnels to them
cannot live in the hub. `hpchub tunnels serve` holds them instead: a small process beside
the proxy, reached on a Unix socket that only the hub's user can open, speaking one JSON
object per line:

    {"op": "open", "id": ID, "host": {...}, "credential": {...}, "hub_api": [HOST, PORT],
     "bind": ADDRESS, "remote_port": N}
        -> {"remote_port": N}   a forward on the node to the hub's API, listening on the node's
                                loopback, or on `bind` (its cluster-side address, for servers
                                on compute nodes; sshd needs `GatewayPorts clientspecified`);
                                on the port asked for if any (a tunnel rebuilt: the server was
                                given that port)
    {"op": "forward", "id": ID, "remote_socket": PATH}  or  "remote_address": [HOST, PORT],
     "local_port": N
        -> {"local_port": N}    a listener on the hub side's loopback to the server's socket
                                on the login node, or to a TCP port the login node reaches (on
                                the port asked for if any: the proxy routes to it)
    {"op": "status", "id": ID}  -> {"local_port": N, "remote_port": M, "connected": BOOL}
                                   or {"missing": true}; connected: its SSH connection is open.
                                   Every status answer carries "started": when this service
                                   started, so that the hub notices a service that restarted

An `open` for a tunnel whose SSH connection has closed (its node rebooted, say) rebuilds it.
The service keeps nothing on disk: after a restart it holds no tunnel, and the hub rebuilds
them from its own records (each server's saved ports) with its users' credentials.
    {"op": "close", "id": ID}   -> {"closed": true}
    {"op": "end_user", "principal": NAME}
        -> {"tunnels": N, "connections": M}: every tunnel and connection made as that user
        closed (their certificate was revoked)
    {"op": "exec", "id": ID, "argv": [...], "input": TEXT}
        -> {"exit_status": N, "stdout": ..., "stderr": ...}: a command over the tunnel's own
        connection, already authenticated: the hub's lifeline to stop a server whose user's
        certificate has expired

Credentials (key and certificate) reach it over that socket, never through argv or files.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import weakref
from dataclasses import dataclass, field

import asyncssh

from ..credentials import SSHCredential
from .ssh import Host, SSHError, SSHPool

log = logging.getLogger("hpchub.tunnels")


@dataclass
class Tunnel:
    host: Host
    credential: SSHCredential
    reverse: asyncssh.SSHListener | None = None
    local: asyncssh.SSHListener | None = None
    keepalive: asyncssh.SSHClientProcess | None = field(default=None, repr=False)

    def connected(self, pool: SSHPool) -> bool:
        conn = pool.existing(self.credential.principal, self.host)
        return conn is not None and not conn.is_closed()

    def close(self) -> None:
        for listener in (self.reverse, self.local):
            if listener is not None:
                listener.close()
        if self.keepalive is not None:
            self.keepalive.close()


class TunnelService:
    def __init__(self, socket_path: str, known_hosts: str):
        self.socket_path = socket_path
        self.pool = SSHPool(known_hosts)
        self.tunnels: dict[str, Tunnel] = {}
        self.started = time.time()
        # One change at a time per tunnel: a close that arrives while its open still waits for
        # the SSH connection runs after it (and closes what it made), and two opens of one id
        # (a poll's and the hub's tunnel check, say) make one tunnel, not two with one orphaned.
        self._changing: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def serve(self) -> None:
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        old_umask = os.umask(0o177)  # the socket is born 0600: only the hub's user may connect
        try:
            server = await asyncio.start_unix_server(self.handle, path=self.socket_path)
        finally:
            os.umask(old_umask)
        log.info("tunnel service listening on %s", self.socket_path)
        async with server:
            await server.serve_forever()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                reply = await self.dispatch(request)
            except SSHError as exc:
                reply = {"error": exc.user_message, "detail": exc.log_detail}
            except (ValueError, KeyError, TypeError) as exc:
                reply = {"error": "bad request", "detail": repr(exc)}
            except (OSError, asyncssh.Error) as exc:
                reply = {"error": "the tunnel could not be opened", "detail": repr(exc)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    async def dispatch(self, request: dict) -> dict:
        reply = await self._dispatch(request)
        if request["op"] == "status":
            reply["started"] = self.started
        return reply

    async def _dispatch(self, request: dict) -> dict:
        op, tunnel_id = request["op"], request.get("id", "")
        if op in ("open", "forward", "close"):
            lock = self._changing.get(tunnel_id)
            if lock is None:
                lock = self._changing[tunnel_id] = asyncio.Lock()
            async with lock:
                return await self._op(op, tunnel_id, request)
        return await self._op(op, tunnel_id, request)

    async def _op(self, op: str, tunnel_id: str, request: dict) -> dict:
        if op == "open":
            return await self._open(tunnel_id, request)
        tunnel = self.tunnels.get(tunnel_id)
        if op == "forward":
            if tunnel is None:
                return {"error": "no such tunnel", "detail": tunnel_id}
            if tunnel.local is None:
                conn = await self.pool.connection(tunnel.host, tunnel.credential)
                port = int(request.get("local_port") or 0)
                if "remote_address" in request:
                    dest_host, dest_port = request["remote_address"]
                    tunnel.local = await conn.forward_local_port("127.0.0.1", port, dest_host, int(dest_port))
                else:
                    tunnel.local = await conn.forward_local_port_to_path("127.0.0.1", port, request["remote_socket"])
            return {"local_port": tunnel.local.get_port()}
        if op == "exec":
            if tunnel is None:
                return {"error": "no such tunnel", "detail": tunnel_id}
            conn = self.pool.existing(tunnel.credential.principal, tunnel.host)
            if conn is None:
                return {"error": "the tunnel's connection is gone", "detail": tunnel_id}
            result = await self.pool.run_on(conn, tunnel.host, request["argv"], input=request.get("input"),
                                            timeout=float(request.get("timeout", 60)), check=False)
            return {"exit_status": result.exit_status, "stdout": str(result.stdout or ""),
                    "stderr": str(result.stderr or "")}
        if op == "status":
            if tunnel is None:
                return {"missing": True}
            return {"local_port": tunnel.local.get_port() if tunnel.local else None,
                    "remote_port": tunnel.reverse.get_port() if tunnel.reverse else None,
                    "connected": tunnel.connected(self.pool)}
        if op == "close":
            if tunnel is not None:
                tunnel.close()
                del self.tunnels[tunnel_id]
                log.info("closed %s", tunnel_id)
            return {"closed": True}
        if op == "end_user":
            principal = request["principal"]
            ended = [tid for tid, t in self.tunnels.items() if t.credential.principal == principal]
            for tid in ended:
                self.tunnels.pop(tid).close()
            connections = self.pool.close_user(principal)
            log.info("ended %d tunnels and %d connections of %s", len(ended), connections, principal)
            return {"tunnels": len(ended), "connections": connections}
        raise ValueError(f"unknown op {op!r}")

    async def _open(self, tunnel_id: str, request: dict) -> dict:
        tunnel = self.tunnels.get(tunnel_id)
        if tunnel is not None and tunnel.reverse is not None and tunnel.connected(self.pool):
            return {"remote_port": tunnel.reverse.get_port()}
        host = Host.from_dict(request["host"])
        credential = SSHCredential.from_dict(request["credential"])
        conn = await self.pool.connection(host, credential)  # (unreachable: the old entry stays, disconnected)
        if tunnel is not None:  # its connection had closed: rebuilt on the same ports
            tunnel.close()
            del self.tunnels[tunnel_id]
        hub_host, hub_port = request["hub_api"]
        tunnel = Tunnel(host, credential)
        bind = request.get("bind") or "127.0.0.1"
        tunnel.reverse = await conn.forward_remote_port(bind, int(request.get("remote_port") or 0), hub_host,
                                                        int(hub_port))
        # Some session must stay open on a connection that carries forwards: without one,
        # sshd leaves Nagle on and every kernel round trip stalls by about 40 ms.
        tunnel.keepalive = await conn.create_process("cat")
        self.tunnels[tunnel_id] = tunnel
        log.info("opened %s: %s reverse port %d", tunnel_id, host.name, tunnel.reverse.get_port())
        return {"remote_port": tunnel.reverse.get_port()}


class TunnelClient:
    """The hub's side: one request per connection to the service's socket."""

    def __init__(self, socket_path: str, timeout: float = 30):
        self.socket_path = socket_path
        self.timeout = timeout

    async def call(self, op: str, **fields) -> dict:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(self.socket_path)
        except (OSError, asyncio.TimeoutError) as exc:
            raise SSHError("the hub's tunnel service is not running", f"{self.socket_path}: {exc!r}") from None
        try:
            writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            await writer.drain()
            async with asyncio.timeout(self.timeout):
                line = await reader.readline()
        except (OSError, asyncio.TimeoutError) as exc:
            raise SSHError("the hub's tunnel service did not answer", f"{op}: {exc!r}") from None
        finally:
            writer.close()
        reply = json.loads(line or b"{}")
        if "error" in reply:
            raise SSHError(reply["error"], f"tunnel service {op}: {reply.get('detail', '')}")
        return reply

    async def alive(self) -> bool:
        try:
            await self.call("status", id="")
        except SSHError:
            return False
        return True
