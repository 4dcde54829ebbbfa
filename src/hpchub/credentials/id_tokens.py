"""Verifying an identity provider's ID tokens (OpenID Connect), for the CA service: it signs a
certificate for the user an ID token names, so the CA key need not sit on the hub host.

The same checks as Kubernetes' OIDC authenticator: the signature against the provider's
published keys (JWKS), the issuer, the audience (the client id of the hub presenting it),
expiry; then one stated rule from a claim to a cluster username:

    username = claims[username_claim], with "@" + username_domain removed from its end when
    username_domain is set (a name in another domain is refused), then checked as a
    cluster username (check_cluster_username).

and, where a second factor is required, at least one of `required_amr` in the token's `amr`
claim (RFC 8176 values such as "otp", "mfa", "hwk")."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt

from .errors import CredentialError
from .ssh_ca import check_cluster_username

SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
CLOCK_SKEW = 30  # seconds of leeway for exp, iat and nbf


class TokenRejected(Exception):
    """An ID token that does not prove who the user is. `code` is the service's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class IDTokenRule:
    """How ID tokens of one provider are checked and mapped to cluster usernames."""

    issuer: str
    username_claim: str = "preferred_username"
    username_domain: str = ""
    required_amr: tuple[str, ...] = field(default_factory=tuple)

    def username(self, claims: dict) -> str:
        value = claims.get(self.username_claim)
        if not isinstance(value, str) or not value:
            raise TokenRejected("bad_token", f"the token has no {self.username_claim!r} claim")
        if self.username_domain:
            local, at, domain = value.rpartition("@")
            if not at or domain.lower() != self.username_domain.lower():
                raise TokenRejected("unknown_user", f"{self.username_claim} is not a name in {self.username_domain}")
            value = local
        try:
            return check_cluster_username(value)
        except CredentialError as exc:
            raise TokenRejected("unknown_user", exc.user_message) from None

    def check_second_factor(self, claims: dict) -> None:
        if not self.required_amr:
            return
        shown = claims.get("amr")
        if not isinstance(shown, list) or not set(self.required_amr) & {m for m in shown if isinstance(m, str)}:
            raise TokenRejected("second_factor_required",
                                f"the sign-in did not use a second factor (amr {shown!r}; "
                                f"one of {list(self.required_amr)} is required)")


def verify_id_token(token: str, audience: str, rule: IDTokenRule,
                    signing_key_for: Callable[[str], object], now: float | None = None) -> tuple[str, dict]:
    """(cluster username, claims) of a valid ID token issued for `audience`; TokenRejected otherwise.
    `signing_key_for(token)` finds the provider's key that signed it (the JWKS client)."""
    now = time.time() if now is None else now
    try:
        key = signing_key_for(token)
        # The times are checked below against `now` (PyJWT would read the clock itself).
        claims = jwt.decode(token, key, algorithms=SIGNING_ALGORITHMS, audience=audience, issuer=rule.issuer,
                            options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.InvalidAudienceError:
        raise TokenRejected("bad_token", "the token was issued to another client") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected("bad_token", "the token comes from another identity provider") from None
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenRejected("bad_token", f"the token is not valid: {exc}") from None
    times = [claims.get(name) for name in ("exp", "iat", "nbf")]
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in times[:2]) or \
            (times[2] is not None and not isinstance(times[2], (int, float))):
        raise TokenRejected("bad_token", "the token's times are not numbers")
    if claims["exp"] + CLOCK_SKEW < now:
        raise TokenRejected("bad_token", "the token has expired")
    if claims["iat"] - CLOCK_SKEW > now or (claims.get("nbf") is not None and claims["nbf"] - CLOCK_SKEW > now):
        raise TokenRejected("bad_token", "the token is not valid yet")
    # With several audiences, the client it was issued to must be this one (OIDC Core 3.1.3.7).
    if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and claims.get("azp") != audience:
        raise TokenRejected("bad_token", "the token was issued to another client")
    rule.check_second_factor(claims)
    return rule.username(claims), claims


class ProviderKeys:
    """The provider's signing keys, from its JWKS (found through its discovery document unless
    given), fetched over verified HTTPS (or HTTP on loopback, for a demo) and cached."""

    def __init__(self, issuer: str, jwks_url: str = "", ca_bundle: str = "", timeout: float = 10):
        self.issuer = issuer.rstrip("/")
        self.jwks_url = jwks_url
        self.context = ssl.create_default_context(cafile=ca_bundle or None)
        self.timeout = timeout
        self._client: jwt.PyJWKClient | None = None

    def _discover(self) -> str:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout, context=self.context) as response:
                return json.loads(response.read())["jwks_uri"]
        except (OSError, ValueError, KeyError) as exc:
            raise TokenRejected("provider_unreachable", f"the identity provider's keys cannot be found: {exc}") from None

    def __call__(self, token: str):
        if self._client is None:
            self._client = jwt.PyJWKClient(self.jwks_url or self._discover(), cache_keys=True, lifespan=300,
                                           timeout=self.timeout, ssl_context=self.context)
        try:
            return self._client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise TokenRejected("provider_unreachable", f"the identity provider's keys cannot be fetched: {exc}") from None
