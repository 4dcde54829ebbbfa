"""Spawn in a Grid Engine job on an idle cluster: time from the spawn request until the server
answers, for hpchub (POST to the hub's API with the demo's "ge-compute" target, answer through
its proxy), against the floor: `jupyterhub-singleuser` submitted with `qsub` by hand from the
Grid Engine cluster's login node, in the same environment, timed until it answers there (with
a stand-in for the hub's API on the login node, which it asks for the hub's version as it
starts: the hub's own API is not reachable from the Grid Engine nodes in loopback mode).

Both are measured in this run, interleaved (in alternating order), on an instance of their own
(`benchge`, loopback mode); before each run every job is gone from the queue and the node has had
a second to finish the last one. The figure that matters is hpchub's
overhead above the floor (goal: at most 0.5 s). (batchspawner's SGESpawner is not measured:
its hub would need a Grid Engine client on the hub host, which hpchub's hub never has.)
"""

from __future__ import annotations

import json
import statistics
import time

import requests

from hpchub.schedulers.sge import GridEngine
from hpchub.site.system import demo_passwords
from tests.site_handle import SiteHandle, check, stop

from .table import Figure, median_spread, timing_line
from .timing import bench_instance, time_until_answer

NAME = "benchge"
SETTLE = 1.0  # seconds between runs after the queue is empty, for the node to finish the last job

# Runs on ge-login as alice: submit the server by hand (the same queue, slots and walltime as
# the target's defaults), poll until it answers from its node, delete the job.
FLOOR = r"""
import http.server, json, os, subprocess, sys, threading, time, urllib.error, urllib.request
address, port, singleuser, here, version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


class HubAPI(http.server.BaseHTTPRequestHandler):
    # What jupyterhub-singleuser asks of the hub as it starts (its version check); the hub's own
    # API is not reachable from the Grid Engine nodes in loopback mode. Started before the clock.
    def do_GET(self):
        self.send_response(200)
        self.send_header("X-JupyterHub-Version", version)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"version": version}).encode())

    def log_message(self, *args):
        pass


api = http.server.ThreadingHTTPServer((here, 0), HubAPI)
threading.Thread(target=api.serve_forever, daemon=True).start()
url = "http://%s:%d/user/alice/" % (address, port)
env = dict(os.environ, JUPYTERHUB_SERVICE_URL=url, JUPYTERHUB_API_URL="http://%s:%d/hub/api" % (here, api.server_port),
           JUPYTERHUB_API_TOKEN="floor-benchmark", JUPYTERHUB_CLIENT_ID="jupyterhub-user-alice",
           JUPYTERHUB_USER="alice", JUPYTERHUB_SERVICE_PREFIX="/user/alice/", JUPYTERHUB_BASE_URL="/",
           JUPYTERHUB_OAUTH_CALLBACK_URL="/user/alice/oauth_callback")
start = time.monotonic()
# A job script on qsub's stdin, as a user writes one (and as Slurm's floor's --wrap makes one).
job = subprocess.run(["qsub", "-terse", "-V", "-S", "/bin/bash", "-q", "short.q", "-pe", "smp", "1",
                      "-l", "h_rt=0:10:00", "-o", "/dev/null", "-j", "y"],
                     input="#!/bin/bash\nexec %s\n" % singleuser, env=env, capture_output=True, text=True,
                     check=True).stdout.strip()
while True:
    try:
        urllib.request.urlopen(url + "api", timeout=1)
        break
    except urllib.error.HTTPError:
        break  # any HTTP answer: the server is up
    except OSError:
        if time.monotonic() - start > 90:
            subprocess.run(["qdel", job])
            sys.exit("the hand-submitted server did not answer within 90 s")
        time.sleep(0.02)
elapsed = time.monotonic() - start
subprocess.run(["qdel", job], check=True, capture_output=True)
print(json.dumps(elapsed))
"""


def wait_queue_empty(site: SiteHandle, timeout: float = 60) -> None:
    sge = GridEngine()
    deadline = time.monotonic() + timeout
    while sge.parse_status(check(site.ssh("alice", sge.status_argv(), node="ge-login")).stdout):
        if time.monotonic() > deadline:
            raise RuntimeError("jobs stayed in the Grid Engine queue")
        time.sleep(0.2)


def run(runs: int = 10) -> dict:
    with bench_instance(NAME, clusters="slurm,sge") as (site, hub):
        singleuser = f"{site.info['jupyter_env']}/bin/jupyterhub-singleuser"
        node_address = site.layout.ge_compute_nodes[0].address
        login_address = site.layout.ge_login.address
        hub_version = requests.get(f"{hub.url}/hub/api/", timeout=10).json()["version"]
        hub.login("alice", demo_passwords()["alice"])
        token = site.site.hub.admin_token()
        times: dict[str, list[float]] = {"hpchub": [], "floor": []}

        def ours(_run_number: int) -> float:
            elapsed = time_until_answer(
                lambda: hub.admin("POST", "/users/alice/server", json={"user_options": {"target": "ge-compute"}}),
                f"{hub.url}/user/alice/api/status", token)
            stop(hub, "alice", timeout=90)
            return elapsed

        def by_hand(run_number: int) -> float:
            floor = check(site.ssh("alice", ["/usr/bin/python3", "-c", FLOOR, node_address, str(38100 + run_number),
                                             singleuser, login_address, hub_version], node="ge-login", timeout=120))
            return json.loads(floor.stdout)

        for run_number in range(runs):
            # Each starts on an idle cluster: its queue empty and the node done with the last job
            # (a deleted job's processes end just after qstat stops listing it). The order
            # alternates, so that neither always follows the other.
            order = [("hpchub", ours), ("floor", by_hand)]
            for name, measure in order if run_number % 2 == 0 else reversed(order):
                wait_queue_empty(site)
                time.sleep(SETTLE)
                times[name].append(measure(run_number))
        wait_queue_empty(site)
    return {"runs": runs, **times}


def report(result: dict) -> str:
    floor = statistics.median(result["floor"])

    def line(name):
        return timing_line(name, result[name], None if name == "floor" else floor)

    ours = statistics.median(result["hpchub"]) - floor
    return "\n".join([
        "spawn in a Grid Engine job (idle cluster): request to answering, against qsub by hand",
        line("hpchub"), line("floor"),
        f"goal: hpchub's overhead <= 0.5 s ({ours:+.2f} s): {'met' if ours <= 0.5 else 'MISSED'}",
    ])


def figures(result: dict) -> list[Figure]:
    floor, _ = median_spread(result["floor"])
    ours, spread = median_spread(result["hpchub"])
    return [Figure("Grid Engine-job spawn, hpchub", ours, "s", "qsub by hand", floor, "overhead <= 0.5 s",
                   ours - floor <= 0.5, spread)]
