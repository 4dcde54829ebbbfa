"""The hub image's pieces the production tests share: its build context as Docker sends it, and
the environment a hub from the image's build steps runs with against a test site."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from hpchub.site.nodes import SITE_MARKER
from hpchub.site.software import JUPYTER_ENV

ROOT = Path(__file__).resolve().parents[2]
CONTAINER = ROOT / "container"


def build_context(root: Path) -> set[str]:
    """The files Docker sends for `docker build` of root (its .dockerignore applied by the Docker
    SDK's own implementation of the rules), relative to root."""
    from docker.utils.build import exclude_paths

    ignore = root / ".dockerignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return {path for path in exclude_paths(str(root), patterns) if (root / path).is_file()}


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if (ROOT / line).is_file()]


def copy_of_the_context(destination: Path) -> Path:
    """The repository's files as the image's build sees them (tracked files only: what a clean
    clone has), copied to destination."""
    staging = destination.with_name(destination.name + "-checkout")
    shutil.rmtree(staging, ignore_errors=True)
    for name in tracked_files():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, staging / name)
    shutil.rmtree(destination, ignore_errors=True)
    for name in build_context(staging):
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staging / name, destination / name)
    shutil.rmtree(staging)
    return destination


def image_env(site, state: Path, prefix: Path) -> dict:
    base = site.layout.port_base
    nodes = [{"name": n["name"], "address": n["address"], "port": n["port"]} for n in site.info["login_nodes"]]
    return {
        "PATH": f"{prefix}/bin:/usr/bin:/bin", "HOME": str(state), "LANG": "C.UTF-8",
        "JUPYTERHUB_CRYPT_KEY": os.urandom(32).hex(),
        "HPCHUB_STATE_DIR": str(state),
        "HPCHUB_PUBLIC_URL": f"http://127.0.0.1:{base + 93}",
        "HPCHUB_HUB_BIND_URL": f"http://127.0.0.1:{base + 94}",
        "HPCHUB_LOGIN_NODES": json.dumps(nodes),
        "HPCHUB_KNOWN_HOSTS": str(site.layout.known_hosts),
        "HPCHUB_SSH_CA_KEY": str(state / "user_ca"),
        "HPCHUB_JUPYTER_CMD": f"{JUPYTER_ENV}/bin/jupyterhub-singleuser",
        "HPCHUB_PARTITION": "batch",
        "HPCHUB_ALLOWED_USERS": "alice,bob",
        "HPCHUB_CONFIG_D": str(state / "config.d"),
        "CONFIGPROXY_AUTH_TOKEN": os.urandom(16).hex(),
        SITE_MARKER: site.name,  # `site down` finds what this hub leaves, as for the site's own hub
    }




def image_hub_state(site, name: str, proxy_api_port: int | None = None) -> Path:
    """A state directory for a hub run from the image's build or the image itself: its config.d
    (an admin service with the site's admin token, which the tests' API client uses; the
    proxy's API beside the site's own) and its copy of the CA key, the hub's user's."""
    from hpchub.site.layout import HUB_OS_USER

    state = Path("/var/lib/hpchub-tests") / f"{name}-{site.name}"
    shutil.rmtree(state, ignore_errors=True)
    (state / "config.d").mkdir(parents=True)
    shutil.copy(site.layout.hub_ca_key, state / "user_ca")
    text = (f'c.JupyterHub.services = [{{"name": "test-admin", "api_token": {site.site.hub.admin_token()!r}}}]\n'
            'c.JupyterHub.load_roles = [{"name": "test-admin", "services": ["test-admin"],\n'
            '                            "scopes": ["admin:users", "admin:servers", "access:servers"]}]\n')
    if proxy_api_port is not None:
        text += f'c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"\n'
    (state / "config.d" / "50-test.py").write_text(text)
    subprocess.run(["chown", "-R", f"{HUB_OS_USER}:{HUB_OS_USER}", str(state)], check=True)
    (state / "user_ca").chmod(0o600)
    return state
