"""A server in a container image against a bare one: time from `POST /hub/api/users/NAME/server`
until the server answers through the hub's proxy, for the demo image run by Charliecloud and
for the same JupyterHub and JupyterLab started bare, both on login1 (two targets of their own,
interleaved, in this run, on an instance of their own: `benchimg`, loopback mode). The
container's overhead is the difference of the medians; the goal is at most 0.5 s.
"""

from __future__ import annotations

import statistics

from hpchub.site.hub import DEMO_CONTAINER
from hpchub.site.system import demo_passwords
from tests.site_handle import hub_settings, stop

from .table import Figure, median_spread
from .timing import bench_instance, time_until_answer

NAME = "benchimg"
TARGETS = [{"name": "bench-bare", "title": "Bare", "kind": "login", "login_nodes": ["login1"]},
           {"name": "bench-image", "title": "Image", "kind": "login", "login_nodes": ["login1"],
            "container": DEMO_CONTAINER}]
GOAL = 0.5  # seconds of overhead


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
    return {"runs": runs, **times}


def report(result: dict) -> str:
    def line(name, values):
        return (f"{name:6} median {statistics.median(values):.2f} s  "
                f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")

    overhead = statistics.median(result["image"]) - statistics.median(result["bare"])
    return "\n".join([
        "spawn on login1: POST to answering through the proxy, in the demo image (Charliecloud) and bare",
        line("image", result["image"]),
        line("bare", result["bare"]),
        f"the container's overhead: {overhead:+.2f} s (goal <= {GOAL} s)",
    ])


def figures(result: dict) -> list[Figure]:
    bare, _ = median_spread(result["bare"])
    image, spread = median_spread(result["image"])
    return [Figure("login-node spawn in a container image", image, "s", "the same spawn, bare", bare,
                   f"<= +{GOAL} s", image - bare <= GOAL, spread)]
