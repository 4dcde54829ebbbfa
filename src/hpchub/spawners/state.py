"""The spawner's saved state, in one place: what it needs to find its server again after a hub
restart, with a version (as kubespawner keeps one), read and written only here. The spawner
and hpchub-hub both import this module; nothing reads another module's keys by string.

    {"version": 2, "kind": "login" | "batch", "target": NAME, "cluster": NAME,
     ...the fields of LoginServer or BatchServer..., "last_outcome": {...}}

(flat, so that an admin reading a server's state in the REST API sees `job_id`, `node`, `host`
at once). States saved by hpchub 0.1 (no version; the keys of both kinds side by side, the kind
sometimes left out) are read too, so a hub upgraded with servers running finds them again.

`cluster` (hpchub 0.3) is the cluster the server runs on, as it was when it started: a target
later moved to another cluster, or removed, must not send its job's queries and cancel to
another scheduler. States without it (earlier hpchub, which read version 2 and ignore it)
are on their target's cluster. Adding it needed no new version: readers ignore unknown keys.

`last_server` (hpchub 0.3) says where the output of the latest server is (its kind, id on the
cluster, cluster, login node, job): kept after the server ended, so that the user can read
its job's output and its log from the home page. Optional like `cluster`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

VERSION = 2


@dataclass
class LoginServer:
    """A server on a login node (spawners/login.py)."""

    host: str = ""  # the login node's name
    server_id: str = ""  # its name on the cluster: directory, process marker, tunnels
    pid: int = 0
    socket: str = ""  # the server's Unix socket on the node
    remote_port: int = 0  # the forward to the hub's API on the node (the server was given it)
    local_port: int = 0  # the hub side's end of the tunnel to the socket (the proxy routes to it)
    ssh_address: str = ""  # how the login node was reached: one removed from the configuration is still found
    ssh_port: int = 0


@dataclass
class BatchServer:
    """A server in a batch job (spawners/batch.py)."""

    job_id: str = ""
    server_id: str = ""
    submit_host: str = ""  # the login node it was submitted from
    phase: str = ""  # "queued" (submitted, server not yet answering) or "ready"
    node: str = ""
    address: str = ""
    port: int = 0
    end_time: str = ""  # the job's end as the scheduler has it, ISO, the cluster's local time
    sealed_token: str = ""  # the server's API token, encrypted with the hub's crypt key
    remote_port: int = 0  # the forward to the hub's API on the submit host (the job was given it)
    local_port: int = 0  # the hub side's end of the tunnel to the server (via-login-node)
    submitted_at: float = 0.0  # when the job was submitted (epoch seconds): waits count from it


@dataclass
class SpawnerState:
    kind: str = ""  # "login", "batch", or "" (no server)
    target: str = ""
    server: LoginServer | BatchServer | None = None
    last_outcome: dict = field(default_factory=dict)  # how the last server ended, for the pages
    cluster: str = ""  # the cluster the server runs on ("": its target's, for states of hpchub < 0.3)
    last_server: LastServer | None = None  # where the latest server's output is (hpchub >= 0.3)


@dataclass(frozen=True)
class LastServer:
    """Where the latest server's output can be read (spawners/output.py), kept after it ended."""

    kind: str = ""  # "login" (its log) or "batch" (its job's output file)
    server_id: str = ""
    cluster: str = ""
    host: str = ""  # the login node it ran on, or its job was submitted from
    job_id: str = ""

    @classmethod
    def of(cls, server: LoginServer | BatchServer, cluster: str) -> "LastServer":
        if isinstance(server, BatchServer):
            return cls("batch", server.server_id, cluster, server.submit_host, server.job_id)
        return cls("login", server.server_id, cluster, server.host)

    @classmethod
    def from_saved(cls, raw) -> "LastServer | None":
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS or not raw.get("server_id"):
            return None
        return cls(**{f.name: str(raw.get(f.name) or "") for f in fields(cls)})


KINDS = {"login": LoginServer, "batch": BatchServer}


def dump(state: SpawnerState) -> dict:
    """The state as JupyterHub saves it (JSON); {} when there is nothing to keep."""
    raw: dict = {}
    if state.kind and state.server is not None:
        raw.update(kind=state.kind, target=state.target, **asdict(state.server))
        if state.cluster:
            raw["cluster"] = state.cluster
    if state.last_outcome:
        raw["last_outcome"] = dict(state.last_outcome)
    if state.last_server is not None:
        raw["last_server"] = asdict(state.last_server)
    return {"version": VERSION, **raw} if raw else {}


def load(raw: dict | None) -> SpawnerState:
    """A saved state of any version this hpchub knows (1: hpchub 0.1, or 2); unknown keys are
    ignored, a version from the future is refused."""
    raw = dict(raw or {})
    version = raw.pop("version", 1)
    if version not in (1, 2):
        raise ValueError(f"spawner state of version {version!r}: this hpchub reads versions 1 and 2")
    kind = raw.get("kind") or ""
    if version == 1 and not kind:  # hpchub-ssh and hpchub-slurm saved no kind
        kind = "batch" if raw.get("job_id") else "login" if raw.get("pid") else ""
    server_class = KINDS.get(kind)
    server = None
    if server_class is not None:
        known = {f.name for f in fields(server_class)}
        server = server_class(**{k: v for k, v in raw.items() if k in known})
        if not server.server_id:
            server = None  # a kind without a server (hpchub 0.1 kept the kind after stop)
    cluster = str(raw.get("cluster") or "") if server else ""
    last_server = LastServer.from_saved(raw.get("last_server"))
    if last_server is None and server is not None:  # saved before hpchub 0.3 kept it: where it runs now
        last_server = LastServer.of(server, cluster)
    return SpawnerState(kind=kind if server else "", target=raw.get("target", "") if server else "",
                        server=server, last_outcome=dict(raw.get("last_outcome") or {}),
                        cluster=cluster, last_server=last_server)


def is_resumable(raw: dict | None) -> bool:
    """A batch job still waiting in the queue: hpchub-hub resumes its spawn after a restart
    (instead of JupyterHub's start-up check, which would stop it for not answering)."""
    state = load(raw)
    return isinstance(state.server, BatchServer) and state.server.phase == "queued" and bool(state.server.job_id)
