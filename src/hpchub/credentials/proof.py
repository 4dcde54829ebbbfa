"""Pure pieces of the CA service: rate limits, challenges for proof of possession, and the
sshproxy-compatible response format."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import defaultdict, deque

CHALLENGE_MAX_AGE = 60  # seconds


class RateLimiter:
    """At most `limit` events per `window` seconds for each key (sliding window)."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._events: dict[str, deque] = defaultdict(deque)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        events = self._events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True


def make_challenge(secret: bytes, now: float | None = None) -> str:
    """A stateless challenge: time, nonce and an HMAC over both (the server checks it back)."""
    stamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_urlsafe(16)
    mac = hmac.new(secret, f"{stamp}.{nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{stamp}.{nonce}.{mac}"


def check_challenge(secret: bytes, challenge: str, now: float | None = None,
                    max_age: float = CHALLENGE_MAX_AGE) -> str | None:
    """The challenge's nonce if it is ours and fresh, else None."""
    try:
        stamp, nonce, mac = challenge.split(".")
        issued = int(stamp)
    except ValueError:
        return None
    expected = hmac.new(secret, f"{stamp}.{nonce}".encode(), hashlib.sha256).hexdigest()
    now = time.time() if now is None else now
    if not hmac.compare_digest(mac, expected) or not (0 <= now - issued <= max_age):
        return None
    return nonce


def challenge_message(challenge: str, new_public_key: str) -> bytes:
    """What the hub signs with the current key: the challenge bound to the key to be certified."""
    return f"hpchub-renew\n{challenge}\n{new_public_key.strip()}\n".encode()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def pair_response(private_key: str, certificate: str) -> str:
    """sshproxy's answer to /create_pair: the private key, then the certificate line."""
    return private_key.rstrip("\n") + "\n" + certificate.strip() + "\n"


def parse_pair_response(text: str) -> tuple[str, str]:
    end = "-----END OPENSSH PRIVATE KEY-----"
    if end not in text:
        raise ValueError("no OpenSSH private key in the response")
    key, _, rest = text.partition(end)
    certificate = rest.strip().splitlines()[0].strip() if rest.strip() else ""
    if "-cert-v01@openssh.com " not in certificate:
        raise ValueError("no certificate after the private key in the response")
    return key + end + "\n", certificate


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)
