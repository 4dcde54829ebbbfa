"""The demo's stand-in spawner, until hpchub's SSH and Slurm spawners arrive.

It starts nothing: user code never runs on the hub host, and the real spawners, which
start servers on the site's login and compute nodes, are not part of this release yet.
A user who asks for a server is told so in plain words.
"""

from __future__ import annotations

from jupyterhub.spawner import Spawner, SpawnException

MESSAGE = (
    "This demo hub does not start Jupyter servers yet: hpchub's spawners for login nodes (SSH) "
    "and compute nodes (Slurm) are not in this release. Logging in works; servers come next."
)


class StandInSpawner(Spawner):
    """Refuses every spawn with a clear message; never runs anything on the hub host."""

    async def start(self):
        raise SpawnException(
            MESSAGE, reason="standin", status_code=501,  # "Not Implemented": true, and not the user's fault
            log_message="stand-in spawner: no spawner configured yet",
        )

    async def poll(self):
        # Nothing is ever started, so there is never anything running.
        return 0

    async def stop(self, now=False):
        return None
