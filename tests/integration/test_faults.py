"""Faults on the real site, with the one-page spawner (`hpchub`) and short poll intervals:
the hub killed with ten servers of both kinds (three still queued), the proxy killed,
slurmctld stopped for two minutes, a job's server killed under it. Nothing is lost, nothing
is declared dead that is not, and nothing is left behind."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from ..site_handle import QUICK_POLLS, check, clean_hub, hpchub_site, leftovers, stop, wait_until
from .test_credentials import login_ok
from .test_slurm_spawner import answers, block_debug_partition, queue, request_spawn, wait_ready

FAULTS_HUB = QUICK_POLLS
CONFIG = "40-faults.py"
QUEUED = {"target": "custom", "partition": "debug", "walltime": "00:10:00"}
SHARED = {"target": "custom", "partition": "shared", "cores": "1", "memory_mb": "600", "walltime": "00:10:00"}


@pytest.fixture(scope="module")
def faults_site(loopback_site):
    path = loopback_site.layout.hub_config_dir / CONFIG
    path.write_text(FAULTS_HUB)
    loopback_site.site.hub.restart()
    yield loopback_site
    path.unlink()
    loopback_site.site.hub.restart()


@pytest.fixture
def hub(faults_site):
    yield from clean_hub(faults_site)
    for user in ("alice", "bob"):
        faults_site.ssh(user, ["scancel", "--user", user])


def routes(site) -> set[str]:
    token = (site.layout.hub_dir / "proxy-token").read_text().strip()
    return set(requests.get(f"http://127.0.0.1:{site.layout.proxy_api_port}/api/routes", timeout=10,
                            headers={"Authorization": f"token {token}"}).json())


def test_hub_killed_with_ten_servers_three_queued_keeps_them_all_and_leaves_nothing(faults_site, hub):
    site = faults_site
    login_ok(hub, "alice")
    login_ok(hub, "bob")
    blocker = block_debug_partition(site)
    running = [("alice", "l1", {"target": "login"}), ("alice", "l2", {"target": "login"}),
               ("bob", "l1", {"target": "login"}), ("bob", "l2", {"target": "login"}),
               ("alice", "j1", SHARED), ("alice", "j2", SHARED), ("bob", "j1", SHARED)]
    queued = [("alice", "q1"), ("alice", "q2"), ("bob", "q1")]
    for user, name, options in running:
        request_spawn(hub, user, name, options)
    for user, name in queued:
        request_spawn(hub, user, name, QUEUED).wait_for("waiting in the queue", timeout=60)
    for user, name, _ in running:
        wait_ready(hub, user, name, timeout=120)
    jobs_before = {**queue(site, "alice"), **queue(site, "bob")}
    assert sorted(jobs_before.values()).count("PENDING") == 3

    os.kill(site.site.nodes.daemon("hub").pid, signal.SIGKILL)
    check(hpchub_site("up", site.name))

    for user, name, _ in running:
        assert answers(hub, user, name), f"{user}/{name} does not answer after the restart"
    for user, name in queued:
        model = hub.admin("GET", f"/users/{user}").json()["servers"][name]
        assert model["pending"] == "spawn", (user, name, model)
    assert {**queue(site, "alice"), **queue(site, "bob")} == jobs_before
    check(site.ssh("bob", ["scancel", blocker]))
    for user, name in queued:
        wait_ready(hub, user, name, timeout=120)
        assert answers(hub, user, name)
    for user, name, _ in running:
        stop(hub, user, name, timeout=90)
    for user, name in queued:
        stop(hub, user, name, timeout=90)
    wait_until("the queue empties", lambda: not queue(site, "alice") and not queue(site, "bob"), 60)
    for user in ("alice", "bob"):
        wait_until(f"{user}'s processes end", lambda user=user: not leftovers(site, user), 30,
                   detail=lambda user=user: leftovers(site, user))


def test_the_proxy_killed_and_restarted_gets_every_route_back(faults_site, hub):
    site = faults_site
    login_ok(hub, "alice")
    request_spawn(hub, "alice", "l", {"target": "login"})
    request_spawn(hub, "alice", "j", SHARED)
    wait_ready(hub, "alice", "l")
    wait_ready(hub, "alice", "j")
    os.kill(site.site.nodes.daemon("proxy").pid, signal.SIGKILL)
    check(hpchub_site("up", site.name))  # the site's supervisor starts the proxy again, empty
    wait_until("both routes are back", lambda: {"/user/alice/l", "/user/alice/j"} <= routes(site), 30)
    assert answers(hub, "alice", "l") and answers(hub, "alice", "j")


def test_slurmctld_down_for_two_minutes_declares_nothing_dead(faults_site, hub):
    site = faults_site
    login_ok(hub, "alice")
    blocker = block_debug_partition(site)
    request_spawn(hub, "alice", "run", SHARED)
    wait_ready(hub, "alice", "run", timeout=120)
    waiting = request_spawn(hub, "alice", "wait", QUEUED)
    job = waiting.wait_for("waiting in the queue", timeout=60)["job_id"]
    site.site.nodes.stop_daemon("slurmctld")
    try:
        time.sleep(120)
        servers = hub.admin("GET", "/users/alice").json()["servers"]
        assert servers["run"]["ready"] and servers["wait"]["pending"] == "spawn", servers
        assert answers(hub, "alice", "run")
    finally:
        check(hpchub_site("up", site.name))
    check(site.ssh("bob", ["scancel", blocker]))
    model = wait_ready(hub, "alice", "wait", timeout=120)
    assert model["state"]["job_id"] == job and answers(hub, "alice", "wait")
    assert answers(hub, "alice", "run")


def test_a_server_killed_in_its_job_is_shown_stopped_with_the_reason_and_its_route_goes(faults_site, hub):
    site = faults_site
    login_ok(hub, "alice")
    request_spawn(hub, "alice", "j", SHARED)
    model = wait_ready(hub, "alice", "j", timeout=120)
    node = model["state"]["node"]
    assert "/user/alice/j" in routes(site)
    killed = site.kill_in_node(node, "jupyterhub-sing")  # the kernel's 15-character comm
    assert killed >= 1
    started = time.monotonic()
    wait_until("the hub shows the server stopped",
               lambda: "j" not in hub.admin("GET", "/users/alice").json()["servers"], 30)
    # One status interval (3 s) plus the grace before a job is declared gone (4 s), with slack.
    assert time.monotonic() - started < 15
    assert "/user/alice/j" not in routes(site)
    stopped = hub.admin("GET", "/users/alice?include_stopped_servers=1").json()["servers"]["j"]
    message = stopped["state"]["last_outcome"]["message"]
    assert "ended" in message or "exit" in message, message
    assert queue(site, "alice") == {}


def take_node_down(site, node: str) -> None:
    """As if the machine died: its sshd (listener and sessions) and every user process on it."""
    from hpchub.site.nodes import all_pids, namespace_id

    site.site.nodes.stop_daemon(f"sshd-{node}")
    mnt = namespace_id(site.site.nodes.holder(node).pid, "mnt")
    for pid in all_pids():
        try:
            if namespace_id(pid, "mnt") == mnt and os.stat(f"/proc/{pid}").st_uid >= 1000:
                os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            continue
    site.kill_in_node(node, "sshd")


def test_a_login_node_going_down_shows_its_servers_stopped_and_new_ones_start_on_the_other(faults_site, hub):
    site = faults_site
    login_ok(hub, "alice")
    request_spawn(hub, "alice", "a", {"target": "login"})
    node = wait_ready(hub, "alice", "a")["state"]["host"]
    other = "login2" if node == "login1" else "login1"
    take_node_down(site, node)
    try:
        wait_until("the hub shows the server stopped",
                   lambda: "a" not in hub.admin("GET", "/users/alice").json()["servers"], 30)
        assert "/user/alice/a" not in routes(site)
        stopped = hub.admin("GET", "/users/alice?include_stopped_servers=1").json()["servers"]["a"]
        assert stopped["state"]["last_outcome"]["message"] == f"login node {node} went down"
        request_spawn(hub, "alice", "b", {"target": "login"})
        assert wait_ready(hub, "alice", "b")["state"]["host"] == other
        assert answers(hub, "alice", "b")
    finally:
        # The machine comes back as after a reboot: sshd again, and an empty /tmp (its servers'
        # directories went down with it; later tests look there).
        site.in_node(node, ["sh", "-c", "rm -rf /tmp/hpchub-*"])
        check(hpchub_site("up", site.name))


def test_a_compute_nodes_slurmd_killed_shows_its_server_stopped_when_slurm_declares_the_node_down(faults_site, hub):
    site = faults_site
    login_ok(hub, "alice")
    request_spawn(hub, "alice", "j", SHARED)
    node = wait_ready(hub, "alice", "j", timeout=120)["state"]["node"]
    assert site.kill_in_node(node, "slurmd") == 1
    try:
        # slurmctld declares the node down after SlurmdTimeout (60 s here); the job fails with it.
        wait_until("the hub shows the server stopped",
                   lambda: "j" not in hub.admin("GET", "/users/alice").json()["servers"], 150)
        stopped = hub.admin("GET", "/users/alice?include_stopped_servers=1").json()["servers"]["j"]
        assert "NODE_FAIL" in stopped["state"]["last_outcome"]["message"], stopped["state"]["last_outcome"]
        assert "/user/alice/j" not in routes(site)
    finally:
        check(hpchub_site("up", site.name))  # slurmd again; the node returns to service
    # Back on its feet, the node's slurmd ends what was left of the failed job.
    wait_until(f"nothing of alice's left on {node}",
               lambda: not [c for c in site.processes_in_node(node, "alice") if "sleep 600" not in c], 90)
    # Nor on the login nodes: the server's tunnels went with it (JupyterHub never calls stop()
    # for a server that poll() says has ended; their keepalive session stayed on the login node).
    wait_until("nothing of alice's left on any node", lambda: not leftovers(site, "alice"), 30,
               detail=lambda: leftovers(site, "alice"))
