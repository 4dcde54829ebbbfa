"""The demo site's identity provider: a real OpenID Connect provider (the npm package
oidc-provider, OpenID-certified) with the site's users, as a centre's single sign-on. Its
login asks for the password and, for users enrolled in it, a TOTP code (RFC 6238), and says
which it checked in the ID token's `amr` claim. It runs on the hub side, beside the hub.

Node.js code lives in `oidc_provider/`; this module installs it (npm ci, once, into
SOFTWARE_ROOT), writes its configuration and keys, and starts it as a daemon of the site."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import struct
import subprocess
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from .hub import hub_netns_path
from .layout import DEMO_USERS, HUB_OS_USER, SOFTWARE_ROOT, SiteLayout
from .nodes import Nodes
from .system import SiteError, demo_passwords, make_dir, run, say, wait_for, write_file

PROVIDER_SOURCE = Path(__file__).parent / "oidc_provider"
PROVIDER_ENV = SOFTWARE_ROOT / "oidc-provider"
"""Where the provider's code and its node_modules are installed (shared by site instances)."""

SCRYPT = {"n": 16384, "r": 8, "p": 1, "dklen": 32}  # as provider.mjs checks passwords


def client_id(site: SiteLayout) -> str:
    return f"hpchub-{site.name}"


def issuer_url(site: SiteLayout) -> str:
    return f"http://{site.hub_address}:{site.oidc_port}"


def totp(secret: str, at: float | None = None, step_offset: int = 0) -> str:
    """The RFC 6238 code (30 s, 6 digits, SHA-1) of a base32 secret: what an authenticator
    app shows (the tests compute codes with it)."""
    counter = int((time.time() if at is None else at) // 30) + step_offset
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def _user_record(password: str, totp_secret: str | None) -> dict:
    salt = secrets.token_bytes(16)
    record = {"salt": salt.hex(),
              "password_scrypt": hashlib.scrypt(password.encode(), salt=salt, **SCRYPT).hex()}
    if totp_secret:
        record["totp_secret"] = totp_secret
    return record


def _rsa_jwk() -> dict:
    """A private RS256 signing key as a JWK (the provider's; tokens survive its restarts)."""
    def b64(number: int) -> str:
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = key.private_numbers(), key.public_key().public_numbers()
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": secrets.token_hex(8),
            "n": b64(public.n), "e": b64(public.e), "d": b64(private.d), "p": b64(private.p), "q": b64(private.q),
            "dp": b64(private.dmp1), "dq": b64(private.dmq1), "qi": b64(private.iqmp)}


class IdentityProvider:
    def __init__(self, site: SiteLayout, nodes: Nodes):
        self.site = site
        self.nodes = nodes

    @property
    def directory(self) -> Path:
        return self.site.state_dir / "oidc"

    @property
    def users_file(self) -> Path:
        return self.directory / "users.json"

    @property
    def client_secret_file(self) -> Path:
        """The hub's client secret, readable by the hub's user only."""
        return self.site.hub_dir / "oidc-client-secret"

    # ----- users ----------------------------------------------------------------------
    def users(self) -> dict:
        return json.loads(self.users_file.read_text())

    def totp_secret(self, user: str) -> str | None:
        return self.users()[user].get("totp_secret")

    def update_user(self, user: str, **changes) -> None:
        """Change a user at the provider (`disabled=True`, `totp_secret=None`): it reads the
        file at every login and token request."""
        users = self.users()
        for key, value in changes.items():
            if value is None:
                users[user].pop(key, None)
            else:
                users[user][key] = value
        write_file(self.users_file, json.dumps(users, indent=1) + "\n", 0o600)

    def _ensure_users(self) -> None:
        passwords = demo_passwords()
        users = self.users() if self.users_file.exists() else {}
        changed = False
        for user in DEMO_USERS:
            record = users.get(user)
            fresh = record is not None and hmac.compare_digest(
                bytes.fromhex(record["password_scrypt"]),
                hashlib.scrypt(passwords[user].encode(), salt=bytes.fromhex(record["salt"]), **SCRYPT))
            if not fresh:  # every demo user is enrolled in TOTP; tests change that per user
                users[user] = _user_record(passwords[user], base64.b32encode(secrets.token_bytes(20)).decode())
                changed = True
        if changed or not self.users_file.exists():
            write_file(self.users_file, json.dumps(users, indent=1) + "\n", 0o600)

    # ----- install and run ----------------------------------------------------------------
    def _ensure_installed(self) -> None:
        lock = (PROVIDER_SOURCE / "package-lock.json").read_text()
        installed = PROVIDER_ENV / "package-lock.json"
        if not (installed.exists() and installed.read_text() == lock and (PROVIDER_ENV / "node_modules").is_dir()):
            if shutil.which("node") is None or shutil.which("npm") is None:
                raise SiteError("the demo's OpenID Connect provider needs Node.js and npm: "
                                "run scripts/install-deps.sh (apt-get install nodejs npm)")
            version = run(["node", "--version"]).stdout.strip()
            if int(version.lstrip("v").split(".")[0]) < 20:
                raise SiteError(f"the demo's OpenID Connect provider (oidc-provider 9) needs Node.js 20 or newer, "
                                f"this machine has {version}")
            say(f"  identity: installing the OpenID Connect provider into {PROVIDER_ENV}")
            make_dir(PROVIDER_ENV, 0o755)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(PROVIDER_SOURCE / name, PROVIDER_ENV / name)
            run(["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--prefix", str(PROVIDER_ENV)], timeout=600)
        shutil.copy(PROVIDER_SOURCE / "provider.mjs", PROVIDER_ENV / "provider.mjs")

    def _config(self) -> dict:
        site = self.site
        secret_file = self.client_secret_file
        if not secret_file.exists():
            write_file(secret_file, secrets.token_urlsafe(32) + "\n", 0o600, owner=HUB_OS_USER)
        stored = self.directory / "keys.json"
        if not stored.exists():
            write_file(stored, json.dumps({"jwks": {"keys": [_rsa_jwk()]},
                                           "cookie_keys": [secrets.token_urlsafe(32)]}) + "\n", 0o600)
        keys = json.loads(stored.read_text())
        return {
            "issuer": issuer_url(site), "address": site.hub_address, "port": site.oidc_port,
            "users_file": str(self.users_file), "jwks": keys["jwks"], "cookie_keys": keys["cookie_keys"],
            "clients": [{
                "client_id": client_id(site), "client_secret": secret_file.read_text().strip(),
                "redirect_uris": [f"{site.hub_url}/hub/oauth_callback"],
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }],
        }

    def ensure(self) -> None:
        make_dir(self.directory, 0o700)
        self._ensure_installed()
        self._ensure_users()
        changed = write_file(self.directory / "config.json", json.dumps(self._config(), indent=1) + "\n", 0o600)
        if changed:
            self.nodes.stop_daemon("oidc-provider")
        if self.nodes.daemon("oidc-provider") is None:
            say(f"  identity: starting the OpenID Connect provider at {issuer_url(self.site)}")
            argv = ["node", str(PROVIDER_ENV / "provider.mjs"), str(self.directory / "config.json")]
            netns = hub_netns_path(self.site)
            if netns:
                argv = ["nsenter", f"--net={netns}", *argv]
            self.nodes.start_process("oidc-provider", argv, cwd=PROVIDER_ENV)
        wait_for("the OpenID Connect provider to answer", self.answers, timeout=30)

    def answers(self) -> bool:
        probe = ["python3", "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)",
                 f"{issuer_url(self.site)}/.well-known/openid-configuration"]
        netns = hub_netns_path(self.site)
        if netns:
            probe = ["nsenter", f"--net={netns}", *probe]
        return subprocess.run(probe, capture_output=True).returncode == 0
