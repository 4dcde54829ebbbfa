"""A server in a container image against a bare one: time from `POST /hub/api/users/NAME/server`
until the server answers through the hub's proxy, for the demo image run by Charliecloud and
for the same JupyterHub and JupyterLab started bare, both on login1 (two targets of their own,
interleaved, in this run, on an instance of their own: `benchimg`, loopback mode). The goal
is at most 0.5 s more than the bare spawn.

The two servers do not run the same files: the bare one runs the site's Jupyter environment,
which holds more extensions (dask's, jupyter-server-proxy, ...) than the image's, and starts
more slowly for it. The runtime's own cost is therefore measured apart, on the same node in the
same run: `python3 -c pass` through the runtime's wrapper against the node's own `python3 -c pass`.
"""

from __future__ import annotations

import statistics

import json

from hpchub.containers import runtime_named
from hpchub.site.hub import DEMO_CONTAINER
from hpchub.site.images import DEMO_IMAGE
from hpchub.site.system import demo_passwords
from tests.site_handle import check, hub_settings, stop

from .table import Figure, median_spread
from .timing import bench_instance, time_until_answer

NAME = "benchimg"
TARGETS = [{"name": "bench-bare", "title": "Bare", "kind": "login", "login_nodes": ["login1"]},
           {"name": "bench-image", "title": "Image", "kind": "login", "login_nodes": ["login1"],
            "container": DEMO_CONTAINER}]
GOAL = 0.5  # seconds of overhead

# Runs on login1 as alice: the node's python3 and the image's, each started `runs` times.
STARTUP = r"""
import json, subprocess, sys, time
wrapped = json.loads(sys.argv[1])
def timed(argv):
    start = time.monotonic()
    subprocess.run(argv, check=True)
    return time.monotonic() - start
times = {"bare": [], "runtime": []}
for _ in range(int(sys.argv[2])):
    times["bare"].append(timed(["python3", "-c", "pass"]))
    times["runtime"].append(timed(wrapped))
print(json.dumps(times))
"""


def run(runs: int = 10) -> dict:
    with bench_instance(NAME) as (site, hub):
        with hub_settings(site, f"c.HPCSpawner.targets = {TARGETS!r}\n", name="50-bench-container"):
            hub.login("alice", demo_passwords()["alice"])
            token = site.site.hub.admin_token()
            times: dict[str, list[float]] = {"bare": [], "image": []}
            for _ in range(runs):
                for kind in ("bare", "image"):
                    body = {"user_options": {"target": f"bench-{kind}"}}
                    times[kind].append(time_until_answer(lambda: hub.admin("POST", "/users/alice/server", json=body),
                                                         f"{hub.url}/user/alice/api/status", token))
                    stop(hub, "alice")
            wrapped = runtime_named("charliecloud").wrap(str(DEMO_IMAGE), ["python3", "-c", "pass"])
            startup = json.loads(check(site.ssh("alice", ["/usr/bin/python3", "-c", STARTUP, json.dumps(wrapped),
                                                          str(max(runs, 5) * 2)], node="login1", timeout=300)).stdout)
    return {"runs": runs, **times, "startup": startup}


def report(result: dict) -> str:
    def line(name, values):
        return (f"{name:6} median {statistics.median(values):.2f} s  "
                f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")

    overhead = statistics.median(result["image"]) - statistics.median(result["bare"])
    return "\n".join([
        "spawn on login1: POST to answering through the proxy, in the demo image (Charliecloud) and bare",
        line("image", result["image"]),
        line("bare", result["bare"]),
        f"the container's spawn against the bare one: {overhead:+.2f} s (goal <= +{GOAL} s)",
        "python3 -c pass on login1, through ch-run and bare (the runtime's own cost):",
        line("ch-run", result["startup"]["runtime"]),
        line("bare", result["startup"]["bare"]),
    ])


def figures(result: dict) -> list[Figure]:
    bare, _ = median_spread(result["bare"])
    image, spread = median_spread(result["image"])
    wrapped, wrapped_spread = median_spread(result["startup"]["runtime"], "ms", 1000)
    plain, _ = median_spread(result["startup"]["bare"], "ms", 1000)
    return [Figure("login-node spawn in a container image", image, "s", "the same spawn, bare", bare,
                   f"<= +{GOAL} s", image - bare <= GOAL, spread),
            Figure("python3 start through ch-run", wrapped, "ms", "python3 start, bare", plain,
                   spread=wrapped_spread)]
