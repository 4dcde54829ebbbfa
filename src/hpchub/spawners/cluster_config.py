"""The clusters a hub serves, as the admin configures them (`c.HPCSpawner.clusters`), checked
once into `ClusterConfig`s (pure: no I/O). A target names its cluster; one that names none runs
on the default cluster, which the spawner's own settings describe (login_nodes,
scheduler, status_interval), as they did before a hub had several clusters.

    c.HPCSpawner.clusters = {
        "ge": {"title": "Grid Engine cluster", "scheduler": "sge",
               "scheduler_options": {"parallel_environment": "smp"},
               "login_nodes": [{"name": "ge-login", "address": "10.0.0.11"}],
               "known_hosts": "/etc/hpchub/ge_known_hosts", "status_interval": 60},
    }

Host keys: a cluster's `known_hosts` (default: HPCSpawner.known_hosts) verifies its login
nodes; each login node carries the file with it (Host.known_hosts), to the hub's connections
and to the tunnel service alike.

Credentials: users log in once. One certificate serves every cluster whose login nodes trust
the same user CA (the authenticator's main issuer); a cluster that trusts another names it,
`"issuer": NAME`, one of the authenticator's `extra_issuers`, from which every user gets a
certificate of its own at login. The hub's service account may differ: a cluster's
`service_account` (default: the authenticator's) is issued its own certificate by the
cluster's issuer.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

from ..credentials.model import MAIN_ISSUER
from ..credentials.ssh_ca import CLUSTER_USERNAME
from ..schedulers import SCHEDULERS
from .targets import DEFAULT_CLUSTER

_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
_KEYS = {"title", "scheduler", "scheduler_options", "login_nodes", "known_hosts", "status_interval",
         "service_account", "issuer"}



class ClusterConfigError(ValueError):
    """The admin's cluster configuration is wrong (reported at the first spawn page)."""


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    title: str
    scheduler: str
    login_nodes: tuple[dict, ...]
    status_interval: float
    scheduler_options: dict = field(default_factory=dict)
    service_account: str = ""  # "": the authenticator's service_account
    issuer: str = MAIN_ISSUER  # the issuer of the user CA its login nodes trust

    def options_key(self) -> tuple:
        """The scheduler options, hashable (part of the key of the hub's one context per cluster)."""
        return tuple(sorted(self.scheduler_options.items()))


def usable_certificate(credentials, config: ClusterConfig) -> tuple[object, str]:
    """The user's certificate for a cluster, from the issuer its login nodes trust, and "";
    or None and what to tell the user. `credentials`: a CredentialSet, or None."""
    credential = credentials.ssh_from(config.issuer) if credentials is not None else None
    if credential is not None and not credential.expired():
        return credential, ""
    if config.issuer == MAIN_ISSUER:
        return None, "your login credentials are missing or expired: log out and log in again"
    if credential is None:
        return None, (f"you have no certificate for the {config.title} (its certificate authority gave none at "
                      "your login): log out and log in again, and if this persists tell your site's administrators")
    return None, f"your certificate for the {config.title} has expired: log out and log in again"


def _login_nodes(where: str, value, known_hosts: str = "") -> tuple[dict, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ClusterConfigError(f"{where}: `login_nodes` must be a non-empty list of login nodes")
    nodes = []
    for node in value:
        if not isinstance(node, dict) or not isinstance(node.get("name"), str) or not node["name"]:
            raise ClusterConfigError(f"{where}: each login node needs a `name` (and `address`, `port`)")
        port = node.get("port", 22)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ClusterConfigError(f"{where}: login node {node['name']!r}: `port` must be a TCP port")
        nodes.append({**({"known_hosts": known_hosts} if known_hosts else {}), **node})
    return tuple(nodes)


def _scheduler_options(where: str, scheduler: str, options) -> dict:
    if not isinstance(options, dict):
        raise ClusterConfigError(f"{where}: `scheduler_options` must be a dict")
    accepted = set(inspect.signature(SCHEDULERS[scheduler]).parameters)
    unknown = set(options) - accepted
    if unknown:
        raise ClusterConfigError(f"{where}: the {scheduler} adapter takes no options {sorted(unknown)} "
                                 f"(it takes: {', '.join(sorted(accepted)) or 'none'})")
    return dict(options)


def cluster_configs(clusters: dict, default: ClusterConfig, issuers=None) -> dict[str, ClusterConfig]:
    """Every cluster by name: the configured ones (their missing values from the default
    cluster's, except login nodes and issuer, which each cluster names) and the default one.
    `issuers`: the names of the authenticator's extra issuers (None: not checked)."""
    if not isinstance(clusters, dict):
        raise ClusterConfigError("HPCSpawner.clusters must be a dict of cluster name -> settings")
    found = {DEFAULT_CLUSTER: default}
    for name, spec in clusters.items():
        where = f"cluster {name!r}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ClusterConfigError(f"{where}: a cluster's name is lower-case letters, digits and -")
        if name == DEFAULT_CLUSTER:
            raise ClusterConfigError(f"{where}: {DEFAULT_CLUSTER!r} is the cluster the spawner's own settings "
                                     "describe; give this one another name")
        if not isinstance(spec, dict):
            raise ClusterConfigError(f"{where}: its settings must be a dict")
        unknown = set(spec) - _KEYS
        if unknown:
            raise ClusterConfigError(f"{where}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(_KEYS))})")
        scheduler = spec.get("scheduler", default.scheduler)
        if scheduler not in SCHEDULERS:
            raise ClusterConfigError(f"{where}: scheduler {scheduler!r} is not one of {', '.join(SCHEDULERS)}")
        known_hosts = spec.get("known_hosts", "")
        if not isinstance(known_hosts, str):
            raise ClusterConfigError(f"{where}: `known_hosts` must be the name of a known_hosts file")
        interval = spec.get("status_interval", default.status_interval)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < 1:
            raise ClusterConfigError(f"{where}: `status_interval` must be a number of seconds (at least 1)")
        account = spec.get("service_account", "")
        if not isinstance(account, str) or (account and not CLUSTER_USERNAME.fullmatch(account)):
            raise ClusterConfigError(f"{where}: `service_account` must be an account name on that cluster")
        issuer = spec.get("issuer", MAIN_ISSUER)
        if not isinstance(issuer, str) or (issuers is not None and issuer != MAIN_ISSUER and issuer not in issuers):
            known = ", ".join(sorted(issuers or ())) or "none"
            raise ClusterConfigError(f"{where}: `issuer` {issuer!r} is not one of the authenticator's extra_issuers "
                                     f"({known}); leave it out for the main issuer")
        found[name] = ClusterConfig(
            name=name, title=str(spec.get("title", name)), scheduler=scheduler,
            login_nodes=_login_nodes(where, spec.get("login_nodes"), known_hosts),
            status_interval=float(interval),
            scheduler_options=_scheduler_options(where, scheduler, spec.get("scheduler_options", {})),
            service_account=account, issuer=issuer)
    return found
