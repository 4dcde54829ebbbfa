"""Users kept apart, and credentials honoured, on the real site: bob cannot reach alice's
servers (login node or batch job) through the proxy with guessed or stolen-looking tokens,
nor by connecting to her job's port; alice's server token cannot act on bob; a revoked
certificate ends in a clear request to log in again; the hub's secret files are 0600."""

from __future__ import annotations

import json
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from hpchub.site.system import demo_passwords

from ..site_handle import clean_hub, spawn
from .test_credentials import login_ok
from .test_slurm_spawner import Progress
from .test_ssh_spawner import run_in_kernel

HPCHUB = str(Path(sys.executable).with_name("hpchub"))
TOKEN = "import os, json; print(json.dumps(os.environ['JUPYTERHUB_API_TOKEN']))"


@pytest.fixture
def hub(loopback_site):
    yield from clean_hub(loopback_site)


def refused(response: requests.Response) -> bool:
    """Not served: 401/403, or sent to log in; never the server's API answer."""
    return response.status_code in (302, 401, 403, 404) and '"kernels"' not in response.text


def test_bob_cannot_reach_alices_servers_with_guessed_or_stolen_looking_tokens(loopback_site, hub):
    site = loopback_site
    login_ok(hub, "alice")
    spawn(hub, "alice", options={"target": "login"})
    job = spawn(hub, "alice", "job", options={"target": "compute"}, timeout=180)["state"]
    bob_session, _ = hub.login("bob", demo_passwords()["bob"])
    spawn(hub, "bob", options={"target": "login"})
    bob_token = json.loads(run_in_kernel(hub, "bob", TOKEN).strip().splitlines()[-1])  # a real token, bob's
    alice_server_token = json.loads(run_in_kernel(hub, "alice", TOKEN).strip().splitlines()[-1])
    guesses = [secrets.token_hex(16), bob_token, alice_server_token[:-1] + ("0" if alice_server_token[-1] != "0"
                                                                              else "1"),
               "", "null", "undefined", "' OR 1=1 --"]
    for path in ("/user/alice/api/status", "/user/alice/job/api/status", "/user/alice/api/contents"):
        assert refused(bob_session.get(f"{hub.url}{path}", timeout=30, allow_redirects=False)), path
        for guess in guesses:
            response = requests.get(f"{hub.url}{path}", headers={"Authorization": f"token {guess}"}, timeout=30,
                                    allow_redirects=False)
            assert refused(response), (path, guess[:8], response.status_code, response.text[:200])
    # The job's server listens on its compute node's address: bob there, with or without a token.
    direct = f"http://{job['address']}:{job['port']}/user/alice/job/api/status"
    probe = ("import sys, urllib.request, urllib.error\n"
             "request = urllib.request.Request(sys.argv[1], headers={'Authorization': 'token ' + sys.argv[2]})\n"
             "try:\n    print(urllib.request.urlopen(request, timeout=10).status)\n"
             "except urllib.error.HTTPError as e:\n    print(e.code)\n")
    for token in (bob_token, "x"):
        out = site.ssh("bob", ["python3", "-c", probe, direct, token], node="login1").stdout.strip()
        assert out in ("302", "401", "403"), out


def test_alices_server_token_cannot_act_on_bob(loopback_site, hub):
    login_ok(hub, "alice")
    login_ok(hub, "bob")
    spawn(hub, "alice", options={"target": "login"})
    spawn(hub, "bob", options={"target": "login"})
    token = json.loads(run_in_kernel(hub, "alice", TOKEN).strip().splitlines()[-1])
    headers = {"Authorization": f"token {token}"}
    api = f"{hub.url}/hub/api"
    assert requests.get(f"{api}/user", headers=headers, timeout=30).json()["name"] == "alice"
    for method, path in (("GET", "/users/bob"), ("POST", "/users/bob/server"), ("DELETE", "/users/bob/server"),
                         ("POST", "/users/bob/tokens"), ("GET", "/users"), ("POST", "/users/alice/admin")):
        response = requests.request(method, f"{api}{path}", headers=headers, timeout=30, json={})
        assert response.status_code in (403, 404, 405), (method, path, response.status_code, response.text[:200])
    assert refused(requests.get(f"{hub.url}/user/bob/api/status", headers=headers, timeout=30,
                                allow_redirects=False))
    assert hub.admin("GET", "/users/bob").json()["servers"][""]["ready"]  # bob's server untouched


def test_a_revoked_certificate_ends_in_a_clear_request_to_log_in_again(loopback_site, hub):
    site = loopback_site
    site.site.hub.restart()  # no SSH connection of alice's left open in the hub from earlier tests
    login_ok(hub, "alice")
    cred, _ = hub.ssh_credential("alice")
    subprocess.run([HPCHUB, "ca", "revoke", "--site", site.name, "--serial", str(cred.serial)], check=True,
                   capture_output=True)
    response = hub.admin("POST", "/users/alice/server", json={"user_options": {"target": "login"}})
    if response.status_code == 202:
        final = Progress(hub, "alice").final(timeout=60)
        assert final.get("failed"), final
        message = final["message"]
    else:
        message = response.json()["message"]
    assert "refused your credentials; log out of the hub and in again" in message, message
    login_ok(hub, "alice")  # a new login, a new certificate: the spawn works again
    assert spawn(hub, "alice", options={"target": "login"})["ready"]


def test_the_hubs_secret_files_are_its_own_and_0600(loopback_site):
    layout = loopback_site.layout
    secrets_ = [layout.hub_dir / name for name in ("crypt_key", "admin-token", "proxy-token",
                                                    "jupyterhub_cookie_secret")]
    secrets_ += [layout.hub_ca_key, layout.hub_ge_ca_key, layout.user_ca_key, layout.ge_user_ca_key,
                 layout.grid_dir / "ca.key", layout.grid_dir / "hostkey.pem"]
    for path in secrets_:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, (path, oct(mode))
    assert stat.S_IMODE(layout.hub_dir.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(layout.hub_ge_ca_key.parent.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(layout.grid_dir.stat().st_mode) & 0o077 == 0
