"""The authenticator mixin's logic, over a stand-in base authenticator (pure: no hub)."""

from __future__ import annotations

import subprocess
import time

import pytest
from jupyterhub.auth import Authenticator
from tornado import web

from hpchub.auth import CredentialIssuingAuthenticator
from hpchub.credentials import CredentialSet
from hpchub.credentials.errors import ConfigurationError
from hpchub.credentials.ssh_ca import certificate_facts


class PasswordBase(Authenticator):
    """Accepts any user whose password is "pw" (a stand-in for PAM or LDAP)."""

    async def authenticate(self, handler, data):
        return data["username"] if data.get("password") == "pw" else None


class OAuthLikeBase(Authenticator):
    """Returns a dict with its own auth_state and no password (a stand-in for OAuth)."""

    async def authenticate(self, handler, data):
        return {"name": data["username"], "auth_state": {"access_token": "tok"}}


class Issuing(CredentialIssuingAuthenticator, PasswordBase):
    pass


class IssuingOAuth(CredentialIssuingAuthenticator, OAuthLikeBase):
    pass


class FakeUser:
    def __init__(self, name, auth_state):
        self.name = name
        self.auth_state = auth_state

    async def get_auth_state(self):
        return self.auth_state


@pytest.fixture
def ca_key(tmp_path):
    path = tmp_path / "user_ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path)


def test_defaults_keep_and_refresh_auth_state(ca_key):
    auth = Issuing(ssh_ca_key=ca_key)
    assert auth.enable_auth_state and auth.refresh_pre_spawn and auth.refresh_pre_stop
    assert auth.certificate_validity == 12 * 3600


def test_misconfigured_ca_fails_at_start_up(tmp_path, ca_key):
    with pytest.raises(ConfigurationError, match="ssh_ca_key"):
        Issuing()
    with pytest.raises(ConfigurationError, match="does not exist"):
        Issuing(ssh_ca_key=str(tmp_path / "missing"))
    (tmp_path / "user_ca").chmod(0o644)
    with pytest.raises(ConfigurationError, match="group or others"):
        Issuing(ssh_ca_key=ca_key)
    with pytest.raises(Exception, match="local-ca"):
        Issuing(ssh_ca_key=ca_key, credential_issuer="magic")


async def test_login_issues_a_certificate_for_the_mapped_cluster_user(ca_key):
    auth = Issuing(ssh_ca_key=ca_key, hub_name="testhub", cluster_usernames={"Alice@Uni": "alice"})
    result = await auth.authenticate(None, {"username": "Alice@Uni", "password": "pw"})
    creds = CredentialSet.from_auth_state(result["auth_state"])
    facts = certificate_facts(creds.ssh.certificate)
    assert result["name"] == "Alice@Uni" and facts["principals"] == ["alice"]
    assert facts["key_id"].startswith("hpchub hub=testhub user=alice serial=")
    assert await auth.authenticate(None, {"username": "x", "password": "wrong"}) is None


async def test_a_name_that_is_no_cluster_username_is_refused_clearly(ca_key):
    auth = Issuing(ssh_ca_key=ca_key)
    with pytest.raises(web.HTTPError) as info:
        await auth.authenticate(None, {"username": "Bad Name", "password": "pw"})
    assert info.value.status_code == 403 and "not a valid username on the cluster" in info.value.jupyterhub_message


async def test_oauth_logins_without_password_work_with_the_local_ca_and_keep_their_state(ca_key):
    auth = IssuingOAuth(ssh_ca_key=ca_key)
    result = await auth.authenticate(None, {"username": "carol"})
    assert result["auth_state"]["access_token"] == "tok"
    assert CredentialSet.from_auth_state(result["auth_state"]).ssh.principal == "carol"


async def test_refresh_keeps_a_fresh_certificate_and_renews_one_running_low(ca_key):
    auth = Issuing(ssh_ca_key=ca_key, certificate_validity=7200, renew_when_remaining=600)
    result = await auth.authenticate(None, {"username": "alice", "password": "pw"})
    user = FakeUser("alice", result["auth_state"])
    assert await auth.refresh_user(user) is True
    auth.renew_when_remaining = 7200 + 60  # now every certificate counts as running low
    refreshed = await auth.refresh_user(user)
    old, new = (CredentialSet.from_auth_state(s).ssh for s in (result["auth_state"], refreshed["auth_state"]))
    assert new.serial != old.serial and new.principal == "alice"
    assert CredentialSet.from_auth_state(refreshed["auth_state"]).session_started == \
        CredentialSet.from_auth_state(result["auth_state"]).session_started


async def test_refresh_past_the_session_limit_or_without_credentials_asks_for_login(ca_key):
    auth = Issuing(ssh_ca_key=ca_key, max_session_length=60, renew_when_remaining=10**6)
    result = await auth.authenticate(None, {"username": "alice", "password": "pw"})
    state = result["auth_state"]
    creds = CredentialSet.from_auth_state(state)
    aged = CredentialSet(int(time.time()) - 120, creds.credentials).to_auth_state(state)
    assert await auth.refresh_user(FakeUser("alice", aged)) is False
    assert await auth.refresh_user(FakeUser("alice", None)) is False
    assert await auth.refresh_user(FakeUser("alice", {"hpchub_credentials": {"version": 0}})) is False


async def test_service_account_credential_is_cached_until_it_runs_low(ca_key):
    auth = Issuing(ssh_ca_key=ca_key)
    first = await auth.service_account_credential()
    assert first.principal == "hpchub" and await auth.service_account_credential() is first
    # A cluster's own service account: its own certificate, from the same issuer, cached as well.
    other = await auth.service_account_credential("ge-hub")
    assert other.principal == "ge-hub" and await auth.service_account_credential("ge-hub") is other
    assert await auth.service_account_credential() is first


SYSTEM_TRUST = "/etc/ssl/certs/ca-certificates.crt"


def test_unusable_myproxy_trust_roots_fail_at_start_up(ca_key, tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    for roots in (str(empty), str(tmp_path / "missing"), ""):
        with pytest.raises(ConfigurationError):
            Issuing(ssh_ca_key=ca_key, myproxy_server="127.0.0.1", myproxy_ca_certs=roots)


def _grid(seconds_left: int):
    from hpchub.credentials import X509Credential

    return X509Credential("KEY", "CERT", "CN=alice", int(time.time()) + seconds_left)


async def test_a_grid_credential_running_out_asks_for_a_new_login_since_renewal_needs_the_password(ca_key):
    trust = SYSTEM_TRUST  # no MyProxy exchange happens in refresh
    auth = Issuing(ssh_ca_key=ca_key, myproxy_server="127.0.0.1", myproxy_ca_certs=str(trust),
                   myproxy_min_remaining=600)
    result = await Issuing(ssh_ca_key=ca_key).authenticate(None, {"username": "alice", "password": "pw"})
    creds = CredentialSet.from_auth_state(result["auth_state"])
    plenty = creds.with_credential(_grid(3600)).to_auth_state()
    assert await auth.refresh_user(FakeUser("alice", plenty)) is True
    low = creds.with_credential(_grid(300)).to_auth_state()
    assert await auth.refresh_user(FakeUser("alice", low)) is False


async def test_an_unreachable_myproxy_server_does_not_stop_the_login(ca_key):
    import socket

    trust = SYSTEM_TRUST
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once the socket closes
    auth = Issuing(ssh_ca_key=ca_key, myproxy_server="127.0.0.1", myproxy_port=port, myproxy_ca_certs=str(trust))
    result = await auth.authenticate(None, {"username": "alice", "password": "pw"})
    creds = CredentialSet.from_auth_state(result["auth_state"])
    assert creds.ssh.principal == "alice" and creds.x509 is None


async def test_with_a_static_service_key_a_cluster_naming_another_account_gets_a_clear_error(ca_key, tmp_path):
    from hpchub.credentials import CredentialError

    from .test_static_account import write_pair

    path, _ = write_pair(tmp_path)
    auth = Issuing(ssh_ca_key=ca_key, service_account_key=str(path))
    assert (await auth.service_account_credential()).principal == "hpchub"
    assert (await auth.service_account_credential("hpchub")).principal == "hpchub"
    with pytest.raises(CredentialError) as refused:
        await auth.service_account_credential("ge-hub")
    assert "holds a certificate for 'hpchub' only" in refused.value.log_detail
