"""Isolated mode: the hub side reaches only the login nodes' sshd; compute nodes reach
the login nodes and each other, never the hub side; login nodes reach both."""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager

import pytest

CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()\n"
    "except OSError as e:\n"
    "    print(type(e).__name__, e); sys.exit(1)\n"
)
LISTEN = (
    "import socket, sys\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(8); print('listening', flush=True)\n"
    "while True: s.accept()[0].close()\n"
)
PROBE_PORT = 29999


@pytest.fixture
def iso(isolated_site):
    return isolated_site


# Debian's Python, which every node has (the test's own venv may sit in a /tmp the nodes don't share).
PYTHON = "/usr/bin/python3"


def reach_from_node(site, node, host, port) -> bool:
    return site.in_node(node, [PYTHON, "-c", CONNECT, host, str(port)]).returncode == 0


def reach_from_hub_side(site, host, port) -> bool:
    return site.in_hub_side([PYTHON, "-c", CONNECT, host, str(port)]).returncode == 0


@contextmanager
def listener(argv_prefix):
    """A real TCP listener on PROBE_PORT, wherever argv_prefix puts it."""
    with subprocess.Popen([*argv_prefix, PYTHON, "-c", LISTEN, str(PROBE_PORT)],
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().strip() == "listening"
            yield
        finally:
            proc.kill()


def test_hub_side_reaches_login_sshd_but_no_compute_node(iso):
    layout = iso.layout
    for login in layout.login_nodes:
        assert reach_from_hub_side(iso, login.public_address, 22)
    c1 = layout.node("c1")
    assert reach_from_node(iso, "c2", c1.address, layout.slurmd_port("c1"))  # it is listening
    assert not reach_from_hub_side(iso, c1.address, layout.slurmd_port("c1"))
    assert not reach_from_hub_side(iso, layout.head.address, layout.slurmctld_port)


def test_hub_side_reaches_nothing_but_sshd_on_a_login_node(iso):
    login1 = iso.layout.node("login1")
    with listener(iso.site.nodes.node_command("login1", [])):
        assert reach_from_node(iso, "c1", login1.address, PROBE_PORT)  # internal side: open
        assert not reach_from_hub_side(iso, login1.public_address, PROBE_PORT)  # public side: only SSH


def test_compute_nodes_reach_login_nodes_and_each_other_but_not_the_hub_side(iso):
    layout = iso.layout
    for login in layout.login_nodes:
        assert reach_from_node(iso, "c3", login.address, 22)
    for other in ("c1", "c2", "c4"):
        assert reach_from_node(iso, "c3", layout.node(other).address, layout.slurmd_port(other))
    hub_prefix = ["nsenter", f"--net=/run/netns/{layout.netns('hub')}"]
    with listener(hub_prefix):
        assert reach_from_node(iso, "login1", layout.hub_address, PROBE_PORT)  # login nodes reach both
        assert not reach_from_node(iso, "c3", layout.hub_address, PROBE_PORT)
        assert not reach_from_node(iso, "head", layout.hub_address, PROBE_PORT)


def test_login_nodes_do_not_forward(iso):
    for login in iso.layout.login_nodes:
        out = iso.in_node(login.name, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip()
        assert out == "0"


# ----- servers in isolated mode: every way back to the hub they are given works -----------------
ACTIVITY_EVERY_3_S = 'c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": "3"}\n'


def server_environment(site, node: str, server_id: str) -> dict[str, str]:
    """The environment of the server process carrying server_id, read inside its node (as root)."""
    from hpchub.site.nodes import all_pids, namespace_id, proc_file

    mnt = namespace_id(site.site.nodes.holder(node).pid, "mnt")
    marker = f"HPCHUB_SERVER_ID={server_id}".encode()
    for pid in all_pids():
        if namespace_id(pid, "mnt") != mnt or b"jupyterhub-singleuser" not in (proc_file(pid, "cmdline") or b""):
            continue
        environ = (proc_file(pid, "environ") or b"").split(b"\0")
        if marker in environ:
            return dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    raise AssertionError(f"no server {server_id} on {node}")


@pytest.mark.parametrize("target", ["login", "compute"])
def test_every_hub_url_a_server_is_given_works_from_where_it_runs(iso, target):
    import requests

    from hpchub.site.system import demo_passwords

    from ..site_handle import clean_hub, hub_settings, spawn, stop

    with hub_settings(iso, ACTIVITY_EVERY_3_S):
        for hub in clean_hub(iso):
            hub.login("alice", demo_passwords()["alice"])
            state = spawn(hub, "alice", options={"target": target})["state"]
            node = state["host"] if target == "login" else state["node"]
            env = server_environment(iso, node, state["server_id"])
            urls = {key: value for key, value in env.items()
                    if key.startswith("JUPYTERHUB_") and key.endswith("_URL") and value.startswith("http")
                    and key not in ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_PUBLIC_HUB_URL")}
            assert {"JUPYTERHUB_API_URL", "JUPYTERHUB_ACTIVITY_URL"} <= set(urls), env
            for key, url in urls.items():  # each answers from the server's node (any HTTP status)
                probe = ("import sys, urllib.request, urllib.error\n"
                         "try: urllib.request.urlopen(sys.argv[1], timeout=5)\n"
                         "except urllib.error.HTTPError: pass\n")
                reached = iso.in_node(node, [PYTHON, "-c", probe, url])
                assert reached.returncode == 0, (key, url, reached.stderr[-500:])
            # The server's own activity reports reach the hub: a request to the server, then its
            # next report (every 3 s) moves the hub's record of the server's last activity.
            before = hub.admin("GET", "/users/alice").json()["servers"][""]["last_activity"]
            requests.get(f"{hub.url}/user/alice/api/contents", timeout=30,  # (api/status is not activity)
                         headers={"Authorization": f"token {iso.site.hub.admin_token()}"}).raise_for_status()
            deadline = time.monotonic() + 20
            while hub.admin("GET", "/users/alice").json()["servers"][""]["last_activity"] == before:
                assert time.monotonic() < deadline, f"no activity report from the {target} server reached the hub"
                time.sleep(0.5)
            stop(hub, "alice")
