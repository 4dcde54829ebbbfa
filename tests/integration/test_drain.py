"""Draining a login node on the real site, with `hpchub drain` as an admin runs it: no new server
goes there, the users of the servers still there are told and the command lists them; once the
node is removed from the configuration, the hub stops the servers left on it and says why, and
nothing of them is left on the node."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from ..site_handle import HPCHUB, check, clean_hub, hub_settings, spawn
from .test_credentials import login_ok


@pytest.fixture
def hub(loopback_site):
    yield from clean_hub(loopback_site)
    loopback_site.layout.drain_file.unlink(missing_ok=True)


def drain_command(site, *args) -> str:
    return check(subprocess.run([HPCHUB, "drain", "--site", site.name, *args], capture_output=True, text=True,
                                timeout=60)).stdout


def test_a_drained_node_takes_no_new_server_and_a_removed_one_leaves_nothing(loopback_site, hub):
    site = loopback_site
    session = login_ok(hub, "alice")
    login_ok(hub, "bob")
    spawn(hub, "alice", options={"target": "login"})
    node = hub.admin("GET", "/users/alice").json()["servers"][""]["state"]["host"]
    other = {"login1": "login2", "login2": "login1"}[node]
    listed = drain_command(site, node, "--message", "kernel update on Tuesday")
    assert f"servers on {node}: alice/default (login)" in listed, listed
    # No new server there, whatever the balance says.
    for name in ("a", "b"):
        assert spawn(hub, "bob", name, options={"target": "login"})["state"]["host"] == other
    # alice is told, on her home page, with the admin's message.
    home = session.get(f"{hub.url}/hub/home", timeout=30).text
    assert re.search(f"login node {node} is being drained \\(kernel update on Tuesday\\): stop your server", home)
    # The node is taken out of service: removed from the configuration.
    remaining = [n for n in site.info["login_nodes"] if n["name"] == other]
    nodes = [{"name": n["name"], "address": n["address"], "port": n["port"], "cluster_address": n["address"]}
             for n in remaining]
    with hub_settings(site, f"c.HPCSpawner.login_nodes = {nodes!r}\n", name="55-removed"):
        deadline = time.monotonic() + 60
        while "" in hub.admin("GET", "/users/alice").json()["servers"]:
            assert time.monotonic() < deadline, "alice's server on the removed node is still listed"
            time.sleep(0.5)
        assert not [cmd for cmd in site.processes_in_node(node, "alice") if "jupyterhub-singleuser" in cmd]
        home = session.get(f"{hub.url}/hub/home", timeout=30).text
        assert f"login node {node} was taken out of service" in home
