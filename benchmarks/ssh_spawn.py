"""Spawn on a login node: time from `POST /hub/api/users/NAME/server` until the server
answers through the hub's proxy, for hpchub and for the incumbent (sshspawner, NERSC's
design, through its own hub and proxy), against the floor: `jupyterhub-singleuser` started
on the same login node directly, in the same environment, without the launcher, until it
answers.

All three are measured in this run, interleaved, on an instance of their own (`benchssh`,
loopback mode).
"""

from __future__ import annotations

import json
import statistics

from hpchub.site.system import demo_passwords
from tests.site_handle import check, stop

from .incumbents import IncumbentHub
from .table import Figure, median_spread
from .timing import bench_instance, time_until_answer

NAME = "benchssh"

# Runs on the login node as alice: start the server directly, poll until it answers, stop it.
FLOOR = r"""
import json, os, socket, subprocess, sys, tempfile, time, urllib.request
env = dict(os.environ, JUPYTERHUB_SERVICE_URL="http://127.0.0.1:%(port)d/user/alice/",
           JUPYTERHUB_API_URL="http://127.0.0.1:%(api)d/hub/api", JUPYTERHUB_API_TOKEN="floor-benchmark",
           JUPYTERHUB_CLIENT_ID="jupyterhub-user-alice", JUPYTERHUB_USER="alice",
           JUPYTERHUB_SERVICE_PREFIX="/user/alice/", JUPYTERHUB_BASE_URL="/",
           JUPYTERHUB_OAUTH_CALLBACK_URL="/user/alice/oauth_callback",
           JUPYTER_RUNTIME_DIR=tempfile.mkdtemp())
start = time.monotonic()
proc = subprocess.Popen([sys.argv[1]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        urllib.request.urlopen("http://127.0.0.1:%(port)d/user/alice/api", timeout=1)
        break
    except urllib.error.HTTPError:
        break  # any HTTP answer: the server is up
    except OSError:
        time.sleep(0.02)
print(json.dumps(time.monotonic() - start))
proc.terminate(); proc.wait()
"""


def run(runs: int = 20) -> dict:
    with bench_instance(NAME) as (site, hub):
        singleuser = f"{site.info['jupyter_env']}/bin/jupyterhub-singleuser"
        incumbent = IncumbentHub(site, "sshspawner", [singleuser])
        try:
            hub.login("alice", demo_passwords()["alice"])
            token = site.site.hub.admin_token()
            times = {"hpchub": [], "sshspawner": [], "floor": []}
            script = FLOOR % {"port": site.layout.port_base + 97, "api": site.layout.hub_api_port}
            for _ in range(runs):
                times["hpchub"].append(time_until_answer(lambda: hub.admin("POST", "/users/alice/server"),
                                                         f"{hub.url}/user/alice/api/status", token))
                stop(hub, "alice")
                times["sshspawner"].append(time_until_answer(
                    lambda: incumbent.api("POST", "/users/alice/server"), f"{incumbent.url}/user/alice/api/status",
                    incumbent.token))
                response = incumbent.api("DELETE", "/users/alice/server")
                assert response.status_code in (202, 204), response.text
                floor = check(site.ssh("alice", ["/usr/bin/python3", "-c", script, singleuser], node="login1",
                                       timeout=120))
                times["floor"].append(json.loads(floor.stdout))
        finally:
            incumbent.close()
    return {"runs": runs, **times}


def report(result: dict) -> str:
    def line(name, values):
        return (f"{name:10} median {statistics.median(values):.2f} s  "
                f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")

    floor = statistics.median(result["floor"])
    return "\n".join([
        "spawn on a login node: POST to answering through the proxy, against the floor and sshspawner",
        line("hpchub", result["hpchub"]),
        line("sshspawner", result["sshspawner"]),
        line("floor", result["floor"]),
        f"ratio hpchub/floor: {statistics.median(result['hpchub']) / floor:.2f}x (goal <= 1.2x); "
        f"sshspawner/floor: {statistics.median(result['sshspawner']) / floor:.2f}x",
    ])


def figures(result: dict) -> list[Figure]:
    floor, floor_spread = median_spread(result["floor"])
    ours, ours_spread = median_spread(result["hpchub"])
    theirs, theirs_spread = median_spread(result["sshspawner"])
    return [
        Figure("login-node spawn, hpchub", ours, "s", "server started directly", floor, "<= 1.2x",
               ours <= 1.2 * floor, ours_spread),
        Figure("login-node spawn, sshspawner", theirs, "s", "server started directly", floor,
               spread=theirs_spread),
    ]
