"""The hub runs as at a centre: unprivileged, on a host that is not a cluster member, and
the demo users log in with their passwords (PAM)."""

from __future__ import annotations

import pwd
import re
from pathlib import Path

import requests

from hpchub.site.hub import HUB_ENV, uid_of
from hpchub.site.layout import HUB_OS_USER
from hpchub.site.system import demo_passwords
from hpchub.site.nodes import proc_file


def _cmd(pid: int) -> str:
    return (proc_file(pid, "cmdline") or b"").replace(b"\0", b" ").decode()


def test_hub_and_proxy_run_unprivileged(site):
    hub_uid = pwd.getpwnam(HUB_OS_USER).pw_uid
    assert hub_uid != 0
    hub = site.site.nodes.daemon("hub")
    assert hub is not None and uid_of(hub.pid) == hub_uid
    proxies = [p for p in site.site.nodes.processes() if "configurable-http-proxy" in _cmd(p)]
    assert proxies, "the hub should have started configurable-http-proxy"
    assert all(uid_of(p) == hub_uid for p in proxies)


def test_hub_side_is_not_a_cluster_member(site):
    """The hub user, where the hub runs, cannot use Slurm: no configuration, no munge."""
    as_hub = ["setpriv", f"--reuid={HUB_OS_USER}", f"--regid={HUB_OS_USER}", "--init-groups", "--"]
    env = {"PATH": f"{HUB_ENV}/bin:/usr/bin:/bin", "HOME": "/tmp"}
    proc = site.in_hub_side([*as_hub, "sbatch", "--wrap", "hostname"], env=env)
    assert proc.returncode != 0
    assert "Could not establish a configuration source" in proc.stderr or "slurm.conf" in proc.stderr
    assert not Path("/etc/slurm/slurm.conf").exists()
    assert not Path("/run/munge/munge.socket.2").exists()
    # The site's own configuration, munge key and socket are out of the hub user's reach.
    for path in (site.layout.slurm_etc / "slurm.conf", site.layout.munge_dir / "munge.key",
                 site.layout.munge_run / "munge.socket.2"):
        assert path.exists()
        assert site.in_hub_side([*as_hub, "test", "-r", str(path)], env=env).returncode == 1, path


def _login(site, user: str, password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    page = session.get(f"{site.layout.hub_url}/hub/login", timeout=10)
    page.raise_for_status()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    response = session.post(f"{site.layout.hub_url}/hub/login?next=%2Fhub%2Fhome",
                            data={"username": user, "password": password, "_xsrf": xsrf}, timeout=30)
    return session, response


def test_alice_logs_in_with_her_password(site):
    session, response = _login(site, "alice", demo_passwords()["alice"])
    assert response.status_code == 200 and response.url.endswith("/hub/home")
    assert 'id="start"' in response.text  # the home page's start button
    user = session.get(f"{site.layout.hub_url}/hub/api/user", timeout=10,
                       headers={"X-XSRFToken": session.cookies.get("_xsrf", "")})
    assert user.status_code == 200 and user.json()["name"] == "alice"
    session.close()


def test_wrong_password_is_refused(site):
    session, response = _login(site, "bob", demo_passwords()["alice"])
    assert "/hub/login" in response.url and "Invalid username or password" in response.text
    session.close()
