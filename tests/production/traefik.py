"""The hub's settings for traefik through jupyterhub-traefik-proxy's file provider, started by the
hub: for the traefik test (over TLS) and the 1000-user benchmark (plain HTTP, like its chp run)."""

from __future__ import annotations


def traefik_config(site, tls: bool = True) -> str:
    """Serving at https (with the hub directory's tls.pem and tls.key) or http://127.0.0.1:base+98."""
    base, hub_dir = site.layout.port_base, site.layout.hub_dir
    serving = (f'c.JupyterHub.bind_url = "https://127.0.0.1:{base + 98}"\n'
               f'c.JupyterHub.ssl_cert = "{hub_dir}/tls.pem"\n'
               f'c.JupyterHub.ssl_key = "{hub_dir}/tls.key"\n') if tls else \
        f'c.JupyterHub.bind_url = "http://127.0.0.1:{base + 98}"\n'
    return f"""\
c.JupyterHub.proxy_class = "traefik_file"
{serving}c.TraefikProxy.should_start = True
c.TraefikProxy.traefik_api_url = "http://127.0.0.1:{base + 97}"
c.TraefikProxy.static_config_file = "{hub_dir}/traefik.toml"
c.TraefikFileProviderProxy.dynamic_config_file = "{hub_dir}/traefik-routes.toml"
"""


def traefik_url(site, tls: bool = True) -> str:
    return f"{'https' if tls else 'http'}://127.0.0.1:{site.layout.port_base + 98}"
