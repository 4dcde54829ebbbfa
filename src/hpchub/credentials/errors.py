"""Errors of credential issuing. Each carries a message for the user (what happened and
what to do) and, separately, a detail for the log."""

from __future__ import annotations


class CredentialError(Exception):
    """Issuing or renewing a credential failed."""

    def __init__(self, user_message: str, log_detail: str = ""):
        super().__init__(user_message)
        self.user_message = user_message
        self.log_detail = log_detail or user_message


class LoginRequired(CredentialError):
    """The credential cannot be renewed without the user: they must log in again."""


class IssuerUnavailable(CredentialError):
    """The issuer (e.g. the CA service) could not be reached or refused the hub itself."""


class ConfigurationError(CredentialError):
    """The issuer is misconfigured (missing or unsafe CA key, ...): found at start-up."""


class LoginRefused(CredentialError):
    """The issuer checked the login's password (and code) itself and refused it: to the user,
    the login page's usual "invalid username or password"."""
