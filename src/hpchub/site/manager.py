"""`hpchub site up | down | status`: one site instance, brought up idempotently and taken
down without leaving a process, mount or namespace behind."""

from __future__ import annotations

import json
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import images, network, otp, software, system
from .grid import GridService
from .gridengine import GridEngineCluster
from .hub import Hub
from .ca_service import SiteCAService
from .identity import IdentityProvider, client_id, issuer_url, single_sign_on_settings
from .layout import HUB_OS_USER, MAX_SLOTS, STATE_ROOT, SiteLayout, check_name
from .login import LoginNodes
from .nodes import Nodes
from .slurm import Cluster
from .system import SiteError, make_dir, say, write_file


def _instance_file(name: str) -> Path:
    return STATE_ROOT / "sites" / name / "instance.json"


def load_layout(name: str) -> SiteLayout | None:
    """The recorded layout of an existing instance, or None."""
    path = _instance_file(check_name(name))
    if not path.exists():
        return None
    rec = json.loads(path.read_text())
    return SiteLayout(name, rec["slot"], rec["isolated"], rec.get("gridengine", True))


def _allocate(name: str, isolated: bool | None, gridengine: bool | None = None) -> SiteLayout:
    existing = load_layout(name)
    if existing is not None:
        if (isolated is None or isolated == existing.isolated) and (
                gridengine is None or gridengine == existing.gridengine):
            return existing
        if Nodes(existing).processes() or network.leftovers(existing):
            mode = "isolated" if existing.isolated else "loopback"
            raise SiteError(
                f"site {name!r} is running ({mode} mode, clusters {'slurm,sge' if existing.gridengine else 'slurm'});"
                f" take it down first to change it (`hpchub site down --name {name}`)"
            )
        layout = SiteLayout(name, existing.slot, existing.isolated if isolated is None else isolated,
                            existing.gridengine if gridengine is None else gridengine)
    else:
        used = set()
        for other in (STATE_ROOT / "sites").glob("*/instance.json"):
            used.add(json.loads(other.read_text())["slot"])
        free = [s for s in range(MAX_SLOTS) if s not in used]
        if not free:
            raise SiteError(f"all {MAX_SLOTS} site slots are taken: take an instance down with --purge")
        layout = SiteLayout(name, free[0], bool(isolated), True if gridengine is None else gridengine)
    make_dir(layout.state_dir, 0o711)  # traversable, not listable: the hub user reaches only hub/
    write_file(_instance_file(name), json.dumps({"slot": layout.slot, "isolated": layout.isolated,
                                                 "gridengine": layout.gridengine}) + "\n")
    return layout


@dataclass
class Phases:
    """Wall time of each phase of a bring-up (printed, and kept for `make bench`)."""

    times: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str):
        start = time.monotonic()
        yield
        self.times[name] = round(time.monotonic() - start, 3)


class Site:
    def __init__(self, layout: SiteLayout):
        self.layout = layout
        self.nodes = Nodes(layout)
        self.cluster = Cluster(layout, self.nodes)
        self.gridengine = GridEngineCluster(layout, self.nodes)
        self.login = LoginNodes(layout, self.nodes)
        self.hub = Hub(layout, self.nodes)
        self.grid = GridService(layout, self.nodes)
        self.identity = IdentityProvider(layout, self.nodes)
        self.ca_service = SiteCAService(layout, self.nodes)

    @classmethod
    def open(cls, name: str, isolated: bool | None = None, clusters: str | None = None) -> "Site":
        """clusters: "slurm,sge" or "slurm" (None: as the instance was; both for a new one)."""
        system.require_root()
        gridengine = None if clusters is None else ("sge" in clusters.split(","))
        return cls(_allocate(check_name(name), isolated, gridengine))

    # ----- up ---------------------------------------------------------------------
    def up(self, with_hub: bool = True, login: str | None = None) -> Phases:
        """Bring the site up. `login`: "password" (PAM, the hub's local CA), "oidc" (single
        sign-on with a one-time code, the site's CA service), None (as it was)."""
        site = self.layout
        phases = Phases()
        mode = "isolated" if site.isolated else "loopback"
        say(f"hpchub site {site.name!r} ({mode} mode, state in {site.state_dir})")
        with phases.phase("packages"):
            system.install_packages(system.missing_packages())
        with phases.phase("users"):
            system.ensure_users()
            otp.ensure_pam()
        with phases.phase("software"):
            software.ensure_jupyter_env()
            software.ensure_hpchub_in_jupyter_env()
        with phases.phase("images"):
            images.ensure_demo_image()
            images.ensure_container_kernel()
        for path, mode_bits in ((site.run_dir, 0o700), (site.log_dir, 0o700)):
            make_dir(path, mode_bits)
        with phases.phase("network"):
            if site.isolated:
                network.up(site)
        with phases.phase("nodes"):
            slurm_changed = self.cluster.write_config()
            for node in site.nodes:
                self.nodes.ensure_node(node.name)
        with phases.phase("munge"):
            self.cluster.ensure_munge()
        with phases.phase("accounting"):
            self.cluster.ensure_database()
            self.cluster.ensure_slurmdbd()
            self.cluster.ensure_associations()
        with phases.phase("slurm"):
            self.cluster.ensure_slurmctld(restart=slurm_changed)
            self.cluster.ensure_slurmd(restart=slurm_changed)
            self.cluster.ensure_reservation()
        if site.gridengine:
            with phases.phase("grid engine"):
                self.gridengine.ensure()
        with phases.phase("login nodes"):
            self.login.ensure_ca()
            self.login.ensure_sshd(self.login.write_config())
        with phases.phase("grid"):
            self.grid.ensure()
        with phases.phase("identity"):
            make_dir(site.hub_dir, 0o700, owner=HUB_OS_USER)
            self.identity.ensure()
            self.ensure_login_mode(login)
        self._write_site_info()
        if with_hub:
            with phases.phase("hub"):
                self.hub.ensure()
        write_file(site.run_dir / "bringup-phases.json", json.dumps(phases.times) + "\n")
        say("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.times.items()))
        say(f"site {site.name!r} is up")
        if with_hub:
            passwords = system.demo_passwords()
            say(f"\nOpen {site.hub_url}/hub/login and log in as "
                + " or ".join(f"{user} (password {pw})" for user, pw in passwords.items()) + ".")
            if site.single_sign_on_config.exists():
                say("Single sign-on: the login also asks for a one-time code. Add each user's key to an "
                    "authenticator app: " + ", ".join(f"{user} {self.identity.totp_secret(user)}"
                                                      for user in passwords)
                    + f" (or read the current code with `hpchub site code --name {site.name} --user USER`).")
            say("The spawn page offers a login node (starts at once) or compute nodes through the Slurm queue,\n"
                "bare or inside a container image.")
        return phases

    def ensure_login_mode(self, login: str | None) -> None:
        """Switch how users log in (see up); the hub is restarted by its next ensure."""
        site = self.layout
        if login not in (None, "password", "oidc"):
            raise SiteError(f"--login must be password or oidc, not {login!r}")
        if login == "password":
            site.single_sign_on_config.unlink(missing_ok=True)
        elif login == "oidc":
            make_dir(site.hub_config_dir, 0o755)
            write_file(site.single_sign_on_config, single_sign_on_settings(
                site, self.identity.client_secret_file, self.ca_service.url, self.ca_service.token_file,
                self.ca_service.tls_bundle), 0o644)
        if site.single_sign_on_config.exists():
            self.ca_service.ensure()
        else:
            self.ca_service.stop()

    def _write_site_info(self) -> None:
        """Public facts about the site, for hub configurations and tests."""
        site = self.layout
        info = {
            "name": site.name,
            "mode": "isolated" if site.isolated else "loopback",
            "login_nodes": [
                {"name": n.name, "address": n.public_address or n.address, "port": site.ssh_port(n.name)}
                for n in site.login_nodes
            ],
            "compute_nodes": [n.name for n in site.compute_nodes],
            # The Grid Engine cluster (site/gridengine.py), where the instance has it.
            "gridengine": {
                "login_nodes": [{"name": site.ge_login.name, "address": site.ge_login.public_address,
                                 "port": site.ssh_port(site.ge_login.name)}],
                "compute_nodes": [n.name for n in site.ge_compute_nodes],
                "known_hosts": str(site.ge_known_hosts),
            } if site.gridengine else None,
            "known_hosts": str(site.known_hosts),
            "jupyter_env": str(software.JUPYTER_ENV),
            "hub_url": site.hub_url,
            # The grid credential service, reached from the hub side (site/grid.py).
            "myproxy": {"host": "127.0.0.1", "port": site.myproxy_port,
                        "ca_bundle": str(site.grid_trust_dir / "ca-bundle.pem"),
                        "trust_dir": str(site.grid_trust_dir)},
            # The single sign-on provider (site/identity.py), and the hub's client at it.
            "oidc": {"issuer": issuer_url(site), "client_id": client_id(site),
                     "client_secret_file": str(self.identity.client_secret_file)},
            "login": "oidc" if site.single_sign_on_config.exists() else "password",
            "ca_service": {"url": self.ca_service.url, "ledger": str(self.ca_service.ledger),
                           "tls_bundle": str(self.ca_service.tls_bundle)},
        }
        make_dir(site.site_info_file.parent, 0o755)
        write_file(site.site_info_file, json.dumps(info, indent=1) + "\n")

    # ----- down -------------------------------------------------------------------
    def down(self, purge: bool = False) -> None:
        site = self.layout
        say(f"hpchub site {site.name!r}: taking it down")
        # Daemons first, in the reverse order of up, so that each shuts down cleanly (MariaDB
        # above all); then whatever is left in the nodes (job steps, users' processes).
        for name in reversed(list(self.nodes.daemon_records())):
            self.nodes.stop_daemon(name)
        self.nodes.sweep(hub_netns=network.netns_inode(site.netns("hub")) if site.isolated else None, timeout=3)
        network.down(site)
        left = self.leftovers()
        if left:
            raise SiteError(f"site {site.name!r} left behind: {'; '.join(left)}")
        if purge:
            shutil.rmtree(site.state_dir)
            say(f"  removed {site.state_dir}")
        say(f"site {site.name!r} is down")

    def leftovers(self) -> list[str]:
        """Processes, namespaces and mounts of this instance that still exist."""
        site = self.layout
        hub_ns = network.netns_inode(site.netns("hub"))
        left = [f"process {pid}" for pid in self.nodes.processes(hub_netns=hub_ns)]
        left += network.leftovers(site)
        marker = f"hpc-{site.name}-"
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            if str(site.state_dir) in line or marker in line:
                left.append(f"mount {line.split()[4]}")
        return left

    # ----- status -----------------------------------------------------------------
    def status(self) -> dict:
        site = self.layout
        records = self.nodes.daemon_records()
        daemons = {name: bool(self.nodes.daemon(name)) for name in records}
        where = {name: rec["where"] for name, rec in records.items()}
        report = {
            "name": site.name,
            "mode": "isolated" if site.isolated else "loopback",
            "nodes": {n.name: bool(self.nodes.holder(n.name))
                      for n in [*site.nodes, *(site.ge_nodes if site.gridengine else [])]},
            "daemons": daemons,
            "where": where,
            "slurm_nodes": self.cluster.status(),
            "gridengine_queues": self.gridengine.status() if site.gridengine else None,
            "login_nodes": {n.name: self.login.answers(n.name) for n in site.all_login_nodes},
            "hub": {"url": site.hub_url, "answers": self.hub.answers()} if "hub" in daemons else None,
        }
        report["up"] = (
            all(report["nodes"].values())
            and bool(daemons) and all(daemons.values())
            and all(report["login_nodes"].values())
            and len(report["slurm_nodes"]) == len(site.compute_nodes)
            and (not site.gridengine or bool(report["gridengine_queues"]))
        )
        return report


def describe(report: dict) -> str:
    """status as a person reads it: what runs where."""
    lines = [f"site {report['name']!r} ({report['mode']} mode): {'UP' if report['up'] else 'NOT UP'}"]
    for node, alive in report["nodes"].items():
        here = [d for d, w in report["where"].items() if w == node]
        lines.append(f"  node {node:7} {'up' if alive else 'DOWN':5} {' '.join(here)}")
    for name, alive in report["daemons"].items():
        if not alive:
            lines.append(f"  daemon {name} is NOT running")
    slurm = report["slurm_nodes"]
    lines.append("  slurm: " + (", ".join(f"{n} {s}" for n, s in sorted(slurm.items())) or "not answering"))
    if report.get("gridengine_queues") is not None:
        queues = report["gridengine_queues"]
        lines.append("  grid engine: " + (", ".join(f"{q} {s}" for q, s in sorted(queues.items()))
                                          or "not answering"))
    lines.append("  sshd: " + ", ".join(f"{n} {'answers' if ok else 'NOT answering'}"
                                       for n, ok in report["login_nodes"].items()))
    if report["hub"] is not None:
        hub = report["hub"]
        lines.append(f"  hub: {hub['url']} {'answers' if hub['answers'] else 'NOT answering'}")
    return "\n".join(lines)
