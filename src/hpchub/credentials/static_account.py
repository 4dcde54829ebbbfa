"""The service account's credential from files the site renews by its own means: a static
private key and its certificate. For a CA that issues no service certificates to the hub
(NERSC's sshproxy has no /service_pair/: a collaboration account's certificate is fetched
with the account's own password, by a cron job or an operator). The hub re-reads the
certificate whenever the file changes, so a renewed certificate is used without a restart."""

from __future__ import annotations

import os
import time
from pathlib import Path

import asyncssh

from .errors import ConfigurationError, IssuerUnavailable
from .model import SSHCredential
from .ssh_ca import certificate_facts, load_private_key


class StaticServiceAccount:
    def __init__(self, principal: str, key_file: str | Path, certificate_file: str | Path = ""):
        self.principal = principal
        self.key_file = Path(key_file)
        self.certificate_file = Path(certificate_file) if certificate_file else Path(f"{key_file}-cert.pub")
        self._loaded: tuple[int, int] | None = None
        self._credential: SSHCredential | None = None
        self.load()  # said at start-up, not at the first status query

    def _stamp(self) -> tuple[int, int]:
        stats = [os.stat(p) for p in (self.key_file, self.certificate_file)]
        return (max(s.st_mtime_ns for s in stats), sum(s.st_ino for s in stats))

    def load(self) -> SSHCredential:
        """The credential in the files now; ConfigurationError if they do not make one."""
        key = load_private_key(self.key_file, "service account's key")
        try:
            line = self.certificate_file.read_text().strip()
            facts = certificate_facts(line)
        except OSError as exc:
            raise ConfigurationError(f"the service account's certificate {self.certificate_file} cannot be read: "
                                     f"{exc.strerror}") from None
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ConfigurationError(f"{self.certificate_file} is not an OpenSSH certificate: {exc}") from None
        if facts["key"].public_data != key.public_data:
            raise ConfigurationError(f"the certificate {self.certificate_file} is not for the key {self.key_file}")
        if self.principal not in facts["principals"]:
            raise ConfigurationError(f"the certificate {self.certificate_file} is for {facts['principals']}, "
                                     f"not the service account {self.principal!r}")
        self._credential = SSHCredential(
            private_key=key.export_private_key().decode(), certificate=line, principal=self.principal,
            serial=facts["serial"], key_id=facts["key_id"], valid_after=facts["valid_after"],
            valid_before=facts["valid_before"], issuer="static")
        self._loaded = self._stamp()
        return self._credential

    def current(self) -> SSHCredential:
        """The credential, re-read if the files changed; IssuerUnavailable once it has expired."""
        try:
            if self._credential is None or self._stamp() != self._loaded:
                self.load()
        except (OSError, ConfigurationError) as exc:
            raise IssuerUnavailable("the hub's service account has no usable certificate",
                                    f"service account {self.principal}: {exc}") from None
        credential = self._credential
        if credential.expired():
            raise IssuerUnavailable(
                "the hub's service account certificate has expired",
                f"{self.certificate_file} ({credential.key_id}) expired at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(credential.valid_before))}: renew it "
                "(service_account_key's certificate is renewed by the site, not by the hub)")
        return credential
