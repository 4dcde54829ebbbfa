"""Test-side handle on a running site instance: the site's own CLI to bring it up and
down, and real SSH (OpenSSH client, CA-signed certificates) to act as its users."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hpchub.site.layout import SiteLayout
from hpchub.site.manager import Site, load_layout

HPCHUB = str(Path(sys.executable).with_name("hpchub"))


def hpchub_site(action: str, name: str, *extra: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `hpchub site ACTION --name NAME` (the real command) and return its output."""
    return subprocess.run(
        [HPCHUB, "site", action, "--name", name, *extra],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@dataclass
class Credential:
    key: Path
    cert: Path | None


class SiteHandle:
    def __init__(self, name: str):
        layout = load_layout(name)
        assert layout is not None, f"site {name} has no state"
        self.layout: SiteLayout = layout
        self.site = Site(layout)
        self.info = json.loads(layout.site_info_file.read_text())
        self._tmp = tempfile.TemporaryDirectory(prefix=f"hpchub-test-{name}-")
        self.tmp = Path(self._tmp.name)
        self._serial = 0

    @property
    def name(self) -> str:
        return self.layout.name

    def close(self) -> None:
        self._tmp.cleanup()

    # ----- credentials --------------------------------------------------------------
    def credential(self, principal: str | None, ca_key: Path | None = None, validity: str = "-5m:+1h",
                   node: str = "login1") -> Credential:
        """A fresh ed25519 key, signed for principal by the CA the node trusts (or ca_key); None:
        no certificate."""
        self._serial += 1
        key = self.tmp / f"key{self._serial}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        if principal is None:
            return Credential(key, None)
        subprocess.run(
            ["ssh-keygen", "-q", "-s", str(ca_key or self.layout.user_ca_key_of(node)), "-I", f"test-{principal}",
             "-n", principal, "-V", validity, f"{key}.pub"],
            check=True,
        )
        return Credential(key, Path(f"{key}-cert.pub"))

    def credential_files(self, cred, prefix: str) -> Credential:
        """An SSHCredential (key and certificate) written to files an SSH client can use."""
        self._serial += 1
        key = self.tmp / f"{prefix}-{self._serial}"
        key.touch(mode=0o600)
        key.write_text(cred.private_key)
        Path(f"{key}-cert.pub").write_text(cred.certificate + "\n")
        return Credential(key, Path(f"{key}-cert.pub"))

    def login_address(self, node: str) -> tuple[str, int]:
        for entry in self.info["login_nodes"] + (self.info.get("gridengine") or {}).get("login_nodes", []):
            if entry["name"] == node:
                return entry["address"], entry["port"]
        raise KeyError(node)

    def ssh_argv(self, user: str, cred: Credential, node: str = "login1",
                 known_hosts: Path | None = None) -> list[str]:
        address, port = self.login_address(node)
        ge = self.info.get("gridengine") or {}
        cluster_file = ge["known_hosts"] if node in [n["name"] for n in ge.get("login_nodes", [])] else None
        argv = ["ssh", "-F", "/dev/null", "-i", str(cred.key), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={known_hosts or cluster_file or self.layout.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", str(port)]
        if cred.cert is not None:
            argv += ["-o", f"CertificateFile={cred.cert}"]
        return argv + [f"{user}@{address}"]

    def ssh(self, user: str, argv: list[str] | str, *, node: str = "login1", cred: Credential | None = None,
            known_hosts: Path | None = None, timeout: float = 60, input: str | None = None,
            ) -> subprocess.CompletedProcess:
        """Run a command on a login node as user, over SSH with a certificate for that user."""
        cred = cred or self.user_credential(user, node)
        command = argv if isinstance(argv, str) else shlex.join(argv)
        stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run(self.ssh_argv(user, cred, node, known_hosts) + ["--", command],
                              capture_output=True, text=True, timeout=timeout, **stdin)

    _user_creds: dict[tuple[str, Path], Credential]

    def user_credential(self, user: str, node: str = "login1") -> Credential:
        """A certificate for user that the node accepts (one per user and CA, made once)."""
        if not hasattr(self, "_user_creds"):
            self._user_creds = {}
        key = (user, self.layout.user_ca_key_of(node))
        if key not in self._user_creds:
            self._user_creds[key] = self.credential(user, node=node)
        return self._user_creds[key]

    # ----- inside nodes (as root) -----------------------------------------------------
    def in_node(self, node: str, argv: list[str], timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.site.nodes.node_command(node, argv), capture_output=True, text=True,
                              timeout=timeout, **kw)

    def processes_in_node(self, node: str, user: str) -> list[str]:
        """Command lines of the user's processes inside one node (the machine's process table
        is shared by every node and instance, so pgrep alone would see them all)."""
        import pwd

        from hpchub.site.nodes import all_pids, in_node_namespaces, namespace_id, proc_file

        holder = self.site.nodes.holder(node)
        assert holder is not None, f"node {node} is not up"
        mnt, uts, uid = namespace_id(holder.pid, "mnt"), namespace_id(holder.pid, "uts"), pwd.getpwnam(user).pw_uid
        found = []
        for pid in all_pids():
            try:
                if Path(f"/proc/{pid}").stat().st_uid != uid or not in_node_namespaces(pid, {mnt}, {uts}):
                    continue
            except FileNotFoundError:
                continue
            found.append((proc_file(pid, "cmdline") or b"").replace(b"\0", b" ").decode().strip())
        return [cmd for cmd in found if cmd]

    def kill_in_node(self, node: str, command_name: str) -> int:
        """SIGKILL the processes named command_name inside one node only (the machine's process
        table is shared, so pkill would hit every node); returns how many."""
        import os
        import signal

        from hpchub.site.nodes import all_pids, in_node_namespaces, namespace_id, proc_file

        holder = self.site.nodes.holder(node)
        assert holder is not None, f"node {node} is not up"
        mnt, uts = namespace_id(holder.pid, "mnt"), namespace_id(holder.pid, "uts")
        killed = 0
        for pid in all_pids():
            name = (proc_file(pid, "comm") or b"").decode().strip()
            if name == command_name and in_node_namespaces(pid, {mnt}, {uts}):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        return killed

    def in_hub_side(self, argv: list[str], timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        """A command where the hub runs: its network namespace (isolated) or the machine itself."""
        if self.layout.isolated:
            argv = ["nsenter", f"--net=/run/netns/{self.layout.netns('hub')}", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)

    # ----- Slurm ------------------------------------------------------------------------
    def wait_job_state(self, user: str, job_id: str, wanted: str, timeout: float = 60) -> str:
        """Poll sacct (as user) until the job reaches wanted; returns the last state seen."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            proc = self.ssh(user, ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"])
            state = proc.stdout.strip()
            if state == wanted:
                return state
            time.sleep(0.5)
        return state



@contextmanager
def hub_settings(handle: "SiteHandle", text: str, name: str = "50-test"):
    """Run the site's hub with extra configuration (config.d/NAME.py) for the duration of a
    test or module, and put it back after."""
    path = handle.layout.hub_config_dir / f"{name}.py"
    path.write_text(text)
    try:
        handle.site.hub.restart()
        yield
    finally:
        path.unlink()
        handle.site.hub.restart()


def wait_for_hub(url: str, process, timeout: float = 60) -> bool:
    """True once the hub at url answers its health check; False if its process exits first or
    timeout passes (the caller says what failed)."""
    import requests

    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/hub/health", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


class HubClient:
    """The site's hub over HTTP: form logins as users, and the site admin's API token."""

    def __init__(self, handle: "SiteHandle"):
        self.handle = handle
        self.url = handle.layout.hub_url
        self.sessions: list = []

    def login(self, user: str, password: str, otp: str | None = None):
        import re

        import requests

        session = requests.Session()
        self.sessions.append(session)
        page = session.get(f"{self.url}/hub/login", timeout=10)
        found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert found, f"no login form at {page.url} ({page.status_code}): {page.text[:300]!r}"
        xsrf = found.group(1)
        response = session.post(f"{self.url}/hub/login?next=%2Fhub%2Fhome", timeout=30,
                                data={"username": user, "password": password, "_xsrf": xsrf,
                                      **({"otp": otp} if otp is not None else {})})
        return session, response

    def wait_until_answering(self, timeout: float = 30) -> None:
        """Wait until the hub answers at this client's URL. The site's start-up waits for the
        hub itself; a proxy the hub starts (traefik) may route to it only a moment later."""
        import requests

        def answers() -> bool:
            try:
                return requests.get(f"{self.url}/hub/health", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(f"the hub answers at {self.url}", answers, timeout)

    def admin(self, method: str, path: str, **kw):
        import requests

        token = self.handle.site.hub.admin_token()
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=30,
                                headers={"Authorization": f"token {token}"}, **kw)

    def auth_state(self, user: str) -> dict:
        response = self.admin("GET", f"/users/{user}")
        response.raise_for_status()
        return response.json()["auth_state"]

    def ssh_credential(self, user: str, issuer: str = ""):
        """The user's SSH credential (from the main issuer, or an extra one) from auth_state,
        written to files an SSH client can use."""
        from hpchub.credentials import CredentialSet

        cred = CredentialSet.from_auth_state(self.auth_state(user)).ssh_from(issuer)
        assert cred is not None, f"{user} has no certificate from issuer {issuer or 'main'!r}"
        return cred, self.handle.credential_files(cred, f"hub-{user}")

    def close(self) -> None:
        for session in self.sessions:
            session.close()


def _server_path(user: str, server: str) -> str:
    return f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"


def spawn(hub: HubClient, user: str, server: str = "", timeout: float = 120, options: dict | None = None) -> dict:
    """Start a server through the hub's API and follow its progress until it is ready;
    returns its model, with the progress events seen under "events"."""
    # Empty options: the spawner's defaults (no body would reuse the server's saved options).
    response = hub.admin("POST", _server_path(user, server), json={"user_options": options or {}})
    assert response.status_code in (201, 202), response.text
    events = progress_events(hub, user, server) if response.status_code == 202 else []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = hub.admin("GET", f"/users/{user}").json()["servers"].get(server)
        if model and model["ready"]:
            return {**model, "events": events}
        if model is None or (not model["pending"] and not model["ready"]):
            raise AssertionError(f"spawn of {user}/{server} failed: {events}")
        time.sleep(0.2)
    raise AssertionError(f"spawn of {user}/{server} not ready after {timeout} s: {events}")


def progress_events(hub: HubClient, user: str, server: str = "") -> list[dict]:
    import requests

    token = hub.handle.site.hub.admin_token()
    with requests.get(f"{hub.url}/hub/api{_server_path(user, server)}/progress", stream=True, timeout=120,
                      headers={"Authorization": f"token {token}"}) as response:
        return [json.loads(line[5:]) for line in response.iter_lines(decode_unicode=True)
                if line and line.startswith("data:")]


QUICK_POLLS = """\
c.HPCSpawner.status_interval = 3
c.HPCSpawner.spawn_status_interval = 1
c.HPCSpawner.gone_grace = 4
c.Spawner.poll_interval = 2
c.HPCHub.route_check_interval = 2
"""
"""Hub settings for tests that watch the hub notice changes: short poll and check intervals."""


def site_processes(site: "SiteHandle", command_part: bytes) -> list[int]:
    """Live processes of this site (its marker in their environment) whose command line holds
    command_part (arguments separated by NUL bytes, as /proc has them)."""
    from hpchub.site.nodes import SITE_MARKER, all_pids, proc_file, process_is_gone

    marker = f"{SITE_MARKER}={site.name}".encode()
    found = []
    for pid in all_pids():
        cmdline, environ = proc_file(pid, "cmdline"), proc_file(pid, "environ")
        if cmdline is None or environ is None or process_is_gone(pid):
            continue
        if command_part in cmdline and marker in environ.split(b"\0"):
            found.append(pid)
    return found


def opens_to_a_fresh_login(hub, user: str, server: str) -> bool:
    """A new browser session logs in and opens the server: the hub's proxy reaches the server
    through its tunnel, and the server completes the OAuth login with the hub's API through the
    forward on its node (a fresh login: no token the server had cached)."""
    from hpchub.site.system import demo_passwords

    base = f"{hub.url}/user/{user}/" + (f"{server}/" if server else "")
    session, _ = hub.login(user, demo_passwords()[user])
    try:
        lab = session.get(f"{base}lab", timeout=15)
    except OSError:
        return False
    finally:
        session.close()
    return lab.status_code == 200 and lab.url.startswith(base)


def stop(hub: HubClient, user: str, server: str = "", timeout: float = 60) -> None:
    response = hub.admin("DELETE", _server_path(user, server))
    assert response.status_code in (202, 204), response.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server not in hub.admin("GET", f"/users/{user}").json()["servers"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{user}/{server} did not stop within {timeout} s")


def stop_all(client: HubClient) -> None:
    for user in ("alice", "bob"):
        for name in list(client.admin("GET", f"/users/{user}").json()["servers"]):
            stop(client, user, name)


def clean_hub(site: SiteHandle):
    """For fixtures: the site's hub, with no server of anyone's and no job of alice's before
    and after."""
    client = HubClient(site)
    stop_all(client)
    site.ssh("alice", ["scancel", "--user", "alice"])
    yield client
    stop_all(client)
    site.ssh("alice", ["scancel", "--user", "alice"])
    client.close()


def leftovers(site, user: str) -> list[str]:
    """The user's processes on any node, apart from SSH sessions and the test's own."""
    found = []
    for node in ["login1", "login2", *site.info["compute_nodes"]]:
        found += [f"{node}: {cmd}" for cmd in site.processes_in_node(node, user)
                  if not cmd.startswith(("sshd", "sleep 600"))]
    return found


def wait_until(what: str, condition, timeout: float, detail=None) -> None:
    """Wait for condition(); past timeout, fail naming what (and what detail() shows then)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}" + (f": {detail()}" if detail else ""))
        time.sleep(0.3)
