"""Status queries per minute with servers on both clusters of one hub (the Slurm cluster and
the Grid Engine cluster of the demo site): one query per cluster per interval, flat in the
number of servers.

Counted at the hub (its /hub/metrics: `hpchub_scheduler_query_seconds_count` by command, the
queries it runs with the service account), in one-minute windows, with 1 and then 4 servers
on each cluster (a stand-in server in each job, as in status_queries.py). The baseline is the
rate one query per cluster per status interval gives (30 s: 2 a minute per cluster), worked
out from the hub's settings, not measured. Instance `benchcq`, loopback mode.
"""

from __future__ import annotations

import re
import time

import requests

from hpchub.site.system import demo_passwords
from tests.site_handle import HubClient, spawn, stop

from .status_queries import start_servers
from .table import Figure
from .timing import bench_instance, install_stand_in

NAME = "benchcq"
SIZES = (1, 4)  # servers on each cluster
WINDOW = 60  # seconds
STATUS_INTERVAL = 30  # the hub's default
COMMANDS = {"slurm": "squeue", "sge": "qstat"}
TARGETS = {"slurm": "shared", "sge": "ge-compute"}

SHARED = """\
c.HPCSpawner.targets.append({"name": "shared", "title": "Shared compute", "kind": "batch",
    "defaults": {"partition": "shared", "nodes": 1, "cores": 1, "memory_mb": 64, "walltime": "00:30:00"}})
"""


def queries(hub: HubClient) -> dict[str, float]:
    """The hub's scheduler queries so far, by command."""
    text = requests.get(f"{hub.url}/hub/metrics", timeout=30,
                        headers={"Authorization": f"token {hub.handle.site.hub.admin_token()}"}).text
    found = dict.fromkeys(COMMANDS.values(), 0.0)
    for command, count in re.findall(r'^hpchub_scheduler_query_seconds_count\{command="(\w+)"\} ([0-9.e+]+)$',
                                     text, re.M):
        found[command] = float(count)
    return found


def count_for(hub: HubClient, window: float) -> dict[str, int]:
    before = queries(hub)
    time.sleep(window)
    after = queries(hub)
    return {scheduler: round((after[command] - before[command]) * 60 / window)
            for scheduler, command in COMMANDS.items()}


def run(runs: int = 1, window: float = WINDOW, sizes: tuple[int, ...] = SIZES) -> dict:
    counts: dict[int, list[dict[str, int]]] = {}
    with bench_instance(NAME, clusters="slurm,sge") as (site, hub):
        stand_in = install_stand_in()
        (site.layout.hub_config_dir / "40-bench.py").write_text(f"c.HPCSpawner.cmd = [{stand_in!r}]\n" + SHARED)
        site.site.hub.restart()
        hub.wait_until_answering()
        hub.login("alice", demo_passwords()["alice"])
        running: list[str] = []
        for size in sizes:
            new = [f"{scheduler}{i}" for scheduler in TARGETS for i in range(len(running) // 2, size)]
            start_servers(lambda name: spawn(hub, "alice", name, timeout=300,
                                             options={"target": TARGETS[name.rstrip("0123456789")]}), new)
            running += new
            time.sleep(5)  # the spawns' own closer polling has ended
            counts[size] = [count_for(hub, window) for _ in range(runs)]
        start_servers(lambda name: stop(hub, "alice", name, timeout=120), running)
    return {"window_seconds": window, "status_interval": STATUS_INTERVAL, "counts": counts}


def report(result: dict) -> str:
    expected = 60 / result["status_interval"]
    lines = [f"status queries per minute by the hub, per cluster ({result['window_seconds']:.0f} s windows), "
             f"servers on both clusters; one per cluster per interval is {expected:.0f}/min"]
    for size, windows in sorted(result["counts"].items(), key=lambda kv: int(kv[0])):
        worst = {s: max(w[s] for w in windows) for s in COMMANDS}
        lines.append(f"{size} servers on each cluster: Slurm {worst['slurm']}/min (squeue), "
                     f"Grid Engine {worst['sge']}/min (qstat)")
    lines.append(f"goal: at most one per cluster per interval, flat in N: {'met' if _met(result) else 'MISSED'}")
    return "\n".join(lines)


def _worst(result: dict, size, scheduler: str) -> int:
    windows = result["counts"].get(size, result["counts"].get(str(size)))
    return max(w[scheduler] for w in windows)


def _met(result: dict) -> bool:
    limit = 60 / result["status_interval"] + 1  # (+1: a window may hold one query more at its edges)
    return all(_worst(result, size, s) <= limit for size in result["counts"] for s in COMMANDS)


def figures(result: dict) -> list[Figure]:
    limit = 60 / result["status_interval"]
    return [Figure(f"status queries/min, {size} servers per cluster, {label}", _worst(result, size, scheduler), "/min",
                   "one per status interval", limit, "<= one per interval (+1)",
                   _worst(result, size, scheduler) <= limit + 1)
            for size in sorted(result["counts"], key=int) for scheduler, label in (("slurm", "Slurm"),
                                                                                  ("sge", "Grid Engine"))]
