"""Pooled SSH connections to cluster hosts, one per (user, host), reused for every command
and tunnel of that user on that host, and opened within the host's own connection limits."""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass, fields
from typing import Sequence

import asyncssh

from ..credentials import SSHCredential


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int = 22
    known_hosts: str = ""  # the file that holds this host's key (its cluster's); "": the pool's own

    def to_dict(self) -> dict:
        """As the tunnel service's requests carry it: a field at its default is left out, so that
        a tunnel service of an earlier hpchub (it outlives hub upgrades) still reads it."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in ("name", "address") or getattr(self, f.name) != f.default}

    @classmethod
    def from_node(cls, node: dict) -> "Host":
        """From a login node as configured (HPCSpawner.login_nodes, a cluster's login_nodes)."""
        return cls(node["name"], node.get("address", node["name"]), int(node.get("port", 22)),
                   node.get("known_hosts", ""))

    @classmethod
    def from_dict(cls, data: dict) -> "Host":
        """From a request, ignoring fields a later hub may add."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


class SSHError(Exception):
    """An SSH operation failed: a message for the user and a detail for the log; cause says
    which step failed ("host-key", "auth", "unreachable", or "" for anything else), for
    callers that advise an admin (hpchub check)."""

    def __init__(self, user_message: str, log_detail: str, cause: str = ""):
        super().__init__(user_message)
        self.user_message = user_message
        self.log_detail = log_detail
        self.cause = cause


class RemoteCommandError(SSHError):
    def __init__(self, host: Host, argv: Sequence[str], exit_status, stdout: str, stderr: str, user_message: str):
        self.argv = list(argv)
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(user_message, f"{host.name}: {shlex.join(argv)} exited {exit_status}: {stderr.strip()[-2000:]}")


def client_keys(credential: SSHCredential) -> list:
    return [(asyncssh.import_private_key(credential.private_key), asyncssh.import_certificate(credential.certificate))]


class SSHPool:
    """Connections by (principal, host). asyncssh verifies host keys against known_hosts."""

    def __init__(self, known_hosts: str, connect_timeout: float = 15, keepalive_interval: float = 30,
                 max_connecting_per_host: int = 8, max_sessions_per_connection: int = 8):
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        # Stay within sshd's defaults, which real login nodes keep: MaxStartups 10 (connections
        # not yet authenticated) and MaxSessions 10 (sessions on one connection).
        self.max_connecting_per_host = max_connecting_per_host
        self.max_sessions_per_connection = max_sessions_per_connection
        self._connections: dict[tuple[str, str, int], asyncssh.SSHClientConnection] = {}
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}
        self._connecting: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._sessions: dict[int, asyncio.Semaphore] = {}

    async def connection(self, host: Host, credential: SSHCredential) -> asyncssh.SSHClientConnection:
        key = (credential.principal, host.address, host.port)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(key)
            if conn is not None and not conn.is_closed():
                return conn
            connecting = self._connecting.setdefault(
                (host.address, host.port), asyncio.Semaphore(self.max_connecting_per_host))
            async with connecting:
                conn = await self._connect(host, credential)
            self._connections[key] = conn
            return conn

    def existing(self, principal: str, host: Host) -> asyncssh.SSHClientConnection | None:
        """An open connection, if there is one: it stays usable after its certificate expires."""
        conn = self._connections.get((principal, host.address, host.port))
        return conn if conn is not None and not conn.is_closed() else None

    def close_user(self, principal: str) -> int:
        """Close every connection made as principal (their certificate was revoked: an open
        connection would outlive it); the next use connects anew with a current credential."""
        ended = [key for key in self._connections if key[0] == principal]
        for key in ended:
            self._connections.pop(key).close()
        return len(ended)

    def sessions(self, conn: asyncssh.SSHClientConnection) -> asyncio.Semaphore:
        return self._sessions.setdefault(id(conn), asyncio.Semaphore(self.max_sessions_per_connection))

    async def _connect(self, host: Host, credential: SSHCredential) -> asyncssh.SSHClientConnection:
        where = f"{credential.principal}@{host.address}:{host.port} ({host.name})"
        try:
            # Bounded here rather than by asyncssh's connect_timeout, an asyncio.wait_for, which on
            # Python 3.11 loses a cancellation (a Stop during a spawn) that comes as the
            # connection completes (tests/unit/test_cancellation.py).
            async with asyncio.timeout(self.connect_timeout):
                return await asyncssh.connect(
                    host.address, host.port, username=credential.principal, client_keys=client_keys(credential),
                    known_hosts=host.known_hosts or self.known_hosts, agent_path=None, config=None,
                    preferred_auth="publickey", connect_timeout=None, keepalive_interval=self.keepalive_interval,
                    # AES-GCM first: with AES-NI it carries tunnelled downloads faster than chacha20
                    # (measured 234-254 against 180-217 MB/s on this kind of machine).
                    encryption_algs=("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                                     "chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"),
                )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise SSHError(f"the identity of login node {host.name} could not be verified (its host key does "
                           "not match the site's records), so the hub did not connect; the centre's staff "
                           "need to check it", f"host key verification failed for {where}: {exc}",
                           "host-key") from None
        except asyncssh.PermissionDenied as exc:
            raise SSHError(f"login node {host.name} refused your credentials; log out of the hub and in again",
                           f"authentication refused for {where}: {exc}", "auth") from None
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
            raise SSHError(f"login node {host.name} cannot be reached", f"connecting to {where}: {exc!r}",
                           "unreachable") from None

    async def run(self, host: Host, credential: SSHCredential, argv: Sequence[str], *, input: str | None = None,
                  timeout: float = 60, check: bool = True, what: str = "a command") -> asyncssh.SSHCompletedProcess:
        """Run argv on host as the credential's user. argv is quoted for the remote shell in one place."""
        return await self.run_on(await self.connection(host, credential), host, argv, input=input,
                                 timeout=timeout, check=check, what=what)

    async def run_on(self, conn: asyncssh.SSHClientConnection, host: Host, argv: Sequence[str], *,
                     input: str | None = None, timeout: float = 60, check: bool = True,
                     what: str = "a command") -> asyncssh.SSHCompletedProcess:
        """Run argv over an open connection (at most max_sessions_per_connection at once)."""
        try:
            async with self.sessions(conn):
                async with asyncio.timeout(timeout):
                    result = await conn.run(shlex.join(argv), input=input, check=False)
        except asyncio.TimeoutError:
            raise RemoteCommandError(host, argv, None, "", f"no answer within {timeout:.0f} s",
                                     f"{what} on {host.name} did not finish in time") from None
        except (OSError, asyncssh.Error) as exc:
            conn.close()
            raise SSHError(f"the connection to login node {host.name} failed", f"{shlex.join(argv)}: {exc!r}") from None
        if check and result.exit_status != 0:
            stderr = str(result.stderr or "")
            message = f"{what} failed on {host.name}"
            if result.exit_status == 127:
                message = f"{what} failed on {host.name}: a program was not found there"
            raise RemoteCommandError(host, argv, result.exit_status, str(result.stdout or ""), stderr, message)
        return result

    async def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        for conn in list(self._connections.values()):
            await conn.wait_closed()
        self._connections.clear()
