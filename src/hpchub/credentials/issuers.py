"""Issuers: where a user's credential comes from. The hub's authenticator holds one.

    issue(principal, proof, session_started)    -> SSHCredential   at login
    renew(principal, current, session_started)  -> SSHCredential   before expiry, no password
    issue_service_account(principal)            -> SSHCredential   the hub's own identity

`proof` is what the login showed (a LoginProof: the password, or the identity provider's
ID token): an issuer that checks the user itself (the CA service) needs one of them.
Renewal that needs the user raises LoginRequired; an unreachable issuer, IssuerUnavailable.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import ConfigurationError, IssuerUnavailable, LoginRequired
from .krl import RevocationListUnreadable, certificate_is_revoked
from .model import SSHCredential
from .ssh_ca import CertificatePolicy, SSHCertificateAuthority


@dataclass(frozen=True)
class LoginProof:
    """What a login showed, for an issuer that checks the user itself. Never logged."""

    password: str | None = None
    """The password as typed."""
    one_time_code: str | None = None
    """The login form's one-time code, where the site asks for one (`request_otp`)."""
    id_token: str | None = None
    """The identity provider's ID token (a signed JWT) from an OpenID Connect login."""

    @property
    def password_and_code(self) -> str | None:
        """The password with the code after it: one answer, as pam_google_authenticator's
        `forward_pass` and NERSC's sshproxy take them."""
        return None if self.password is None else f"{self.password}{self.one_time_code or ''}"

    def __repr__(self) -> str:  # never a secret in a log line or a traceback
        shown = {name: "***" if getattr(self, name) else None for name in ("password", "one_time_code", "id_token")}
        return f"LoginProof({', '.join(f'{k}={v}' for k, v in shown.items())})"


class Issuer:
    name = "issuer"
    checks_the_user = False
    """True when the issuer checks the login's proof itself (then the hub need not)."""

    async def issue(self, principal: str, proof: LoginProof, session_started: int) -> SSHCredential:
        raise NotImplementedError

    async def renew(self, principal: str, current: SSHCredential, session_started: int) -> SSHCredential:
        raise NotImplementedError

    async def issue_service_account(self, principal: str) -> SSHCredential:
        raise NotImplementedError


class LocalCAIssuer(Issuer):
    """The CA key lives on the hub host; certificates are signed in the hub process. It
    renews at will (no password needed) up to max_session (0: no limit), but never a
    certificate the revocation list (the KRL the login nodes read, if given) revokes."""

    name = "local-ca"

    def __init__(self, ca: SSHCertificateAuthority, policy: CertificatePolicy, hub_name: str, max_session: int = 0,
                 revoked_keys: str | Path | None = None):
        self.ca = ca
        self.policy = policy
        self.hub_name = hub_name
        self.max_session = max_session
        self.revoked_keys = Path(revoked_keys) if revoked_keys else None
        if self.revoked_keys is not None:  # said at start-up, not at the first renewal
            try:
                with self.revoked_keys.open("rb"):
                    pass
            except OSError as exc:
                raise ConfigurationError(
                    f"the revocation list {self.revoked_keys} (ssh_revoked_keys) cannot be read: {exc.strerror}; "
                    f"an empty one is made with `ssh-keygen -k -f {self.revoked_keys}`") from None

    async def issue(self, principal, proof, session_started):
        # Key generation and signing are CPU work of a millisecond or two; keep them off the loop anyway.
        return await asyncio.to_thread(self.ca.issue, principal, self.hub_name, self.policy, session_started)

    async def renew(self, principal, current, session_started):
        if self.max_session and time.time() - session_started > self.max_session:
            raise LoginRequired("your session has reached its maximum length; please log in again",
                                f"session of {principal} started {session_started}, max_session {self.max_session}")
        if self.revoked_keys is not None:
            try:
                revoked = await asyncio.to_thread(certificate_is_revoked, self.revoked_keys, current.certificate)
            except RevocationListUnreadable as exc:  # never renewed unchecked
                raise IssuerUnavailable("your credentials cannot be renewed just now; please try again later "
                                        "or tell your site's administrators",
                                        f"the revocation list {self.revoked_keys}: {exc}") from None
            if revoked:
                raise LoginRequired("your certificate has been revoked: please log in again",
                                    f"{current.key_id} (serial {current.serial}) is in {self.revoked_keys}")
        return await self.issue(principal, LoginProof(), session_started)

    async def issue_service_account(self, principal):
        return await self.issue(principal, LoginProof(), int(time.time()))


_ISSUER_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class IssuerSettings:
    """One entry of the authenticator's `extra_issuers`: the settings an issuer is made from,
    named as the authenticator's own (the main issuer's). Pure: checked, not opened."""

    where: str
    credential_issuer: str = "local-ca"
    ssh_ca_key: str = ""
    ssh_ca_ledger: str = ""
    ssh_revoked_keys: str = ""
    ca_service_url: str = ""
    ca_service_scope: str = "default"
    ca_service_token_file: str = ""
    ca_service_ca_bundle: str = ""
    ca_service_token: str = ""  # never from the configuration: from ca_service_token_file

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in ("where", "ca_service_token")]


def extra_issuer_settings(extra: dict) -> dict[str, IssuerSettings]:
    """The checked settings of each further issuer, by name. ConfigurationError names the
    entry and the key that is wrong."""
    found = {}
    for name, spec in extra.items():
        where = f"CredentialIssuingAuthenticator.extra_issuers[{name!r}]"
        if not isinstance(name, str) or not _ISSUER_NAME.fullmatch(name):
            raise ConfigurationError(f"{where}: an issuer's name is lower-case letters, digits and - "
                                     "(a letter first, at most 32)")
        if not isinstance(spec, dict):
            raise ConfigurationError(f"{where}: its settings must be a dict")
        unknown = sorted(set(spec) - set(IssuerSettings.keys()))
        if unknown:
            raise ConfigurationError(f"{where}: unknown keys {unknown} (known: {', '.join(IssuerSettings.keys())})")
        wrong = sorted(key for key, value in spec.items() if not isinstance(value, str))
        if wrong:
            raise ConfigurationError(f"{where}: {', '.join(wrong)} must be strings")
        settings = IssuerSettings(where=where, **spec)
        if settings.credential_issuer not in ("local-ca", "ca-service"):
            raise ConfigurationError(f"{where}: credential_issuer must be 'local-ca' or 'ca-service', "
                                     f"not {settings.credential_issuer!r}")
        if settings.credential_issuer == "ca-service" and not settings.ca_service_token_file:
            raise ConfigurationError(f"{where}: a CA service needs ca_service_token_file (the hub's token for "
                                     "that service; the main issuer's token is never sent to another)")
        found[name] = settings
    return found
