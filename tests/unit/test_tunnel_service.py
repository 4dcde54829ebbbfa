"""The tunnel service's bookkeeping of one tunnel when requests about it overlap (the SSH side is
a stand-in that answers slowly: what is tested is which tunnels the service holds after)."""

from __future__ import annotations

import asyncio

from hpchub.credentials import SSHCredential
from hpchub.remote.tunnels import TunnelService

CREDENTIAL = SSHCredential(private_key="k", certificate="c", principal="alice", serial=1, key_id="id",
                           valid_after=0, valid_before=2**31, issuer="test").to_dict()
OPEN = {"op": "open", "id": "alice-default-1", "host": {"name": "login1", "address": "10.0.0.1"},
        "credential": CREDENTIAL, "hub_api": ["127.0.0.1", 8081]}


class Listener:
    def __init__(self):
        self.closed = False

    def get_port(self) -> int:
        return 40001

    def close(self) -> None:
        self.closed = True


class Connection:
    """What the service asks of an SSH connection, answering after a while."""

    def __init__(self):
        self.opened: list = []

    def is_closed(self) -> bool:
        return False

    async def forward_remote_port(self, *_args):
        await asyncio.sleep(0.05)
        listener = Listener()
        self.opened.append(listener)
        return listener

    async def create_process(self, _command):
        keepalive = Listener()
        self.opened.append(keepalive)
        return keepalive


def service_with(connection: Connection) -> TunnelService:
    service = TunnelService("/nonexistent.sock", "/nonexistent_known_hosts")

    async def connect(_host, _credential):
        await asyncio.sleep(0.05)  # the SSH handshake
        return connection

    service.pool.connection = connect
    service.pool.existing = lambda _principal, _host: connection if connection.opened else None
    return service


def test_a_close_that_arrives_while_its_tunnel_opens_closes_it():
    connection = Connection()
    service = service_with(connection)

    async def scenario():
        opening = asyncio.ensure_future(service.dispatch(OPEN))
        await asyncio.sleep(0.01)  # the open waits for its connection
        closed = await service.dispatch({"op": "close", "id": OPEN["id"]})
        await opening
        return closed

    assert asyncio.run(scenario()) == {"closed": True}
    assert service.tunnels == {} and connection.opened and all(part.closed for part in connection.opened)


def test_two_opens_of_one_tunnel_make_one():
    connection = Connection()
    service = service_with(connection)

    async def scenario():
        return await asyncio.gather(service.dispatch(OPEN), service.dispatch(OPEN))

    first, second = asyncio.run(scenario())
    assert first == second == {"remote_port": 40001}
    assert len(connection.opened) == 2  # one reverse forward and one keepalive session, not two of each
