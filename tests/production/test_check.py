"""`hpchub check` against the real site, run as the hub's user where the hub runs: all passes on
a working site (both network modes: directly, and through a login node's forward), and each
broken setting is named with its fix, without a traceback."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from hpchub.site.hub import HUB_ENV
from hpchub.site.layout import HUB_OS_USER

from ..integration.ca_service_fixture import start_ca_service


def run_check(site, config: Path, crypt_key: bool = True) -> subprocess.CompletedProcess:
    hub = site.site.hub
    env = {"PATH": "/usr/bin:/bin", "HOME": str(site.layout.hub_dir)}
    if crypt_key:
        env["JUPYTERHUB_CRYPT_KEY"] = (site.layout.hub_dir / "crypt_key").read_text().strip()
    argv = hub.as_hub_user([str(HUB_ENV / "bin" / "hpchub"), "check", "-f", str(config), "--job-timeout", "60"])
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=site.layout.hub_dir)


@pytest.fixture
def scratch():
    """A directory the hub's user can read, for configurations and keys made by the test."""
    path = Path(tempfile.mkdtemp(prefix="hpchub-check-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def variant(scratch: Path, site, lines: str) -> Path:
    config = scratch / "jupyterhub_config.py"
    config.write_text(f"load_subconfig({str(site.layout.hub_dir / 'jupyterhub_config.py')!r})  # noqa\n"
                      f"c = get_config()  # noqa\n{lines}")
    return config


def test_a_working_site_passes_every_check(site):
    proc = run_check(site, site.layout.hub_dir / "jupyterhub_config.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # Both clusters of the demo, each named: its login nodes, its scheduler, its compute nodes' way to the hub.
    for what in ("auth_state key", "SSH CA key", "certificate for hpchub: issued by local-ca",
                 # the Grid Engine cluster trusts a CA of its own: its certificate comes from that issuer
                 "certificate for hpchub (ge-ca): issued by extra issuer 'ge-ca'",
                 "Slurm cluster: login node login1", "Slurm cluster: command on login1",
                 "Slurm cluster: login node login2", "Slurm cluster: command on login2",
                 "Slurm cluster: test job (slurm, ", "Slurm cluster: hub API from a compute node",
                 "Grid Engine cluster: login node ge-login", "Grid Engine cluster: command on ge-login",
                 "Grid Engine cluster: test job (sge, ", "Grid Engine cluster: hub API from a compute node",
                 # the demo's container targets: their image runs through Charliecloud
                 "Slurm cluster: container image /opt/hpchub/images/bookworm-jupyter (charliecloud, on login1)"):
        assert any(line.startswith(f"  ok    {what}") for line in lines), (what, proc.stdout)
    # the demo hub config sets no hub_connect_url
    assert "(through a forward on login1)" in proc.stdout and "(through a forward on ge-login)" in proc.stdout
    assert lines[-1] == "15 checks, 0 failed, 0 skipped"
    # Nothing left behind: no test job, no probe output.
    queue = site.ssh("hpchub", ["squeue", "--noheader", "--user", "hpchub"])
    assert queue.returncode == 0 and queue.stdout.strip() == ""
    assert "hpchub-check" not in site.ssh("hpchub", ["ls", "-a"]).stdout
    ge_queue = site.ssh("hpchub", ["qstat", "-u", "hpchub"], node="ge-login")
    assert ge_queue.returncode == 0 and ge_queue.stdout.strip() == ""
    assert "hpchub-check" not in site.ssh("hpchub", ["ls", "-a"], node="ge-login").stdout


def test_a_missing_crypt_key_and_an_open_ca_key_are_named_with_their_fix(loopback_site, scratch):
    site = loopback_site
    open_key = scratch / "user_ca"
    shutil.copy(site.layout.hub_ca_key, open_key)
    shutil.chown(open_key, HUB_OS_USER, HUB_OS_USER)
    open_key.chmod(0o644)
    config = variant(scratch, site, f"c.CredentialIssuingAuthenticator.ssh_ca_key = {str(open_key)!r}\n")
    proc = run_check(site, config, crypt_key=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "  FAIL  auth_state key: JUPYTERHUB_CRYPT_KEY is not set" in out
    assert "fix: export JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32)" in out
    assert f"  FAIL  SSH CA key {open_key}: is open to others (mode 0644)" in out
    assert f"fix: chown {HUB_OS_USER} {open_key} && chmod 600 {open_key}" in out
    assert "Traceback" not in out + proc.stderr


def test_a_changed_host_key_is_refused_and_named_with_its_fix(loopback_site, scratch):
    site = loopback_site
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(scratch / "other")], check=True)
    other = (scratch / "other.pub").read_text().split()
    known = scratch / "known_hosts"
    known.write_text("".join(f"[{address}]:{port} {other[0]} {other[1]}\n"
                             for address, port in (site.login_address("login1"), site.login_address("login2"))))
    config = variant(scratch, site, f"c.HPCSpawner.known_hosts = {str(known)!r}\n")
    proc = run_check(site, config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    for node in ("login1", "login2"):
        assert f"  FAIL  Slurm cluster: login node {node}" in out and "host key verification failed" in out
    assert "fix: compare the node's host key" in out
    assert "  skip  Slurm cluster: test job: no login node could be used" in out
    # The Grid Engine cluster's login node has a known_hosts file of its own: still checked, and fine.
    assert "  ok    Grid Engine cluster: login node ge-login" in out
    assert "Traceback" not in out + proc.stderr


def test_with_the_ca_service_as_issuer_the_check_passes_and_a_dead_service_is_named(loopback_site, scratch):
    site = loopback_site
    service = start_ca_service(site, scratch / "ca-service", site.layout.port_base + 97, f"{site.name}-hub")
    try:
        token_file = scratch / "ca-token"
        token_file.write_text(service.token)
        shutil.chown(token_file, HUB_OS_USER, HUB_OS_USER)
        token_file.chmod(0o600)
        issuer = ("c.CredentialIssuingAuthenticator.credential_issuer = 'ca-service'\n"
                  f"c.CredentialIssuingAuthenticator.ca_service_token_file = {str(token_file)!r}\n"
                  f"c.CredentialIssuingAuthenticator.ca_service_ca_bundle = {str(service.ca_bundle)!r}\n")
        proc = run_check(site, variant(scratch, site, issuer + f"c.CredentialIssuingAuthenticator.ca_service_url = "
                                                               f"{service.url!r}\n"))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "  ok    certificate for hpchub: issued by ca-service" in proc.stdout
        assert "SSH CA key" not in proc.stdout  # the key is the service's, not on the hub host
        # 4 of them on each cluster; the Grid Engine cluster's certificate from its own (local) CA
        assert "  ok    certificate for hpchub (ge-ca): issued by extra issuer 'ge-ca'" in proc.stdout
        assert proc.stdout.splitlines()[-1] == "14 checks, 0 failed, 0 skipped"
    finally:
        service.stop()
    proc = run_check(site, variant(scratch, site, issuer + f"c.CredentialIssuingAuthenticator.ca_service_url = "
                                                           f"{service.url!r}\n"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "  FAIL  certificate for hpchub: no certificate could be issued" in proc.stdout
    assert "fix: check CredentialIssuingAuthenticator's issuer settings" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_cluster_with_a_service_account_of_its_own_is_checked_as_that_account(loopback_site, scratch):
    site = loopback_site
    # alice stands in for a Grid Engine service account: the demo's CA signs any principal.
    # (and a target whose image is missing: the one finding that fails, in ch-run's words)
    missing = {"name": "missing", "kind": "login", "container": {"runtime": "charliecloud", "image": "/opt/none"}}
    config = variant(scratch, site, "c.HPCSpawner.clusters = {name: dict(cluster, service_account='alice') "
                                    "for name, cluster in c.HPCSpawner.clusters.items()}\n"
                                    f"c.HPCSpawner.targets.append({missing!r})\n")
    proc = run_check(site, config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    failed = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert len(failed) == 1 and failed[0].startswith("  FAIL  Slurm cluster: container image /opt/none (charliecloud"), out
    assert "can't stat: /opt/none: No such file or directory" in failed[0]
    assert "fix: the image must be readable on every node and ch-run on the nodes' PATH" in out
    assert "  ok    certificate for hpchub: issued by local-ca" in out
    assert "  ok    certificate for alice (ge-ca): issued by extra issuer 'ge-ca'" in out
    assert "  ok    Slurm cluster: command on login1: `id -un` ran as hpchub" in out
    assert "  ok    Grid Engine cluster: command on ge-login: `id -un` ran as alice" in out
    assert "  ok    Grid Engine cluster: hub API from a compute node" in out
    assert out.splitlines()[-1] == "16 checks, 1 failed, 0 skipped"  # (two images: the demo's, the missing one)
