"""hpchub check's pure parts: the key checks, the settings it reads, the report."""

import secrets

from traitlets.config import Config

from hpchub.check import FAIL, OK, SKIP, Result, SiteSettings, check_ca_key, check_crypt_key, render


def test_crypt_key_missing_malformed_and_valid():
    assert check_crypt_key(None).status == FAIL
    bad = check_crypt_key("not-a-key")
    assert bad.status == FAIL and "not valid" in bad.detail and bad.fix
    assert check_crypt_key(secrets.token_hex(32)).status == OK
    two = check_crypt_key(f"{secrets.token_hex(32)};{secrets.token_hex(32)}")
    assert two.status == OK and "2 valid" in two.detail


def test_ca_key_must_be_private_to_the_hubs_user(tmp_path):
    key = tmp_path / "ca"
    key.write_text("key")
    key.chmod(0o600)
    assert check_ca_key(str(key)).status == OK
    key.chmod(0o640)
    open_key = check_ca_key(str(key))
    assert open_key.status == FAIL and "mode 0640" in open_key.detail and f"chmod 600 {key}" in open_key.fix
    missing = check_ca_key(str(tmp_path / "nothing"))
    assert missing.status == FAIL and "cannot be read" in missing.detail
    assert check_ca_key(str(tmp_path)).status == FAIL  # a directory


def test_settings_come_from_the_hubs_configuration():
    config = Config()
    config.RemoteSpawner.login_nodes = [{"name": "l1", "address": "l1.example.org"}]
    config.RemoteSpawner.known_hosts = "/etc/hpchub/known_hosts"
    config.BatchSpawner.partition = "interactive"
    config.JupyterHub.hub_bind_url = "http://10.0.0.5:8081"
    config.CredentialIssuingAuthenticator.ssh_ca_key = "/etc/hpchub/ca"
    settings = SiteSettings.from_config(config)
    (cluster,) = settings.clusters  # no HPCSpawner.clusters: the spawner's own settings only
    assert cluster.login_nodes[0]["name"] == "l1" and settings.partition == "interactive"
    assert cluster.scheduler == "slurm" and settings.clusters_error == ""
    assert settings.hub_api_url == "http://10.0.0.5:8081/hub/api/" and settings.hub_connect_url == ""
    assert settings.ssh_ca_key == "/etc/hpchub/ca" and settings.credential_issuer == "local-ca"
    config.Spawner.hub_connect_url = "http://hub.cluster:8081"
    assert SiteSettings.from_config(config).hub_connect_url == "http://hub.cluster:8081"
    assert SiteSettings.from_config(Config()).hub_api_url == "http://127.0.0.1:8081/hub/api/"


def test_the_report_shows_fixes_for_failures_only_and_counts():
    text = render([Result(OK, "a", "fine", "never shown"), Result(FAIL, "b", "broken", "mend it"),
                   Result(SKIP, "c", "not run")])
    assert text.splitlines() == ["  ok    a: fine", "  FAIL  b: broken", "        fix: mend it", "  skip  c: not run",
                                 "3 checks, 1 failed, 1 skipped"]


def test_every_cluster_is_checked_and_a_broken_clusters_setting_is_a_finding():
    config = Config()
    config.HPCSpawner.login_nodes = [{"name": "l1", "address": "l1.example.org"}]
    config.HPCSpawner.clusters = {"ge": {"title": "Grid Engine", "scheduler": "sge", "known_hosts": "/etc/ge_hosts",
                                         "scheduler_options": {"parallel_environment": "mpi"},
                                         "login_nodes": [{"name": "g1", "address": "g1.example.org"}]}}
    default, ge = SiteSettings.from_config(config).clusters
    assert default.login_nodes[0]["name"] == "l1" and "known_hosts" not in default.login_nodes[0]
    assert (ge.title, ge.scheduler, ge.scheduler_options) == ("Grid Engine", "sge", {"parallel_environment": "mpi"})
    assert ge.login_nodes[0]["known_hosts"] == "/etc/ge_hosts"  # its own host keys, not the default file
    config.HPCSpawner.clusters = {"ge": {"scheduler": "pbs", "login_nodes": [{"name": "g1"}]}}
    settings = SiteSettings.from_config(config)
    assert [c.login_nodes[0]["name"] for c in settings.clusters] == ["l1"]
    assert "scheduler 'pbs' is not one of" in settings.clusters_error
