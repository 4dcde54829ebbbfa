"""Clusters that trust different SSH user CAs: the authenticator's extra issuers (pure: local
CAs in temporary directories, no hub)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from hpchub.auth import PAMCredentialAuthenticator
from hpchub.credentials import CredentialSet
from hpchub.credentials.errors import ConfigurationError
from hpchub.credentials.issuers import extra_issuer_settings
from hpchub.credentials.ssh_ca import certificate_facts
from hpchub.spawners.cluster_config import ClusterConfig, usable_certificate

from .test_auth import FakeUser, Issuing


def make_ca(path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path)


def public_half(key: str) -> str:
    with open(f"{key}.pub") as f:
        return f.read().split()[1]


@pytest.fixture
def cas(tmp_path):
    return make_ca(tmp_path / "main_ca"), make_ca(tmp_path / "ge_ca")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket closes


async def test_one_login_gets_a_certificate_from_each_issuer_signed_by_its_own_ca(cas):
    main, ge = cas
    auth = Issuing(ssh_ca_key=main, hub_name="testhub", extra_issuers={"ge-ca": {"ssh_ca_key": ge}})
    result = await auth.authenticate(None, {"username": "alice", "password": "pw"})
    creds = CredentialSet.from_auth_state(result["auth_state"])
    assert creds.ssh_issuers() == ["", "ge-ca"]
    first, second = certificate_facts(creds.ssh.certificate), certificate_facts(creds.ssh_from("ge-ca").certificate)
    assert first["signing_key"] == public_half(main) and second["signing_key"] == public_half(ge)
    assert first["principals"] == second["principals"] == ["alice"]
    assert creds.ssh.private_key != creds.ssh_from("ge-ca").private_key  # a key pair each
    # Its ledger is its own (default: beside its key).
    ledger = [json.loads(line) for line in Path(f"{ge}.issued.jsonl").read_text().splitlines()]
    assert [(entry["principal"], entry["serial"]) for entry in ledger] == [("alice", creds.ssh_from("ge-ca").serial)]


async def test_an_extra_issuer_that_cannot_be_reached_does_not_stop_the_login(cas, tmp_path):
    main, _ = cas
    token = tmp_path / "token"
    token.write_text("secret\n")
    auth = Issuing(ssh_ca_key=main, extra_issuers={"far": {
        "credential_issuer": "ca-service", "ca_service_url": f"https://127.0.0.1:{closed_port()}",
        "ca_service_token_file": str(token)}})
    result = await auth.authenticate(None, {"username": "alice", "password": "pw"})
    creds = CredentialSet.from_auth_state(result["auth_state"])
    assert creds.ssh.principal == "alice" and creds.ssh_from("far") is None


async def test_refresh_renews_each_certificate_that_runs_low_and_keeps_one_of_an_issuer_gone(cas):
    main, ge = cas
    auth = Issuing(ssh_ca_key=main, certificate_validity=7200, renew_when_remaining=600,
                   extra_issuers={"ge-ca": {"ssh_ca_key": ge}})
    result = await auth.authenticate(None, {"username": "alice", "password": "pw"})
    state = result["auth_state"]
    creds = CredentialSet.from_auth_state(state)
    gone = creds.credentials["ssh/ge-ca"]
    state = CredentialSet(creds.session_started, {**creds.credentials, "ssh/retired": gone}).to_auth_state(state)
    assert await auth.refresh_user(FakeUser("alice", state)) is True
    auth.renew_when_remaining = 7200 + 60  # now every certificate counts as running low
    renewed = CredentialSet.from_auth_state((await auth.refresh_user(FakeUser("alice", state)))["auth_state"])
    assert renewed.ssh.serial != creds.ssh.serial
    assert renewed.ssh_from("ge-ca").serial != creds.ssh_from("ge-ca").serial
    assert certificate_facts(renewed.ssh_from("ge-ca").certificate)["signing_key"] == public_half(ge)
    assert renewed.ssh_from("retired") == gone  # no issuer to renew it: it runs out


async def test_an_extra_issuers_session_limit_asks_for_a_new_login(cas):
    main, ge = cas
    auth = Issuing(ssh_ca_key=main, max_session_length=60, extra_issuers={"ge-ca": {"ssh_ca_key": ge}})
    result = await auth.authenticate(None, {"username": "alice", "password": "pw"})
    creds = CredentialSet.from_auth_state(result["auth_state"])
    # Only the extra certificate runs low: its renewal meets the session's limit.
    low = creds.credentials["ssh/ge-ca"].__class__(**{**creds.credentials["ssh/ge-ca"].to_dict(),
                                                      "valid_before": int(time.time()) + 5})
    aged = CredentialSet(int(time.time()) - 120, {**creds.credentials, "ssh/ge-ca": low})
    assert await auth.refresh_user(FakeUser("alice", aged.to_auth_state())) is False


async def test_service_account_certificates_come_from_the_issuer_a_cluster_names(cas):
    main, ge = cas
    auth = Issuing(ssh_ca_key=main, extra_issuers={"ge-ca": {"ssh_ca_key": ge}})
    from_ge = await auth.service_account_credential("ge-hub", "ge-ca")
    from_main = await auth.service_account_credential("ge-hub")
    assert certificate_facts(from_ge.certificate)["signing_key"] == public_half(ge)
    assert certificate_facts(from_main.certificate)["signing_key"] == public_half(main)
    assert await auth.service_account_credential("ge-hub", "ge-ca") is from_ge  # cached per issuer
    with pytest.raises(ConfigurationError, match="no issuer named 'nope'"):
        await auth.service_account_credential("ge-hub", "nope")


@pytest.mark.parametrize("extra, message", [
    ({"GE": {"ssh_ca_key": "/k"}}, "lower-case letters"),
    ({"ge": "/k"}, "must be a dict"),
    ({"ge": {"ssh_ca_key": "/k", "ca_service_token": "t"}}, "unknown keys \\['ca_service_token'\\]"),
    ({"ge": {"ssh_ca_key": 5}}, "ssh_ca_key must be strings"),
    ({"ge": {"credential_issuer": "magic"}}, "'local-ca' or 'ca-service'"),
    ({"ge": {"credential_issuer": "ca-service", "ca_service_url": "https://ca"}}, "ca_service_token_file"),
])
def test_bad_extra_issuer_settings_name_the_entry_and_the_key(extra, message):
    with pytest.raises(ConfigurationError, match=message) as refused:
        extra_issuer_settings(extra)
    assert "extra_issuers[" in str(refused.value)


def test_a_misconfigured_extra_issuer_stops_the_hub_at_start_up(cas, tmp_path):
    main, _ = cas
    with pytest.raises(ConfigurationError, match=r"extra_issuers\['ge'\].ssh_ca_key"):
        Issuing(ssh_ca_key=main, extra_issuers={"ge": {}})
    with pytest.raises(ConfigurationError, match="does not exist"):
        Issuing(ssh_ca_key=main, extra_issuers={"ge": {"ssh_ca_key": str(tmp_path / "missing")}})


def test_a_one_time_code_checked_twice_at_login_is_refused_at_start_up(cas, tmp_path):
    main, ge = cas
    token = tmp_path / "token"
    token.write_text("secret\n")
    service = {"credential_issuer": "ca-service", "ca_service_url": "https://ca.example", "ca_service_token_file":
               str(token)}
    # The hub's PAM check and a CA service's check would each need the code.
    with pytest.raises(ConfigurationError, match="checked 2 times") as refused:
        PAMCredentialAuthenticator(ssh_ca_key=main, request_otp=True, extra_issuers={"far": service})
    assert "the hub's authenticator" in str(refused.value) and "extra issuer 'far'" in str(refused.value)
    # Without a code, or with local CAs only (which check nobody), it starts.
    PAMCredentialAuthenticator(ssh_ca_key=main, extra_issuers={"far": service})
    PAMCredentialAuthenticator(ssh_ca_key=main, request_otp=True, extra_issuers={"ge": {"ssh_ca_key": ge}})


def _credential(valid_for: int):
    from hpchub.credentials import SSHCredential

    now = int(time.time())
    return SSHCredential("k", "c", "alice", 1, "id", now - 10, now + valid_for, "local-ca")


@pytest.mark.parametrize("slots, issuer, expected", [
    ({"ssh": 3600}, "", None),
    ({"ssh": -5}, "", "your login credentials are missing or expired"),
    ({"ssh": 3600, "ssh/ge-ca": 3600}, "ge-ca", None),
    ({"ssh": 3600}, "ge-ca", "you have no certificate for the Grid Engine cluster"),
    ({"ssh": 3600, "ssh/ge-ca": -5}, "ge-ca", "your certificate for the Grid Engine cluster has expired"),
])
def test_a_server_uses_the_certificate_of_its_clusters_issuer_or_says_which_is_missing(slots, issuer, expected):
    creds = CredentialSet(1, {slot: _credential(left) for slot, left in slots.items()})
    config = ClusterConfig("ge", "Grid Engine cluster", "sge", (), 30.0, issuer=issuer)
    credential, problem = usable_certificate(creds, config)
    if expected is None:
        assert credential is creds.credentials["ssh/ge-ca" if issuer else "ssh"] and problem == ""
    else:
        assert credential is None and problem.startswith(expected)


def test_an_older_hub_reads_the_main_certificate_and_drops_the_others():
    state = CredentialSet(1, {"ssh": _credential(60), "ssh/ge-ca": _credential(60)}).to_auth_state()
    assert set(state["hpchub_credentials"]["credentials"]) == {"ssh", "ssh/ge-ca"}
    state["hpchub_credentials"]["credentials"]["future-kind"] = {"x": 1}
    read = CredentialSet.from_auth_state(state)
    assert set(read.credentials) == {"ssh", "ssh/ge-ca"} and read.ssh_from("ge-ca").principal == "alice"
