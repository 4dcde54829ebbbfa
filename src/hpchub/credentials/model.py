"""The contract between authenticators and spawners: a small, versioned structure kept in
JupyterHub's encrypted ``auth_state`` under one key, holding several credentials by kind.

    auth_state = {
        ...whatever the underlying authenticator keeps...,
        "hpchub_credentials": {
            "version": 1,
            "session_started": 1764100000,        # the login that began this session
            "credentials": {"ssh": {...}, "x509": {...}},   # x509: from MyProxy, optional
        },
    }

Where clusters trust different SSH user CAs, the user has one certificate from each: the main
issuer's under "ssh", a further issuer's under "ssh/NAME" (the authenticator's
`extra_issuers`; a cluster names the one its login nodes trust). A hub of an older version
drops the kinds it does not know, so these need no new version.

Spawners read it with ``CredentialSet.from_auth_state(await user.get_auth_state())`` and
never dig in raw dicts. Pure: no I/O.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import CredentialError
from .myproxy import X509Credential

CREDENTIALS_KEY = "hpchub_credentials"
VERSION = 1


@dataclass(frozen=True)
class SSHCredential:
    """An SSH key pair with a user certificate from the site's CA."""

    private_key: str  # OpenSSH private key format; secret
    certificate: str  # one line, "ssh-ed25519-cert-v01@openssh.com AAAA... comment"
    principal: str  # the cluster username: the certificate's only principal
    serial: int
    key_id: str
    valid_after: int  # epoch seconds
    valid_before: int
    issuer: str  # the issuer's name, e.g. "local-ca" or "ca-service"

    kind = "ssh"

    def remaining(self, now: float | None = None) -> float:
        """Seconds of validity left (negative once expired)."""
        return self.valid_before - (time.time() if now is None else now)

    def expired(self, now: float | None = None) -> bool:
        return self.remaining(now) <= 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SSHCredential":
        try:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise CredentialError("your stored credentials are unreadable; please log in again",
                                  f"malformed ssh credential in auth_state: {exc!r}") from exc

    def __repr__(self) -> str:  # never show the private key in logs or tracebacks
        return (f"SSHCredential(principal={self.principal!r}, serial={self.serial}, "
                f"key_id={self.key_id!r}, valid_before={self.valid_before}, issuer={self.issuer!r})")


_KINDS = {"ssh": SSHCredential, "x509": X509Credential}
MAIN_ISSUER = ""
"""The name of the authenticator's own issuer, in `ssh_slot` and a cluster's `issuer`."""


def ssh_slot(issuer: str = MAIN_ISSUER) -> str:
    """Where the certificate from `issuer` is kept in a CredentialSet."""
    return "ssh" if issuer == MAIN_ISSUER else f"ssh/{issuer}"


def _kind_of(slot: str):
    return _KINDS.get(slot.split("/", 1)[0] if slot.startswith("ssh/") else slot)


@dataclass
class CredentialSet:
    session_started: int
    credentials: dict[str, Any] = field(default_factory=dict)

    @property
    def ssh(self) -> SSHCredential | None:
        return self.credentials.get("ssh")

    @property
    def x509(self) -> X509Credential | None:
        return self.credentials.get("x509")

    def ssh_from(self, issuer: str = MAIN_ISSUER) -> SSHCredential | None:
        """The certificate from that issuer (MAIN_ISSUER: the authenticator's own)."""
        return self.credentials.get(ssh_slot(issuer))

    def ssh_issuers(self) -> list[str]:
        """The issuers this set holds a certificate from, the main one first."""
        return sorted((MAIN_ISSUER if slot == "ssh" else slot[4:]) for slot in self.credentials
                      if slot == "ssh" or slot.startswith("ssh/"))

    def with_credential(self, credential, issuer: str = MAIN_ISSUER) -> "CredentialSet":
        slot = ssh_slot(issuer) if credential.kind == "ssh" else credential.kind
        return CredentialSet(self.session_started, {**self.credentials, slot: credential})

    @classmethod
    def from_auth_state(cls, auth_state: dict | None) -> "CredentialSet | None":
        """The credentials in auth_state, or None if it holds none."""
        if not auth_state or CREDENTIALS_KEY not in auth_state:
            return None
        data = auth_state[CREDENTIALS_KEY]
        version = data.get("version")
        if version != VERSION:
            raise CredentialError("your stored credentials come from another hpchub version; please log in again",
                                  f"auth_state credentials version {version!r}, expected {VERSION}")
        credentials = {}
        for slot, value in data.get("credentials", {}).items():
            kind = _kind_of(slot)
            if kind is not None:  # kinds this version does not know are dropped, not fatal
                credentials[slot] = kind.from_dict(value)
        return cls(int(data["session_started"]), credentials)

    def to_auth_state(self, auth_state: dict | None = None) -> dict:
        """auth_state with these credentials in it; other keys are kept as they are."""
        merged = dict(auth_state or {})
        merged[CREDENTIALS_KEY] = {
            "version": VERSION,
            "session_started": self.session_started,
            "credentials": {slot: cred.to_dict() for slot, cred in self.credentials.items()},
        }
        return merged
