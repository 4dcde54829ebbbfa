"""An X.509 credential from a MyProxy server at login (the grid sites' way), kept beside the
SSH certificate in the credential set.

The MyProxy GET exchange (protocol version MYPROXYv2), over TLS; the server's certificate is
verified against the configured trust roots and its name checked:

    client: "0"                                    (the GSI delegation flag byte)
    client: VERSION=MYPROXYv2\\nCOMMAND=0\\nUSERNAME=u\\nPASSPHRASE=p\\nLIFETIME=s\\n\\0
    server: VERSION=MYPROXYv2\\nRESPONSE=0\\n       (1: ERROR=... lines)
    client: a certificate request (DER), for a key made here on the hub
    server: one byte N, then N certificates (DER, back to back: the new one first)
    server: VERSION=MYPROXYv2\\nRESPONSE=0\\n

The server either acts as an online CA (it checks the password with PAM and signs a
short-lived certificate for the user's mapped name) or holds a stored credential and signs
an RFC 3820 proxy; the exchange is the same. The request is a line protocol, so nothing the
user typed is sent before it is checked (check_login_values): the old gsiauthenticator
pasted the password in raw, so a newline in it could add request lines.

Renewal needs the password again: the credential's lifetime covers the login session, and
when it runs out the user logs in again. No JupyterHub here; the socket I/O runs in a thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import time
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .errors import ConfigurationError, CredentialError, IssuerUnavailable

PROTOCOL = "MYPROXYv2"
DEFAULT_PORT = 7512
# What MyProxy and the accounts behind it (PAM, LDAP) accept as a user name; nothing else is sent.
USERNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}")  # fullmatch: "$" would let "\n" through
MAX_PASSPHRASE_BYTES = 1024  # MAX_PASS_LEN in myproxy.h
MAX_REPLY = 1 << 20


class LoginValueRefused(CredentialError):
    """A user name or password the MyProxy protocol cannot carry; nothing was sent."""


@dataclass(frozen=True)
class X509Credential:
    """An X.509 key and certificate chain (end-entity or RFC 3820 proxy first), as PEM."""

    private_key: str  # PEM; secret
    certificate_chain: str  # PEM, the credential's own certificate first
    subject: str  # RFC 4514 form of the first certificate's subject
    valid_before: int  # epoch seconds
    issuer: str = "myproxy"

    kind = "x509"

    def remaining(self, now: float | None = None) -> float:
        return self.valid_before - (time.time() if now is None else now)

    def expired(self, now: float | None = None) -> bool:
        return self.remaining(now) <= 0

    def proxy_file(self) -> str:
        """The Globus proxy-file layout (X509_USER_PROXY): certificate, key, then the chain."""
        certs = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?",
                           self.certificate_chain, re.S)
        return certs[0] + self.private_key + "".join(certs[1:])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "X509Credential":
        try:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise CredentialError("your stored grid credential is unreadable; please log in again",
                                  f"malformed x509 credential in auth_state: {exc!r}") from exc

    def __repr__(self) -> str:  # never the private key in logs or tracebacks
        return f"X509Credential(subject={self.subject!r}, valid_before={self.valid_before}, issuer={self.issuer!r})"


# ----- pure pieces ----------------------------------------------------------------------------
def check_login_values(username: str, password: str) -> None:
    """Refuse what the line protocol cannot carry, before any byte goes to the server."""
    if not USERNAME.fullmatch(username or ""):
        raise LoginValueRefused(
            "your user name cannot be used to get a grid certificate (letters, digits and . _ @ - only)",
            f"MyProxy user name refused before sending: {username!r}")
    if not password:
        raise LoginValueRefused("a password is needed to get a grid certificate", "empty MyProxy passphrase")
    if any(ch in password for ch in "\n\r\0"):
        raise LoginValueRefused("your password contains a line break or NUL, which the grid certificate "
                                "service cannot accept", "MyProxy passphrase with a control character refused")
    if len(password.encode()) > MAX_PASSPHRASE_BYTES:
        raise LoginValueRefused("your password is too long for the grid certificate service",
                                f"MyProxy passphrase longer than {MAX_PASSPHRASE_BYTES} bytes")


def get_request(username: str, password: str, lifetime: int) -> bytes:
    check_login_values(username, password)
    return (f"VERSION={PROTOCOL}\nCOMMAND=0\nUSERNAME={username}\nPASSPHRASE={password}\n"
            f"LIFETIME={int(lifetime)}\n\0").encode()


def parse_response(data: bytes) -> tuple[int, list[str]]:
    """(RESPONSE code, ERROR lines) of a server reply; ValueError if it is not one."""
    fields: dict[str, list[str]] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    if fields.get("VERSION") != [PROTOCOL] or len(fields.get("RESPONSE", [])) != 1:
        raise ValueError(f"not a {PROTOCOL} reply: {data[:200]!r}")
    return int(fields["RESPONSE"][0]), fields.get("ERROR", [])


def der_length(buffer: bytes, offset: int) -> int | None:
    """Total length of the DER element at offset, or None if buffer holds too little of it."""
    if len(buffer) < offset + 2:
        return None
    first = buffer[offset + 1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4:
        raise ValueError("unsupported DER length")
    if len(buffer) < offset + 2 + count:
        return None
    return 2 + count + int.from_bytes(buffer[offset + 2:offset + 2 + count], "big")


def split_certificates(payload: bytes, count: int) -> tuple[list[x509.Certificate], int] | None:
    """The `count` DER certificates at the start of payload and the bytes they took, or None
    while more bytes are needed."""
    certs, offset = [], 0
    for _ in range(count):
        length = der_length(payload, offset)
        if length is None or len(payload) < offset + length:
            return None
        certs.append(x509.load_der_x509_certificate(payload[offset:offset + length]))
        offset += length
    return certs, offset


class _Replies:
    """The server's side of the exchange: NUL-terminated text replies (the server also sends
    empty ones, a lone NUL, which are skipped) and the certificate chain."""

    def __init__(self, conn, where: str):
        self.conn, self.where, self.buffer = conn, where, b""

    def _fill(self) -> None:
        more = self.conn.recv(65536)
        if not more:
            raise CredentialError("the grid certificate service ended the exchange early",
                                  f"myproxy {self.where}: connection closed after {self.buffer[:200]!r}")
        self.buffer += more
        if len(self.buffer) > MAX_REPLY:
            raise ValueError("reply too long")

    def message(self) -> bytes:
        while True:
            self.buffer = self.buffer.lstrip(b"\0")
            if b"\0" in self.buffer:
                text, _, self.buffer = self.buffer.partition(b"\0")
                return text
            self._fill()

    def certificates(self) -> list[x509.Certificate] | None:
        """The chain, or None when the server answered with a text reply instead (a refusal):
        a chain starts with its count (a small number), a reply with "VERSION=" or a NUL."""
        while len(self.buffer) < 2:
            self._fill()
        if self.buffer[:1] in (b"V", b"\0"):
            return None
        while (found := split_certificates(self.buffer[1:], self.buffer[0])) is None:
            self._fill()
        certs, used = found
        self.buffer = self.buffer[1 + used:]
        return certs


def new_key(key_type: str):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ConfigurationError(f"unknown key type {key_type!r}", f"myproxy key type {key_type!r}: rsa or ec")


def certificate_request(key, username: str) -> bytes:
    """A CSR for the key (the server sets the subject from the user's mapped name)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, username)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


# ----- the issuer -------------------------------------------------------------------------------
class MyProxyIssuer:
    """Gets an X.509 credential for a user from a MyProxy server with their password."""

    name = "myproxy"

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, ca_certs: str, server_name: str = "",
                 lifetime: int = 12 * 3600, key_type: str = "rsa", timeout: float = 20.0):
        if not ca_certs or not os.path.exists(ca_certs):
            raise ConfigurationError("the grid certificate service is not configured",
                                     f"myproxy: trust roots {ca_certs!r} missing; the server is always verified")
        self.host, self.port = host, int(port)
        self.server_name = server_name or host
        self.lifetime = int(lifetime)
        self.key_type = key_type
        self.timeout = timeout
        try:
            self.context = ssl.create_default_context(cafile=None if os.path.isdir(ca_certs) else ca_certs,
                                                      capath=ca_certs if os.path.isdir(ca_certs) else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError("the grid certificate service is not configured",
                                     f"myproxy: trust roots {ca_certs!r} unusable: {exc}") from None
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2

    async def issue(self, username: str, password: str | None) -> X509Credential:
        request = get_request(username, password or "", self.lifetime)  # refuses before connecting
        key = await asyncio.to_thread(new_key, self.key_type)
        csr = certificate_request(key, username)
        certs = await asyncio.to_thread(self._exchange, request, csr, username)
        own = certs[0]
        if own.public_key().public_numbers() != key.public_key().public_numbers():
            raise CredentialError("the grid certificate service returned a certificate for another key",
                                  f"myproxy {self.where}: certificate key does not match the request")
        return X509Credential(
            private_key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()).decode(),
            certificate_chain="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs),
            subject=own.subject.rfc4514_string(),
            valid_before=int(own.not_valid_after_utc.timestamp()),
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _exchange(self, request: bytes, csr: bytes, username: str) -> list[x509.Certificate]:
        unavailable = "the grid certificate service cannot be reached; try again in a few minutes"
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise IssuerUnavailable(unavailable, f"myproxy {self.where}: {exc!r}") from None
        try:
            with self.context.wrap_socket(raw, server_hostname=self.server_name) as conn:
                conn.sendall(b"0")
                conn.sendall(request)
                replies = _Replies(conn, self.where)
                self._expect_ok(replies.message(), username)
                conn.sendall(csr)
                certs = replies.certificates()
                self._expect_ok(replies.message(), username)  # after a refusal, raises its reason
                if not certs:
                    raise CredentialError("the grid certificate service sent no certificate",
                                          f"myproxy {self.where}: zero certificates")
                return certs
        except ssl.SSLCertVerificationError as exc:
            raise IssuerUnavailable("the grid certificate service could not be verified as the site's own, so the "
                                    "hub did not send your password to it; the centre's staff need to check it",
                                    f"myproxy {self.where}: server certificate refused: {exc}") from None
        except (OSError, ssl.SSLError) as exc:
            raise IssuerUnavailable(unavailable, f"myproxy {self.where}: {exc!r}") from None
        except ValueError as exc:
            raise CredentialError("the grid certificate service sent something the hub cannot read",
                                  f"myproxy {self.where}: {exc}") from None

    def _expect_ok(self, reply: bytes, username: str) -> None:
        code, errors = parse_response(reply)
        if code != 0:
            detail = f"myproxy {self.where} for {username}: RESPONSE={code} {' / '.join(errors)}"
            text = " ".join(errors).lower()
            if "pam" in text or "password" in text or "passphrase" in text or "authentic" in text:
                raise CredentialError("the grid certificate service did not accept your user name or password",
                                      detail)
            raise CredentialError("the grid certificate service refused to issue a certificate: "
                                  + (errors[0] if errors else "no reason given"), detail)
