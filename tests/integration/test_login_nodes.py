"""Login nodes accept only certificates from the site's CA, for the certificate's own
principal; clients refuse unknown host keys."""

from __future__ import annotations

import asyncio
import subprocess

import asyncssh
import pytest

from hpchub.site.slurm import cluster_files_readable_by_others
from hpchub.site.system import demo_passwords

from ..site_handle import check

LOGIN_NODES = ["login1", "login2"]


@pytest.mark.parametrize("node", LOGIN_NODES)
def test_alice_with_a_ca_certificate_logs_in(site, node):
    out = check(site.ssh("alice", ["sh", "-c", "id -un; hostname"], node=node)).stdout.split()
    assert out == ["alice", node]


@pytest.mark.parametrize("node", LOGIN_NODES)
def test_alices_certificate_is_refused_as_bob(site, node):
    proc = site.ssh("bob", ["id", "-un"], node=node, cred=site.user_credential("alice"))
    assert proc.returncode == 255 and "Permission denied" in proc.stderr


def test_plain_key_is_refused(site):
    proc = site.ssh("alice", ["id", "-un"], cred=site.credential(None))
    assert proc.returncode == 255 and "Permission denied (publickey)" in proc.stderr


def test_certificate_from_another_ca_is_refused(site):
    other_ca = site.tmp / "other_ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_ca)], check=True)
    proc = site.ssh("alice", ["id", "-un"], cred=site.credential("alice", ca_key=other_ca))
    assert proc.returncode == 255 and "Permission denied" in proc.stderr


def test_expired_certificate_is_refused(site):
    proc = site.ssh("alice", ["id", "-un"], cred=site.credential("alice", validity="-2h:-1h"))
    assert proc.returncode == 255 and "Permission denied" in proc.stderr


def test_password_is_refused(site):
    address, port = site.login_address("login1")
    password = demo_passwords()["alice"]

    async def attempt():
        async with asyncssh.connect(address, port, username="alice", password=password, client_keys=None,
                                    known_hosts=str(site.layout.known_hosts), agent_path=None,
                                    preferred_auth="password,keyboard-interactive", connect_timeout=10):
            pass

    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(attempt())


def test_openssh_client_refuses_an_unknown_host_key(site):
    wrong = site.tmp / "wrong_known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(site.tmp / "impostor")], check=True)
    impostor = (site.tmp / "impostor.pub").read_text().split()[:2]
    address, port = site.login_address("login1")
    wrong.write_text(f"[{address}]:{port},{address} {' '.join(impostor)}\n")
    proc = site.ssh("alice", ["id", "-un"], known_hosts=wrong)
    assert proc.returncode == 255 and "Host key verification failed" in proc.stderr
    empty = site.tmp / "empty_known_hosts"
    empty.write_text("")
    proc = site.ssh("alice", ["id", "-un"], known_hosts=empty)
    assert proc.returncode == 255 and "Host key verification failed" in proc.stderr


def test_asyncssh_verifies_the_host_key_against_the_sites_known_hosts(site):
    address, port = site.login_address("login2")
    cred = site.user_credential("alice")
    keys = [(asyncssh.read_private_key(str(cred.key)), asyncssh.read_certificate(str(cred.cert)))]

    async def run(known_hosts):
        async with asyncssh.connect(address, port, username="alice", client_keys=keys, known_hosts=known_hosts,
                                    agent_path=None, connect_timeout=10) as conn:
            return (await conn.run("hostname", check=True)).stdout.strip()

    assert asyncio.run(run(str(site.layout.known_hosts))) == "login2"
    other = site.tmp / "other_known_hosts"
    other.write_text((site.layout.known_hosts.read_text().splitlines()[0]) + "\n")  # login1's key only
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        asyncio.run(run(str(other)))


def test_login2_keeps_debians_connection_limits(site):
    def effective(node):
        conf = site.layout.ssh_dir / node / "sshd_config"
        out = check(subprocess.run(["sshd", "-T", "-f", str(conf)], capture_output=True, text=True)).stdout
        return {k: v for k, _, v in (line.partition(" ") for line in out.splitlines()) if k in ("maxstartups", "maxsessions")}

    assert effective("login2") == {"maxstartups": "10:30:100", "maxsessions": "10"}
    assert effective("login1") == {"maxstartups": "200:30:400", "maxsessions": "200"}


def test_ca_private_key_and_cluster_secrets_are_root_only(site):
    st = site.layout.user_ca_key.stat()
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600
    assert cluster_files_readable_by_others(site.layout) == []
    assert site.layout.known_hosts.stat().st_mode & 0o004  # public, for hubs and clients
