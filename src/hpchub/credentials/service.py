"""`hpchub ca serve`: a CA service, so that the CA key need not live on the hub host.

HTTP API (compatible with NERSC's sshproxy for the first call):

    POST /create_pair/<scope>/   Basic auth user:password (checked with PAM), or
                                 Bearer <ID token> of the identity provider (`oidc_issuer`),
                                 issued to the calling hub's `oidc_client_id`
                                 -> text/plain: private key, then the certificate line
    GET  /challenge              -> {"challenge": "..."}  (fresh for 60 s, single use)
    POST /renew/<scope>/         {"certificate", "public_key", "challenge", "signature"}
                                 proof of possession of the current, still valid certificate's
                                 key; -> {"certificate"} for the new public key, up to the
                                 session limit, after which the user must log in again
    POST /service_pair/          {"principal", "public_key"} -> {"certificate"}: the hub's
                                 service account, for principals that hub is allowed

Every request carries a hub's token (header X-HPCHub-Token); the service knows only their
SHA-256 digests. Requests are rate-limited per client address and per user, and every
signed certificate is logged. The client address is the TCP peer's: X-Forwarded-For is
never trusted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import ssl
import time
from pathlib import Path

import asyncssh
from tornado import httpserver, web
from traitlets import Dict, Integer, List, Unicode
from traitlets.config import Configurable

from .errors import CredentialError
from .id_tokens import IDTokenRule, ProviderKeys, TokenRejected, verify_id_token
from .krl import RevocationListUnreadable, certificate_is_revoked
from .proof import (RateLimiter, challenge_message, check_challenge, make_challenge, pair_response,
                    token_digest, unb64)
from .ssh_ca import CertificatePolicy, SSHCertificateAuthority, certificate_facts, check_cluster_username

log = logging.getLogger("hpchub.ca")


class CAService(Configurable):
    ca_key = Unicode(config=True, help="Path to the SSH user CA's private key (mode 0600, owned by the service).")
    ledger = Unicode(config=True, help="""File to which every signed certificate is appended
        (serial, key id, principal, expiry, session start). Renewals look sessions up here.""")
    previous_ca_public_keys = List(
        Unicode(),
        config=True,
        help="""During a rotation of the CA key: the public keys (files, or `ssh-ed25519 AAAA...`
        lines) of the CA keys this one replaces. Certificates they signed are still renewed
        (by proof of possession, signed anew with `ca_key`), so users logged in before the
        rotation are not asked to log in again. Keep them here for the certificates' lifetime
        and the login nodes trusting both keys (TrustedUserCAKeys lists both), then remove them.""",
    )
    krl = Unicode("", config=True, help="""The key revocation list that login nodes read
        (sshd RevokedKeys). If set, a revoked certificate cannot be renewed either.""")
    listen_address = Unicode("127.0.0.1", config=True, help="Address to listen on.")
    port = Integer(8443, config=True, help="TCP port to listen on.")
    tls_cert = Unicode("", config=True, help="""PEM certificate for HTTPS. Without tls_cert and
        tls_key the service speaks plain HTTP: only for a loopback address in a test.""")
    tls_key = Unicode("", config=True, help="PEM private key for HTTPS.")
    hubs = List(
        Dict(),
        config=True,
        help="""The hubs allowed to call: a list of
        `{"name": "hub1", "token_sha256": "<hex digest of its token>", "service_principals": ["hpchub"]}`.
        Only digests are configured here; each hub keeps its own token. With single sign-on,
        `"oidc_client_id": "<the hub's client id at the provider>"`: the ID tokens that hub
        presents must have been issued to it.""",
    )
    oidc_issuer = Unicode("", config=True, help="""The identity provider (OpenID Connect issuer URL,
        e.g. `https://keycloak.example.org/realms/hpc`) whose ID tokens prove a user at
        /create_pair (`Authorization: Bearer`), instead of a password. Empty: passwords only.
        Each token's signature (the provider's published keys), issuer, audience (the hub's
        `oidc_client_id`) and expiry are checked.""")
    oidc_jwks_url = Unicode("", config=True, help="The provider's key set. Default: its discovery document's `jwks_uri`.")
    oidc_ca_bundle = Unicode("", config=True, help="""PEM file of the authorities that may sign the
        provider's HTTPS certificate. Default: the system's trust store.""")
    oidc_username_claim = Unicode("preferred_username", config=True, help="""The ID token claim that
        names the user. The rule: its value, less `@<oidc_username_domain>` when that is set (a name
        in another domain is refused), must be a valid cluster username, and is the certificate's
        principal. Use a claim the provider does not let users change.""")
    oidc_username_domain = Unicode("", config=True, help="""If set, the claim must end with
        `@<this domain>`, which is removed (e.g. `example.org` maps `alice@example.org` to `alice`).""")
    oidc_required_amr = List(Unicode(), config=True, help="""If set, an ID token is accepted only if its
        `amr` claim (RFC 8176) holds at least one of these, e.g. `["otp", "mfa", "hwk"]`: the sign-in
        used a second factor. The hub can require the same (`CredentialIssuingAuthenticator.required_amr`);
        here it holds even for a hub that does not.""")
    scopes = List(Unicode(), ["default"], config=True, help="Scopes accepted in /create_pair/<scope>/.")
    api = Unicode("hpchub", config=True, help="""`hpchub`: every call above. `sshproxy`: only
        /create_pair, as NERSC's sshproxy serves it (no renewal by proof of possession, no
        service certificates): what a hub in front of an unmodified sshproxy meets, for trying
        hpchub's settings for it (`service_account_key`) before going live.""")
    pam_service = Unicode("login", config=True, help="PAM service used to check users' passwords.")
    certificate_validity = Integer(12 * 3600, config=True, help="Validity of each certificate, in seconds.")
    max_session_length = Integer(7 * 86400, config=True, help="""How long, in seconds, renewals by
        proof of possession may extend one login (default 7 days); then the user logs in again.""")
    user_rate_limit = Integer(10, config=True, help="Requests per minute allowed for one user.")
    address_rate_limit = Integer(60, config=True, help="Requests per minute allowed from one client address.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ca = SSHCertificateAuthority(self.ca_key, self.ledger, name="ca-service")
        self.secret = secrets.token_bytes(32)
        self.used_nonces: dict[str, float] = {}
        self.by_address = RateLimiter(self.address_rate_limit)
        self.by_user = RateLimiter(self.user_rate_limit)
        self.hub_by_digest = {h["token_sha256"]: h for h in self.hubs}
        # The base64 key blobs whose certificates this service renews: its own, and during a
        # rotation those of the keys it replaces.
        self.renewable_signers = {self.ca.public_key.split()[1], *map(key_blob, self.previous_ca_public_keys)}
        self.id_token_rule = IDTokenRule(self.oidc_issuer, self.oidc_username_claim, self.oidc_username_domain,
                                         tuple(self.oidc_required_amr)) if self.oidc_issuer else None
        self.provider_keys = ProviderKeys(self.oidc_issuer, self.oidc_jwks_url, self.oidc_ca_bundle) \
            if self.oidc_issuer else None

    @property
    def policy(self) -> CertificatePolicy:
        return CertificatePolicy(validity=self.certificate_validity)

    def app(self) -> web.Application:
        routes = [(r"/create_pair/([^/]+)/?", CreatePairHandler, {"service": self})]
        if self.api != "sshproxy":
            routes += [
                (r"/challenge", ChallengeHandler, {"service": self}),
                (r"/renew/([^/]+)/?", RenewHandler, {"service": self}),
                (r"/service_pair/?", ServicePairHandler, {"service": self}),
            ]
        return web.Application(routes)

    def ssl_context(self) -> ssl.SSLContext | None:
        if not (self.tls_cert and self.tls_key):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def spend_nonce(self, nonce: str) -> bool:
        """True the first time a challenge's nonce is presented (replays are refused)."""
        now = time.time()
        for old, expiry in list(self.used_nonces.items()):
            if expiry < now:
                del self.used_nonces[old]
        if nonce in self.used_nonces:
            return False
        self.used_nonces[nonce] = now + 120
        return True

    def session_started(self, serial: int) -> int | None:
        entry = self.ca.ledger.find(serial) if self.ca.ledger is not None else None
        return entry.get("session_started") if entry else None

    async def serve(self) -> None:
        server = httpserver.HTTPServer(self.app(), ssl_options=self.ssl_context(), xheaders=False)
        server.listen(self.port, self.listen_address)
        scheme = "https" if self.ssl_context() else "http"
        log.info("CA service listening on %s://%s:%d", scheme, self.listen_address, self.port)
        await asyncio.Event().wait()


def key_blob(key: str) -> str:
    """The base64 blob of a public key given as a file or as an OpenSSH line."""
    text = key.strip()
    if not text.startswith(("ssh-", "ecdsa-")):
        try:
            text = Path(text).read_text().strip()
        except OSError as exc:
            raise CredentialError("a previous CA public key cannot be read",
                                  f"CAService.previous_ca_public_keys: {key}: {exc}") from None
    try:
        return asyncssh.import_public_key(text).export_public_key().decode().split()[1]
    except (asyncssh.KeyImportError, IndexError):
        raise CredentialError("a previous CA public key is not a public key",
                              f"CAService.previous_ca_public_keys: {key!r}") from None


class ServiceError(web.HTTPError):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, reason=None, log_message=message)
        self.code = code
        self.message = message


class BaseHandler(web.RequestHandler):
    def initialize(self, service: CAService):
        self.service = service
        self.hub: dict | None = None

    def prepare(self):
        address = self.request.remote_ip
        if not self.service.by_address.allow(address):
            raise ServiceError(429, "rate_limited", "too many requests from this address; wait a minute")
        token = self.request.headers.get("X-HPCHub-Token", "")
        self.hub = self.service.hub_by_digest.get(token_digest(token)) if token else None
        if self.hub is None:
            log.warning("refused a request from %s without a valid hub token", address)
            raise ServiceError(403, "bad_hub_token", "this service accepts requests only from its hubs")

    def limit_user(self, user: str) -> None:
        if not self.service.by_user.allow(user):
            raise ServiceError(429, "rate_limited", f"too many requests for {user}; wait a minute")

    def json_body(self, *fields: str) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
            return {name: body[name] for name in fields}
        except (ValueError, KeyError, TypeError):
            raise ServiceError(400, "bad_request", f"the body must be JSON with {', '.join(fields)}") from None

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, ServiceError):
            body = {"error": exc.code, "message": exc.message}
        else:  # never a traceback to the client
            body = {"error": "internal", "message": "the CA service failed; see its log"}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def signed(self, facts_of: str, principal: str, serial: int, kind: str) -> None:
        log.info("signed %s certificate serial=%d principal=%s for hub=%s from %s (%s)", kind, serial, principal,
                 self.hub["name"], self.request.remote_ip, facts_of)


class CreatePairHandler(BaseHandler):
    async def post(self, scope: str):
        if scope not in self.service.scopes:
            raise ServiceError(404, "unknown_scope", f"unknown scope {scope!r}")
        if self.request.headers.get("Authorization", "").startswith("Bearer "):
            user = await self._user_of_id_token()
        else:
            user = await self._user_of_password()
        credential = await asyncio.to_thread(
            self.service.ca.issue, user, self.hub["name"], self.service.policy, int(time.time()))
        self.signed(credential.key_id, user, credential.serial, "user")
        self.set_header("Content-Type", "text/plain")
        self.finish(pair_response(credential.private_key, credential.certificate))

    async def _user_of_id_token(self) -> str:
        service = self.service
        if service.id_token_rule is None:
            raise ServiceError(401, "bad_token", "this service takes passwords, not identity tokens")
        audience = self.hub.get("oidc_client_id")
        if not audience:
            raise ServiceError(403, "forbidden", "this hub is not configured for single sign-on (oidc_client_id)")
        token = self.request.headers["Authorization"][len("Bearer "):].strip()
        try:
            user, claims = await asyncio.to_thread(verify_id_token, token, audience, service.id_token_rule,
                                                   service.provider_keys)
        except TokenRejected as exc:
            log.warning("refused an ID token from hub=%s at %s: %s", self.hub["name"], self.request.remote_ip,
                        exc.message)
            if exc.code == "provider_unreachable":
                raise ServiceError(503, exc.code, exc.message) from None
            status = 403 if exc.code in ("second_factor_required", "unknown_user") else 401
            raise ServiceError(status, exc.code, exc.message) from None
        self.limit_user(user)
        log.info("ID token of %s (sub %s, amr %s) accepted for hub=%s", user, claims.get("sub"), claims.get("amr"),
                 self.hub["name"])
        return user

    async def _user_of_password(self) -> str:
        user, password = self._basic_auth()
        try:
            check_cluster_username(user)
        except CredentialError as exc:
            raise ServiceError(400, "bad_username", exc.user_message) from None
        self.limit_user(user)
        if not await asyncio.to_thread(_pam_check, user, password, self.service.pam_service):
            log.warning("wrong password for %s from %s", user, self.request.remote_ip)
            self.set_header("WWW-Authenticate", 'Basic realm="hpchub-ca"')
            raise ServiceError(401, "bad_password", "the username or password is wrong")
        return user

    def _basic_auth(self) -> tuple[str, str]:
        header = self.request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise ServiceError(401, "no_credentials", "send the user's name and password (HTTP Basic)")
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise ServiceError(400, "bad_request", "malformed Basic authorization") from None
        return user, password


class ChallengeHandler(BaseHandler):
    def get(self):
        self.finish({"challenge": make_challenge(self.service.secret)})


class RenewHandler(BaseHandler):
    async def post(self, scope: str):
        body = self.json_body("certificate", "public_key", "challenge", "signature")
        service = self.service
        nonce = check_challenge(service.secret, body["challenge"])
        if nonce is None or not service.spend_nonce(nonce):
            raise ServiceError(403, "bad_challenge", "the challenge is unknown, stale or already used")
        try:
            facts = certificate_facts(body["certificate"])
            new_key = asyncssh.import_public_key(body["public_key"])
            signature = unb64(body["signature"])
        except (asyncssh.KeyImportError, ValueError):
            raise ServiceError(400, "bad_request", "unreadable certificate, public key or signature") from None
        if facts["signing_key"] not in service.renewable_signers:
            raise ServiceError(403, "foreign_certificate", "the certificate was not signed by this CA")
        now = time.time()
        if not facts["valid_after"] <= now < facts["valid_before"]:
            raise ServiceError(403, "login_required", "the certificate has expired: log in again")
        if len(facts["principals"]) != 1:
            raise ServiceError(403, "foreign_certificate", "the certificate must name exactly one user")
        principal = facts["principals"][0]
        self.limit_user(principal)
        if not facts["key"].verify(challenge_message(body["challenge"], body["public_key"]), signature):
            raise ServiceError(403, "bad_proof", "the signature does not prove possession of the certificate's key")
        if service.krl and self._revoked(body["certificate"]):
            raise ServiceError(403, "revoked", "the certificate has been revoked: log in again")
        started = service.session_started(facts["serial"])
        if started is None:
            raise ServiceError(403, "foreign_certificate", "this CA has no record of the certificate")
        if now - started > service.max_session_length:
            raise ServiceError(403, "login_required", "the session has reached its maximum length: log in again")
        serial = secrets.randbits(63)
        key_id = f"hpchub hub={self.hub['name']} user={principal} serial={serial}"
        certificate, _, valid_before = service.ca.sign(new_key, principal, key_id, serial, service.policy)
        service.ca.record(serial, key_id, principal, valid_before, started)
        self.signed(f"renewal of serial {facts['serial']}", principal, serial, "user")
        self.finish({"certificate": certificate})

    def _revoked(self, certificate: str) -> bool:
        try:
            return certificate_is_revoked(self.service.krl, certificate)
        except RevocationListUnreadable as exc:  # never renewed unchecked
            raise ServiceError(503, "revocation_list_unreadable",
                               f"the revocation list cannot be read: {exc}") from None


class ServicePairHandler(BaseHandler):
    def post(self):
        body = self.json_body("principal", "public_key")
        principal = body["principal"]
        if principal not in self.hub.get("service_principals", []):
            raise ServiceError(403, "forbidden", f"this hub may not obtain certificates for {principal!r}")
        try:
            key = asyncssh.import_public_key(body["public_key"])
        except (asyncssh.KeyImportError, ValueError):
            raise ServiceError(400, "bad_request", "unreadable public key") from None
        serial = secrets.randbits(63)
        key_id = f"hpchub hub={self.hub['name']} service={principal} serial={serial}"
        certificate, _, valid_before = self.service.ca.sign(key, principal, key_id, serial, self.service.policy)
        self.service.ca.record(serial, key_id, principal, valid_before, int(time.time()))
        self.signed(key_id, principal, serial, "service")
        self.finish({"certificate": certificate})


def _pam_check(user: str, password: str, service: str) -> bool:
    import pamela  # the service runs where PAM can check passwords (root or the shadow group)

    try:
        pamela.authenticate(user, password, service=service)
    except pamela.PAMError:
        return False
    return True
