"""One-time codes at a password login (the demo site's PAM stack): users who have enrolled
type their password and then the 6-digit code of their authenticator app; users who have not
give their password alone. Debian's libpam-google-authenticator checks the code (TOTP, each
code good once: DISALLOW_REUSE) and hands the password on to pam_unix, as NERSC's sshproxy
takes "password followed by code" in one field.

The hub's login form asks for the code in a field of its own (JupyterHub's `request_otp`);
hpchub-pam appends it to the password, and the password and code go through PAM exactly once
per login: on the hub, or, with the CA service as issuer, only in the CA service."""

from __future__ import annotations

import base64
import secrets
import shutil
from pathlib import Path

from .layout import HUB_OS_USER, STATE_ROOT
from .system import make_dir, write_file

PAM_SERVICE = "hpchub"
PAM_FILE = Path("/etc/pam.d") / PAM_SERVICE
OTP_DIR = STATE_ROOT / "otp"
"""Each enrolled user's secret, owned by the hub's user (the hub's PAM reads and updates it)."""


def pam_config() -> str:
    """The PAM stack (pure). `user=`: the module reads and writes the secrets as the hub's user,
    whether the hub (that user) or the CA service (root) runs it."""
    return (
        "# hpchub demo site: a password and, for users who have enrolled, the one-time code after it.\n"
        "# nullok: a user without a secret gives the password alone.\n"
        "auth [success=ok ignore=ignore default=die] pam_google_authenticator.so nullok forward_pass "
        f"no_increment_hotp secret={OTP_DIR}/${{USER}} user={HUB_OS_USER}\n"
        "auth required pam_unix.so try_first_pass\n"
        "account include common-account\n"
    )


def ensure_pam() -> None:
    make_dir(OTP_DIR, 0o700, owner=HUB_OS_USER)
    write_file(PAM_FILE, pam_config(), 0o644)


def enrol(user: str) -> str:
    """Give user a TOTP secret (as `google-authenticator -t -d -r 3 -R 30` would); its base32 text."""
    secret = base64.b32encode(secrets.token_bytes(10)).decode()
    path = OTP_DIR / user
    write_file(path, f'{secret}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n', 0o600)
    shutil.chown(path, HUB_OS_USER, HUB_OS_USER)
    return secret


def secret_of(user: str) -> str | None:
    """user's secret, or None if they have not enrolled."""
    try:
        return (OTP_DIR / user).read_text().splitlines()[0].strip()
    except (FileNotFoundError, IndexError):
        return None


def unenrol(user: str) -> None:
    (OTP_DIR / user).unlink(missing_ok=True)
