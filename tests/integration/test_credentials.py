"""Credentials at login on the real site: the certificate the hub obtains for alice works
on the login nodes as alice and only as alice, is renewed without a new login, can be
revoked, and never lies unencrypted in the hub's database."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager

import asyncssh
import pytest

from hpchub.credentials import CredentialSet
from hpchub.site import otp
from hpchub.site.identity import totp
from hpchub.site.system import SiteError, demo_passwords

from ..site_handle import (HPCHUB, HubClient, check, hub_settings, leftovers, opens_to_a_fresh_login, spawn, stop_all,
                           wait_until)


@pytest.fixture
def hub(site):
    client = HubClient(site)
    yield client
    client.close()


@pytest.fixture
def loop_hub(loopback_site):
    client = HubClient(loopback_site)
    yield client
    client.close()


def login_ok(hub, user):
    session, response = hub.login(user, demo_passwords()[user])
    assert response.status_code == 200 and response.url.endswith("/hub/home"), response.text[:500]
    return session


def test_alices_certificate_from_her_login_works_as_alice_only(site, hub):
    login_ok(hub, "alice")
    cred, files = hub.ssh_credential("alice")
    assert cred.principal == "alice" and cred.key_id.startswith(f"hpchub hub={site.name}-hub user=alice ")
    for node in ("login1", "login2"):
        out = check(site.ssh("alice", ["sh", "-c", "id -un; hostname"], node=node, cred=files)).stdout.split()
        assert out == ["alice", node]
    refused = site.ssh("bob", ["id", "-un"], cred=files)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_the_private_key_is_not_in_the_hub_database(loopback_site, loop_hub):
    login_ok(loop_hub, "bob")
    cred, _ = loop_hub.ssh_credential("bob")
    raw = (loopback_site.layout.hub_dir / "jupyterhub.sqlite").read_bytes()
    pem_body = "".join(line for line in cred.private_key.splitlines() if not line.startswith("-----"))
    key = asyncssh.import_private_key(cred.private_key)
    needles = [pem_body[i:i + 40].encode() for i in range(0, len(pem_body) - 40, 40)]
    needles += [key.export_private_key("openssh"), cred.certificate.split()[1][:60].encode()]
    needles += [base64.b64decode(pem_body)[60:92]]  # raw bytes from inside the key blob
    assert raw and not any(n in raw for n in needles)
    assert b"hpchub_credentials" not in raw and b"BEGIN OPENSSH" not in raw


def test_expired_certificate_is_refused_and_renewal_keeps_the_hub_working(loopback_site, loop_hub):
    settings = (
        "c.CredentialIssuingAuthenticator.certificate_validity = 6\n"
        "c.CredentialIssuingAuthenticator.renew_when_remaining = 3\n"
        "c.Authenticator.auth_refresh_age = 1\n"
    )
    with hub_settings(loopback_site, settings):
        session = login_ok(loop_hub, "alice")
        first, files = loop_hub.ssh_credential("alice")
        assert check(loopback_site.ssh("alice", ["id", "-un"], cred=files)).stdout.strip() == "alice"
        time.sleep(max(0.0, first.remaining()) + 1.5)
        expired = loopback_site.ssh("alice", ["id", "-un"], cred=files)
        assert expired.returncode == 255 and "Permission denied" in expired.stderr
        # Alice keeps using the hub with the same login; the hub renews behind the scenes.
        page = session.get(f"{loop_hub.url}/hub/home", timeout=30)
        assert page.status_code == 200 and page.url.endswith("/hub/home")
        renewed, files = loop_hub.ssh_credential("alice")
        assert renewed.serial != first.serial and not renewed.expired()
        assert check(loopback_site.ssh("alice", ["id", "-un"], cred=files)).stdout.strip() == "alice"


def test_past_the_maximum_session_length_the_user_is_asked_to_log_in_again(loopback_site, loop_hub):
    settings = (
        "c.CredentialIssuingAuthenticator.max_session_length = 3\n"
        "c.CredentialIssuingAuthenticator.renew_when_remaining = 10**9\n"
        "c.Authenticator.auth_refresh_age = 1\n"
    )
    with hub_settings(loopback_site, settings):
        session = login_ok(loop_hub, "bob")
        time.sleep(4)
        page = session.get(f"{loop_hub.url}/hub/home", timeout=30, allow_redirects=False)
        assert page.status_code == 302 and "/hub/login" in page.headers["Location"]
        again = login_ok(loop_hub, "bob")  # a fresh login starts a new session
        assert again.get(f"{loop_hub.url}/hub/home", timeout=30).url.endswith("/hub/home")


def test_a_revoked_certificate_is_refused_by_the_login_nodes(site, hub):
    login_ok(hub, "alice")
    cred, files = hub.ssh_credential("alice")
    assert check(site.ssh("alice", ["true"], cred=files, node="login2")).returncode == 0
    out = check(subprocess.run([HPCHUB, "ca", "revoke", "--site", site.name, "--serial", str(cred.serial)],
                               capture_output=True, text=True)).stdout
    assert f"serials {cred.serial}" in out
    for node in ("login1", "login2"):
        refused = site.ssh("alice", ["true"], cred=files, node=node)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
    # Revoking one certificate does not lock alice out: her next login works.
    login_ok(hub, "alice")
    _, fresh = hub.ssh_credential("alice")
    assert check(site.ssh("alice", ["id", "-un"], cred=fresh)).stdout.strip() == "alice"


def test_revoke_by_user_covers_every_unexpired_certificate(loopback_site, loop_hub):
    login_ok(loop_hub, "bob")
    _, first = loop_hub.ssh_credential("bob")
    login_ok(loop_hub, "bob")
    _, second = loop_hub.ssh_credential("bob")
    check(subprocess.run([HPCHUB, "ca", "revoke", "--site", loopback_site.name, "--user", "bob"],
                         capture_output=True, text=True))
    for files in (first, second):
        assert loopback_site.ssh("bob", ["true"], cred=files).returncode == 255


def test_hub_refuses_to_start_with_an_unsafe_ca_key(loopback_site):
    layout = loopback_site.layout
    unsafe = layout.hub_ca_key.with_name("unsafe_ca")
    unsafe.write_text(layout.hub_ca_key.read_text())
    shutil.chown(unsafe, "jupyterhub", "jupyterhub")
    unsafe.chmod(0o644)
    override = layout.hub_config_dir / "50-test.py"
    override.write_text(f"c.CredentialIssuingAuthenticator.ssh_ca_key = {str(unsafe)!r}\n")
    hub = loopback_site.site.hub
    try:
        hub.stop()
        with pytest.raises(SiteError) as info:
            hub.ensure()
        assert "JupyterHub exited during start-up" in str(info.value)
        assert f"the SSH CA key {unsafe} is readable or writable by group or others (mode 0644)" in str(info.value)
    finally:
        override.unlink()
        unsafe.unlink()
        hub.ensure()


RENEW_AT_EVERY_REFRESH = ("c.CredentialIssuingAuthenticator.renew_when_remaining = 10**9\n"
                          "c.Authenticator.auth_refresh_age = 1\n")


def assert_a_revoked_certificate_is_not_renewed(site, hub, revoke_argv: list[str], user: str = "bob") -> None:
    """Log in, revoke (revoke_argv, with {serial} filled in), then the next refresh: the hub asks
    for a new login instead of renewing, and keeps no new certificate. A fresh login works."""
    session = login_ok(hub, user)
    first, _ = hub.ssh_credential(user)
    check(subprocess.run([HPCHUB, "ca", "revoke", "--site", site.name,
                          *[a.format(serial=first.serial) for a in revoke_argv]], capture_output=True, text=True))
    time.sleep(1.2)
    page = session.get(f"{hub.url}/hub/home", timeout=30)
    assert "/hub/login" in page.url, page.url
    # The old certificate, or none (the hub saw the list change and dropped it): never a new one.
    after = CredentialSet.from_auth_state(hub.auth_state(user))
    assert after is None or after.ssh.serial == first.serial
    login_ok(hub, user)
    assert hub.ssh_credential(user)[0].serial != first.serial


def test_a_revoked_user_gets_no_new_certificate_from_the_local_ca(loopback_site, loop_hub):
    with hub_settings(loopback_site, RENEW_AT_EVERY_REFRESH):
        assert_a_revoked_certificate_is_not_renewed(loopback_site, loop_hub, ["--user", "bob"])


def answers_on(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_revoking_a_user_ends_their_tunnels_and_the_hubs_connections_at_once_and_no_one_elses(
        loopback_site, loop_hub):
    hub = loop_hub
    with hub_settings(loopback_site, "c.HPCHub.revocation_check_interval = 1\n"):
        bob = login_ok(hub, "bob")
        alice = login_ok(hub, "alice")
        try:
            bobs = spawn(hub, "bob", options={"target": "login"})["state"]
            alices = spawn(hub, "alice", options={"target": "login"})["state"]
            assert answers_on(bobs["local_port"]) and answers_on(alices["local_port"])
            first, _ = hub.ssh_credential("bob")
            check(subprocess.run([HPCHUB, "ca", "revoke", "--site", loopback_site.name, "--user", "bob"],
                                 capture_output=True, text=True))
            deadline = time.monotonic() + 20
            while answers_on(bobs["local_port"]) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not answers_on(bobs["local_port"]), "bob's tunnel outlived the revocation"
            # His hub login ended at once (no wait for a refresh); his credentials are gone.
            assert "/hub/login" in bob.get(f"{hub.url}/hub/home", timeout=30).url
            assert CredentialSet.from_auth_state(hub.auth_state("bob")) is None
            log = loopback_site.site.hub._log_tail("hub", 100)
            assert f"Certificate {first.key_id} of bob is revoked: ended their sessions" in log
            # Alice: untouched.
            assert answers_on(alices["local_port"])
            assert alice.get(f"{hub.url}/hub/home", timeout=30).url == f"{hub.url}/hub/home"
            assert alice.get(f"{hub.url}/user/alice/lab", timeout=30).status_code == 200
            # A new login gets a new certificate, and bob reaches his server again.
            login_ok(hub, "bob")
            assert hub.ssh_credential("bob")[0].serial != first.serial
            assert opens_to_a_fresh_login(hub, "bob", "")
        finally:
            stop_all(hub)
        wait_until("bob's processes end", lambda: not leftovers(loopback_site, "bob"), 30,
                   detail=lambda: leftovers(loopback_site, "bob"))


def test_a_revocation_made_while_the_hub_was_down_ends_the_sessions_when_it_starts(loopback_site, loop_hub):
    hub = loop_hub
    with hub_settings(loopback_site, "c.HPCHub.revocation_check_interval = 1\n"):
        login_ok(hub, "bob")
        try:
            port = spawn(hub, "bob", options={"target": "login"})["state"]["local_port"]
            loopback_site.site.hub.stop()  # the tunnel service, and bob's tunnel, live on
            assert answers_on(port)
            check(subprocess.run([HPCHUB, "ca", "revoke", "--site", loopback_site.name, "--user", "bob"],
                                 capture_output=True, text=True))
            loopback_site.site.hub.ensure()
            deadline = time.monotonic() + 20
            while answers_on(port) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not answers_on(port), "a tunnel of a certificate revoked while the hub was down outlived its start"
        finally:
            # His server runs on (as sshd leaves sessions alone): only a new login can stop it, as
            # the hub's every way to the node as bob is gone - the how-to says so.
            login_ok(hub, "bob")
            stop_all(hub)
        wait_until("bob's processes end", lambda: not leftovers(loopback_site, "bob"), 30,
                   detail=lambda: leftovers(loopback_site, "bob"))


@contextmanager
def enrolled(user: str):
    """user with a one-time code secret in the site's PAM stack, for the duration."""
    secret = otp.enrol(user)
    try:
        yield secret
    finally:
        otp.unenrol(user)


def test_an_enrolled_user_logs_in_with_the_password_and_a_code_each_good_once(loopback_site, loop_hub):
    hub, password = loop_hub, demo_passwords()["bob"]
    with enrolled("bob") as secret:
        # Three attempts in all: the stack allows three in 30 seconds (RATE_LIMIT 3 30), so the
        # replay below is refused for being a replay, not for being the fourth.
        _, page = hub.login("bob", password, otp="")
        assert "/hub/login" in page.url and "Invalid username or password" in page.text
        code = totp(secret)
        _, page = hub.login("bob", password, otp=code)
        assert page.url.endswith("/hub/home"), page.url
        _, replayed = hub.login("bob", password, otp=code)
        assert "Invalid username or password" in replayed.text
    # Not enrolled: the password alone, as before.
    assert hub.login("bob", password)[1].url.endswith("/hub/home")
