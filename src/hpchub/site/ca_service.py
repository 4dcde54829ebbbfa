"""The demo site's CA service (`hpchub ca serve`), for single sign-on: it holds the site's
user CA key, so that the hub host does not, and signs certificates for the users the
identity provider's ID tokens name. Runs on the hub side over HTTPS, with a TLS
certificate from a small site TLS CA that the hub trusts."""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..credentials.proof import token_digest
from .identity import client_id, issuer_url
from .hub import HUB_ENV, hub_side_port_open, on_hub_side
from .layout import HUB_OS_USER, SiteLayout
from .nodes import Nodes
from .system import make_dir, say, wait_for, write_file

SERVICE_PRINCIPALS = ["hpchub"]


def write_tls(directory: Path, address: str, days: int = 3650) -> tuple[Path, Path, Path]:
    """A TLS CA and a server certificate for `address` (an IP) signed by it, written to
    directory: (bundle, certificate, key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hpchub site TLS CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    bundle, cert_file, key_file = directory / "tls-ca.pem", directory / "tls.pem", directory / "tls.key"
    write_file(bundle, ca_cert.public_bytes(serialization.Encoding.PEM).decode(), 0o644)
    write_file(cert_file, cert.public_bytes(serialization.Encoding.PEM).decode(), 0o644)
    write_file(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode(), 0o600)
    return bundle, cert_file, key_file


class SiteCAService:
    def __init__(self, site: SiteLayout, nodes: Nodes):
        self.site = site
        self.nodes = nodes

    @property
    def directory(self) -> Path:
        return self.site.state_dir / "ca-service"

    @property
    def url(self) -> str:
        return f"https://{self.site.hub_address}:{self.site.ca_service_port}"

    @property
    def ledger(self) -> Path:
        return self.directory / "issued.jsonl"

    @property
    def tls_bundle(self) -> Path:
        """Public: the TLS CA the hub verifies the service with."""
        return self.site.state_dir / "public" / "ca-service-tls.pem"

    @property
    def token_file(self) -> Path:
        """The hub's token for the service, readable by the hub's user only."""
        return self.site.hub_dir / "sso-ca-service-token"

    def ensure(self) -> None:
        site = self.site
        make_dir(self.directory, 0o700)
        if not (self.directory / "tls.key").exists():
            write_tls(self.directory, site.hub_address)
        write_file(self.tls_bundle, (self.directory / "tls-ca.pem").read_text(), 0o644)
        if not self.token_file.exists():
            write_file(self.token_file, secrets.token_hex(32) + "\n", 0o600, owner=HUB_OS_USER)
        token = self.token_file.read_text().strip()
        settings = {
            # The site's own CA key (root only): the service's, never the hub's.
            "ca_key": str(site.user_ca_key), "ledger": str(self.ledger), "krl": str(site.revoked_keys),
            "listen_address": site.hub_address, "port": site.ca_service_port,
            "tls_cert": str(self.directory / "tls.pem"), "tls_key": str(self.directory / "tls.key"),
            "hubs": [{"name": f"{site.name}-hub", "token_sha256": token_digest(token),
                      "service_principals": SERVICE_PRINCIPALS, "oidc_client_id": client_id(site)}],
            "oidc_issuer": issuer_url(site),
            # The demo's provider says "otp" for a login with a one-time code.
            "oidc_required_amr": ["otp"],
        }
        config = self.directory / "ca_service_config.py"
        changed = write_file(config, "".join(f"c.CAService.{k} = {json.dumps(v)}\n" for k, v in settings.items()),
                             0o600)
        if changed:
            self.nodes.stop_daemon("ca-service")
        if self.nodes.daemon("ca-service") is None:
            say(f"  identity: starting the CA service at {self.url}")
            argv = [str(HUB_ENV / "bin" / "hpchub"), "ca", "serve", "-f", str(config)]
            self.nodes.start_process("ca-service", on_hub_side(site, argv), cwd=self.directory)
        wait_for("the CA service to listen", self.answers, timeout=30)

    def stop(self) -> None:
        self.nodes.stop_daemon("ca-service")

    def answers(self) -> bool:
        return hub_side_port_open(self.site, self.site.hub_address, self.site.ca_service_port)
