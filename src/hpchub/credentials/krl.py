"""Certificate revocation: an OpenSSH key revocation list (KRL) that login nodes read
through sshd's ``RevokedKeys``. Built with ssh-keygen, from the CA's ledger."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable

from .errors import CredentialError
from .ledger import read_entries


def revocation_spec(serials: Iterable[int] = (), key_ids: Iterable[str] = ()) -> str:
    """ssh-keygen's KRL specification: one "serial:" or "id:" line per revoked certificate."""
    lines = [f"serial: {int(s)}" for s in serials]
    for key_id in key_ids:
        if "\n" in key_id:
            raise ValueError("a key id cannot contain a newline")
        lines.append(f"id: {key_id}")
    return "".join(line + "\n" for line in lines)


def serials_of_user(ledger_path: str | Path, principal: str, now: float | None = None) -> list[int]:
    """Serials of the principal's certificates that are still valid (expired ones need no entry)."""
    now = time.time() if now is None else now
    return [e["serial"] for e in read_entries(ledger_path) if e["principal"] == principal and e["valid_before"] > now]


def _ssh_keygen(argv: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ssh-keygen", *argv], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise CredentialError("updating the revocation list failed",
                              f"ssh-keygen {' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def ensure_krl(krl_path: str | Path) -> None:
    """An empty KRL if there is none (sshd refuses every key if RevokedKeys is missing)."""
    krl_path = Path(krl_path)
    if not krl_path.exists():
        _ssh_keygen(["-q", "-k", "-f", str(krl_path)])
        krl_path.chmod(0o644)


def revoke(krl_path: str | Path, ca_public_key: str | Path, serials: Iterable[int] = (),
           key_ids: Iterable[str] = ()) -> int:
    """Add certificates to the KRL; returns how many entries were added."""
    spec = revocation_spec(serials, key_ids)
    if not spec:
        return 0
    ensure_krl(krl_path)
    with tempfile.NamedTemporaryFile("w", prefix="krl-spec-") as spec_file:
        spec_file.write(spec)
        spec_file.flush()
        _ssh_keygen(["-q", "-k", "-u", "-f", str(krl_path), "-s", str(ca_public_key), spec_file.name])
    return spec.count("\n")


class RevocationListUnreadable(Exception):
    """The KRL could not be read: nothing can be said of any certificate (sshd, in the same
    case, refuses every key), so the caller must not take it for "not revoked"."""


def is_revoked(krl_path: str | Path, certificate_file: str | Path) -> bool:
    argv = ["ssh-keygen", "-Q", "-f", str(krl_path), str(certificate_file)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if proc.returncode == 1 and proc.stdout.rstrip().endswith(": REVOKED"):
        return True
    if proc.returncode == 0 and proc.stdout.rstrip().endswith(": ok"):
        return False
    raise RevocationListUnreadable(f"{' '.join(argv)} exited {proc.returncode}: "
                                   f"{(proc.stderr or proc.stdout).strip()[-500:]}")


def certificate_is_revoked(krl_path: str | Path, certificate: str) -> bool:
    """is_revoked for a certificate given as its OpenSSH text (ssh-keygen reads only files)."""
    with tempfile.NamedTemporaryFile("w", prefix="hpchub-renew-", suffix="-cert.pub") as cert_file:
        cert_file.write(certificate + "\n")
        cert_file.flush()
        return is_revoked(krl_path, cert_file.name)
