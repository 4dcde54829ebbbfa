from __future__ import annotations

import json
import os
import subprocess
import time

import asyncssh
import pytest

from hpchub.credentials import CREDENTIALS_KEY, CredentialError, CredentialSet, SSHCredential
from hpchub.credentials.errors import ConfigurationError, IssuerUnavailable, LoginRequired
from hpchub.credentials.issuers import LocalCAIssuer, LoginProof
from hpchub.credentials.krl import RevocationListUnreadable, is_revoked, revocation_spec, revoke, serials_of_user
from hpchub.credentials.ledger import Ledger, read_entries
from hpchub.credentials.ssh_ca import (CertificatePolicy, SSHCertificateAuthority, certificate_facts,
                                       check_cluster_username, load_private_key)


@pytest.fixture
def ca_key(tmp_path):
    path = tmp_path / "user_ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture
def ca(ca_key, tmp_path):
    return SSHCertificateAuthority(ca_key, tmp_path / "issued.jsonl")


def test_certificate_has_exactly_one_principal_bounded_validity_and_a_telling_key_id(ca):
    policy = CertificatePolicy(validity=600, source_addresses=("10.0.0.1/32",), permit_pty=False,
                               force_command="/usr/bin/true")
    cred = ca.issue("alice", "hub1", policy)
    facts = certificate_facts(cred.certificate)
    assert facts["principals"] == ["alice"]
    assert facts["key_id"] == f"hpchub hub=hub1 user=alice serial={cred.serial}" == cred.key_id
    assert facts["serial"] == cred.serial
    assert facts["valid_before"] - time.time() == pytest.approx(600, abs=5)
    assert facts["valid_after"] < time.time()
    assert [str(a) for a in facts["options"]["source-address"]] == ["10.0.0.1/32"]
    assert facts["options"]["force-command"] == "/usr/bin/true"
    assert facts["signing_key"] == ca.public_key.split()[1]
    # The certificate belongs to the key that comes with it, and the key is ed25519.
    key = asyncssh.import_private_key(cred.private_key)
    assert key.algorithm == b"ssh-ed25519"
    assert facts["key"].public_data == key.public_data


def test_ssh_keygen_reads_the_certificate(ca, tmp_path):
    cred = ca.issue("bob", "hub1", CertificatePolicy(validity=60))
    cert = tmp_path / "bob-cert.pub"
    cert.write_text(cred.certificate + "\n")
    listing = subprocess.run(["ssh-keygen", "-L", "-f", str(cert)], capture_output=True, text=True, check=True).stdout
    assert "Type: ssh-ed25519-cert-v01@openssh.com user certificate" in listing
    assert "Principals: \n                bob\n" in listing


def test_each_issue_is_a_fresh_key_and_serial_and_is_recorded(ca, tmp_path):
    first = ca.issue("alice", "h", CertificatePolicy(validity=60))
    second = ca.issue("alice", "h", CertificatePolicy(validity=60))
    assert first.private_key != second.private_key and first.serial != second.serial
    ledger = read_entries(tmp_path / "issued.jsonl")
    assert [e["serial"] for e in ledger] == [first.serial, second.serial]
    assert (tmp_path / "issued.jsonl").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("name", ["Alice", "al ice", "", "-x", "a" * 33, "root;id", "alice\n"])
def test_invalid_cluster_usernames_are_refused(ca, name):
    with pytest.raises(CredentialError, match="not a valid username on the cluster"):
        ca.issue(name, "h", CertificatePolicy())
    with pytest.raises(CredentialError):
        check_cluster_username(name)


def test_ca_key_must_exist_and_be_private(tmp_path, ca_key):
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_private_key(tmp_path / "nope")
    ca_key.chmod(0o640)
    with pytest.raises(ConfigurationError, match=r"readable or writable by group or others \(mode 0640\)"):
        SSHCertificateAuthority(ca_key)
    ca_key.chmod(0o600)
    (tmp_path / "garbage").write_text("not a key")
    (tmp_path / "garbage").chmod(0o600)
    with pytest.raises(ConfigurationError, match="not a usable private key"):
        load_private_key(tmp_path / "garbage")
    with pytest.raises(ConfigurationError, match="not a regular file"):
        load_private_key(tmp_path)


def test_credential_set_round_trips_through_auth_state_and_keeps_other_keys(ca):
    cred = ca.issue("alice", "h", CertificatePolicy(validity=60))
    auth_state = CredentialSet(123).with_credential(cred).to_auth_state({"access_token": "x"})
    assert auth_state["access_token"] == "x" and auth_state[CREDENTIALS_KEY]["version"] == 1
    back = CredentialSet.from_auth_state(auth_state)
    assert back.session_started == 123 and back.ssh == cred
    assert CredentialSet.from_auth_state({"access_token": "x"}) is None
    assert CredentialSet.from_auth_state(None) is None


def test_unknown_version_or_malformed_credentials_ask_for_a_new_login():
    with pytest.raises(CredentialError, match="please log in again"):
        CredentialSet.from_auth_state({CREDENTIALS_KEY: {"version": 99, "session_started": 1, "credentials": {}}})
    with pytest.raises(CredentialError, match="please log in again"):
        CredentialSet.from_auth_state({CREDENTIALS_KEY: {"version": 1, "session_started": 1,
                                                         "credentials": {"ssh": {"principal": "a"}}}})


def test_unknown_kinds_are_kept_out_not_fatal():
    state = {CREDENTIALS_KEY: {"version": 1, "session_started": 1, "credentials": {"future-kind": {}}}}
    assert CredentialSet.from_auth_state(state).credentials == {}


def test_the_private_key_never_shows_in_repr(ca):
    cred = ca.issue("alice", "h", CertificatePolicy(validity=60))
    assert "PRIVATE" not in repr(cred) and cred.private_key not in repr(CredentialSet(1).with_credential(cred))


def test_expiry_arithmetic():
    cred = SSHCredential("k", "c", "alice", 1, "id", 0, 1000, "local-ca")
    assert cred.remaining(now=400) == 600 and not cred.expired(now=999) and cred.expired(now=1000)


async def test_local_issuer_renews_until_the_session_limit(ca):
    issuer = LocalCAIssuer(ca, CertificatePolicy(validity=60), "h", max_session=3600)
    now = int(time.time())
    first = await issuer.issue("alice", LoginProof(), now)
    renewed = await issuer.renew("alice", first, now - 60)
    assert renewed.serial != first.serial and renewed.principal == "alice"
    with pytest.raises(LoginRequired, match="maximum length"):
        await issuer.renew("alice", first, now - 7200)
    service = await issuer.issue_service_account("hpchub")
    assert certificate_facts(service.certificate)["principals"] == ["hpchub"]


def test_revocation_spec_and_krl(ca, ca_key, tmp_path):
    assert revocation_spec([5, 7], ["id one"]) == "serial: 5\nserial: 7\nid: id one\n"
    with pytest.raises(ValueError):
        revocation_spec([], ["bad\nid"])
    alice = ca.issue("alice", "h", CertificatePolicy(validity=60))
    bob = ca.issue("bob", "h", CertificatePolicy(validity=60))
    assert serials_of_user(tmp_path / "issued.jsonl", "alice") == [alice.serial]
    krl = tmp_path / "revoked.krl"
    assert revoke(krl, f"{ca_key}.pub", serials=[alice.serial]) == 1
    for who, cred in (("alice", alice), ("bob", bob)):
        (tmp_path / f"{who}-cert.pub").write_text(cred.certificate + "\n")
    assert is_revoked(krl, tmp_path / "alice-cert.pub")
    assert not is_revoked(krl, tmp_path / "bob-cert.pub")
    assert os.stat(krl).st_mode & 0o777 == 0o644


async def test_the_local_ca_does_not_renew_a_revoked_certificate(ca, ca_key, tmp_path):
    krl = tmp_path / "revoked_keys"
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(krl)], check=True, timeout=30)  # empty, as the how-to says
    issuer = LocalCAIssuer(ca, CertificatePolicy(validity=600), "hub1", revoked_keys=krl)
    now = int(time.time())
    alice, bob = await issuer.issue("alice", LoginProof(), now), await issuer.issue("bob", LoginProof(), now)
    revoke(krl, f"{ca_key}.pub", serials=serials_of_user(tmp_path / "issued.jsonl", "alice"))
    with pytest.raises(LoginRequired, match="revoked"):
        await issuer.renew("alice", alice, now)
    assert (await issuer.renew("bob", bob, now)).principal == "bob"
    # A fresh login is a new authentication: it gets a certificate, which renews again.
    again = await issuer.issue("alice", LoginProof(), now)
    assert (await issuer.renew("alice", again, now)).serial != again.serial


async def test_a_revocation_list_that_cannot_be_read_renews_nothing(ca, ca_key, tmp_path):
    """sshd refuses every key when its KRL cannot be read; the hub must not renew unchecked."""
    now = int(time.time())
    for krl_state in ("missing", "garbage", "a directory"):
        krl = tmp_path / f"krl-{krl_state.replace(' ', '-')}"
        revoke(krl, f"{ca_key}.pub", serials=[1])  # a good list at start-up, then replaced by a bad one
        issuer = LocalCAIssuer(ca, CertificatePolicy(validity=600), "hub1", revoked_keys=krl)
        alice = await issuer.issue("alice", LoginProof(), now)
        krl.unlink()
        if krl_state == "garbage":
            krl.write_text("not a KRL\n")
        elif krl_state == "a directory":
            krl.mkdir()
        with pytest.raises(IssuerUnavailable) as raised:
            await issuer.renew("alice", alice, now)
        assert "cannot be renewed just now" in raised.value.user_message, krl_state
        assert str(krl) in raised.value.log_detail and "ssh-keygen -Q" in raised.value.log_detail, krl_state
        with pytest.raises(RevocationListUnreadable):
            (tmp_path / "alice-cert.pub").write_text(alice.certificate + "\n")
            is_revoked(krl, tmp_path / "alice-cert.pub")


def test_a_revocation_list_missing_at_start_up_is_named_then(ca, tmp_path):
    with pytest.raises(ConfigurationError, match="revoked_keys.*cannot be read.*ssh-keygen -k -f"):
        LocalCAIssuer(ca, CertificatePolicy(validity=600), "hub1", revoked_keys=tmp_path / "no-such.krl")


def test_the_ledger_is_read_once_and_a_lookup_does_not_grow_with_it(tmp_path, monkeypatch):
    path, now = tmp_path / "issued.jsonl", time.time()
    with open(path, "w") as out:  # 100 000 certificates: 90 000 long expired, 10 000 valid
        for serial in range(100_000):
            valid_before = now - 30 * 86400 if serial < 90_000 else now + 3600
            out.write(json.dumps({"serial": serial, "key_id": f"k{serial}", "principal": f"u{serial % 500}",
                                  "issued_at": 0, "valid_before": valid_before, "session_started": serial}) + "\n")
    loads = []
    real_load = Ledger._load
    monkeypatch.setattr(Ledger, "_load", lambda self: (loads.append(1), real_load(self))[1])
    ledger = Ledger(path)
    assert len(path.read_text().splitlines()) == 10_000  # compacted when opened
    for serial in range(90_000, 91_000):  # a thousand renewals: a lookup and a record each
        assert ledger.find(serial)["session_started"] == serial
        ledger.record(10**9 + serial, "k", "u1", int(now) + 3600, serial)
    assert loads == [1] and ledger.find(5) is None and ledger.find(10**9 + 90_000)["session_started"] == 90_000
    assert len(read_entries(path)) == 11_000


def test_the_ledger_compacts_as_it_grows(tmp_path):
    ledger = Ledger(tmp_path / "issued.jsonl", keep_expired=0, compact_every=100)
    for serial in range(250):
        ledger.record(serial, "k", "u", int(time.time()) - 1 if serial % 2 else int(time.time()) + 3600, None)
    assert len(read_entries(tmp_path / "issued.jsonl")) < 250 and ledger.find(0) is not None and ledger.find(1) is None


def test_a_ledger_the_ca_cannot_write_is_named_at_start_up(ca_key, tmp_path):
    with pytest.raises(ConfigurationError, match="cannot be written"):  # (as root, a missing directory)
        SSHCertificateAuthority(ca_key, tmp_path / "no-such-directory" / "issued.jsonl")
