"""The isolated mode's networks: namespaces, bridges and veths, made with iproute2.

    hub side ──(public bridge)── login1, login2 ──(internal bridge)── head, c1 … c4
                      └────────── ge-login ──(Grid Engine bridge)── ge-head, ge-c1

The hub side reaches only the login nodes' sshd (a firewall on the login nodes' public
side lets nothing else in); compute nodes and the head node have no route to the public
side; login nodes do not forward. The machine itself has an address on the public bridge
only (so tests and a browser can reach the hub), and a blackhole route for the whole
test range so that no packet for it ever leaves the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from .layout import SiteLayout
from .system import run, say

TEST_RANGE = "10.199.0.0/16"

# On a login node's public interface, only SSH is let in.
_LOGIN_FIREWALL = """\
table inet hpchub {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "eth0" ct state established,related accept
    iifname "eth0" tcp dport 22 accept
    iifname "eth0" icmp type echo-request accept
    iifname "eth0" drop
  }
}
"""


def _link_exists(name: str, netns: str | None = None) -> bool:
    argv = ["ip", *(["-n", netns] if netns else []), "link", "show", "dev", name]
    return run(argv, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return Path(f"/run/netns/{name}").exists()


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except FileNotFoundError:
        return None


def namespaces(site: SiteLayout) -> list[str]:
    """Every network namespace of the instance: the Grid Engine cluster's in both modes."""
    mine = [site.netns("hub")] + [site.netns(n.name) for n in site.nodes] if site.isolated else []
    return mine + [site.netns(n.name) for n in site.ge_nodes]


def bridges(site: SiteLayout) -> list[str]:
    return ([site.bridge_public, site.bridge_internal] if site.isolated else []) + [site.bridge_gridengine]


def _ensure_bridge(name: str, address: str | None) -> None:
    if not _link_exists(name):
        run(["ip", "link", "add", name, "type", "bridge"])
    if address:
        have = run(["ip", "-o", "addr", "show", "dev", name]).stdout
        if f" {address}/" not in have:
            run(["ip", "addr", "add", f"{address}/24", "dev", name])
    run(["ip", "link", "set", name, "up"])


def _ensure_netns(ns: str) -> None:
    if not netns_exists(ns):
        run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def _close_login_node(ns: str) -> None:
    """A login node forwards nothing, and its public side lets in SSH only."""
    run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0"])
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input="flush ruleset\n" + _LOGIN_FIREWALL)


def _ensure_blackhole() -> None:
    routes = run(["ip", "route", "show", "type", "blackhole"]).stdout
    if TEST_RANGE not in routes:
        run(["ip", "route", "add", "blackhole", TEST_RANGE])


def _ensure_veth(site: SiteLayout, node: str, internal: bool, inner: str, address: str,
                 bridge: str | None = None, outer: str | None = None) -> None:
    ns = site.netns(node)
    outer = outer or site.veth(node, internal)
    bridge = bridge or (site.bridge_internal if internal else site.bridge_public)
    if not _link_exists(inner, ns):
        if _link_exists(outer):  # half of a broken pair
            run(["ip", "link", "del", outer])
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns])
    run(["ip", "link", "set", outer, "master", bridge, "up"])
    have = run(["ip", "-n", ns, "-o", "addr", "show", "dev", inner]).stdout
    if f" {address}/" not in have:
        run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", inner])
    run(["ip", "-n", ns, "link", "set", inner, "up"])


def up(site: SiteLayout) -> None:
    say("  network: isolated (hub side | login nodes | internal network)")
    _ensure_blackhole()
    _ensure_bridge(site.bridge_public, site.host_public_address)
    _ensure_bridge(site.bridge_internal, None)
    for ns in [site.netns("hub")] + [site.netns(n.name) for n in site.nodes]:
        _ensure_netns(ns)
    _ensure_veth(site, "hub", False, "eth0", site.hub_address)
    for node in site.login_nodes:
        _ensure_veth(site, node.name, False, "eth0", node.public_address)
        _ensure_veth(site, node.name, True, "eth1", node.address)
        _close_login_node(site.netns(node.name))
    for node in [site.head, *site.compute_nodes]:
        _ensure_veth(site, node.name, True, "eth0", node.address)


def up_gridengine(site: SiteLayout) -> None:
    """The Grid Engine cluster's network (both modes): its bridge, a namespace per node; its
    login node also on the public bridge in isolated mode, with the login nodes' firewall."""
    _ensure_blackhole()
    _ensure_bridge(site.bridge_gridengine, site.ge_host_address)
    for node in site.ge_nodes:
        _ensure_netns(site.netns(node.name))
        _ensure_veth(site, node.name, True, "eth1", node.address, bridge=site.bridge_gridengine,
                     outer=f"h{site.slot}{node.name.replace('-', '')}g")
    if site.isolated:
        login = site.ge_login
        _ensure_veth(site, login.name, False, "eth0", login.public_address,
                     outer=f"h{site.slot}{login.name.replace('-', '')}p")
        _close_login_node(site.netns(login.name))


def down(site: SiteLayout) -> None:
    for ns in namespaces(site):
        if netns_exists(ns):
            run(["ip", "netns", "del", ns])
    for bridge in bridges(site):
        if _link_exists(bridge):
            run(["ip", "link", "del", bridge])
    # Host-side veths vanish with their peers; the shared blackhole route goes with the last bridge.
    others = run(["ip", "-o", "link", "show", "type", "bridge"]).stdout
    if not any(line.split(":")[1].strip().startswith("hpc") for line in others.splitlines() if ":" in line):
        if TEST_RANGE in run(["ip", "route", "show", "type", "blackhole"]).stdout:
            run(["ip", "route", "del", "blackhole", TEST_RANGE])


def leftovers(site: SiteLayout) -> list[str]:
    """What of the instance's networks still exists (for status and for tests of down)."""
    found = [f"netns {ns}" for ns in namespaces(site) if netns_exists(ns)]
    found += [f"bridge {b}" for b in bridges(site) if _link_exists(b)]
    return found

