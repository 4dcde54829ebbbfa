"""A server's API token, sealed for the hub's database: a queued job carries its token, and a
hub restarted while it waits must hand the same token back to JupyterHub (batch.py, resume)."""

from __future__ import annotations

import base64

from jupyterhub.crypto import CryptKeeper, EncryptionUnavailable, decrypt, encrypt


async def seal(token: str | None) -> str:
    """The token encrypted with the hub's crypt key (JUPYTERHUB_CRYPT_KEY), or "" without one."""
    if not token or not CryptKeeper.instance().keys:
        return ""
    try:
        return base64.b64encode(await encrypt(token)).decode()
    except EncryptionUnavailable:
        return ""


async def unseal(sealed: str) -> str:
    if not sealed or not CryptKeeper.instance().keys:
        return ""
    return await decrypt(base64.b64decode(sealed))
