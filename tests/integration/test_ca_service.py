"""The CA service against the real site: PAM passwords, HTTPS verified by the client, hub
tokens, rate limits, renewal by proof of possession; and the hub using it as its issuer."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
from pathlib import Path

import asyncssh
import pytest
import requests

from hpchub.credentials import CredentialSet, IssuerUnavailable, LoginRequired
from hpchub.credentials.issuers import LoginProof
from hpchub.credentials.proof import b64, challenge_message
from hpchub.credentials.service_client import ServiceIssuer
from hpchub.credentials.ssh_ca import certificate_facts
from hpchub.site import otp
from hpchub.site.identity import totp
from hpchub.site.layout import HUB_OS_USER
from hpchub.site.system import demo_passwords

from ..site_handle import Credential, HubClient, check, hub_settings
from .ca_service_fixture import start_ca_service
from .test_credentials import RENEW_AT_EVERY_REFRESH, assert_a_revoked_certificate_is_not_renewed, login_ok


@pytest.fixture(scope="module")
def service(loopback_site, tmp_path_factory):
    handle = start_ca_service(loopback_site, tmp_path_factory.mktemp("ca-service"),
                              loopback_site.layout.port_base + 93, f"{loopback_site.name}-hub")
    yield handle
    handle.stop()


def issuer(service, **kw) -> ServiceIssuer:
    return ServiceIssuer(service.url, kw.pop("token", service.token), ca_bundle=str(service.ca_bundle), **kw)


def files_for(site, cred) -> Credential:
    return site.credential_files(cred, "svc")


def post_pair(service, user, password, token=None):
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return requests.post(f"{service.url}/create_pair/default/", verify=str(service.ca_bundle), timeout=30,
                         headers={"Authorization": f"Basic {auth}", "X-HPCHub-Token": token or service.token})


def test_login_gives_a_working_certificate_and_renewal_by_proof_of_possession(loopback_site, service):
    password = demo_passwords()["alice"]
    first = asyncio.run(issuer(service).issue("alice", LoginProof(password=password), int(time.time())))
    assert first.principal == "alice" and first.issuer == "ca-service"
    assert check(loopback_site.ssh("alice", ["id", "-un"], cred=files_for(loopback_site, first))).stdout == "alice\n"
    renewed = asyncio.run(issuer(service).renew("alice", first, 0))
    assert renewed.serial != first.serial and renewed.private_key != first.private_key
    assert check(loopback_site.ssh("alice", ["id", "-un"], cred=files_for(loopback_site, renewed))).stdout == "alice\n"
    log = service.log.read_text()
    assert f"serial={first.serial} principal=alice" in log and f"renewal of serial {first.serial}" in log
    assert password not in log


def test_wrong_password_is_refused(service):
    response = post_pair(service, "bob", "not-bobs-password")
    assert response.status_code == 401 and response.json()["error"] == "bad_password"


def test_wrong_or_missing_hub_token_is_refused(service):
    response = post_pair(service, "bob", demo_passwords()["bob"], token="f" * 64)
    assert response.status_code == 403 and response.json()["error"] == "bad_hub_token"
    bare = requests.get(f"{service.url}/challenge", verify=str(service.ca_bundle), timeout=10)
    assert bare.status_code == 403
    with pytest.raises(IssuerUnavailable, match="refused this hub"):
        asyncio.run(issuer(service, token="0" * 64).issue("bob", LoginProof(password=demo_passwords()["bob"]), 0))


def test_the_client_verifies_the_servers_certificate(service):
    with pytest.raises(IssuerUnavailable, match="cannot be reached"):
        asyncio.run(ServiceIssuer(service.url, service.token).issue("bob", LoginProof(password=demo_passwords()["bob"]), 0))


def _renew_raw(service, certificate, signing_key, new_public, challenge=None):
    challenge = challenge or requests.get(f"{service.url}/challenge", verify=str(service.ca_bundle), timeout=10,
                                          headers={"X-HPCHub-Token": service.token}).json()["challenge"]
    signature = signing_key.sign(challenge_message(challenge, new_public), signing_key.sig_algorithms[0])
    return requests.post(f"{service.url}/renew/default/", verify=str(service.ca_bundle), timeout=10,
                         headers={"X-HPCHub-Token": service.token},
                         data=json.dumps({"certificate": certificate, "public_key": new_public,
                                          "challenge": challenge, "signature": b64(signature)})), challenge


def test_renewal_refuses_expired_foreign_unproven_and_replayed(loopback_site, service, tmp_path):
    new_public = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    # Expired: a certificate of this CA whose validity has passed.
    key = asyncssh.generate_private_key("ssh-ed25519")
    ca = asyncssh.read_private_key(str(loopback_site.layout.user_ca_key))
    old = ca.generate_user_certificate(key, "old", principals=["alice"], valid_after=time.time() - 7200,
                                       valid_before=time.time() - 3600).export_certificate().decode()
    response, _ = _renew_raw(service, old, key, new_public)
    assert response.status_code == 403 and response.json()["error"] == "login_required"
    # Foreign: signed by another CA.
    other_ca = asyncssh.generate_private_key("ssh-ed25519")
    foreign = other_ca.generate_user_certificate(key, "x", principals=["alice"],
                                                 valid_before=time.time() + 600).export_certificate().decode()
    response, _ = _renew_raw(service, foreign, key, new_public)
    assert response.status_code == 403 and response.json()["error"] == "foreign_certificate"
    # Unproven: a valid certificate, but the proof is signed with some other key.
    current = asyncio.run(issuer(service).issue("alice", LoginProof(password=demo_passwords()["alice"]), int(time.time())))
    response, _ = _renew_raw(service, current.certificate, asyncssh.generate_private_key("ssh-ed25519"), new_public)
    assert response.status_code == 403 and response.json()["error"] == "bad_proof"
    # Replayed: a challenge can be used once.
    real_key = asyncssh.import_private_key(current.private_key)
    response, challenge = _renew_raw(service, current.certificate, real_key, new_public)
    assert response.status_code == 200
    response, _ = _renew_raw(service, current.certificate, real_key, new_public, challenge=challenge)
    assert response.status_code == 403 and response.json()["error"] == "bad_challenge"
    with pytest.raises(LoginRequired):
        asyncio.run(issuer(service).renew("alice", current.__class__(**{**current.to_dict(),
                                                                        "certificate": old}), 0))


def test_service_account_certificates_only_for_allowed_principals(loopback_site, service):
    cred = asyncio.run(issuer(service).issue_service_account("hpchub"))
    assert certificate_facts(cred.certificate)["principals"] == ["hpchub"]
    out = check(loopback_site.ssh("hpchub", ["id", "-un"], cred=files_for(loopback_site, cred))).stdout
    assert out == "hpchub\n"
    with pytest.raises(IssuerUnavailable):
        asyncio.run(issuer(service).issue_service_account("alice"))


def test_too_many_requests_are_refused(loopback_site, tmp_path):
    limited = start_ca_service(loopback_site, tmp_path / "limited", loopback_site.layout.port_base + 94,
                               "limited", user_rate_limit=3)
    try:
        codes = [post_pair(limited, "bob", "wrong").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        assert post_pair(limited, "bob", demo_passwords()["bob"]).status_code == 429
    finally:
        limited.stop()


def hub_with_the_service(site, service):
    """Settings for the site's hub to use the service as its issuer (files the hub reads
    put in place; removed again by the caller's cleanup of the returned paths)."""
    layout = site.layout
    token_file = layout.hub_dir / "ca-service-token"
    token_file.write_text(service.token)
    token_file.chmod(0o600)
    shutil.chown(token_file, HUB_OS_USER, HUB_OS_USER)
    bundle = layout.hub_dir / "ca-service-bundle.pem"  # where the hub user can read it
    shutil.copy(service.ca_bundle, bundle)
    bundle.chmod(0o644)
    settings = (
        "c.CredentialIssuingAuthenticator.credential_issuer = 'ca-service'\n"
        f"c.CredentialIssuingAuthenticator.ca_service_url = {service.url!r}\n"
        f"c.CredentialIssuingAuthenticator.ca_service_token_file = {str(token_file)!r}\n"
        f"c.CredentialIssuingAuthenticator.ca_service_ca_bundle = {str(bundle)!r}\n"
    )
    return settings + RENEW_AT_EVERY_REFRESH, [token_file, bundle]


def test_the_hub_works_with_the_service_exactly_as_with_the_local_ca(loopback_site, service):
    settings, files_to_remove = hub_with_the_service(loopback_site, service)
    hub = HubClient(loopback_site)
    try:
        with hub_settings(loopback_site, settings):
            session = login_ok(hub, "bob")
            first, files = hub.ssh_credential("bob")
            assert first.issuer == "ca-service"
            assert check(loopback_site.ssh("bob", ["id", "-un"], cred=files)).stdout == "bob\n"
            time.sleep(1.2)
            assert session.get(f"{hub.url}/hub/home", timeout=30).url.endswith("/hub/home")
            renewed, files = hub.ssh_credential("bob")
            assert renewed.serial != first.serial and renewed.issuer == "ca-service"
            assert check(loopback_site.ssh("bob", ["id", "-un"], cred=files)).stdout == "bob\n"
            assert CredentialSet.from_auth_state(hub.auth_state("bob")).session_started <= int(time.time())
    finally:
        hub.close()
        for path in files_to_remove:
            path.unlink()


def test_a_revoked_certificate_is_not_renewed_by_the_service(loopback_site, service):
    settings, files_to_remove = hub_with_the_service(loopback_site, service)
    hub = HubClient(loopback_site)
    try:
        with hub_settings(loopback_site, settings):
            assert_a_revoked_certificate_is_not_renewed(loopback_site, hub, ["--serial", "{serial}"])
    finally:
        hub.close()
        for path in files_to_remove:
            path.unlink()


def test_an_unreachable_service_is_a_clear_message_and_nothing_is_kept(loopback_site, service):
    layout = loopback_site.layout
    token_file = layout.hub_dir / "ca-service-token"
    token_file.write_text(service.token)
    shutil.chown(token_file, HUB_OS_USER, HUB_OS_USER)
    dead = f"https://127.0.0.1:{layout.port_base + 95}"
    settings = (
        "c.CredentialIssuingAuthenticator.credential_issuer = 'ca-service'\n"
        f"c.CredentialIssuingAuthenticator.ca_service_url = {dead!r}\n"
        f"c.CredentialIssuingAuthenticator.ca_service_token_file = {str(token_file)!r}\n"
    )
    hub = HubClient(loopback_site)
    try:
        with hub_settings(loopback_site, settings):
            before = hub.auth_state("alice")
            session, response = hub.login("alice", demo_passwords()["alice"])
            assert response.status_code == 503
            assert "certificate service cannot be reached" in response.text and "Traceback" not in response.text
            assert hub.auth_state("alice") == before
            home = session.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False)
            assert home.status_code == 302 and "/hub/login" in home.headers["Location"]
    finally:
        hub.close()
        token_file.unlink()


def test_the_ca_service_refuses_to_start_with_an_unsafe_key(loopback_site, tmp_path):
    key = tmp_path / "user_ca"
    shutil.copy(loopback_site.layout.user_ca_key, key)
    key.chmod(0o640)
    config = tmp_path / "cfg.py"
    config.write_text(f"c.CAService.ca_key = {str(key)!r}\nc.CAService.ledger = {str(tmp_path / 'l')!r}\n")
    from ..site_handle import HPCHUB

    proc = subprocess.run([HPCHUB, "ca", "serve", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "group or others (mode 0640)" in proc.stderr and "Traceback" not in proc.stderr


def test_a_rotated_ca_key_still_renews_the_certificates_of_the_key_it_replaced(loopback_site, tmp_path):
    """The CA service's key is replaced while bob is logged in: with the old key among its previous
    keys, his next renewal is signed with the new key (the login nodes trust both during the
    overlap) and works on the login node - no new login. Without it, the renewal is refused and he
    is asked to log in again."""
    site = loopback_site
    port, hub_name, ledger = site.layout.port_base + 43, f"{site.name}-hub", str(tmp_path / "issued.jsonl")
    new_key = tmp_path / "user_ca.new"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(new_key)], check=True)
    trusted = site.layout.ssh_dir / "user_ca.pub"  # the login nodes' TrustedUserCAKeys
    old_public = trusted.read_text()
    old = start_ca_service(site, tmp_path / "old", port, hub_name, ledger=ledger)
    settings, files_to_remove = hub_with_the_service(site, old)
    hub = HubClient(site)

    def rotate(previous: list[str]):
        """Bob logs in on the old key; the service restarts with the new one."""
        session = login_ok(hub, "bob")
        before, _ = hub.ssh_credential("bob")
        old.stop()
        rotated = start_ca_service(site, tmp_path / "rotated", port, hub_name, token=old.token, tls=old.tls,
                                   ledger=ledger, ca_key=str(new_key), previous_ca_public_keys=previous)
        time.sleep(1.2)
        return session, before, rotated

    try:
        with hub_settings(site, settings):
            trusted.write_text(old_public + Path(f"{new_key}.pub").read_text())  # the overlap on the login nodes
            session, before, rotated = rotate([old_public.strip()])
            try:
                assert session.get(f"{hub.url}/hub/home", timeout=30).url.endswith("/hub/home")
                after, files = hub.ssh_credential("bob")
                assert after.serial != before.serial
                assert certificate_facts(after.certificate)["signing_key"] == Path(f"{new_key}.pub").read_text().split()[1]
                assert check(site.ssh("bob", ["id", "-un"], cred=files)).stdout == "bob\n"
            finally:
                rotated.stop()
            old = start_ca_service(site, tmp_path / "old", port, hub_name, token=old.token, tls=old.tls, ledger=ledger)
            session, before, rotated = rotate([])
            try:
                assert "/hub/login" in session.get(f"{hub.url}/hub/home", timeout=30).url
                assert hub.ssh_credential("bob")[0].serial == before.serial
            finally:
                rotated.stop()
    finally:
        trusted.write_text(old_public)
        hub.close()
        for path in files_to_remove:
            path.unlink()


def test_against_a_service_like_sshproxy_a_static_service_key_and_a_clean_new_login_before_expiry(
        loopback_site, tmp_path):
    """NERSC's sshproxy serves /create_pair only: the hub's service account uses a key and
    certificate the site renews itself, and a user certificate that cannot be renewed leads
    to a new login while it is still valid, not to a failed spawn."""
    layout = loopback_site.layout
    like_sshproxy = start_ca_service(loopback_site, tmp_path / "sshproxy", layout.port_base + 94,
                                     f"{loopback_site.name}-hub", api="sshproxy")
    static = layout.hub_dir / "static-service-account"
    static.mkdir(mode=0o700, exist_ok=True)
    key = static / "id_ed25519"
    key.unlink(missing_ok=True)
    check(subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], capture_output=True))
    check(subprocess.run(["ssh-keygen", "-q", "-s", str(layout.user_ca_key), "-I", "hpchub static service account",
                          "-n", "hpchub", "-V", "+2h", f"{key}.pub"], capture_output=True))
    for path in (static, *static.iterdir()):
        shutil.chown(path, HUB_OS_USER, HUB_OS_USER)
    settings, files_to_remove = hub_with_the_service(loopback_site, like_sshproxy)
    settings += f"c.CredentialIssuingAuthenticator.service_account_key = {str(key)!r}\n"
    hub = HubClient(loopback_site)
    try:
        assert requests.post(f"{like_sshproxy.url}/service_pair/", verify=str(like_sshproxy.ca_bundle),
                             headers={"X-HPCHub-Token": like_sshproxy.token}, timeout=30).status_code == 404
        probed = len(like_sshproxy.log.read_text())
        with hub_settings(loopback_site, settings):
            session = login_ok(hub, "bob")
            assert hub.ssh_credential("bob")[0].issuer == "ca-service"
            # The spawn form's partitions and accounts come through the service account.
            form = session.get(f"{hub.url}/hub/spawn", timeout=60)
            assert form.status_code == 200 and 'value="batch"' in form.text, form.text[-2000:]
            assert "cannot be reached" not in form.text
            assert "service_pair" not in like_sshproxy.log.read_text()[probed:]
            time.sleep(1.2)  # every refresh wants a renewal, which this service does not do
            again = session.get(f"{hub.url}/hub/home", timeout=30)
            assert again.status_code == 200 and "/hub/login" in again.url and "Traceback" not in again.text
            log = loopback_site.site.hub._log_tail("hub", 200)
            assert "does not renew" in log
    finally:
        hub.close()
        like_sshproxy.stop()
        shutil.rmtree(static)
        for path in files_to_remove:
            path.unlink()


def test_pam_with_a_one_time_code_through_the_service_checks_password_and_code_once(loopback_site, tmp_path):
    """With the CA service as issuer the hub does not check the password itself: the code goes
    through PAM once, in the service. Were it checked twice, the second check would refuse the
    code as used (DISALLOW_REUSE) and the login would fail."""
    with_codes = start_ca_service(loopback_site, tmp_path / "otp", loopback_site.layout.port_base + 94,
                                  f"{loopback_site.name}-hub", pam_service=otp.PAM_SERVICE)
    settings, files_to_remove = hub_with_the_service(loopback_site, with_codes)
    hub = HubClient(loopback_site)
    secret = otp.enrol("bob")
    try:
        with hub_settings(loopback_site, settings):
            code = totp(secret)
            _, page = hub.login("bob", demo_passwords()["bob"], otp=code)
            assert page.url.endswith("/hub/home"), page.text[-500:]
            assert hub.ssh_credential("bob")[0].issuer == "ca-service"
            assert with_codes.log.read_text().count("signed user certificate") == 1
            _, replayed = hub.login("bob", demo_passwords()["bob"], otp=code)
            assert "Invalid username or password" in replayed.text
            assert with_codes.log.read_text().count("signed user certificate") == 1
    finally:
        otp.unenrol("bob")
        hub.close()
        with_codes.stop()
        for path in files_to_remove:
            path.unlink()
