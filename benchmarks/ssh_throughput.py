"""A kernel round trip and a 100 MB download, through the hub, its proxy and the SSH tunnel,
against direct: a plain Jupyter server started on the same login node in the same
environment and the same way (a Unix socket, kernels on ipc), used from the node itself. Both measured in this run, on an
instance of its own (`benchtp`, loopback mode).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from pathlib import Path

import requests

from hpchub.site.system import demo_passwords
from tests.kernel_client import KernelClient
from tests.site_handle import HubClient, SiteHandle, check, hpchub_site, spawn, stop

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


def _through_hub(hub: HubClient, token: str, big: str) -> dict:
    async def trips():
        client = KernelClient(f"{hub.url}/user/alice", token)
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
    with requests.get(f"{hub.url}/user/alice/files/{big}", stream=True, timeout=300,
                      headers={"Authorization": f"token {token}"}) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            size += len(chunk)
    return {"round_trips": times, "download_bytes": size, "download_seconds": time.perf_counter() - start}


def run(runs: int = 1) -> dict:
    check(hpchub_site("down", NAME, "--purge"))
    check(hpchub_site("up", NAME, "--loopback"))
    site = SiteHandle(NAME)
    hub = HubClient(site)
    big = f"hpchub-bench-{secrets.token_hex(4)}.bin"
    try:
        hub.login("alice", demo_passwords()["alice"])
        token = site.site.hub.admin_token()
        check(site.ssh("alice", ["dd", "if=/dev/urandom", f"of={big}", "bs=1M", f"count={MEGABYTES}", "status=none"],
                       node="login1"))
        login1 = [n for n in site.info["login_nodes"] if n["name"] == "login1"]
        override = site.layout.hub_config_dir / "50-bench.py"
        override.write_text(f"c.SSHSpawner.login_nodes = {login1!r}\n")
        site.site.hub.restart()
        spawn(hub, "alice")
        results = {"hub": [], "direct": []}
        client_source = (Path(__file__).parent.parent / "tests" / "kernel_client.py").read_text()
        client_source = client_source.replace("from __future__ import annotations\n", "")
        for _ in range(runs):
            results["hub"].append(_through_hub(hub, token, big))
            direct = check(site.ssh(
                "alice", ["/opt/hpchub/jupyter/bin/python", "-c", DIRECT,
                          secrets.token_hex(16), "/opt/hpchub/jupyter/bin", str(ROUND_TRIPS), big],
                node="login1", timeout=600, input=client_source))
            results["direct"].append(json.loads(direct.stdout.strip().splitlines()[-1]))
        stop(hub, "alice")
        override.unlink()
    finally:
        site.ssh("alice", ["rm", "-f", big], node="login1")
        hub.close()
        site.close()
        hpchub_site("down", NAME, "--purge")
    return results


def report(result: dict) -> str:
    def summary(kind):
        trips = [t * 1000 for r in result[kind] for t in r["round_trips"]]
        rates = [r["download_bytes"] / r["download_seconds"] / 1e6 for r in result[kind]]
        return statistics.median(trips), statistics.quantiles(trips, n=20)[18], statistics.median(rates)

    hub_trip, hub_p95, hub_rate = summary("hub")
    direct_trip, direct_p95, direct_rate = summary("direct")
    return "\n".join([
        f"kernel round trip and {MEGABYTES} MB download: through hub + proxy + SSH tunnel, against direct on the node",
        f"round trip  hub    median {hub_trip:.2f} ms (p95 {hub_p95:.2f})",
        f"round trip  direct median {direct_trip:.2f} ms (p95 {direct_p95:.2f})",
        f"ratio hub/direct round trip: {hub_trip / direct_trip:.2f}x",
        f"download    hub {hub_rate:.0f} MB/s, direct {direct_rate:.0f} MB/s; ratio hub/direct {hub_rate / direct_rate:.2f}x",
    ])
