"""The service account's static key and certificate (for a CA without /service_pair/)."""

from __future__ import annotations

import os
import time

import asyncssh
import pytest

from hpchub.credentials.errors import ConfigurationError, IssuerUnavailable
from hpchub.credentials.static_account import StaticServiceAccount

CA = asyncssh.generate_private_key("ssh-ed25519")


def write_pair(directory, principal="hpchub", valid=3600, key=None, serial=1):
    key = key or asyncssh.generate_private_key("ssh-ed25519")
    path = directory / "id_ed25519"
    path.write_bytes(key.export_private_key())
    path.chmod(0o600)
    now = int(time.time())
    cert = CA.generate_user_certificate(key, "static", principals=[principal], serial=serial,
                                        valid_after=now - 60, valid_before=now + valid)
    (directory / "id_ed25519-cert.pub").write_bytes(cert.export_certificate())
    return path, key


def test_the_key_and_its_certificate_make_the_credential_and_a_renewed_certificate_is_read(tmp_path):
    path, key = write_pair(tmp_path)
    account = StaticServiceAccount("hpchub", path)
    first = account.current()
    assert first.principal == "hpchub" and first.serial == 1 and not first.expired()
    write_pair(tmp_path, key=key, serial=2)  # the site's cron job renews the certificate
    stamp = time.time() + 5
    os.utime(tmp_path / "id_ed25519-cert.pub", (stamp, stamp))
    assert account.current().serial == 2


def test_an_expired_certificate_is_a_clear_error_for_the_log(tmp_path):
    path, _ = write_pair(tmp_path, valid=-30)
    with pytest.raises(IssuerUnavailable) as info:
        StaticServiceAccount("hpchub", path).current()
    assert "expired" in info.value.log_detail and "renew it" in info.value.log_detail


@pytest.mark.parametrize("problem", ["other principal", "other key", "open key", "no certificate"])
def test_a_pair_that_does_not_fit_is_refused_at_start_up(tmp_path, problem):
    path, _ = write_pair(tmp_path, principal="alice" if problem == "other principal" else "hpchub")
    if problem == "other key":
        path.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    elif problem == "open key":
        path.chmod(0o644)
    elif problem == "no certificate":
        (tmp_path / "id_ed25519-cert.pub").unlink()
    with pytest.raises(ConfigurationError):
        StaticServiceAccount("hpchub", path)
