from __future__ import annotations

import re

from hpchub.site import render
from hpchub.site.hub import hub_config
from hpchub.site.layout import SiteLayout

LOOP = SiteLayout("tloop", 2, isolated=False)
ISO = SiteLayout("tiso", 3, isolated=True)


def conf_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_slurm_conf_is_shaped_like_a_centres():
    text = render.slurm_conf(LOOP)
    lines = conf_lines(text)
    assert "EnforcePartLimits=ALL" in lines
    assert "AccountingStorageEnforce=associations,limits,qos" in lines
    assert "PartitionName=batch Nodes=c1,c2,c3,c4 Default=YES MaxTime=12:00:00 DefaultTime=01:00:00 State=UP" in lines
    assert "PartitionName=debug Nodes=c1,c2 MaxTime=00:30:00 DefaultTime=00:10:00 State=UP" in lines
    assert ("PartitionName=shared Nodes=c1,c2,c3,c4 MaxTime=04:00:00 DefaultTime=01:00:00 OverSubscribe=FORCE:16 "
            "State=UP") in lines and "DefMemPerCPU=500" in lines
    nodes = [line for line in lines if line.startswith("NodeName=")]
    assert len(nodes) == 4
    assert all(f"Port={LOOP.slurmd_port(n.split()[0][9:])}" in n for n in nodes)
    assert "Gres=gpu:2" in nodes[3] and all("Gres" not in n for n in nodes[:3])
    assert re.search(r"Features=\S*gpu", nodes[3])


def test_slurm_conf_points_at_the_head_node_address():
    assert "SlurmctldHost=head(127.0.0.1)" in render.slurm_conf(LOOP)
    assert f"SlurmctldHost=head({ISO.head.address})" in render.slurm_conf(ISO)
    assert f"NodeAddr={ISO.node('c2').address} " in render.slurm_conf(ISO)


def test_gres_conf_declares_the_gpus():
    assert conf_lines(render.gres_conf(LOOP)) == ["NodeName=c4 Name=gpu File=/dev/tty[0-1]"]


def test_slurmdbd_conf_carries_the_db_password_and_port():
    text = render.slurmdbd_conf(ISO, "s3cret")
    assert "StoragePass=s3cret" in text and f"DbdPort={ISO.slurmdbd_port}" in text


def test_sshd_config_accepts_only_ca_certificates():
    lines = conf_lines(render.sshd_config(LOOP, "login2"))
    for required in ("AuthorizedKeysFile none", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                     "PermitRootLogin no", f"Port {LOOP.ssh_port('login2')}"):
        assert required in lines
    assert any(line.startswith("TrustedUserCAKeys ") for line in lines)


def test_the_login_nodes_sessions_are_in_the_clusters_time_zone_not_the_hubs():
    assert "SetEnv TZ=Europe/Berlin" in conf_lines(render.sshd_config(LOOP, "login1"))


def test_only_login1_raises_the_connection_limits():
    assert "MaxStartups 200:30:400" in render.sshd_config(LOOP, "login1")
    assert "MaxStartups" not in "\n".join(conf_lines(render.sshd_config(LOOP, "login2")))
    assert "MaxSessions" not in "\n".join(conf_lines(render.sshd_config(LOOP, "login2")))


def test_isolated_sshd_listens_on_both_sides():
    lines = conf_lines(render.sshd_config(ISO, "login1"))
    node = ISO.node("login1")
    assert f"ListenAddress {node.address}" in lines and f"ListenAddress {node.public_address}" in lines


def test_known_hosts_names_each_login_node_every_way():
    keys = {"login1": "ssh-ed25519 AAAA1 c1\n", "login2": "ssh-ed25519 AAAA2 c2", "ge-login": "ssh-ed25519 AAAA3 g"}
    loop = render.known_hosts(LOOP, keys).splitlines()
    assert loop[0] == f"[127.0.0.1]:{LOOP.ssh_port('login1')},[login1]:{LOOP.ssh_port('login1')} ssh-ed25519 AAAA1 c1"
    assert len(loop) == 2  # the Slurm cluster's login nodes: the Grid Engine cluster has a file of its own
    iso = render.known_hosts(ISO, keys).splitlines()
    assert iso[1] == "10.199.6.12,10.199.7.12,login2 ssh-ed25519 AAAA2 c2"
    # The Grid Engine login node has an address of its own in both modes (port 22).
    (ge_loop,) = render.known_hosts(LOOP, keys, [LOOP.ge_login]).splitlines()
    assert ge_loop == f"{LOOP.ge_subnet}.11,ge-login ssh-ed25519 AAAA3 g"
    (ge_iso,) = render.known_hosts(ISO, keys, [ISO.ge_login]).splitlines()
    assert ge_iso == f"{ISO.ge_subnet}.11,10.199.6.13,ge-login ssh-ed25519 AAAA3 g"


def test_hosts_file_names_every_node():
    lines = conf_lines(render.hosts(ISO))
    assert f"{ISO.node('c3').address}\tc3" in lines and "127.0.0.1\tlocalhost" in lines
    assert f"{ISO.ge_subnet}.2\tge-head" in lines and f"{ISO.ge_subnet}.21\tge-c1" in lines


def test_hub_config_is_stable_and_runs_no_user_code_on_the_hub():
    first = hub_config(LOOP)
    assert first == hub_config(LOOP)
    assert "c.Authenticator.allowed_users = set(['alice', 'bob'])" in first
    assert "c.JupyterHub.spawner_class = 'hpchub'" in first
    assert "c.JupyterHub.cleanup_servers = False" in first
    assert "c.JupyterHub.authenticator_class = 'hpchub-pam'" in first
    assert "LocalProcessSpawner" not in first
    compile(first, "jupyterhub_config.py", "exec")
