"""Reading a server's output for its owner: a batch job's output file (its stdout and stderr,
the server's log among them) or a login-node server's log, running or ended.

It is read on the cluster as the user, with the user's own certificate from auth_state, by
the launcher that wrote it (its "read" action): never as root, never from the hub's disk.
Where to read comes from the spawner's saved `last_server` (state.LastServer), which is kept
after the server ended, so the output of a job that failed at start is readable too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..credentials import CredentialError, CredentialSet
from ..remote import Host, SSHError
from ..remote.launcher import BATCH, NODE, launcher_argv, launcher_input, parse_answer
from ..remote.launcher_prelude import MAX_READ
from .cluster_config import usable_certificate

if TYPE_CHECKING:
    from .spawner import HPCSpawner

DEFAULT_BYTES = 64 * 1024  # what the page shows first; "load more" asks for four times as much
MAX_BYTES = MAX_READ  # the most one page shows: what the launcher sends at most
READ_TIMEOUT = 30.0


class OutputError(Exception):
    """The output could not be read: a message for the user, and the detail for the log."""

    def __init__(self, user_message: str, log_detail: str = ""):
        super().__init__(user_message)
        self.user_message = user_message
        self.log_detail = log_detail or user_message


@dataclass(frozen=True)
class ServerOutput:
    what: str  # "the output of job 42" / "the log of your server on login1"
    text: str
    size: int  # of the whole file
    start: int  # where the text begins in it (0: the whole file is shown)


def wanted_bytes(raw: str | None) -> int:
    """The page's ?bytes= (anything else than a positive number: the default), at most MAX_BYTES."""
    try:
        value = int(raw) if raw is not None else DEFAULT_BYTES
    except ValueError:
        return DEFAULT_BYTES
    return min(MAX_BYTES, value) if value > 0 else DEFAULT_BYTES


async def read_output(spawner: HPCSpawner, max_bytes: int) -> ServerOutput:
    """The last max_bytes of the latest server's output. Raises OutputError."""
    source = spawner.last_server
    if source is None:
        raise OutputError("this server has no output to show yet: it has not been started by hpchub")
    configs = spawner.cluster_configs()
    config = configs.get(source.cluster) or spawner.cluster_config
    nodes = list(config.login_nodes)
    # The login node it used, else any: a job's output and a stopped server's kept log are in
    # the shared home (only a running login server's log is on its own node).
    node = next((n for n in nodes if n["name"] == source.host), nodes[0] if nodes else None)
    if node is None:
        raise OutputError("the cluster this server ran on is no longer configured here",
                          f"no login node for cluster {source.cluster!r}")
    host = Host.from_node(node)
    try:
        credentials = CredentialSet.from_auth_state(await spawner.user.get_auth_state())
    except CredentialError as exc:
        raise OutputError(exc.user_message, exc.log_detail) from None
    credential, problem = usable_certificate(credentials, config)
    if credential is None:
        raise OutputError(problem)
    module = BATCH if source.kind == "batch" else NODE
    request = {"action": "read", "server_id": source.server_id, "bytes": int(max_bytes)}
    try:
        result = await spawner.cluster_of(config).pool.run(
            host, credential, launcher_argv(spawner.launcher_python), input=launcher_input(request, module),
            timeout=READ_TIMEOUT, what="reading your server's output")
        answer = parse_answer(str(result.stdout))
    except SSHError as exc:
        raise OutputError(exc.user_message, exc.log_detail) from None
    except ValueError as exc:
        raise OutputError(f"reading the output on {host.name} failed", f"launcher answer: {exc}") from None
    what = (f"the output of job {source.job_id}" if source.kind == "batch"
            else f"the log of your server on {source.host or host.name}")
    if answer.get("missing"):
        why = ("has nothing in it yet: the job has not started" if source.kind == "batch" and spawner.active
               else "is no longer there (outputs are kept for a week)")
        raise OutputError(f"{what} {why}", f"{source.server_id}: no file on {host.name}")
    return ServerOutput(what, str(answer.get("text", "")), int(answer.get("size", 0)), int(answer.get("from", 0)))
