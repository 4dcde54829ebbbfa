"""Where everything of one site instance lives: names, addresses, ports and paths.

Pure: no I/O. A :class:`SiteLayout` is computed from the instance's name, its slot
(a small number that keeps the ports and subnets of instances apart) and its network
mode, so that every part of the site (config files, daemons, tests) derives the same
values from one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,7}\Z")
MAX_SLOTS = 40

STATE_ROOT = Path("/var/lib/hpchub")
SOFTWARE_ROOT = Path("/opt/hpchub")

COMPUTE_NODES = ("c1", "c2", "c3", "c4")
LOGIN_NODES = ("login1", "login2")
HEAD_NODE = "head"

# The second cluster (Grid Engine): a head node with sge_qmaster, an execution node, a login node.
GE_HEAD_NODE = "ge-head"
GE_LOGIN_NODE = "ge-login"
GE_COMPUTE_NODES = ("ge-c1",)
GE_CLUSTER = "ge"
"""The Grid Engine cluster's name in the hub's configuration (the Slurm cluster's is the site's)."""

DEMO_USERS = ("alice", "bob")
SERVICE_ACCOUNT = "hpchub"
"""The cluster account the hub uses for what no single user can do (a Slurm operator)."""
HUB_OS_USER = "jupyterhub"
CLUSTER_TIMEZONE = "Europe/Berlin"
"""The demo cluster's time zone (its login nodes' sessions), other than the hub host's (UTC on the
project's machines), as a hub in a UTC container beside a cluster in local time would have it."""
"""The unprivileged Unix user the hub process runs as, on the hub side."""


class SiteNameError(ValueError):
    pass


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise SiteNameError(
            f"invalid site name {name!r}: use 1-8 lower-case letters or digits, starting with a letter"
        )
    return name


@dataclass(frozen=True)
class Node:
    """A host of the site: its hostname and the address others reach it at."""

    name: str
    role: str  # "head", "login" or "compute"
    address: str  # on the internal network (isolated) or 127.0.0.1 (loopback)
    public_address: str | None = None  # login nodes in isolated mode: the hub-facing side


@dataclass(frozen=True)
class SiteLayout:
    name: str
    slot: int
    isolated: bool
    gridengine: bool = True  # the second cluster (site/gridengine.py); `hpchub site up --clusters`

    # ----- paths -------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / "sites" / self.name

    @property
    def cluster_dir(self) -> Path:
        """Root-only: configuration and data of the cluster side."""
        return self.state_dir / "cluster"

    @property
    def slurm_etc(self) -> Path:
        """Mounted at /etc/slurm on every node of the instance."""
        return self.cluster_dir / "etc-slurm"

    @property
    def munge_dir(self) -> Path:
        """munged's key, seed and log (owned by the munge user)."""
        return self.state_dir / "munge"

    @property
    def munge_run(self) -> Path:
        """Mounted at /run/munge on every node: where munged's socket lives."""
        return self.cluster_dir / "munge-run"

    @property
    def hosts_file(self) -> Path:
        """Mounted at /etc/hosts on every node."""
        return self.cluster_dir / "hosts"

    @property
    def mysql_dir(self) -> Path:
        """The accounting database: data, socket and log (owned by the mysql user)."""
        return self.state_dir / "db"

    def slurmd_spool(self, node: str) -> Path:
        """Mounted at /var/spool/slurmd on its node (job scripts must be readable by users)."""
        return self.cluster_dir / "slurmd" / node

    @property
    def ssh_dir(self) -> Path:
        return self.cluster_dir / "ssh"

    @property
    def ca_dir(self) -> Path:
        """The site's SSH user CA (private key 0600 root)."""
        return self.state_dir / "ca"

    @property
    def user_ca_key(self) -> Path:
        return self.ca_dir / "user_ca"

    @property
    def ge_user_ca_key(self) -> Path:
        """The Grid Engine cluster's own SSH user CA: its login node trusts this one and not the
        Slurm cluster's, as separate clusters of a centre may (the hub gets users a certificate
        from each at login: the authenticator's extra_issuers)."""
        return self.ca_dir / "ge_user_ca"

    def user_ca_key_of(self, node_name: str) -> Path:
        """The user CA the login node's sshd trusts."""
        return self.ge_user_ca_key if node_name == GE_LOGIN_NODE else self.user_ca_key

    @property
    def known_hosts(self) -> Path:
        """Public: the login nodes' host keys, for SSH clients of the hub and tests."""
        return self.state_dir / "public" / "ssh_known_hosts"

    @property
    def ge_known_hosts(self) -> Path:
        """Public: the Grid Engine cluster's login node's host key (the hub's configuration
        gives each cluster its own file, as sites with separate clusters have)."""
        return self.state_dir / "public" / "ge_ssh_known_hosts"

    @property
    def revoked_keys(self) -> Path:
        """Public: the key revocation list (KRL) every login node's sshd reads."""
        return self.state_dir / "public" / "revoked_keys"

    @property
    def hub_ca_key(self) -> Path:
        """The hub's copy of the user CA key (the local CA issuer), owned by the hub user."""
        return self.hub_dir / "ssh-ca" / "user_ca"

    @property
    def single_sign_on_config(self) -> Path:
        """Written by `hpchub site up --login oidc`: the hub logs in through the site's identity
        provider and gets certificates from the site's CA service (it then holds no CA key)."""
        return self.hub_config_dir / "10-single-sign-on.py"

    @property
    def hub_ca_ledger(self) -> Path:
        return self.hub_dir / "ssh-ca" / "issued.jsonl"

    @property
    def hub_ge_ca_key(self) -> Path:
        """The hub's copy of the Grid Engine cluster's user CA key (an extra issuer, a local CA in
        both login modes: single sign-on moves only the main CA off the hub)."""
        return self.hub_dir / "ge-ssh-ca" / "user_ca"

    @property
    def hub_ge_ca_ledger(self) -> Path:
        return self.hub_dir / "ge-ssh-ca" / "issued.jsonl"

    @property
    def grid_dir(self) -> Path:
        """The grid CA and the MyProxy server's host key and storage (root only)."""
        return self.state_dir / "grid"

    @property
    def grid_trust_dir(self) -> Path:
        """Public: the grid's trusted CA certificates, hashed (X509_CERT_DIR for hub and nodes)."""
        return self.state_dir / "public" / "grid-certificates"

    @property
    def announcement_file(self) -> Path:
        """The admin's announcement on every page (`hpchub announce --site NAME`), read by the hub."""
        return self.hub_dir / "announcement.txt"

    @property
    def drain_file(self) -> Path:
        """The login nodes drained for maintenance (`hpchub drain --site NAME`), read by the hub."""
        return self.hub_dir / "drained-login-nodes.json"

    @property
    def hub_config_dir(self) -> Path:
        """Extra hub configuration, loaded after the generated file (admins' and tests' overrides)."""
        return self.hub_dir / "config.d"

    @property
    def site_info_file(self) -> Path:
        """Public: what a hub needs to know about the site (JSON)."""
        return self.state_dir / "public" / "site.json"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def hub_dir(self) -> Path:
        """The demo hub's home: database, cookie secret, config (owned by the hub user)."""
        return self.state_dir / "hub"

    def node_tmp(self, node: str) -> Path:
        return self.state_dir / "nodes" / node / "tmp"

    # ----- ports -------------------------------------------------------------
    @property
    def port_base(self) -> int:
        return 21000 + 100 * self.slot

    @property
    def mysql_port(self) -> int:
        return self.port_base + 6

    @property
    def slurmctld_port(self) -> int:
        return self.port_base + 17

    @property
    def slurmdbd_port(self) -> int:
        return self.port_base + 19

    def slurmd_port(self, node: str) -> int:
        return self.port_base + 20 + COMPUTE_NODES.index(node)

    def ssh_port(self, node: str) -> int:
        # Loopback mode shares one address, so each login node needs its own port;
        # in isolated mode each login node has its own address and uses port 22, as the
        # Grid Engine login node does in both modes.
        if self.isolated or node == GE_LOGIN_NODE:
            return 22
        return self.port_base + 30 + LOGIN_NODES.index(node)

    @property
    def srun_port_range(self) -> tuple[int, int]:
        return (self.port_base + 50, self.port_base + 89)

    @property
    def hub_port(self) -> int:
        return 8000 if self.name == "demo" else self.port_base + 90

    @property
    def hub_api_port(self) -> int:
        return self.port_base + 91

    @property
    def proxy_api_port(self) -> int:
        return self.port_base + 92

    @property
    def myproxy_port(self) -> int:
        """The MyProxy server, on the hub side's loopback (a grid service beside the hub)."""
        return self.port_base + 96

    @property
    def ca_service_port(self) -> int:
        """The CA service of single sign-on mode, on the hub side (site/ca_service.py)."""
        return self.port_base + 3

    @property
    def oidc_port(self) -> int:
        """The demo's OpenID Connect provider, on the hub side (site/identity.py)."""
        return self.port_base + 99

    # ----- network -----------------------------------------------------------
    def _subnet(self, internal: bool) -> str:
        return f"10.199.{2 * self.slot + (1 if internal else 0)}"

    @property
    def public_subnet(self) -> str:
        """The hub side and the login nodes' public interfaces (isolated mode)."""
        return f"{self._subnet(False)}.0/24"

    @property
    def internal_subnet(self) -> str:
        """The head node, compute nodes and the login nodes' internal side."""
        return f"{self._subnet(True)}.0/24"

    @property
    def host_public_address(self) -> str:
        """The machine's own address on the public bridge (tests reach the hub through it)."""
        return f"{self._subnet(False)}.1"

    @property
    def hub_address(self) -> str:
        return f"{self._subnet(False)}.2" if self.isolated else "127.0.0.1"

    @property
    def head(self) -> Node:
        addr = f"{self._subnet(True)}.2" if self.isolated else "127.0.0.1"
        return Node(HEAD_NODE, "head", addr)

    @property
    def login_nodes(self) -> list[Node]:
        nodes = []
        for i, name in enumerate(LOGIN_NODES):
            if self.isolated:
                nodes.append(
                    Node(name, "login", f"{self._subnet(True)}.{11 + i}", f"{self._subnet(False)}.{11 + i}")
                )
            else:
                nodes.append(Node(name, "login", "127.0.0.1", "127.0.0.1"))
        return nodes

    @property
    def compute_nodes(self) -> list[Node]:
        return [
            Node(name, "compute", f"{self._subnet(True)}.{21 + i}" if self.isolated else "127.0.0.1")
            for i, name in enumerate(COMPUTE_NODES)
        ]

    @property
    def nodes(self) -> list[Node]:
        return [self.head, *self.login_nodes, *self.compute_nodes]

    # ----- the Grid Engine cluster ------------------------------------------------
    # Grid Engine knows its hosts by address (qmaster resolves every connection's peer and
    # refuses one whose name does not match), so its nodes have network namespaces and
    # addresses of their own in both modes, on a bridge of their own. In loopback mode the
    # machine has an address on that bridge (the hub reaches the login node there); in
    # isolated mode the login node also sits on the public bridge, as login1 and login2 do.
    @property
    def ge_subnet(self) -> str:
        return f"10.199.{128 + self.slot}"

    @property
    def bridge_gridengine(self) -> str:
        return f"hpc{self.slot}ge"

    @property
    def ge_host_address(self) -> str | None:
        """The machine's address on the Grid Engine bridge (loopback mode only)."""
        return None if self.isolated else f"{self.ge_subnet}.1"

    @property
    def ge_head(self) -> Node:
        return Node(GE_HEAD_NODE, "head", f"{self.ge_subnet}.2")

    @property
    def ge_login(self) -> Node:
        public = f"{self._subnet(False)}.13" if self.isolated else f"{self.ge_subnet}.11"
        return Node(GE_LOGIN_NODE, "login", f"{self.ge_subnet}.11", public)

    @property
    def ge_compute_nodes(self) -> list[Node]:
        return [Node(name, "compute", f"{self.ge_subnet}.{21 + i}") for i, name in enumerate(GE_COMPUTE_NODES)]

    @property
    def ge_nodes(self) -> list[Node]:
        return [self.ge_head, self.ge_login, *self.ge_compute_nodes]

    @property
    def ge_cell_dir(self) -> Path:
        """The Grid Engine cell (Debian's SGE_ROOT/default), mounted at /var/lib/gridengine/default
        on the cluster's nodes: configuration, act_qmaster, accounting."""
        return self.cluster_dir / "gridengine" / "cell"

    def ge_spool(self, node: str) -> Path:
        """Mounted at /var/spool/gridengine on its node: qmaster's or execd's spool."""
        return self.cluster_dir / "gridengine" / "spool" / node

    @property
    def all_login_nodes(self) -> list[Node]:
        """The login nodes of every cluster of the instance (each runs the site's sshd)."""
        return [*self.login_nodes, *([self.ge_login] if self.gridengine else [])]

    def node(self, name: str) -> Node:
        for node in [*self.nodes, *self.ge_nodes]:
            if node.name == name:
                return node
        raise KeyError(name)

    def netns(self, node: str) -> str:
        """Name of a node's network namespace (isolated mode); "hub" is the hub side."""
        return f"hpc-{self.name}-{node}"

    @property
    def bridge_public(self) -> str:
        return f"hpc{self.slot}pub"

    @property
    def bridge_internal(self) -> str:
        return f"hpc{self.slot}int"

    def veth(self, node: str, internal: bool) -> str:
        """Host-side name of a node's veth (at most 15 characters)."""
        return f"h{self.slot}{node}{'i' if internal else 'p'}"

    @property
    def cluster_name(self) -> str:
        return self.name

    @property
    def hub_url(self) -> str:
        return f"http://{self.hub_address}:{self.hub_port}"
