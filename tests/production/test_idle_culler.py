"""jupyterhub-idle-culler, unchanged, as a hub service: idle servers of both kinds are
stopped, the batch jobs (Slurm's and Grid Engine's) cancelled and the login node's server
process gone; a server in a container image is culled with nothing of it left on its node."""

from __future__ import annotations

import pwd
import time

import pytest

from hpchub.site.hub import HUB_ENV

from ..integration.test_credentials import login_ok
from ..integration.test_gridengine import ge_jobs
from ..integration.test_slurm_spawner import queue
from ..site_handle import clean_hub, hub_settings, site_processes, spawn

IDLE_TIMEOUT = 20  # seconds; a site would use hours

CULLER_CONFIG = f"""\
c.JupyterHub.services.append({{
    "name": "idle-culler",
    "command": ["{HUB_ENV}/bin/python3", "-m", "jupyterhub_idle_culler",
                "--timeout={IDLE_TIMEOUT}", "--cull-every=5"],
}})
c.JupyterHub.load_roles.append({{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}})
"""


@pytest.fixture(scope="module")
def culled_hub(loopback_site):
    with hub_settings(loopback_site, CULLER_CONFIG, name="60-idle-culler"):
        yield from clean_hub(loopback_site)


def test_idle_servers_of_both_kinds_are_culled_and_their_job_cancelled(loopback_site, culled_hub):
    hub = culled_hub
    hub_log = loopback_site.layout.log_dir / "hub.out"
    log_start = hub_log.stat().st_size
    login_ok(hub, "alice")
    on_login = spawn(hub, "alice", "l", options={"target": "login"})
    in_job = spawn(hub, "alice", "j", options={"target": "compute"})
    in_ge_job = spawn(hub, "alice", "g", options={"target": "ge-compute"})  # the second cluster's
    in_image = spawn(hub, "alice", "c", options={"target": "login-container"})  # in a container image
    image_node = in_image["state"]["host"]
    assert any("ch-run" in cmd or "singleuser" in cmd for cmd in loopback_site.processes_in_node(image_node, "alice"))
    job_id, node = in_job["state"]["job_id"], on_login["state"]["host"]
    assert queue(loopback_site, "alice") == {job_id: "RUNNING"}
    assert ge_jobs(loopback_site, "alice") == {in_ge_job["state"]["job_id"]: "r"}
    assert any("jupyterhub-singleuser" in cmd for cmd in loopback_site.processes_in_node(node, "alice"))

    deadline = time.monotonic() + IDLE_TIMEOUT + 60
    while hub.admin("GET", "/users/alice").json()["servers"]:
        assert time.monotonic() < deadline, "the idle culler did not stop alice's servers"
        time.sleep(1)
    assert queue(loopback_site, "alice") == {} and ge_jobs(loopback_site, "alice") == {}
    state = loopback_site.ssh("alice", ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"]).stdout
    assert state.startswith("CANCELLED"), state  # by alice: the hub's stop, as her, over SSH
    assert not [cmd for cmd in loopback_site.processes_in_node(node, "alice") if "jupyterhub-singleuser" in cmd]
    # Nothing of the containerised server is left on its node: no process of alice's but the
    # hub's own SSH connections as her (ch-run exec'd into the server, whose kernels the stop
    # ends with it), no directory.
    left = [cmd for cmd in loopback_site.processes_in_node(image_node, "alice") if not cmd.startswith("sshd: ")]
    assert left == []
    uid = pwd.getpwnam("alice").pw_uid
    leftover = loopback_site.in_node(image_node, ["ls", "-A", f"/tmp/hpchub-{uid}"]).stdout.split()
    assert in_image["state"]["server_id"] not in leftover
    with hub_log.open() as log:
        log.seek(log_start)
        culled = log.read()
    assert "Culling server alice/l " in culled and "Culling server alice/j " in culled
    assert "Culling server alice/g " in culled and "Culling server alice/c " in culled


def culler_processes(site) -> list[int]:
    """The idle culler's processes of this site's hub, found by the site's marker."""
    return site_processes(site, b"jupyterhub_idle_culler")


def test_a_managed_service_dies_with_its_hub_and_the_next_hub_starts_one(loopback_site, culled_hub):
    import os
    import signal

    site = loopback_site
    first = culler_processes(site)
    assert len(first) == 1, first  # carries the site's marker: `site down` and the suite's check find it
    os.kill(site.site.nodes.daemon("hub").pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while culler_processes(site):
        assert time.monotonic() < deadline, "the idle culler outlived its hub"
        time.sleep(0.2)
    site.site.hub.ensure()
    deadline = time.monotonic() + 10
    while len(culler_processes(site)) != 1:
        assert time.monotonic() < deadline, culler_processes(site)
        time.sleep(0.2)
    assert culler_processes(site) != first
