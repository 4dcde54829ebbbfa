"""Single sign-on: log in through the centre's OpenID Connect provider (Keycloak, CILogon,
the demo site's provider), with a short-lived certificate issued at the same login.

    c.JupyterHub.authenticator_class = "hpchub-oidc"

It is oauthenticator's GenericOAuthenticator (all its settings apply: `client_id`,
`oauth_callback_url`, `authorize_url`, `token_url`, `userdata_url`, `username_claim`, ...)
with hpchub's credential mixin in front. With the CA service as issuer, the provider's ID
token is the login's proof (the service verifies it against the provider's keys), so the CA
key never sits on the hub host. Renewal follows the provider: oauthenticator's refresh runs
first, and a user the provider no longer accepts is sent back to the login page and gets no
new certificate.
"""

from __future__ import annotations

import jwt
from oauthenticator.generic import GenericOAuthenticator
from traitlets import default

from .auth import CredentialIssuingAuthenticator, login_refused
from .credentials.issuers import LoginProof


def id_token_claims(id_token: str) -> dict:
    """The claims of an ID token the hub received from the provider's token endpoint itself,
    over verified TLS: OIDC Core 3.1.3.7 lets such a client skip checking the signature (the
    CA service, which receives it from the hub, checks it)."""
    return jwt.decode(id_token, options={"verify_signature": False})


def second_factor_missing(claims: dict, required: list[str]) -> str | None:
    """Why a login fails `required_amr`, in words for the user; None when it passes."""
    if not required:
        return None
    shown = claims.get("amr")
    shown = [m for m in shown if isinstance(m, str)] if isinstance(shown, list) else []
    if set(required) & set(shown):
        return None
    return ("This hub requires a second factor at sign-in (a one-time code or a security key), and your "
            "sign-in did not use one. Sign in again with it; if your account has no second factor yet, "
            "enrol one with your centre's identity service first.")


class OIDCCredentialAuthenticator(CredentialIssuingAuthenticator, GenericOAuthenticator):
    """OpenID Connect login, with SSH certificates (and grid credentials) issued at login."""

    @default("scope")
    def _default_scope(self):
        # offline_access: a refresh token, so that the hub can follow the provider's session.
        return ["openid", "profile", "offline_access"]

    @default("username_claim")
    def _default_username_claim(self):
        return "preferred_username"

    @default("login_service")
    def _default_login_service(self):
        return "your centre's single sign-on"

    def login_proof(self, data, result):
        auth_state = result.get("auth_state") or {}
        id_token = auth_state.get("id_token")
        if not id_token:
            if self.required_amr or self.issuer.checks_the_user:
                self.log.error("The identity provider sent no ID token for %s (is `openid` in the scope?)",
                               result.get("name"))
                raise login_refused(403, "Your sign-in could not be completed: the identity provider did not "
                                         "say how you signed in. Contact your centre's support.")
            return LoginProof()
        try:
            claims = id_token_claims(id_token)
        except jwt.PyJWTError as exc:
            self.log.error("Unreadable ID token for %s: %s", result.get("name"), exc)
            raise login_refused(403, "Your sign-in could not be completed; please try again.") from None
        refusal = second_factor_missing(claims, self.required_amr)
        if refusal:
            self.log.warning("Refused %s: sign-in without a second factor (amr %r, required one of %r)",
                             result.get("name"), claims.get("amr"), self.required_amr)
            raise login_refused(403, refusal, "Second factor required")
        return LoginProof(id_token=id_token)
