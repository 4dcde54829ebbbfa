"""The login nodes: the site's SSH user CA, host keys, and one sshd per login node that
accepts only certificates signed by that CA."""

from __future__ import annotations

import socket
from pathlib import Path

from ..credentials.krl import ensure_krl
from . import render
from .layout import SiteLayout
from .nodes import Nodes
from .system import SiteError, make_dir, run, say, wait_for, write_file


def _ssh_banner(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.settimeout(2)
            return conn.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


class LoginNodes:
    def __init__(self, site: SiteLayout, nodes: Nodes):
        self.site = site
        self.nodes = nodes

    def ensure_ca(self) -> None:
        """The site's SSH user CAs (the Slurm cluster's, and the Grid Engine cluster's own): made
        once, private keys 0600 root; each cluster's login nodes trust the public half of its own."""
        site = self.site
        make_dir(site.ca_dir, 0o700)
        make_dir(site.ssh_dir, 0o755)
        for key, title in [(site.user_ca_key, "user CA"), (site.ge_user_ca_key, "Grid Engine cluster's user CA")]:
            if not key.exists():
                say(f"  ssh: creating the site's {title}")
                run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"hpchub site {site.name} {title}",
                     "-f", str(key)])
            key.chmod(0o600)
            write_file(site.ssh_dir / f"{key.name}.pub", key.with_suffix(".pub").read_text())
        make_dir(site.revoked_keys.parent, 0o755)
        ensure_krl(site.revoked_keys)  # sshd refuses every key while RevokedKeys is missing

    def write_config(self) -> dict[str, bool]:
        """Host keys, sshd configs and the public known_hosts; returns which configs changed."""
        site = self.site
        host_keys = {}
        changed = {}
        make_dir(Path("/run/sshd"), 0o755)  # sshd: "Missing privilege separation directory"
        for node in site.all_login_nodes:
            key_dir = make_dir(site.ssh_dir / node.name, 0o700)
            key = key_dir / "ssh_host_ed25519_key"
            if not key.exists():
                run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{node.name}.{site.name}",
                     "-f", str(key)])
            host_keys[node.name] = key.with_suffix(".pub").read_text()
            config = key_dir / "sshd_config"
            changed[node.name] = write_file(config, render.sshd_config(site, node.name), 0o600)
            proc = run(["sshd", "-t", "-f", str(config)], check=False)
            if proc.returncode != 0:
                raise SiteError(f"sshd rejects the configuration of {node.name}: {proc.stderr.strip()}")
        make_dir(site.known_hosts.parent, 0o755)
        write_file(site.known_hosts, render.known_hosts(site, host_keys))
        if site.gridengine:
            write_file(site.ge_known_hosts, render.known_hosts(site, host_keys, [site.ge_login]))
        return changed

    def ensure_sshd(self, changed: dict[str, bool]) -> None:
        site = self.site
        for node in site.all_login_nodes:
            name = f"sshd-{node.name}"
            if changed.get(node.name):
                self.nodes.stop_daemon(name)
            if not self.nodes.daemon(name):
                say(f"  ssh: starting sshd on {node.name}")
                config = site.ssh_dir / node.name / "sshd_config"
                self.nodes.start_daemon(name, node.name, [
                    "/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(site.log_dir / f"{name}.log")])
        for node in site.all_login_nodes:
            wait_for(f"sshd on {node.name}", lambda: self.answers(node.name), timeout=20)

    def answers(self, node_name: str) -> bool:
        """Whether the login node's sshd greets (checked from the machine, over the public side)."""
        node = self.site.node(node_name)
        return _ssh_banner(node.public_address or node.address, self.site.ssh_port(node_name))

