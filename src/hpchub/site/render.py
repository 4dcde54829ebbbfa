"""Pure builders of the site's configuration files, from a :class:`SiteLayout`."""

from __future__ import annotations

import jinja2

from .layout import CLUSTER_TIMEZONE, SiteLayout

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("hpchub.site", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # configuration files, not HTML
)

# The cluster's shape. Features let users ask for `--constraint`; one node has GPUs.
NODE_FEATURES = {"c1": "intel,avx2", "c2": "intel,avx2", "c3": "amd,avx512", "c4": "amd,avx512,gpu"}
NODE_GPUS = {"c4": 2}
DEBUG_PARTITION_NODES = ("c1", "c2")


def _render(template: str, **values) -> str:
    return _env.get_template(template).render(**values)


def slurm_conf(site: SiteLayout) -> str:
    return _render(
        "slurm.conf.j2",
        site=site,
        state=site.cluster_dir,
        run=site.run_dir,
        log=site.log_dir,
        features=NODE_FEATURES,
        gres={node: f"gpu:{count}" for node, count in NODE_GPUS.items()},
        debug_nodes=DEBUG_PARTITION_NODES,
    )


def gres_conf(site: SiteLayout) -> str:
    return _render("gres.conf.j2", gres=NODE_GPUS)


def slurmdbd_conf(site: SiteLayout, db_password: str) -> str:
    return _render(
        "slurmdbd.conf.j2", site=site, run=site.run_dir, log=site.log_dir, db_password=db_password
    )


def mysql_socket(site: SiteLayout) -> str:
    return str(site.mysql_dir / "mariadb.sock")


def my_cnf(site: SiteLayout) -> str:
    return _render(
        "my.cnf.j2",
        site=site,
        datadir=site.mysql_dir / "data",
        socket=mysql_socket(site),
        dir=site.mysql_dir,
    )


def sshd_config(site: SiteLayout, node_name: str) -> str:
    node = site.node(node_name)
    listen = sorted({node.address, node.public_address or node.address})
    return _render(
        "sshd_config.j2",
        site=site,
        node=node,
        port=site.ssh_port(node_name),
        listen=listen,
        host_key=site.ssh_dir / node_name / "ssh_host_ed25519_key",
        run=site.run_dir,
        ca_pub=site.ssh_dir / f"{site.user_ca_key_of(node_name).name}.pub",
        revoked_keys=site.revoked_keys,
        # login1 is sized for a hub; login2 keeps Debian's defaults, as real login nodes do.
        generous_limits=(node_name in ("login1", "ge-login")),
        timezone=CLUSTER_TIMEZONE,
    )


def hosts(site: SiteLayout) -> str:
    return _render("hosts.j2", site=site)


def known_hosts(site: SiteLayout, host_keys: dict[str, str], nodes=None) -> str:
    """known_hosts lines for every way a client may name each login node (of `nodes`: the
    Slurm cluster's by default)."""
    lines = []
    for node in site.login_nodes if nodes is None else nodes:
        port = site.ssh_port(node.name)
        names = {node.name, node.address, node.public_address or node.address}
        patterns = sorted(n if port == 22 else f"[{n}]:{port}" for n in names)
        lines.append(f"{','.join(patterns)} {host_keys[node.name].strip()}")
    return "\n".join(lines) + "\n"
