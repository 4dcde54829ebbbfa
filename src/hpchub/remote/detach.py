"""Starting a process that outlives its starter (daemons, the tunnel service)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def spawn_detached(argv: Sequence[str], log: Path | str, env: dict[str, str], cwd: Path | str | None = None) -> int:
    """Start argv in a session of its own, stdin from /dev/null, output appended to log;
    returns its pid.

    posix_spawn rather than Popen: the process outlives us by design, and a Popen object
    would warn at exit that its child still runs."""
    argv = list(argv)
    if cwd is not None:
        argv = ["env", f"--chdir={cwd}", *argv]
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        return os.posix_spawnp(argv[0], argv, env, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, out, 2)])
    finally:
        os.close(out)
        os.close(null)
