"""Isolated mode: the hub side reaches only the login nodes' sshd; compute nodes reach
the login nodes and each other, never the hub side; login nodes reach both."""

from __future__ import annotations

import subprocess
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
