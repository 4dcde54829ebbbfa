# The hub image's configuration: hpchub's one-page spawner (login nodes over SSH, compute
# nodes through Slurm) and short-lived SSH certificates at login, set from environment
# variables. Anything else goes in /etc/jupyterhub/config.d/*.py (loaded last, in name order),
# e.g. the authenticator of the site or the targets of its spawn page.
#
# Required:
#   JUPYTERHUB_CRYPT_KEY        the auth_state key (openssl rand -hex 32); keep it
#   HPCHUB_LOGIN_NODES          JSON: [{"name": "login1", "address": "login1.example.org", "port": 22}, ...]
#   CONFIGPROXY_AUTH_TOKEN      the proxy's API token, the same for the hub and the proxy (openssl rand -hex 32)
# Optional (default):
#   HPCHUB_STATE_DIR            the hub's own files: database, cookie secret, tunnel socket (/srv/jupyterhub)
#   HPCHUB_PUBLIC_URL           where users connect (http://0.0.0.0:8000)
#   HPCHUB_HUB_BIND_URL         the hub's API, reached by the proxy and the tunnels (http://127.0.0.1:8081)
#   HPCHUB_HUB_CONNECT_URL      the hub's API as compute nodes reach it directly ("" : through a login node)
#   HPCHUB_DB_URL               the database (sqlite in HPCHUB_STATE_DIR);
#                               e.g. postgresql+psycopg2://hub:PASSWORD@postgres/jupyterhub
#   HPCHUB_DB_PASSWORD_FILE     a file whose content replaces PASSWORD in HPCHUB_DB_URL (a secret)
#   HPCHUB_KNOWN_HOSTS          the login nodes' host keys (/etc/hpchub/known_hosts)
#   HPCHUB_SSH_CA_KEY           the SSH user CA's key, if the hub signs (/etc/hpchub/ssh-ca/user_ca)
#   HPCHUB_CA_SERVICE_URL       the CA service instead (`hpchub ca serve`), e.g. https://ca:8443
#   HPCHUB_CA_SERVICE_TOKEN_FILE, HPCHUB_CA_SERVICE_CA_BUNDLE   its token and its TLS CA
#   HPCHUB_TARGETS_FILE         JSON list of the spawn page's targets (/etc/hpchub/targets.json if present)
#   HPCHUB_JUPYTER_CMD          the server command on the cluster (jupyterhub-singleuser)
#   HPCHUB_PARTITION, HPCHUB_WALLTIME   batch defaults ("" : Slurm's default partition; 01:00:00)
#   HPCHUB_PROXY                chp (the hub starts configurable-http-proxy), chp-service (the proxy runs as
#                               a service of its own: compose's `proxy`, hpchub-proxy.service) or traefik
#   HPCHUB_PROXY_API_URL        the proxy's API with chp-service (http://127.0.0.1:8001)
#   HPCHUB_TLS_CERT, HPCHUB_TLS_KEY   the public certificate and key, for TLS at the proxy (with an
#                               https HPCHUB_PUBLIC_URL)
#   HPCHUB_TUNNEL_SERVICE       the socket of a tunnel service run as a service of its own (compose's
#                               `tunnels`, hpchub-tunnels.service); "": the hub starts it (in HPCHUB_STATE_DIR)
#   HPCHUB_ADMIN_USERS, HPCHUB_ALLOWED_USERS   comma-separated user names
#   HPCHUB_CONFIG_D             the directory of extra configuration files (/etc/jupyterhub/config.d)
#   HPCHUB_IDLE_TIMEOUT         seconds after which idle servers are stopped (0: never; 0)
import json
import os
import sys
from glob import glob
from pathlib import Path

c = get_config()  # noqa: F821


def env(name, default=""):
    return os.environ.get(name, default).strip()


def names(variable):
    return {name.strip() for name in env(variable).split(",") if name.strip()}


c.JupyterHub.bind_url = env("HPCHUB_PUBLIC_URL", "http://0.0.0.0:8000")
if env("HPCHUB_TLS_CERT"):
    c.JupyterHub.ssl_cert = env("HPCHUB_TLS_CERT")
    c.JupyterHub.ssl_key = env("HPCHUB_TLS_KEY")
c.JupyterHub.hub_bind_url = env("HPCHUB_HUB_BIND_URL", "http://127.0.0.1:8081")
state = Path(env("HPCHUB_STATE_DIR", "/srv/jupyterhub"))
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")

db_url = env("HPCHUB_DB_URL", f"sqlite:///{state / 'jupyterhub.sqlite'}")
if env("HPCHUB_DB_PASSWORD_FILE"):
    db_url = db_url.replace("PASSWORD", Path(env("HPCHUB_DB_PASSWORD_FILE")).read_text().strip())
c.JupyterHub.db_url = db_url

# Users' servers outlive a hub restart (the tunnel service holds their tunnels).
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0.05}  # show the progress page at once

# Logins: PAM by default, each with a short-lived SSH certificate kept in auth_state.
c.JupyterHub.authenticator_class = "hpchub-pam"
if names("HPCHUB_ADMIN_USERS"):
    c.Authenticator.admin_users = names("HPCHUB_ADMIN_USERS")
if names("HPCHUB_ALLOWED_USERS"):
    c.Authenticator.allowed_users = names("HPCHUB_ALLOWED_USERS")
if env("HPCHUB_CA_SERVICE_URL"):
    c.CredentialIssuingAuthenticator.credential_issuer = "ca-service"
    c.CredentialIssuingAuthenticator.ca_service_url = env("HPCHUB_CA_SERVICE_URL")
    c.CredentialIssuingAuthenticator.ca_service_token_file = env("HPCHUB_CA_SERVICE_TOKEN_FILE")
    c.CredentialIssuingAuthenticator.ca_service_ca_bundle = env("HPCHUB_CA_SERVICE_CA_BUNDLE")
else:
    c.CredentialIssuingAuthenticator.ssh_ca_key = env("HPCHUB_SSH_CA_KEY", "/etc/hpchub/ssh-ca/user_ca")

# Spawning: one page, a login node at once or compute nodes through Slurm.
c.JupyterHub.spawner_class = "hpchub"
c.HPCSpawner.login_nodes = json.loads(env("HPCHUB_LOGIN_NODES", "[]"))
c.HPCSpawner.known_hosts = env("HPCHUB_KNOWN_HOSTS", "/etc/hpchub/known_hosts")
# The tunnel service: a service of its own (supervised there; the hub never starts a second one),
# or started by the hub, detached, beside it.
c.HPCSpawner.tunnel_socket = env("HPCHUB_TUNNEL_SERVICE") or str(state / "tunnels.sock")
c.HPCSpawner.start_tunnel_service = not env("HPCHUB_TUNNEL_SERVICE")
c.HPCSpawner.cmd = [env("HPCHUB_JUPYTER_CMD", "jupyterhub-singleuser")]
c.HPCSpawner.partition = env("HPCHUB_PARTITION")
c.HPCSpawner.walltime = env("HPCHUB_WALLTIME", "01:00:00")
c.Spawner.hub_connect_url = env("HPCHUB_HUB_CONNECT_URL")
c.Spawner.default_url = "/lab"
targets_file = env("HPCHUB_TARGETS_FILE", "/etc/hpchub/targets.json")
if Path(targets_file).exists():
    c.HPCSpawner.targets = json.loads(Path(targets_file).read_text())

if env("HPCHUB_PROXY", "chp") == "chp-service":  # its routes and websockets outlive the hub
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = env("HPCHUB_PROXY_API_URL", "http://127.0.0.1:8001")
elif env("HPCHUB_PROXY", "chp") == "traefik":
    c.JupyterHub.proxy_class = "traefik_file"
    c.TraefikProxy.should_start = True
    c.TraefikProxy.traefik_api_url = "http://127.0.0.1:8099"
    c.TraefikProxy.static_config_file = str(state / "traefik.toml")
    c.TraefikFileProviderProxy.dynamic_config_file = str(state / "traefik-routes.toml")

idle_timeout = int(env("HPCHUB_IDLE_TIMEOUT", "0") or 0)
if idle_timeout:
    c.JupyterHub.services = [{
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={idle_timeout}"],
    }]
    c.JupyterHub.load_roles = [{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }]

for extra in sorted(glob(env("HPCHUB_CONFIG_D", "/etc/jupyterhub/config.d") + "/*.py")):
    load_subconfig(extra)  # noqa: F821
