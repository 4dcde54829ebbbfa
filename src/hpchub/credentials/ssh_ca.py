"""An SSH user certificate authority: signs short-lived certificates with exactly one
principal, and keeps a ledger of what it signed (for revocation by user)."""

from __future__ import annotations

import re
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import asyncssh

from .errors import ConfigurationError, CredentialError
from .ledger import Ledger
from .model import SSHCredential

# POSIX portable user names as useradd accepts them by default (no dots, no upper case).
CLUSTER_USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
BACKDATE = 300  # seconds: tolerate clocks of login nodes a little behind the CA's


def check_cluster_username(name: str) -> str:
    if not CLUSTER_USERNAME.fullmatch(name or ""):  # fullmatch: "$" would let "alice\n" through
        raise CredentialError(
            f"{name!r} is not a valid username on the cluster; ask the centre's support to map your account",
            f"cluster username {name!r} does not match {CLUSTER_USERNAME.pattern}",
        )
    return name


def load_private_key(path: str | Path, what: str = "SSH CA key") -> asyncssh.SSHKey:
    """Load a private key that must exist, be readable by us and by nobody else."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigurationError(f"the {what} {path} does not exist") from None
    except PermissionError:
        raise ConfigurationError(f"the {what} {path} cannot be reached by this user") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"the {what} {path} is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"the {what} {path} is readable or writable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): make it 0600"
        )
    try:
        return asyncssh.read_private_key(str(path))
    except PermissionError:
        raise ConfigurationError(f"the {what} {path} cannot be read by this user") from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ConfigurationError(f"the {what} {path} is not a usable private key: {exc}") from None


@dataclass(frozen=True)
class CertificatePolicy:
    """What goes into each certificate besides its principal."""

    validity: int = 12 * 3600  # seconds
    source_addresses: Sequence[str] = field(default_factory=tuple)  # CIDRs the cert may be used from
    permit_pty: bool = True
    force_command: str | None = None


def certificate_facts(cert_line: str) -> dict:
    """Principals, key id, serial and validity of an OpenSSH certificate line."""
    cert = asyncssh.import_certificate(cert_line)
    # asyncssh keeps these without public accessors; read them in this one place.
    return {
        "principals": list(cert.principals),
        "key_id": cert._key_id,
        "serial": cert._serial,
        "valid_after": cert._valid_after,
        "valid_before": cert._valid_before,
        "options": dict(cert.options),
        "signing_key": cert.signing_key.export_public_key().decode().split()[1],
        "key": cert.key,
    }


class SSHCertificateAuthority:
    def __init__(self, key_path: str | Path, ledger_path: str | Path | None = None, name: str = "local-ca"):
        self.key_path = Path(key_path)
        self.key = load_private_key(self.key_path)
        self.ledger_path = Path(ledger_path) if ledger_path else None
        self.name = name
        try:
            self.ledger = Ledger(self.ledger_path) if self.ledger_path else None
        except OSError as exc:  # at start-up, not at the first login
            raise ConfigurationError(
                f"the CA's ledger {self.ledger_path} cannot be written ({exc.strerror}): give it a directory "
                "the CA's user owns (CredentialIssuingAuthenticator.ssh_ca_ledger, or CAService.ledger)") from None

    @property
    def public_key(self) -> str:
        return self.key.export_public_key().decode().strip()

    def sign(self, public_key: asyncssh.SSHKey, principal: str, key_id: str, serial: int,
             policy: CertificatePolicy, now: float | None = None) -> tuple[str, int, int]:
        """Sign public_key for principal; returns (certificate line, valid_after, valid_before)."""
        check_cluster_username(principal)
        now = int(time.time() if now is None else now)
        valid_after, valid_before = now - BACKDATE, now + int(policy.validity)
        cert = self.key.generate_user_certificate(
            public_key, key_id, serial=serial, principals=[principal],
            valid_after=valid_after, valid_before=valid_before,
            force_command=policy.force_command,
            source_address=list(policy.source_addresses) or None,
            permit_pty=policy.permit_pty,
            permit_x11_forwarding=False, permit_agent_forwarding=False,
            permit_port_forwarding=True,  # tunnels to users' servers need it
            permit_user_rc=True, touch_required=False,
            comment=key_id,
        )
        return cert.export_certificate().decode().strip(), valid_after, valid_before

    def issue(self, principal: str, issued_by: str, policy: CertificatePolicy,
              session_started: int | None = None) -> SSHCredential:
        """A fresh ed25519 key pair and its certificate for principal."""
        user_key = asyncssh.generate_private_key("ssh-ed25519")
        serial = secrets.randbits(63)
        key_id = f"hpchub hub={issued_by} user={principal} serial={serial}"
        certificate, valid_after, valid_before = self.sign(
            user_key.convert_to_public(), principal, key_id, serial, policy)
        self.record(serial, key_id, principal, valid_before, session_started)
        return SSHCredential(
            private_key=user_key.export_private_key().decode(),
            certificate=certificate, principal=principal, serial=serial, key_id=key_id,
            valid_after=valid_after, valid_before=valid_before, issuer=self.name,
        )

    def record(self, serial: int, key_id: str, principal: str, valid_before: int,
               session_started: int | None) -> None:
        """Into the ledger of signed certificates (what renewals and `hpchub ca revoke --user` read)."""
        if self.ledger is not None:
            self.ledger.record(serial, key_id, principal, valid_before, session_started)
