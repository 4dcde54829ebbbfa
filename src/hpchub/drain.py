"""Draining login nodes: the list the hub reads (a JSON file, `HPCSpawner.drain_file`) and the
`hpchub drain` command that edits it and lists the servers still on a node. Imports no
JupyterHub (the command runs beside the hub, as its user or root).

    {"login2": {"since": 1764489600, "message": "kernel update on Tuesday"}}

A drained node takes no new server and no new job's submission; the users of its servers see
the message on the home page and are asked to restart their server (it starts elsewhere).
Once a drained node is removed from `HPCSpawner.login_nodes`, the hub stops the servers still
there at their next poll and says so to their users.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def read_drained(path: str | Path) -> dict[str, dict]:
    """The drained login nodes ({} when there is no file: nothing is drained)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"the drain file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"the drain file {path} is not an object of node names")
    return data


def write_drained(path: str | Path, drained: dict[str, dict]) -> None:
    """Atomically, readable by the hub's user (the file's owner is kept when it exists)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as out:
        json.dump(drained, out, indent=1, sort_keys=True)
        out.write("\n")
    if path.exists():
        stat = path.stat()
        os.chown(partial, stat.st_uid, stat.st_gid)
    os.replace(partial, path)


def drain(path: str | Path, node: str, message: str = "", now: float | None = None) -> dict[str, dict]:
    drained = read_drained(path)
    drained[node] = {"since": int(time.time() if now is None else now), "message": message}
    write_drained(path, drained)
    return drained


def undrain(path: str | Path, node: str) -> dict[str, dict]:
    drained = read_drained(path)
    drained.pop(node, None)
    write_drained(path, drained)
    return drained


def servers_on(users: list[dict], node: str) -> list[tuple[str, str, str]]:
    """(user, server name, kind) of the servers the hub's REST API (GET /users, with their
    servers' state) shows on a login node: login-node servers there, and jobs submitted from it."""
    found = []
    for user in users:
        for name, server in (user.get("servers") or {}).items():
            state = server.get("state") or {}
            if state.get("host") == node or state.get("submit_host") == node:
                found.append((user["name"], name, state.get("kind", "")))
    return sorted(found)
