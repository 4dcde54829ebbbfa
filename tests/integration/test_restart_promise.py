"""The restart promise under any process layout: the tunnel service killed alone, and hub, proxy
and tunnel service killed together (a container or unit restart), in both network modes, with
servers on both login nodes, two running jobs and one queued. Every server answers again within
10 s to a fresh login (the OAuth round trip goes through both directions of its tunnels), none
is declared stopped, and the queued job's server reaches the hub when it starts."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ..site_handle import (QUICK_POLLS, check, clean_hub, hpchub_site, hub_settings, opens_to_a_fresh_login,
                           site_processes, stop)
from .test_credentials import login_ok
from .test_slurm_spawner import block_debug_partition, request_spawn, wait_ready

QUICK = QUICK_POLLS + "c.HPCHub.tunnel_check_interval = 2\n"
RUNNING = [("alice", "l", {"target": "login"}), ("bob", "l", {"target": "login"}),
           ("alice", "j", {"target": "compute", "walltime": "00:10:00"}),
           ("bob", "j", {"target": "compute", "walltime": "00:10:00"})]
QUEUED = ("alice", "q", {"target": "custom", "partition": "debug", "walltime": "00:10:00"})


@pytest.fixture
def hub(site):
    with hub_settings(site, QUICK, name="40-restart-promise"):
        for client in clean_hub(site):
            yield client
            for user in ("alice", "bob"):
                site.ssh(user, ["scancel", "--user", user])


def tunnel_service_pids(site) -> list[int]:
    return site_processes(site, b"tunnels\0serve")


def all_answer_within(hub, servers, seconds: float) -> float:
    began = time.monotonic()
    waiting = list(servers)
    while waiting:
        waiting = [(user, name) for user, name in waiting if not opens_to_a_fresh_login(hub, user, name)]
        assert time.monotonic() - began < seconds, f"not answering {seconds} s after the fault: {waiting}"
    return time.monotonic() - began


def start_the_servers(site, hub):
    login_ok(hub, "alice")
    login_ok(hub, "bob")
    blocker = block_debug_partition(site)
    # One login-node server first: the hub puts the next one on the other login node.
    user, name, options = RUNNING[0]
    request_spawn(hub, user, name, options)
    wait_ready(hub, user, name, timeout=120)
    for user, name, options in RUNNING[1:]:
        request_spawn(hub, user, name, options)
    user, name, options = QUEUED
    request_spawn(hub, user, name, options).wait_for("waiting in the queue", timeout=60)
    for user, name, _ in RUNNING:
        wait_ready(hub, user, name, timeout=120)
    hosts = {hub.admin("GET", f"/users/{user}").json()["servers"][name]["state"]["host"]
             for user, name, options in RUNNING if options["target"] == "login"}
    assert hosts == {"login1", "login2"}, hosts  # a server on each login node
    return blocker


def nothing_declared_stopped_and_the_queued_job_starts(site, hub, blocker):
    for user, name, _ in RUNNING:
        assert hub.admin("GET", f"/users/{user}").json()["servers"][name]["ready"], (user, name)
    user, name, _ = QUEUED
    assert hub.admin("GET", f"/users/{user}").json()["servers"][name]["pending"] == "spawn"
    check(site.ssh("bob", ["scancel", blocker]))
    wait_ready(hub, user, name, timeout=120)  # its server reached the hub through the rebuilt forward
    assert opens_to_a_fresh_login(hub, user, name)
    for user, name, _ in [*RUNNING, QUEUED]:
        stop(hub, user, name, timeout=90)


def test_the_tunnel_service_killed_alone_cuts_no_server(site, hub):
    blocker = start_the_servers(site, hub)
    (service,) = tunnel_service_pids(site)
    os.kill(service, signal.SIGKILL)
    took = all_answer_within(hub, [(user, name) for user, name, _ in RUNNING], 10)
    assert tunnel_service_pids(site) and tunnel_service_pids(site) != [service]
    print(f"every server answered a fresh login {took:.1f} s after the tunnel service was killed")
    nothing_declared_stopped_and_the_queued_job_starts(site, hub, blocker)


def test_hub_proxy_and_tunnel_service_killed_together_cut_no_server(site, hub):
    blocker = start_the_servers(site, hub)
    for pid in [site.site.nodes.daemon("hub").pid, site.site.nodes.daemon("proxy").pid, *tunnel_service_pids(site)]:
        os.kill(pid, signal.SIGKILL)
    check(hpchub_site("up", site.name))  # what a unit or container restart does: hub and proxy again
    took = all_answer_within(hub, [(user, name) for user, name, _ in RUNNING], 10)
    print(f"every server answered a fresh login {took:.1f} s after the hub was up again")
    nothing_declared_stopped_and_the_queued_job_starts(site, hub, blocker)
