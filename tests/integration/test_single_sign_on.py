"""Single sign-on against the real site: the site's OpenID Connect provider (oidc-provider)
with a password and a TOTP code, the hub's hpchub-oidc, and the site's CA service verifying
the provider's ID tokens, so that the hub holds no CA key."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from hpchub.credentials import CredentialSet
from hpchub.site.layout import HUB_OS_USER

from ..single_sign_on import fresh_code, provider_login, single_sign_on
from ..site_handle import HubClient, check, hub_settings
from .test_credentials import RENEW_AT_EVERY_REFRESH


@pytest.fixture(scope="module")
def sso(loopback_site):
    with single_sign_on(loopback_site):
        yield loopback_site


def ledger_serials(site, user: str) -> list[int]:
    ledger = site.site.ca_service.ledger
    return [entry["serial"] for entry in map(json.loads, ledger.read_text().splitlines())
            if entry.get("principal") == user] if ledger.exists() else []


def test_password_and_code_give_a_certificate_from_the_ca_service_and_the_hub_holds_no_ca_key(sso):
    hub = HubClient(sso)
    try:
        _, landed = provider_login(hub.url, "alice", None, fresh_code(sso, "alice"))
        assert landed.status_code == 200 and landed.url.startswith(f"{hub.url}/hub/spawn"), landed.url
        credential, files = hub.ssh_credential("alice")
        assert credential.issuer == "ca-service" and credential.principal == "alice"
        assert credential.serial in ledger_serials(sso, "alice")
        assert check(sso.ssh("alice", ["id", "-un"], cred=files)).stdout == "alice\n"
    finally:
        hub.close()
    # No file the hub's user can read holds the CA's private key: its last base64 lines carry the
    # private part (the first ones, the format's header and the public key, are not secret).
    lines = sso.layout.user_ca_key.read_text().splitlines()
    assert lines[0] == "-----BEGIN OPENSSH PRIVATE KEY-----" and len(lines) == 7  # ed25519's layout
    patterns = [arg for line in lines[4:6] for arg in ("-e", line)]
    found = subprocess.run(["runuser", "-u", HUB_OS_USER, "--", "grep", "-rlsF", *patterns,
                            str(sso.layout.state_dir), "/etc", "/tmp", "/opt/hpchub/hub/etc"],
                           capture_output=True, text=True)
    assert found.stdout == "", f"the hub's user can read the CA key in {found.stdout}"
    # ... and root finds it where it is (the search itself works).
    assert str(sso.layout.user_ca_key) in check(subprocess.run(["grep", "-rlsF", *patterns, str(sso.layout.ca_dir)],
                                                              capture_output=True, text=True)).stdout
    assert not sso.layout.hub_ca_key.exists()


def test_a_sign_in_without_the_second_factor_is_refused_with_a_message(sso):
    identity = sso.site.identity
    secret = identity.totp_secret("bob")
    before = ledger_serials(sso, "bob")
    identity.update_user("bob", totp_secret=None)  # bob has not enrolled: the provider says amr ["pwd"]
    try:
        _, refused = provider_login(sso.layout.hub_url, "bob", None, "")
    finally:
        identity.update_user("bob", totp_secret=secret)
    assert refused.status_code == 403
    assert "requires a second factor" in refused.text and "Traceback" not in refused.text
    assert ledger_serials(sso, "bob") == before


def test_a_wrong_or_replayed_code_is_refused_at_the_provider(sso):
    code = fresh_code(sso, "bob")
    _, first = provider_login(sso.layout.hub_url, "bob", None, code)
    assert first.url.startswith(f"{sso.layout.hub_url}/hub/spawn")
    _, replayed = provider_login(sso.layout.hub_url, "bob", None, code)
    assert "The username, password or one-time code is wrong." in replayed.text
    _, wrong = provider_login(sso.layout.hub_url, "bob", "not-bobs-password", fresh_code(sso, "bob"))
    assert "The username, password or one-time code is wrong." in wrong.text


def test_a_user_disabled_at_the_provider_is_asked_to_log_in_again_and_gets_no_certificate(sso):
    identity = sso.site.identity
    hub = HubClient(sso)
    try:
        with hub_settings(sso, RENEW_AT_EVERY_REFRESH):
            session, landed = provider_login(hub.url, "alice", None, fresh_code(sso, "alice"))
            assert landed.url.startswith(f"{hub.url}/hub/spawn")
            first, _ = hub.ssh_credential("alice")
            time.sleep(1.2)
            # While the provider knows her, each refresh renews (so the check below can fail).
            assert session.get(f"{hub.url}/hub/home", timeout=30).url == f"{hub.url}/hub/home"
            renewed, _ = hub.ssh_credential("alice")
            assert renewed.serial != first.serial
            identity.update_user("alice", disabled=True)
            try:
                issued_before = ledger_serials(sso, "alice")
                time.sleep(1.2)
                page = session.get(f"{hub.url}/hub/home", timeout=30)
                assert "/hub/login" in page.url or "/interaction/" in page.url, page.url
                assert ledger_serials(sso, "alice") == issued_before
                assert CredentialSet.from_auth_state(hub.auth_state("alice")).ssh.serial == renewed.serial
            finally:
                identity.update_user("alice", disabled=None)
    finally:
        hub.close()
