"""Spawn in a Slurm job on an idle cluster: time from the spawn request until the server
answers, for hpchub (POST to the hub's API, answer through its proxy), batchspawner 1.3
(the same through its own hub and proxy), and the floor: `jupyterhub-singleuser` submitted
with `sbatch` by hand from the login node, in the same environment, timed until it answers.

All three are measured in this run, interleaved, on an instance of their own (`benchsl`,
loopback mode); between runs every job is gone from the queue, so each starts on an idle
cluster. The figures that matter are the overheads above the floor.
"""

from __future__ import annotations

import json
import statistics
import time

from hpchub.site.system import demo_passwords
from tests.site_handle import SiteHandle, check, stop

from .incumbents import IncumbentHub
from .table import Figure, median_spread, timing_line
from .timing import bench_instance, time_until_answer

NAME = "benchsl"

# Runs on login1 as alice: submit the server by hand, poll until it answers, cancel the job.
FLOOR = r"""
import json, os, subprocess, sys, time, urllib.error, urllib.request
port, api, singleuser = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
env = dict(os.environ, JUPYTERHUB_SERVICE_URL="http://127.0.0.1:%d/user/alice/" % port,
           JUPYTERHUB_API_URL="http://127.0.0.1:%d/hub/api" % api, JUPYTERHUB_API_TOKEN="floor-benchmark",
           JUPYTERHUB_CLIENT_ID="jupyterhub-user-alice", JUPYTERHUB_USER="alice",
           JUPYTERHUB_SERVICE_PREFIX="/user/alice/", JUPYTERHUB_BASE_URL="/",
           JUPYTERHUB_OAUTH_CALLBACK_URL="/user/alice/oauth_callback")
start = time.monotonic()
job = subprocess.run(["sbatch", "--parsable", "--partition=batch", "--time=10", "--output=/dev/null",
                      "--wrap=exec " + singleuser], env=env, capture_output=True, text=True, check=True).stdout.strip()
while True:
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/user/alice/api" % port, timeout=1)
        break
    except urllib.error.HTTPError:
        break  # any HTTP answer: the server is up
    except OSError:
        if time.monotonic() - start > 90:
            subprocess.run(["scancel", job])
            sys.exit("the hand-submitted server did not answer within 90 s")
        time.sleep(0.02)
elapsed = time.monotonic() - start
subprocess.run(["scancel", job], check=True)
print(json.dumps(elapsed))
"""

HPCHUB_CONFIG = 'c.JupyterHub.spawner_class = "hpchub-slurm"\n'


def wait_queue_empty(site: SiteHandle, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while check(site.in_node("head", ["squeue", "--noheader"])).stdout.strip():
        if time.monotonic() > deadline:
            raise RuntimeError("jobs stayed in the queue")
        time.sleep(0.1)


def run(runs: int = 20) -> dict:
    with bench_instance(NAME) as (site, hub):
        (site.layout.hub_config_dir / "40-slurm.py").write_text(HPCHUB_CONFIG)
        site.site.hub.restart()
        singleuser = f"{site.info['jupyter_env']}/bin/jupyterhub-singleuser"
        incumbent = IncumbentHub(site, "batchspawner", [singleuser])
        try:
            hub.login("alice", demo_passwords()["alice"])
            token = site.site.hub.admin_token()
            times = {"hpchub": [], "batchspawner": [], "floor": []}
            for _ in range(runs):
                times["hpchub"].append(time_until_answer(
                    lambda: hub.admin("POST", "/users/alice/server"), f"{hub.url}/user/alice/api/status", token))
                stop(hub, "alice")
                wait_queue_empty(site)
                times["batchspawner"].append(time_until_answer(
                    lambda: incumbent.api("POST", "/users/alice/server"), f"{incumbent.url}/user/alice/api/status",
                    incumbent.token))
                response = incumbent.api("DELETE", "/users/alice/server")
                assert response.status_code in (202, 204), response.text
                wait_queue_empty(site)
                floor = check(site.ssh("alice", ["/usr/bin/python3", "-c", FLOOR, str(site.layout.port_base + 98),
                                                 str(site.layout.hub_api_port), singleuser], node="login1",
                                       timeout=120))
                times["floor"].append(json.loads(floor.stdout))
                wait_queue_empty(site)
        finally:
            incumbent.close()
    return {"runs": runs, **times}


def report(result: dict) -> str:
    floor = statistics.median(result["floor"])

    def line(name):
        return timing_line(name, result[name], None if name == "floor" else floor)

    ours = statistics.median(result["hpchub"]) - floor
    theirs = statistics.median(result["batchspawner"]) - floor
    verdict = "met" if ours <= 0.5 and ours < theirs else "MISSED"
    return "\n".join([
        "spawn in a Slurm job (idle cluster): request to answering, against sbatch by hand",
        line("hpchub"), line("batchspawner"), line("floor"),
        f"goal: hpchub's overhead <= 0.5 s and below batchspawner's ({ours:+.2f} s vs {theirs:+.2f} s): {verdict}",
    ])


def figures(result: dict) -> list[Figure]:
    floor, _ = median_spread(result["floor"])
    ours, ours_spread = median_spread(result["hpchub"])
    theirs, theirs_spread = median_spread(result["batchspawner"])
    return [
        Figure("Slurm-job spawn, hpchub", ours, "s", "sbatch by hand", floor,
               "overhead <= 0.5 s and < batchspawner's", ours - floor <= 0.5 and ours < theirs, ours_spread),
        Figure("Slurm-job spawn, batchspawner 1.3", theirs, "s", "sbatch by hand", floor, spread=theirs_spread),
    ]
