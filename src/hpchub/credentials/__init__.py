"""Short-lived credentials for users and the hub's service account.

This package imports no JupyterHub: the CA service, the admin commands and the spawners'
remote code use it too. The contract between authenticators and spawners is
:class:`CredentialSet`, stored in JupyterHub's encrypted ``auth_state``.
"""

from .errors import CredentialError, IssuerUnavailable, LoginRequired
from .model import CREDENTIALS_KEY, CredentialSet, SSHCredential
from .myproxy import X509Credential

__all__ = [
    "CREDENTIALS_KEY",
    "CredentialError",
    "CredentialSet",
    "IssuerUnavailable",
    "LoginRequired",
    "SSHCredential",
    "X509Credential",
]
