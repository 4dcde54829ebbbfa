"""The MyProxy client's pure parts: what it refuses to send, the request it builds, how it
reads the server's replies and certificate chain; and the launchers' secret files."""

from __future__ import annotations

import datetime
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hpchub.credentials import CredentialSet, SSHCredential, X509Credential
from hpchub.credentials.myproxy import (
    LoginValueRefused,
    _Replies,
    check_login_values,
    get_request,
    parse_response,
    split_certificates,
)
from hpchub.remote import batch_launcher, node_launcher


@pytest.mark.parametrize("username", ["alice\n", "al\nice", "alice\r", "a\0", "", "-alice", "al ice", "al=ice",
                                      "ålice", "a" * 65, "alice;rm -rf", "../alice"])
def test_user_names_the_protocol_cannot_carry_are_refused(username):
    with pytest.raises(LoginValueRefused):
        check_login_values(username, "a good password")


@pytest.mark.parametrize("password", ["", "pass\nCOMMAND=1", "pass\rword", "pass\0word", "x" * 1025])
def test_passwords_the_protocol_cannot_carry_are_refused(password):
    with pytest.raises(LoginValueRefused) as refused:
        check_login_values("alice", password)
    assert password not in refused.value.user_message + refused.value.log_detail or not password


def test_the_get_request_has_exactly_the_five_fields_and_ends_with_nul():
    request = get_request("alice.b@x-y", "p=ss wörd!$`", 3600)
    assert request.endswith(b"\n\0")
    assert request[:-1].decode().splitlines() == [
        "VERSION=MYPROXYv2", "COMMAND=0", "USERNAME=alice.b@x-y", "PASSPHRASE=p=ss wörd!$`", "LIFETIME=3600"]
    with pytest.raises(LoginValueRefused):
        get_request("alice", "two\nlines", 3600)


def test_replies_parse_codes_and_errors_and_refuse_what_is_not_a_reply():
    assert parse_response(b"VERSION=MYPROXYv2\nRESPONSE=0\n") == (0, [])
    assert parse_response(b"VERSION=MYPROXYv2\nRESPONSE=1\nERROR=invalid password\nERROR=try again\n") == (
        1, ["invalid password", "try again"])
    for bad in (b"", b"HTTP/1.1 200 OK\r\n", b"VERSION=MYPROXYv1\nRESPONSE=0\n", b"VERSION=MYPROXYv2\n"):
        with pytest.raises(ValueError):
            parse_response(bad)


def _certificate(name: str, key) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))


class FakeConnection:
    """Replies cut into pieces the way TLS records may cut them."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def recv(self, _size):
        return self.chunks.pop(0) if self.chunks else b""


def test_replies_skip_lone_nuls_and_read_a_chain_cut_anywhere():
    key = ec.generate_private_key(ec.SECP256R1())
    certs = [_certificate("alice", key), _certificate("ca", key)]
    der = b"".join(c.public_bytes(serialization.Encoding.DER) for c in certs)
    assert split_certificates(der[:-1], 2) is None
    found, used = split_certificates(der + b"rest", 2)
    assert [c.subject for c in found] == [c.subject for c in certs] and used == len(der)
    stream = b"\0VERSION=MYPROXYv2\nRESPONSE=0\n\0" + bytes([2]) + der + b"VERSION=MYPROXYv2\nRESPONSE=0\n\0"
    for cut in (1, 7, 300, len(stream)):
        replies = _Replies(FakeConnection([stream[i:i + cut] for i in range(0, len(stream), cut)]), "test")
        assert parse_response(replies.message()) == (0, [])
        assert [c.subject for c in replies.certificates()] == [c.subject for c in certs]
        assert parse_response(replies.message()) == (0, [])


def test_the_credential_round_trips_through_auth_state_and_makes_a_globus_proxy_file():
    key = ec.generate_private_key(ec.SECP256R1())
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    chain = "".join(_certificate(n, key).public_bytes(serialization.Encoding.PEM).decode() for n in ("alice", "ca"))
    grid = X509Credential(pem_key, chain, "CN=alice", 2_000_000_000)
    ssh = SSHCredential("k", "c", "alice", 1, "id", 0, 2_000_000_000, "local-ca")
    state = CredentialSet(1).with_credential(ssh).with_credential(grid).to_auth_state()
    back = CredentialSet.from_auth_state(state)
    assert back.x509 == grid and back.ssh == ssh
    parts = [line for line in grid.proxy_file().splitlines() if line.startswith("-----BEGIN")]
    assert parts == ["-----BEGIN CERTIFICATE-----", "-----BEGIN EC PRIVATE KEY-----", "-----BEGIN CERTIFICATE-----"]
    assert "PRIVATE" not in repr(grid) and pem_key not in repr(back)


@pytest.mark.parametrize("launcher", [node_launcher, batch_launcher], ids=["node", "batch"])
def test_launchers_write_secret_files_0600_and_name_them_in_the_environment(launcher, tmp_path):
    env = {}
    launcher.write_secret_files(str(tmp_path), {"x509up": {"content": "secret", "env": "X509_USER_PROXY"}}, env)
    path = tmp_path / "x509up"
    assert env == {"X509_USER_PROXY": str(path)} and path.read_text() == "secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for bad in ("../x", "x/y", ".hidden", "X", ""):
        with pytest.raises(ValueError):
            launcher.write_secret_files(str(tmp_path), {bad: {"content": "s"}}, {})
    with pytest.raises(FileExistsError):  # never through a file (or link) someone put there
        launcher.write_secret_files(str(tmp_path), {"x509up": {"content": "again"}}, {})


@pytest.mark.parametrize("launcher", [node_launcher, batch_launcher], ids=["node", "batch"])
def test_launchers_refuse_a_server_id_or_file_name_with_a_trailing_newline(launcher, tmp_path):
    with pytest.raises(ValueError):
        launcher.write_secret_files(str(tmp_path), {"x509up\n": {"content": "s"}}, {})
    assert not launcher.SERVER_ID.match("alice-default-1234\n")


def test_a_refusal_instead_of_the_chain_is_read_as_a_reply_with_its_reason():
    refusal = b"VERSION=MYPROXYv2\nRESPONSE=1\nERROR=Certificate generation failure.\n\0"
    for stream in (refusal, b"\0" + refusal):
        replies = _Replies(FakeConnection([stream[:5], stream[5:]]), "test")
        assert replies.certificates() is None
        assert parse_response(replies.message()) == (1, ["Certificate generation failure."])
