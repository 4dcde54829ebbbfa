"""A kernel round trip and a 100 MB download by four paths, all measured in this run on an
instance of its own (`benchtp`, loopback mode):

  hub        - through the hub's proxy and hpchub's SSH tunnel, as a user's browser goes;
  hub, ssh -L - the same, with the proxy's route pointed for the while at OpenSSH's
               `ssh -N -L` to the same server's socket instead (as sites tunnel today);
  tunnel     - hpchub's tunnel alone: the proxy's route target for the server, used directly;
  ssh -L     - OpenSSH's `ssh -N -L` alone;
  direct     - the floor: a plain Jupyter server started on the same login node in the same
               environment and the same way (a Unix socket, kernels on ipc), used from the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pwd
import secrets
import socket
import subprocess
import time
from pathlib import Path

import requests

from hpchub.site.system import demo_passwords
from tests.kernel_client import KernelClient
from tests.site_handle import HubClient, SiteHandle, check, spawn, stop

from .table import Figure, median_spread
from .timing import bench_instance

NAME = "benchtp"
ROUND_TRIPS = 200
MEGABYTES = 100

# Runs on the login node as alice: a plain server on loopback, then the same measurements.
DIRECT = r"""
import asyncio, http.client, json, os, socket, subprocess, sys, tempfile, time
from tornado.netutil import Resolver
exec(sys.stdin.read())  # KernelClient, sent along
token, env_bin, rounds, big = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
directory = tempfile.mkdtemp()
sock = os.path.join(directory, "direct.sock")
env = dict(os.environ, JUPYTER_RUNTIME_DIR=directory)
# The same way hpchub runs the server: on a Unix socket, kernels on ipc.
server = subprocess.Popen([env_bin + "/jupyter-server", "--no-browser", "--ServerApp.sock=" + sock,
                           "--IdentityProvider.token=" + token, "--KernelManager.transport=ipc"],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sock)

class UnixResolver(Resolver):
    async def resolve(self, host, port, family=0):
        return [(socket.AF_UNIX, sock)]

def request(method, path, body=None):
    conn = UnixConnection("localhost")
    conn.request(method, path, body=body, headers={"Authorization": "token " + token})
    return conn, conn.getresponse()

for _ in range(300):
    try:
        conn, r = request("GET", "/api"); r.read(); conn.close(); break
    except OSError:
        time.sleep(0.05)
conn, r = request("POST", "/api/kernels", json.dumps({"name": "python3"}))
kernel = json.loads(r.read())["id"]; conn.close()

async def trips():
    client = KernelClient("http://localhost", token, resolver=UnixResolver())
    client.use_kernel(kernel)
    await client.connect()
    await client.execute("1")
    times = []
    for _ in range(rounds):
        t = time.perf_counter(); await client.execute("1"); times.append(time.perf_counter() - t)
    await client.aclose()
    return times
times = asyncio.run(trips())
t = time.perf_counter(); n = 0
conn, r = request("GET", "/files/" + big)
while True:
    chunk = r.read(1 << 20)
    if not chunk: break
    n += len(chunk)
seconds = time.perf_counter() - t
conn.close(); server.terminate(); server.wait()
print(json.dumps({"round_trips": times, "download_bytes": n, "download_seconds": seconds}))
"""


def _measure(base_url: str, token: str, big: str) -> dict:
    """Round trips of a kernel execute and one download, against the server at base_url."""
    async def trips():
        client = KernelClient(base_url, token)
        client.start_kernel()
        await client.connect()
        await client.execute("1")
        times = []
        for _ in range(ROUND_TRIPS):
            start = time.perf_counter()
            await client.execute("1")
            times.append(time.perf_counter() - start)
        await client.aclose()
        return times

    times = asyncio.run(trips())
    start, size = time.perf_counter(), 0
    with requests.get(f"{base_url}/files/{big}", stream=True, timeout=300,
                      headers={"Authorization": f"token {token}"}) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            size += len(chunk)
    return {"round_trips": times, "download_bytes": size, "download_seconds": time.perf_counter() - start}


def _proxy_api(site: SiteHandle, method: str, path: str, **kw) -> requests.Response:
    token = (site.layout.hub_dir / "proxy-token").read_text().strip()
    response = requests.request(method, f"http://127.0.0.1:{site.layout.proxy_api_port}/api/routes{path}",
                                timeout=10, headers={"Authorization": f"token {token}"}, **kw)
    response.raise_for_status()
    return response


def _route(site: SiteHandle, prefix: str) -> dict:
    """The proxy's route for a server (its target, for a login-node server, is the local end
    of hpchub's SSH tunnel); the proxy keeps its keys without the trailing slash."""
    return _proxy_api(site, "GET", "").json()[prefix.rstrip("/")]


@contextlib.contextmanager
def _route_swapped(site: SiteHandle, prefix: str, target: str):
    """The server's route pointed at another target for a while (the same proxy, another
    tunnel), then put back as the hub made it."""
    route = _route(site, prefix)
    data = {key: value for key, value in route.items() if key not in ("target", "last_activity")}
    _proxy_api(site, "POST", prefix.rstrip("/"), json={**data, "target": target})
    try:
        yield
    finally:
        _proxy_api(site, "POST", prefix.rstrip("/"), json={**data, "target": route["target"]})


def _server_socket(hub: HubClient, site: SiteHandle) -> str:
    """The server's Unix socket on login1 (node_launcher's layout: /tmp/hpchub-UID/ID/)."""
    state = hub.admin("GET", "/users/alice").json()["servers"][""]["state"]
    return f"/tmp/hpchub-{pwd.getpwnam('alice').pw_uid}/{state['server_id']}/jupyter.sock"


@contextlib.contextmanager
def _openssh_forward(site: SiteHandle, remote_socket: str):
    """`ssh -N -L` from the hub side to the server's socket on login1, as alice."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = site.ssh_argv("alice", site.user_credential("alice"), "login1")
    argv[1:1] = ["-N", "-o", "ExitOnForwardFailure=yes", "-L", f"127.0.0.1:{port}:{remote_socket}"]
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE) as proc:
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"ssh -L did not come up: {proc.stderr.read().decode()}") from None
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()


def run(runs: int = 20) -> dict:
    big = f"hpchub-bench-{secrets.token_hex(4)}.bin"
    with bench_instance(NAME) as (site, hub):
        try:
            hub.login("alice", demo_passwords()["alice"])
            token = site.site.hub.admin_token()
            check(site.ssh("alice", ["dd", "if=/dev/urandom", f"of={big}", "bs=1M", f"count={MEGABYTES}",
                                     "status=none"], node="login1"))
            login1 = [n for n in site.info["login_nodes"] if n["name"] == "login1"]
            override = site.layout.hub_config_dir / "50-bench.py"
            override.write_text(f"c.HPCSpawner.login_nodes = {login1!r}\n")
            site.site.hub.restart()
            spawn(hub, "alice")
            client_source = (Path(__file__).parent.parent / "tests" / "kernel_client.py").read_text()
            client_source = client_source.replace("from __future__ import annotations\n", "")
            results = {path: [] for path in PATHS}
            tunnel = _route(site, "/user/alice/")["target"]
            server_socket = _server_socket(hub, site)
            for _ in range(runs):
                results["hub"].append(_measure(f"{hub.url}/user/alice", token, big))
                results["tunnel"].append(_measure(f"{tunnel}/user/alice", token, big))
                with _openssh_forward(site, server_socket) as forwarded:
                    results["ssh -L"].append(_measure(f"{forwarded}/user/alice", token, big))
                    with _route_swapped(site, "/user/alice/", forwarded):
                        results["hub, ssh -L"].append(_measure(f"{hub.url}/user/alice", token, big))
                direct = check(site.ssh(
                    "alice", ["/opt/hpchub/jupyter/bin/python", "-c", DIRECT,
                              secrets.token_hex(16), "/opt/hpchub/jupyter/bin", str(ROUND_TRIPS), big],
                    node="login1", timeout=600, input=client_source))
                results["direct"].append(json.loads(direct.stdout.strip().splitlines()[-1]))
            stop(hub, "alice")
            override.unlink()
        finally:
            site.ssh("alice", ["rm", "-f", big], node="login1")
    return results


PATHS = ("hub", "hub, ssh -L", "tunnel", "ssh -L", "direct")


def _summary(result: dict, path: str) -> tuple[float, str, float]:
    trip, spread = median_spread([t for r in result[path] for t in r["round_trips"]], "ms", scale=1000)
    rates = [r["download_bytes"] / r["download_seconds"] / 1e6 for r in result[path]]
    return trip, spread, sorted(rates)[len(rates) // 2]


def figures(result: dict) -> list[Figure]:
    s = {path: _summary(result, path) for path in PATHS}
    hub_trip, direct_trip = s["hub"][0], s["direct"][0]
    return [
        Figure("kernel round trip through the hub", hub_trip, "ms", "direct on the node", direct_trip,
               "<= direct + 1 ms", hub_trip <= direct_trip + 1.0, s["hub"][1]),
        Figure("kernel round trip through the hub", hub_trip, "ms", "the hub over ssh -N -L",
               s["hub, ssh -L"][0], spread=s["hub, ssh -L"][1]),
        Figure(f"{MEGABYTES} MB download through the hub", s["hub"][2], "MB/s", "the hub over ssh -N -L",
               s["hub, ssh -L"][2], ">= the same path over ssh -L", s["hub"][2] >= s["hub, ssh -L"][2]),
        Figure(f"{MEGABYTES} MB download, hpchub tunnel alone", s["tunnel"][2], "MB/s", "ssh -N -L alone",
               s["ssh -L"][2]),
        Figure(f"{MEGABYTES} MB download through the hub", s["hub"][2], "MB/s", "direct on the node",
               s["direct"][2]),
    ]


def report(result: dict) -> str:
    lines = [f"kernel round trip ({ROUND_TRIPS} per run) and {MEGABYTES} MB download, by path:"]
    for path in PATHS:
        trip, spread, rate = _summary(result, path)
        lines.append(f"  {path:11} round trip median {trip:.2f} ms ({spread}); download {rate:.0f} MB/s")
    return "\n".join(lines)
