"""Jupyter on a login node over SSH, reached through the hub's proxy, on the real site in
both network modes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pwd
import signal
import time

import pytest
import requests

from hpchub.site.system import demo_passwords

from ..kernel_client import KernelClient
from ..site_handle import HubClient, check, hpchub_site, hub_settings, progress_events, spawn, stop, stop_all
from .test_credentials import login_ok


@pytest.fixture
def hub(site):
    client = HubClient(site)
    stop_all(client)  # whatever an earlier test left behind
    yield client
    stop_all(client)
    client.close()


def server_processes(site, node: str, user: str) -> list[str]:
    """The user's single-user server processes on a node."""
    return [cmd for cmd in site.processes_in_node(node, user) if "jupyterhub-singleuser" in cmd]


def run_in_kernel(hub: HubClient, user: str, code: str, server: str = "") -> str:
    base = f"{hub.url}/user/{user}" + (f"/{server}" if server else "")

    async def go():
        client = KernelClient(base, hub.handle.site.hub.admin_token())
        client.start_kernel()
        await client.connect()
        try:
            return await client.execute(code)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_spawn_answers_through_the_proxy_and_runs_on_a_login_node_as_alice(site, hub):
    login_ok(hub, "alice")
    model = spawn(hub, "alice")
    node = model["state"]["host"]
    assert node in ("login1", "login2")
    status = requests.get(f"{hub.url}/user/alice/api/status", timeout=30,
                          headers={"Authorization": f"token {site.site.hub.admin_token()}"})
    assert status.status_code == 200 and "kernels" in status.json()
    out = run_in_kernel(hub, "alice", "import socket, getpass; print(socket.gethostname(), getpass.getuser())")
    assert out.split() == [node, "alice"]
    assert len(server_processes(site, node, "alice")) == 1
    # No TCP port: the server listens on a socket in a directory only alice can enter.
    uid = pwd.getpwnam("alice").pw_uid
    listing = site.in_node(node, ["stat", "-c", "%a %U", f"/tmp/hpchub-{uid}/{model['state']['server_id']}"])
    assert listing.stdout.split() == ["700", "alice"]


def test_progress_says_which_node(site, hub):
    login_ok(hub, "bob")
    model = spawn(hub, "bob")
    messages = [e.get("message", "") for e in model["events"]]
    assert any(f"Chose login node {model['state']['host']} (load " in m for m in messages), messages
    assert any(f"Server started on {model['state']['host']}" in m for m in messages), messages


def test_bob_cannot_reach_alices_server(site, hub):
    login_ok(hub, "alice")
    model = spawn(hub, "alice")
    node, server_id = model["state"]["host"], model["state"]["server_id"]
    bob, _ = hub.login("bob", demo_passwords()["bob"])
    through_proxy = bob.get(f"{hub.url}/user/alice/api/status", timeout=30, allow_redirects=False)
    assert through_proxy.status_code in (302, 403) and "kernels" not in through_proxy.text
    if through_proxy.status_code == 302:  # the OAuth dance refuses bob at the end
        refused = bob.get(f"{hub.url}/user/alice/api/status", timeout=30)
        assert refused.status_code == 403
    # On the node itself: bob's connection to alice's socket is refused by the filesystem.
    uid = pwd.getpwnam("alice").pw_uid
    sock = f"/tmp/hpchub-{uid}/{server_id}/jupyter.sock"
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1]); print('connected')\nexcept OSError as e: print(type(e).__name__)")
    out = check(site.ssh("bob", ["python3", "-c", probe, sock], node=node)).stdout.strip()
    assert out == "PermissionError"


def test_stop_leaves_no_process_on_the_node(site, hub):
    login_ok(hub, "alice")
    model = spawn(hub, "alice")
    node = model["state"]["host"]
    run_in_kernel(hub, "alice", "x = 1")  # a kernel, which Jupyter starts in a session of its own
    assert server_processes(site, node, "alice")
    stop(hub, "alice")
    leftovers = "\n".join(site.processes_in_node(node, "alice"))
    assert "jupyterhub-singleuser" not in leftovers and "ipykernel" not in leftovers, leftovers
    uid = pwd.getpwnam("alice").pw_uid
    left = site.in_node(node, ["ls", "-A", f"/tmp/hpchub-{uid}"]).stdout.strip()
    assert left == "", (left, site.in_node(node, ["ps", "-u", "alice", "-o", "pid,stat,args"]).stdout)


def test_one_login_node_down_the_spawn_goes_to_the_other(site, hub):
    login_ok(hub, "bob")
    # Down means down: the listener and every open connection's sshd (the hub's pooled ones too).
    site.site.nodes.stop_daemon("sshd-login1")
    site.kill_in_node("login1", "sshd")  # open connections too, if the hub has any
    try:
        model = spawn(hub, "bob")
        assert model["state"]["host"] == "login2"
        messages = [e.get("message", "") for e in model["events"]]
        assert any("Server started on login2" in m for m in messages), messages
    finally:
        stop(hub, "bob")
        check(hpchub_site("up", site.name))


def test_a_wrong_host_key_stops_the_spawn_with_a_clear_message(loopback_site):
    site = loopback_site
    wrong = site.tmp / "wrong_known_hosts"
    lines = site.layout.known_hosts.read_text().splitlines()
    wrong.write_text(f"{lines[0].split()[0]} {lines[1].split(maxsplit=1)[1]}\n"  # login2's key for login1
                     f"{lines[1].split()[0]} {lines[0].split(maxsplit=1)[1]}\n")
    os.chmod(site.tmp, 0o755)
    wrong.chmod(0o644)
    hub = HubClient(site)
    try:
        with hub_settings(site, f"c.HPCSpawner.known_hosts = {str(wrong)!r}\n"):
            login_ok(hub, "alice")
            final: dict = {}
            for _attempt in range(3):
                response = hub.admin("POST", "/users/alice/server", json={"user_options": {}})
                if response.status_code == 400:  # it failed within the hub's slow_spawn_timeout
                    final = {"failed": True, "message": response.json()["message"]}
                    break
                # 201 is not "started": JupyterHub answers 201 whenever the spawn is no longer
                # pending when it answers, which a spawn that fails at that moment also is.
                assert response.status_code in (201, 202), response.text
                server = hub.admin("GET", "/users/alice").json()["servers"].get("")
                assert not (server and server.get("ready")), (
                    f"a server started although the hub's known_hosts had every login node's key wrong: {server}\n"
                    + "\n".join((site.layout.log_dir / "hub.out").read_text().splitlines()[-40:]))
                events = progress_events(hub, "alice")
                if events:
                    final = events[-1]
                    break
                # It failed between the POST's answer and the progress request, which then has
                # nothing to tell; the failure is the same every time, so ask again.
            assert final.get("failed") and "could not be verified" in final["message"], final
            assert "Traceback" not in final["message"]
    finally:
        hub.close()


def test_ten_servers_on_one_node_at_once_within_debians_ssh_limits(loopback_site):
    site = loopback_site
    hub = HubClient(site)
    names = [f"s{i}" for i in range(10)]
    try:
        # login2 keeps Debian's MaxStartups 10:30:100 and MaxSessions 10.
        login2 = [n for n in site.info["login_nodes"] if n["name"] == "login2"]
        with hub_settings(site, f"c.HPCSpawner.login_nodes = {login2!r}\n"):
            login_ok(hub, "alice")
            with concurrent.futures.ThreadPoolExecutor(10) as pool:
                models = list(pool.map(lambda n: spawn(hub, "alice", n, timeout=180), names))
            assert {m["state"]["host"] for m in models} == {"login2"}
            token = site.site.hub.admin_token()
            for name in names:
                status = requests.get(f"{hub.url}/user/alice/{name}/api/status", timeout=30,
                                      headers={"Authorization": f"token {token}"})
                assert status.status_code == 200, name
            assert len(server_processes(site, "login2", "alice")) == 10
            for name in names:
                stop(hub, "alice", name)
            assert server_processes(site, "login2", "alice") == []
    finally:
        hub.close()


def test_hub_killed_and_restarted_keeps_the_kernel(site):
    hub = HubClient(site)
    try:
        login_ok(hub, "alice")
        spawn(hub, "alice")
        token = site.site.hub.admin_token()

        async def scenario():
            client = KernelClient(f"{hub.url}/user/alice", token)
            client.start_kernel()
            await client.connect()
            await client.execute("kept = 6 * 7")
            hub_pid = site.site.nodes.daemon("hub").pid
            os.kill(hub_pid, signal.SIGKILL)
            # The proxy and the tunnels live outside the hub: the open connection keeps working
            # while the hub is down and after it is back.
            during = await client.execute("print(kept)")
            await asyncio.to_thread(lambda: check(hpchub_site("up", site.name)))
            after = await client.execute("print(kept + 1)")
            await client.aclose()
            return during, after

        during, after = asyncio.run(scenario())
        assert (during.strip(), after.strip()) == ("42", "43")
        stop(hub, "alice")
    finally:
        hub.close()


def test_setup_lines_run_first_and_kernels_use_ipc_in_a_fresh_runtime_dir(loopback_site):
    site = loopback_site
    hub = HubClient(site)
    try:
        # The hub's setup lines, then the login target's own (with its variables and login node).
        settings = ("c.HPCSpawner.setup_lines = ['export HPCHUB_SETUP_TEST=from-setup']\n"
                    "from hpchub.site.hub import DEMO_TARGETS\n"
                    "c.HPCSpawner.targets = [dict(t, setup_lines=['export TARGET_SETUP=after-$HPCHUB_SETUP_TEST'], "
                    "environment={'TARGET_VAR': 'a b'}, login_nodes=['login2']) if t['name'] == 'login' else "
                    "dict(t, scheduler_args=[['--comment', 'from the target']]) if t['name'] == 'compute' else t "
                    "for t in DEMO_TARGETS]\n")
        with hub_settings(site, settings):
            login_ok(hub, "bob")
            model = spawn(hub, "bob")
            assert model["state"]["host"] == "login2"
            code = ("import os, json; from ipykernel.connect import get_connection_file; "
                    "info = json.load(open(get_connection_file())); "
                    "print(os.environ['HPCHUB_SETUP_TEST'], info['transport'], os.environ['JUPYTER_RUNTIME_DIR'], "
                    "os.environ['TARGET_SETUP'], repr(os.environ['TARGET_VAR']))")
            setup, transport, runtime, target_setup, target_var = run_in_kernel(hub, "bob", code).split(" ", 4)
            assert (setup, transport, target_setup, target_var.strip()) == (
                "from-setup", "ipc", "after-from-setup", "'a b'")
            assert runtime.endswith(f"/{model['state']['server_id']}/runtime")
            stop(hub, "bob")
            # A batch target's scheduler_args reach its job through sbatch, as written.
            job = spawn(hub, "bob", "job", options={"target": "compute"})["state"]["job_id"]
            comment = check(site.ssh("bob", ["squeue", "--noheader", "--jobs", job, "--format=%k"])).stdout.strip()
            assert comment == "from the target"
            stop(hub, "bob", "job")
    finally:
        hub.close()


def test_past_the_session_limit_the_user_logs_in_again_and_the_hub_still_stops_the_server(loopback_site):
    """The certificate can no longer be renewed and has expired: the user is sent to the login
    page, and the hub stops her server over the connection the tunnel service keeps."""
    site = loopback_site
    hub = HubClient(site)
    settings = (
        "c.CredentialIssuingAuthenticator.certificate_validity = 8\n"
        "c.CredentialIssuingAuthenticator.max_session_length = 4\n"
        "c.CredentialIssuingAuthenticator.renew_when_remaining = 10**9\n"
        "c.Authenticator.auth_refresh_age = 1\n"
    )
    try:
        with hub_settings(site, settings):
            session = login_ok(hub, "alice")
            node = spawn(hub, "alice")["state"]["host"]
            cred, _ = hub.ssh_credential("alice")
            time.sleep(max(0.0, cred.remaining()) + 1)
            page = session.get(f"{hub.url}/hub/home", timeout=30, allow_redirects=False)
            assert page.status_code == 302 and "/hub/login" in page.headers["Location"]
            assert server_processes(site, node, "alice")
            stop(hub, "alice")
            assert server_processes(site, node, "alice") == []
    finally:
        hub.close()
