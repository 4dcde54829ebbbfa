"""A real CA service (`hpchub ca serve`) over HTTPS for the tests, signing with the site's CA."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


from hpchub.credentials.proof import token_digest
from hpchub.site.ca_service import write_tls as site_tls

from ..site_handle import HPCHUB


def write_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A test TLS CA and a server certificate for 127.0.0.1 signed by it: (bundle, cert, key)."""
    return site_tls(directory, "127.0.0.1", days=1)


@dataclass
class CAServiceHandle:
    url: str
    token: str
    ca_bundle: Path
    ledger: Path
    process: subprocess.Popen
    log: Path
    tls: tuple[Path, Path, Path]  # (bundle, certificate, key)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_ca_service(site, directory: Path, port: int, hub_name: str, *, token: str | None = None,
                     tls: tuple[Path, Path, Path] | None = None, **settings) -> CAServiceHandle:
    """The service, signing with the site's CA key (or settings' ca_key); a new hub token and TLS
    certificate unless given (a service restarted in place keeps its own)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    bundle, cert, key = tls or write_tls(directory)
    bundle.chmod(0o644)
    ca_key = directory / "user_ca"
    shutil.copy(site.layout.user_ca_key, ca_key)
    ca_key.chmod(0o600)
    token = token or secrets.token_hex(32)
    values = {
        "ca_key": str(ca_key), "ledger": str(directory / "issued.jsonl"), "krl": str(site.layout.revoked_keys),
        "listen_address": "127.0.0.1", "port": port, "tls_cert": str(cert), "tls_key": str(key),
        "hubs": [{"name": hub_name, "token_sha256": token_digest(token), "service_principals": ["hpchub"]}],
        **settings,
    }
    config = directory / "ca_service_config.py"
    config.write_text("".join(f"c.CAService.{k} = {json.dumps(v)}\n" for k, v in values.items()))
    log = directory / "ca-service.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([HPCHUB, "ca", "serve", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"the CA service did not start:\n{log.read_text()}")
            time.sleep(0.1)
    return CAServiceHandle(f"https://127.0.0.1:{port}", token, bundle, Path(values["ledger"]), process, log,
                           (bundle, cert, key))
