"""The hub's client of the CA service (`hpchub ca serve`, or NERSC's sshproxy). The server's
certificate is always verified.

At login it sends the user's proof: the password (HTTP Basic, as sshproxy takes it, with the
one-time code appended where the site asks for one) or the identity provider's ID token
(`Authorization: Bearer`, which `hpchub ca serve` verifies against the provider's keys)."""

from __future__ import annotations

import json
from urllib.parse import quote

import asyncssh
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .errors import ConfigurationError, CredentialError, IssuerUnavailable, LoginRefused, LoginRequired
from .issuers import Issuer, LoginProof
from .model import SSHCredential
from .proof import b64, challenge_message, parse_pair_response
from .ssh_ca import certificate_facts


class ServiceIssuer(Issuer):
    name = "ca-service"
    checks_the_user = True

    def __init__(self, url: str, token: str, scope: str = "default", ca_bundle: str | None = None,
                 timeout: float = 20.0):
        self.url = url.rstrip("/")
        self.token = token
        self.scope = scope
        self.ca_bundle = ca_bundle or None
        self.timeout = timeout

    async def _call(self, method: str, path: str, body: dict | None = None,
                    auth: tuple[str, str] | None = None, bearer: str | None = None) -> tuple[int, str]:
        headers = {"X-HPCHub-Token": self.token, "Content-Type": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        request = HTTPRequest(
            f"{self.url}{path}", method=method,
            body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
            headers=headers,
            auth_username=auth[0] if auth else None, auth_password=auth[1] if auth else None,
            auth_mode="basic" if auth else None,
            validate_cert=True, ca_certs=self.ca_bundle,
            connect_timeout=self.timeout, request_timeout=self.timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise IssuerUnavailable("the site's certificate service cannot be reached; try again in a few minutes",
                                    f"{method} {self.url}{path}: {exc}") from None
        if response.code == 599:  # tornado's code for connection failures, TLS errors, timeouts
            raise IssuerUnavailable("the site's certificate service cannot be reached; try again in a few minutes",
                                    f"{method} {self.url}{path}: {response.error}")
        return response.code, response.body.decode(errors="replace") if response.body else ""

    def _fail(self, path: str, code: int, text: str, user: str):
        try:
            error = json.loads(text)
        except ValueError:
            error = {"error": "unknown", "message": text[:200]}
        detail = f"CA service {path} for {user}: HTTP {code} {error}"
        if code == 401 and error.get("error") == "bad_token":
            raise CredentialError("the certificate service did not accept your sign-in; please sign in again", detail)
        if code == 401:
            raise LoginRefused("the certificate service did not accept your username or password", detail)
        if code == 403 and error.get("error") == "second_factor_required":
            raise CredentialError("the certificate service requires a second factor (a one-time code) at sign-in; "
                                  "sign in again with one", detail)
        if code == 429:
            raise CredentialError("too many certificate requests; wait a minute and try again", detail)
        if error.get("error") == "unknown_user":
            raise CredentialError("your sign-in names no account on this cluster; contact the centre's support",
                                  detail)
        if error.get("error") in ("login_required", "revoked", "foreign_certificate", "bad_proof"):
            raise LoginRequired("your credentials can no longer be renewed; please log in again", detail)
        raise IssuerUnavailable("the site's certificate service refused this hub; contact the centre's support",
                                detail)

    def _credential(self, private_key: str, certificate: str) -> SSHCredential:
        facts = certificate_facts(certificate)
        if len(facts["principals"]) != 1:
            raise CredentialError("the certificate service sent an unusable certificate",
                                  f"certificate with principals {facts['principals']}")
        return SSHCredential(
            private_key=private_key, certificate=certificate, principal=facts["principals"][0],
            serial=facts["serial"], key_id=facts["key_id"], valid_after=facts["valid_after"],
            valid_before=facts["valid_before"], issuer=self.name,
        )

    async def issue(self, principal, proof: LoginProof, session_started):
        if not (proof.password or proof.id_token):
            raise CredentialError(
                "this login gives the hub neither a password nor an identity token, which the certificate "
                "service needs; ask the centre's support",
                f"ca-service issue for {principal} without a password or an ID token")
        path = f"/create_pair/{quote(self.scope, safe='')}/"
        if proof.id_token:
            code, text = await self._call("POST", path, bearer=proof.id_token)
        else:
            code, text = await self._call("POST", path, auth=(principal, proof.password_and_code))
        if code != 200:
            self._fail(path, code, text, principal)
        try:
            private_key, certificate = parse_pair_response(text)
        except ValueError as exc:
            raise CredentialError("the certificate service sent an unusable answer", f"{path}: {exc}") from None
        credential = self._credential(private_key, certificate)
        if credential.principal != principal:
            raise CredentialError("the certificate service issued a certificate for someone else",
                                  f"asked for {principal}, got {credential.principal}")
        return credential

    async def renew(self, principal, current, session_started):
        if current.expired():
            raise LoginRequired("your credentials have expired; please log in again",
                                f"certificate {current.key_id} expired at {current.valid_before}")
        code, text = await self._call("GET", "/challenge")
        if code == 404:
            # A CA that renews only at login (NERSC's sshproxy): a new login before the
            # certificate runs out, rather than a spawn that fails when it has.
            raise LoginRequired("your session's certificate is running out and this site renews it only at "
                                "login; please log in again",
                                f"{self.url}/challenge answered 404: the CA service does not renew "
                                f"(certificate {current.key_id} valid until {current.valid_before})")
        if code != 200:
            self._fail("/challenge", code, text, principal)
        challenge = json.loads(text)["challenge"]
        old_key = asyncssh.import_private_key(current.private_key)
        new_key = asyncssh.generate_private_key("ssh-ed25519")
        new_public = new_key.export_public_key().decode().strip()
        signature = old_key.sign(challenge_message(challenge, new_public), old_key.sig_algorithms[0])
        path = f"/renew/{quote(self.scope, safe='')}/"
        code, text = await self._call("POST", path, body={
            "certificate": current.certificate, "public_key": new_public,
            "challenge": challenge, "signature": b64(signature)})
        if code != 200:
            self._fail(path, code, text, principal)
        return self._credential(new_key.export_private_key().decode(), json.loads(text)["certificate"])

    async def issue_service_account(self, principal):
        key = asyncssh.generate_private_key("ssh-ed25519")
        code, text = await self._call("POST", "/service_pair/", body={
            "principal": principal, "public_key": key.export_public_key().decode().strip()})
        if code == 404:
            raise IssuerUnavailable("the hub's service account has no certificate",
                                    f"{self.url}/service_pair/ answered 404: this CA service (sshproxy?) issues no "
                                    "service certificates; set CredentialIssuingAuthenticator.service_account_key "
                                    "to a key whose certificate the site renews")
        if code != 200:
            self._fail("/service_pair/", code, text, principal)
        return self._credential(key.export_private_key().decode(), json.loads(text)["certificate"])


def make_service_issuer(authenticator) -> ServiceIssuer:
    """The issuer for an authenticator configured with credential_issuer = "ca-service" (or an
    entry of its extra_issuers: an IssuerSettings, which says `where` it is)."""
    where = getattr(authenticator, "where", "CredentialIssuingAuthenticator")
    if not authenticator.ca_service_url:
        raise ConfigurationError(f"set {where}.ca_service_url for the ca-service issuer")
    token = authenticator.ca_service_token
    if not token and authenticator.ca_service_token_file:
        try:
            with open(authenticator.ca_service_token_file) as f:
                token = f.read().strip()
        except OSError as exc:
            raise ConfigurationError(f"{where}: cannot read ca_service_token_file: {exc}") from None
    if not token:
        raise ConfigurationError("set ca_service_token_file (or HPCHUB_CA_SERVICE_TOKEN) for the ca-service issuer")
    if not authenticator.ca_service_url.startswith("https://"):
        raise ConfigurationError("the CA service must be reached over https:// (passwords travel to it)")
    return ServiceIssuer(authenticator.ca_service_url, token, authenticator.ca_service_scope,
                         authenticator.ca_service_ca_bundle or None)


__all__ = ["ServiceIssuer", "make_service_issuer"]
