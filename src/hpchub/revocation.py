"""Revocation reaches what is open. sshd checks its revocation list (KRL) only when a
connection is made, so the hub's open SSH connections and its users' tunnels would outlive a
revoked certificate. The hub watches the list it is given
(`CredentialIssuingAuthenticator.ssh_revoked_keys`); when it changes, every user whose
current certificate it revokes has their tunnels and the hub's connections as them closed,
their credentials dropped, and their hub login ended, so their next page asks them to log in
again (a new login gets a new certificate, which the list does not name)."""

from __future__ import annotations

import asyncio
import logging
import os

from jupyterhub import orm
from jupyterhub.utils import new_token

from .credentials import CREDENTIALS_KEY, CredentialSet
from .credentials.errors import CredentialError
from .credentials.krl import RevocationListUnreadable, certificate_is_revoked
from .remote import SSHError
from .spawners.cluster import CONTEXTS


class RevocationWatcher:
    def __init__(self, app, krl_path: str, log: logging.Logger):
        self.app = app
        self.krl_path = krl_path
        self.log = log
        # None: the first check looks at every user - the list may have changed while the hub was
        # down, and the tunnel service (which outlives the hub) still holds their tunnels.
        self._seen: tuple[int, int] | None = None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.krl_path)
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)

    async def check(self) -> list[str]:
        """If the list changed since the last check: end the sessions it revokes; their users' names."""
        stamp = self._stamp()
        if stamp == self._seen:
            return []
        self._seen = stamp
        ended = []
        for orm_user in self.app.db.query(orm.User).filter(orm.User.encrypted_auth_state.isnot(None)).all():
            user = self.app.users[orm_user]
            try:
                credentials = CredentialSet.from_auth_state(await user.get_auth_state())
            except CredentialError:
                continue
            if credentials is None or credentials.ssh is None:
                continue
            try:
                revoked = await asyncio.to_thread(certificate_is_revoked, self.krl_path, credentials.ssh.certificate)
            except RevocationListUnreadable as exc:  # checked again at the next change
                self.log.error("Cannot check open sessions against %s: %s", self.krl_path, exc)
                self._seen = None
                return ended
            if revoked:
                await self.end(user, credentials)
                ended.append(user.name)
        return ended

    async def end(self, user, credentials: CredentialSet) -> None:
        principal = credentials.ssh.principal
        closed = []
        for service in list(CONTEXTS.tunnel_services.values()):
            try:
                answer = await service.call("end_user", principal=principal)
                closed.append(f"{answer['tunnels']} tunnels and {answer['connections']} connections in "
                              f"{service.socket_path}")
            except SSHError as exc:  # a service not running holds nothing
                self.log.warning("Tunnel service %s: %s", service.socket_path, exc.log_detail)
        for cluster in list(CONTEXTS.clusters.values()):
            closed.append(f"{cluster.pool.close_user(principal)} hub connections")
        auth_state = dict(await user.get_auth_state() or {})
        auth_state.pop(CREDENTIALS_KEY, None)
        await user.save_auth_state(auth_state)
        # A new cookie id ends every hub login of this user at once (JupyterHub looks users up
        # by it); their next page is the login page.
        user.orm_user.cookie_id = new_token()
        self.app.db.commit()
        self.log.warning("Certificate %s of %s is revoked: ended their sessions (%s); they must log in again",
                         credentials.ssh.key_id, user.name, "; ".join(closed))
