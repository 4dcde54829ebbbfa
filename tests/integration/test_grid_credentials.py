"""Grid credentials against the site's real MyProxy (Debian's myproxy-server, an online CA
over PAM): a login gets an X.509 certificate naming the user, delivered to the server on a
login node and in a batch job, where Globus' grid-proxy-info accepts it; removed when the
server stops. Refusals: a wrong password, a user name the protocol cannot carry (before a
single byte is sent), a server whose certificate is not trusted."""

from __future__ import annotations

import asyncio
import datetime
import json
import pwd
import socket
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hpchub.credentials import CredentialError, CredentialSet, IssuerUnavailable
from hpchub.credentials.myproxy import LoginValueRefused, MyProxyIssuer
from hpchub.site.system import demo_passwords

from ..site_handle import check, clean_hub, spawn, stop
from .test_credentials import login_ok
from .test_ssh_spawner import run_in_kernel

# Run in the user's kernel: what grid tools see there.
IN_THE_SERVER = """
import json, os, pwd, subprocess
path = os.environ.get("X509_USER_PROXY", "")
info = subprocess.run(["grid-proxy-info", "-subject", "-timeleft"], capture_output=True, text=True)
st = os.stat(path)
print(json.dumps({"path": path, "cert_dir": os.environ.get("X509_CERT_DIR"), "mode": st.st_mode & 0o777,
                  "owner": pwd.getpwuid(st.st_uid).pw_name, "rc": info.returncode,
                  "out": info.stdout.split(), "err": info.stderr}))
"""


@pytest.fixture
def hub(site):
    yield from clean_hub(site)


def issuer_for(site, **overrides) -> MyProxyIssuer:
    facts = site.info["myproxy"]
    settings = {"ca_certs": facts["ca_bundle"], "lifetime": 3600, **overrides}
    return MyProxyIssuer(facts["host"], facts["port"], **settings)


def grid_facts(hub, user: str) -> dict:
    out = run_in_kernel(hub, user, IN_THE_SERVER)
    return json.loads(out.strip().splitlines()[-1])


def test_a_login_gets_a_certificate_naming_the_user_that_grid_tools_accept_where_the_server_runs(site, hub):
    login_ok(hub, "alice")
    grid = CredentialSet.from_auth_state(hub.auth_state("alice")).x509
    assert grid is not None and grid.subject == f"CN=alice,OU={site.name},O=hpchub"
    assert 3000 < grid.remaining() <= 12 * 3600
    uid = pwd.getpwnam("alice").pw_uid
    for target in ("login", "compute"):
        model = spawn(hub, "alice", options={"target": target}, timeout=180)
        facts = grid_facts(hub, "alice")
        assert facts["rc"] == 0, facts
        assert facts["out"][0] == f"/O=hpchub/OU={site.name}/CN=alice" and int(facts["out"][1]) > 3000, facts
        assert facts["mode"] == 0o600 and facts["owner"] == "alice", facts
        assert facts["cert_dir"] == site.info["myproxy"]["trust_dir"]
        state = model["state"]
        if target == "login":
            assert facts["path"] == f"/tmp/hpchub-{uid}/{state['server_id']}/x509up"
            where = state["host"]
        else:
            assert facts["path"] == f"{pwd.getpwnam('alice').pw_dir}/.hpchub/jobs/{state['server_id']}/x509up"
            where = "login1"  # the shared home
        assert check(site.ssh("alice", ["test", "-f", facts["path"]], node=where)).returncode == 0
        stop(hub, "alice", timeout=90)
        assert site.ssh("alice", ["test", "-e", facts["path"]], node=where).returncode == 1, \
            f"{facts['path']} left on {where} after stop"


def test_a_wrong_password_is_refused_with_a_clear_message(loopback_site):
    with pytest.raises(CredentialError) as refused:
        asyncio.run(issuer_for(loopback_site).issue("alice", demo_passwords()["alice"] + "x"))
    assert not isinstance(refused.value, IssuerUnavailable)
    assert refused.value.user_message == "the grid certificate service did not accept your user name or password"
    assert "invalid password" in refused.value.log_detail


def test_a_user_name_with_a_newline_is_refused_before_any_byte_is_sent(loopback_site):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(2)
    seen: list[bytes] = []

    def watch():
        try:
            conn, _ = listener.accept()
            seen.append(conn.recv(4096) or b"(connected)")
            conn.close()
        except OSError:
            pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    issuer = issuer_for(loopback_site)
    issuer.host, issuer.port = "127.0.0.1", listener.getsockname()[1]
    password = demo_passwords()["alice"]
    for username, secret in (("alice\nCOMMAND=2", password), ("alice", password + "\nLIFETIME=99999999")):
        with pytest.raises(LoginValueRefused):
            asyncio.run(issuer.issue(username, secret))
    watcher.join()
    listener.close()
    assert seen == []


def test_a_myproxy_server_whose_certificate_is_not_trusted_is_refused(loopback_site, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else's CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    other_ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
    bundle = tmp_path / "other-ca.pem"
    bundle.write_bytes(other_ca.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(IssuerUnavailable) as refused:
        asyncio.run(issuer_for(loopback_site, ca_certs=str(bundle)).issue("alice", demo_passwords()["alice"]))
    assert "could not be verified" in refused.value.user_message and "did not send your password" in \
        refused.value.user_message
    # The right trust roots but another name than the server's certificate carries: refused too.
    with pytest.raises(IssuerUnavailable):
        asyncio.run(issuer_for(loopback_site, server_name="myproxy.elsewhere.example").issue(
            "alice", demo_passwords()["alice"]))


def test_a_refusal_to_sign_reaches_the_user_in_myproxys_words(loopback_site):
    # MyProxy 6.2's online CA signs RSA keys only: asked to sign an EC key, it refuses.
    with pytest.raises(CredentialError) as refused:
        asyncio.run(issuer_for(loopback_site, key_type="ec").issue("alice", demo_passwords()["alice"]))
    assert refused.value.user_message == ("the grid certificate service refused to issue a certificate: "
                                          "Certificate generation failure.")
