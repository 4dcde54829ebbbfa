"""The demo site's hub side: JupyterHub run as it would be at a centre, as an unprivileged
user on a host that is not a cluster member (no Slurm configuration, no munge key)."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from .gridengine import PARALLEL_ENVIRONMENT
from .images import DEMO_IMAGE, DEMO_IMAGE_TITLE, image_command
from .layout import DEMO_USERS, GE_CLUSTER, HUB_OS_USER, SOFTWARE_ROOT, SiteLayout

GE_ISSUER = "ge-ca"
"""The extra issuer of the Grid Engine cluster's own user CA (layout.ge_user_ca_key)."""
from .nodes import Nodes
from .otp import PAM_SERVICE
from .software import JUPYTER_ENV
from .system import SiteError, make_dir, run, say, wait_for, write_file

HUB_ENV = SOFTWARE_ROOT / "hub"
"""The hub's own Python environment (made by `make`): hpchub and JupyterHub, world-readable."""

ADMIN_SERVICE = "hpchub-site-admin"
"""A hub service whose token (hub/admin-token) gives the site's administrator API access."""



DEMO_CONTAINER = {"runtime": "charliecloud", "images": {DEMO_IMAGE_TITLE: str(DEMO_IMAGE)}, "cmd": image_command()}

DEMO_TARGETS = [
    {"name": "login", "title": "Login node", "kind": "login",
     "description": "Shared with other users; starts at once. For editing, small analyses and job control."},
    {"name": "compute", "title": "Compute node", "kind": "batch",
     "description": "One node of your own from the batch queue, up to 4 hours. May wait in the queue.",
     "defaults": {"partition": "batch", "nodes": 1, "walltime": "01:00:00"},
     "choose": ["account", "qos", "walltime"], "limits": {"partitions": ["batch"], "max_walltime": "04:00:00"}},
    {"name": "gpu", "title": "GPU node", "kind": "batch",
     "description": "A node with GPUs, up to 2 hours.",
     "defaults": {"partition": "batch", "nodes": 1, "gpus": 1, "constraint": "gpu", "walltime": "01:00:00"},
     "choose": ["account", "gpus", "walltime"],
     "limits": {"partitions": ["batch"], "max_walltime": "02:00:00", "max_gpus": 2}},
    {"name": "custom", "title": "Custom", "kind": "batch",
     "description": "Any partition, account, QOS, size and time you are allowed.",
     "defaults": {"partition": "batch", "nodes": 1, "walltime": "01:00:00"},
     "choose": ["partition", "account", "qos", "nodes", "cores", "memory_mb", "gpus", "walltime", "reservation",
                "constraint"]},
    # Servers in a container image (site/images.py), run by Charliecloud on the node.
    {"name": "compute-container", "title": "Compute node, container", "kind": "batch",
     "description": "One node from the batch queue, your server inside a container image, up to 4 hours.",
     "defaults": {"partition": "batch", "nodes": 1, "walltime": "01:00:00"},
     "choose": ["account", "walltime"], "limits": {"partitions": ["batch"], "max_walltime": "04:00:00"},
     "container": DEMO_CONTAINER},
    {"name": "login-container", "title": "Login node, container", "kind": "login",
     "description": "Shared with other users; starts at once, your server inside a container image.",
     "container": DEMO_CONTAINER},
]


# The Grid Engine cluster's targets (site/gridengine.py), offered where the instance has it.
GE_TARGETS = [
    {"name": "ge-login", "title": "Login node", "kind": "login", "cluster": GE_CLUSTER,
     "description": "The Grid Engine cluster's login node; starts at once."},
    {"name": "ge-compute", "title": "Compute node", "kind": "batch", "cluster": GE_CLUSTER,
     "description": "Cores of a compute node from a Grid Engine queue, up to 4 hours. May wait in the queue.",
     "defaults": {"partition": "short.q", "cores": 1, "walltime": "01:00:00"},
     "choose": ["partition", "account", "cores", "walltime"],
     "limits": {"partitions": ["short.q", "batch.q"], "max_walltime": "04:00:00", "max_cores": 4}},
]


def _login_nodes(site: SiteLayout, nodes) -> list[dict]:
    return [{"name": n.name, "address": n.public_address or n.address, "port": site.ssh_port(n.name),
             # where compute nodes reach this login node (for the hub API forward of batch jobs)
             "cluster_address": n.address} for n in nodes]


def hub_config(site: SiteLayout) -> str:
    """The demo hub's jupyterhub_config.py (pure)."""
    values = {
        "JupyterHub.bind_url": f"http://{site.hub_address}:{site.hub_port}",
        "JupyterHub.hub_bind_url": f"http://127.0.0.1:{site.hub_api_port}",
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{site.proxy_api_port}",
        # The proxy is the site's daemon, not the hub's child: a hub restart keeps every route.
        "ConfigurableHTTPProxy.should_start": False,
        "JupyterHub.db_url": f"sqlite:///{site.hub_dir / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(site.hub_dir / "jupyterhub_cookie_secret"),
        "JupyterHub.pid_file": str(site.hub_dir / "jupyterhub.pid"),
        # PAM logins; each login gets a short-lived SSH certificate from the site's CA,
        # kept in the encrypted auth_state (JUPYTERHUB_CRYPT_KEY comes from the environment).
        "JupyterHub.authenticator_class": "hpchub-pam",
        "PAMAuthenticator.open_sessions": False,
        # A one-time code after the password for users who have enrolled (site/otp.py).
        "PAMAuthenticator.service": PAM_SERVICE,
        "Authenticator.request_otp": True,
        "Authenticator.otp_prompt": "One-time code (if you have enrolled one):",
        "Authenticator.allowed_users": set(DEMO_USERS),
        "CredentialIssuingAuthenticator.ssh_ca_key": str(site.hub_ca_key),
        "CredentialIssuingAuthenticator.ssh_ca_ledger": str(site.hub_ca_ledger),
        # The login nodes' KRL (world-readable): a revoked certificate is never renewed.
        "CredentialIssuingAuthenticator.ssh_revoked_keys": str(site.revoked_keys),
        "CredentialIssuingAuthenticator.hub_name": f"{site.name}-hub",
        "CredentialIssuingAuthenticator.extra_issuers": {GE_ISSUER: {
            "credential_issuer": "local-ca", "ssh_ca_key": str(site.hub_ge_ca_key),
            "ssh_ca_ledger": str(site.hub_ge_ca_ledger), "ssh_revoked_keys": str(site.revoked_keys)},
        } if site.gridengine else {},
        # Grid credentials too: an X.509 certificate from the site's MyProxy at each login,
        # delivered to the server as X509_USER_PROXY (site/grid.py).
        "CredentialIssuingAuthenticator.myproxy_server": "127.0.0.1",
        "CredentialIssuingAuthenticator.myproxy_port": site.myproxy_port,
        "CredentialIssuingAuthenticator.myproxy_ca_certs": str(site.grid_trust_dir / "ca-bundle.pem"),
        "HPCSpawner.x509_cert_dir": str(site.grid_trust_dir),
        # Servers on the login nodes, over SSH with the user's certificate; tunnels held by
        # the tunnel service, so that a hub restart (servers are not cleaned up) cuts nothing.
        # One spawn page: a login node at once, or compute nodes through the queue.
        "JupyterHub.spawner_class": "hpchub",
        "HPCSpawner.targets": DEMO_TARGETS + (GE_TARGETS if site.gridengine else []),
        "JupyterHub.cleanup_servers": False,
        # The Slurm cluster is the default one (settings shared with hpchub-ssh and hpchub-slurm);
        # the Grid Engine cluster is a second one, on its own login node (site/gridengine.py).
        "HPCSpawner.login_nodes": _login_nodes(site, site.login_nodes),
        "HPCSpawner.cluster_title": "Slurm cluster",
        "HPCSpawner.clusters": {GE_CLUSTER: {
            "title": "Grid Engine cluster", "scheduler": "sge",
            "scheduler_options": {"parallel_environment": PARALLEL_ENVIRONMENT},
            "login_nodes": _login_nodes(site, [site.ge_login]),
            "known_hosts": str(site.ge_known_hosts),
            # Its login node trusts a CA of its own: users get a second certificate at login.
            "issuer": GE_ISSUER}} if site.gridengine else {},
        "HPCSpawner.known_hosts": str(site.known_hosts),
        "HPCSpawner.cmd": [f"{JUPYTER_ENV}/bin/jupyterhub-singleuser"],
        "HPCSpawner.launcher_python": "/usr/bin/python3",
        "HPCSpawner.tunnel_socket": str(site.hub_dir / "tunnels.sock"),
        "HPCSpawner.drain_file": str(site.drain_file),
        "HPCHub.announcement_file": str(site.announcement_file),
        # Loopback: the hub shares the nodes' network, as a hub inside the cluster network
        # would. Isolated: compute nodes have no route from the hub; go through a login node.
        "HPCSpawner.connect_to_server": "via-login-node" if site.isolated else "direct",
        "HPCSpawner.partition": "batch",
        "HPCSpawner.walltime": "01:00:00",
        "Spawner.default_url": "/lab",
        "JupyterHub.allow_named_servers": True,
        # Show the progress page at once: a remote start has steps worth seeing.
        "JupyterHub.tornado_settings": {"slow_spawn_timeout": 0.05},  # (0 would wait for the whole spawn)
        # The site administrator's API access (auth_state included), token in a root/hub-only file.
        "JupyterHub.services": [{"name": ADMIN_SERVICE}],
        "JupyterHub.load_roles": [{
            "name": "hpchub-site-admin",
            "scopes": ["admin:users", "admin:auth_state", "admin:servers", "admin:server_state", "read:users",
                       "access:servers", "read:metrics"],
            "services": [ADMIN_SERVICE],
        }],
    }
    lines = [f"# Generated by hpchub for the demo hub of site instance {site.name!r}.",
             "import glob", "from pathlib import Path", "", "c = get_config()  # noqa"]
    lines += [f"c.{key} = {_literal(value)}" for key, value in values.items()]
    lines += [
        f"c.JupyterHub.services[0]['api_token'] = Path({str(site.hub_dir / 'admin-token')!r}).read_text().strip()",
        "",
        "# Site-specific additions and overrides, in name order.",
        f"for extra in sorted(glob.glob({str(site.hub_config_dir / '*.py')!r})):",
        "    load_subconfig(extra)  # noqa",
    ]
    return "\n".join(lines) + "\n"


def _literal(value) -> str:
    # A set's repr follows hash order, which changes between runs; sort it so that the file
    # (and so `up`'s "changed?" check) is stable.
    if isinstance(value, (set, frozenset)):
        return f"set({sorted(value)!r})"
    return repr(value)


def hub_netns_path(site: SiteLayout) -> str | None:
    return f"/run/netns/{site.netns('hub')}" if site.isolated else None


def on_hub_side(site: SiteLayout, argv: list[str]) -> list[str]:
    """argv run on the hub side: in its network namespace in isolated mode."""
    netns = hub_netns_path(site)
    return ["nsenter", f"--net={netns}", *argv] if netns else argv


def hub_side_port_open(site: SiteLayout, address: str, port: int) -> bool:
    """Whether something listens at address:port as seen from the hub side (its namespace in
    isolated mode, hence a probe process rather than a socket of this one)."""
    probe = ["python3", "-c", "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)",
             address, str(port)]
    return subprocess.run(on_hub_side(site, probe), capture_output=True).returncode == 0


class Hub:
    def __init__(self, site: SiteLayout, nodes: Nodes):
        self.site = site
        self.nodes = nodes

    def health_url(self) -> str:
        return f"{self.site.hub_url}/hub/health"

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url(), timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def running(self) -> bool:
        return self.nodes.daemon("hub") is not None

    def ensure(self) -> None:
        site = self.site
        # hpchub-hub: JupyterHub that keeps queued batch spawns across restarts (hpchub.hubapp).
        jupyterhub = HUB_ENV / "bin" / "hpchub-hub"
        if not jupyterhub.exists():
            raise SiteError(f"the hub's environment {HUB_ENV} is missing: run `make hub-env` (or `make demo`)")
        hub_dir = make_dir(site.hub_dir, 0o700, owner=HUB_OS_USER)
        make_dir(site.hub_config_dir, 0o755)
        self._install_secrets()
        config = hub_dir / "jupyterhub_config.py"
        write_file(config, hub_config(site), 0o644)
        # The hub reads its configuration at start only: a running hub whose configuration
        # (the generated file or an admin's config.d) changed since it started is restarted.
        fingerprint = self._config_fingerprint(config)
        if self.running() and self._started_with() != fingerprint:
            say("  hub: its configuration changed since it started; restarting it")
            self.nodes.stop_daemon("hub")
        proxy_token = (hub_dir / "proxy-token").read_text().strip()
        self._ensure_proxy(proxy_token)
        if not self.running():
            say(f"  hub: starting JupyterHub as {HUB_OS_USER!r} on {site.hub_url}")
            env = {
                "PATH": f"{HUB_ENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                "HOME": str(hub_dir),
                # Secrets reach the hub by its environment, never by argv.
                "CONFIGPROXY_AUTH_TOKEN": proxy_token,
                "JUPYTERHUB_CRYPT_KEY": (hub_dir / "crypt_key").read_text().strip(),
            }
            self.nodes.start_process("hub", self.as_hub_user([str(jupyterhub), "-f", str(config)]),
                                     cwd=hub_dir, env=env)
            write_file(self._fingerprint_file, fingerprint + "\n", 0o600)
        wait_for(f"the hub to answer at {self.health_url()}", self._alive_and_answering, timeout=90, interval=0.3)

    @property
    def _fingerprint_file(self) -> Path:
        return self.site.run_dir / "hub.config-fingerprint"

    def _config_fingerprint(self, config: Path) -> str:
        """Of every file the hub's configuration is read from: the generated file, then config.d."""
        digest = hashlib.sha256()
        for path in [config, *sorted(self.site.hub_config_dir.glob("*.py"))]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def _started_with(self) -> str:
        """The fingerprint of the configuration the running hub started with ("" if unknown)."""
        try:
            return self._fingerprint_file.read_text().strip()
        except FileNotFoundError:
            return ""

    def as_hub_user(self, argv: list[str]) -> list[str]:
        """argv run as the hub's user, where the hub runs (its network namespace when isolated)."""
        return on_hub_side(self.site, ["setpriv", f"--reuid={HUB_OS_USER}", f"--regid={HUB_OS_USER}",
                                       "--init-groups", "--", *argv])

    def _ensure_proxy(self, token: str) -> None:
        """configurable-http-proxy as a daemon of its own beside the hub, so that a hub restart
        (or crash) leaves the routes to users' servers, and their open websockets, in place."""
        site = self.site
        if self.nodes.daemon("proxy") is None:
            proxy = shutil.which("configurable-http-proxy")
            if proxy is None:
                raise SiteError("configurable-http-proxy is missing: run `make install` (npm)")
            say(f"  hub: starting configurable-http-proxy on {site.hub_url}")
            argv = [proxy, "--ip", site.hub_address, "--port", str(site.hub_port),
                    "--api-ip", "127.0.0.1", "--api-port", str(site.proxy_api_port),
                    "--error-target", f"http://127.0.0.1:{site.hub_api_port}/hub/error"]
            self.nodes.start_process("proxy", self.as_hub_user(argv), cwd=site.hub_dir,
                                     env={"CONFIGPROXY_AUTH_TOKEN": token, "HOME": str(site.hub_dir)})

        def api_answers() -> bool:
            if self.nodes.daemon("proxy") is None:
                raise SiteError(f"configurable-http-proxy exited during start-up:\n{self._log_tail('proxy', 10)}")
            probe = "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=0.5)"
            argv = ["python3", "-c", probe, str(site.proxy_api_port)]
            if site.isolated:
                argv = ["nsenter", f"--net={hub_netns_path(site)}", *argv]
            return run(argv, check=False).returncode == 0

        wait_for("the proxy's API", api_answers, timeout=30, interval=0.1)

    def _log_tail(self, daemon: str, lines: int) -> str:
        log = self.site.log_dir / f"{daemon}.out"
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else ""

    def _install_secrets(self) -> None:
        """The hub's own secrets, made once and owned by the hub user: the auth_state
        encryption key, the admin service token, and its copy of the site's user CA key."""
        site = self.site
        for name in ("crypt_key", "admin-token", "proxy-token"):
            path = site.hub_dir / name
            if not path.exists():
                write_file(path, secrets.token_hex(32) + "\n", 0o600, owner=HUB_OS_USER)
        copies = [(site.user_ca_key, site.hub_ca_key, site.hub_ca_ledger)]
        if site.gridengine:
            copies.append((site.ge_user_ca_key, site.hub_ge_ca_key, site.hub_ge_ca_ledger))
        if site.single_sign_on_config.exists():
            # Single sign-on: the site's CA service signs; the hub host holds no key of that CA.
            shutil.rmtree(site.hub_ca_key.parent, ignore_errors=True)
            copies = copies[1:]
        for key, copy, ledger in copies:
            make_dir(copy.parent, 0o700, owner=HUB_OS_USER)
            write_file(copy, key.read_text(), 0o600, owner=HUB_OS_USER)
            if not ledger.exists():
                write_file(ledger, "", 0o600, owner=HUB_OS_USER)

    def admin_token(self) -> str:
        return (self.site.hub_dir / "admin-token").read_text().strip()

    def restart(self) -> None:
        self.stop()
        self.ensure()

    def _alive_and_answering(self) -> bool:
        if not self.running():
            log = self.site.log_dir / "hub.out"
            raise SiteError(f"JupyterHub exited during start-up; the end of {log}:\n{self._log_tail('hub', 15)}")
        return self.answers()

    def stop(self) -> None:
        self.nodes.stop_daemon("hub")


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise SiteError(f"no Uid line for process {pid}")

