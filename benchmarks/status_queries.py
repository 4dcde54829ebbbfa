"""Scheduler load: job status queries per minute that reach slurmctld while 10, 50 and 200
servers run in Slurm jobs, for hpchub and for batchspawner 1.3, both at their defaults.

Counted at the controller itself (`sdiag`'s RPC statistics, reset at the start of each
one-minute window), so every squeue from anywhere is seen. The servers are a stand-in for
jupyterhub-singleuser (benchmarks/stand_in_server.py, answering the hub like the real
one): 200 JupyterLab servers do not fit this machine, and what is measured here is the
spawner's polling, which does not depend on what the server is. Instance `benchq`, loopback.
"""

from __future__ import annotations

import concurrent.futures
import re
import time

from hpchub.site.system import demo_passwords
from tests.site_handle import SiteHandle, check, spawn, stop

from .batch_spawn import wait_queue_empty
from .incumbents import IncumbentHub
from .table import Figure
from .timing import bench_instance, install_stand_in

NAME = "benchq"
SIZES = (10, 50, 200)
WINDOW = 60  # seconds

JOB_INFO_RPC = re.compile(r"^\s*(REQUEST_JOB_INFO\w*|REQUEST_JOB_USER_INFO)\s+\(\s*\d+\)\s+count:(\d+)", re.M)


def job_info_rpcs(site: SiteHandle) -> int:
    out = check(site.in_node("head", ["sdiag"])).stdout
    return sum(int(count) for _name, count in JOB_INFO_RPC.findall(out))


def count_for(site: SiteHandle, window: float) -> int:
    """Job-status RPCs in a window, scaled to one minute."""
    check(site.in_node("head", ["sdiag", "--reset"]))
    time.sleep(window)
    return round(job_info_rpcs(site) * 60 / window)


def start_servers(start_one, names: list[str]) -> None:
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        list(pool.map(start_one, names))


def run(runs: int = 1, window: float = WINDOW, sizes: tuple[int, ...] = SIZES) -> dict:
    counts: dict[str, dict[int, list[int]]] = {"hpchub": {}, "batchspawner": {}}
    with bench_instance(NAME) as (site, hub):
        stand_in = install_stand_in()
        # hpchub, at its defaults (one query per 30 s for all jobs).
        (site.layout.hub_config_dir / "40-bench.py").write_text(
            'c.JupyterHub.spawner_class = "hpchub-slurm"\n'
            f"c.HPCSpawner.cmd = [{stand_in!r}]\n"
            'c.HPCSpawner.partition = "shared"\nc.HPCSpawner.memory_mb = 64\n')
        site.site.hub.restart()
        hub.login("alice", demo_passwords()["alice"])
        running: list[str] = []
        for size in sizes:
            new = [f"s{i}" for i in range(len(running), size)]
            start_servers(lambda name: spawn(hub, "alice", name, timeout=300), new)
            running += new
            counts["hpchub"][size] = [count_for(site, window) for _ in range(runs)]
        start_servers(lambda name: stop(hub, "alice", name, timeout=120), running)
        wait_queue_empty(site, timeout=120)

        # batchspawner, at its defaults (each server polled by JupyterHub every 30 s).
        incumbent = IncumbentHub(site, "batchspawner", [stand_in],
                                 extra='c.BatchSpawnerBase.req_partition = "shared"\n'
                                       'c.BatchSpawnerBase.req_memory = "64M"\n')
        try:
            running = []
            for size in sizes:
                new = [f"s{i}" for i in range(len(running), size)]
                start_servers(lambda name: _incumbent_spawn(incumbent, name), new)
                running += new
                counts["batchspawner"][size] = [count_for(site, window) for _ in range(runs)]
        finally:
            incumbent.close()
        wait_queue_empty(site, timeout=120)
    return {"window_seconds": window, "stand_in_server": True, "counts": counts}


def _incumbent_spawn(incumbent: IncumbentHub, name: str) -> None:
    response = incumbent.api("POST", f"/users/alice/servers/{name}")
    assert response.status_code in (201, 202), response.text
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        model = incumbent.api("GET", "/users/alice").json()["servers"].get(name)
        if model and model["ready"]:
            return
        time.sleep(0.5)
    raise RuntimeError(f"batchspawner's server {name} did not start")


def report(result: dict) -> str:
    lines = [f"scheduler job-status RPCs per minute at slurmctld (sdiag, {result['window_seconds']:.0f} s windows), "
             "servers running in Slurm jobs (a stand-in server, not JupyterLab)"]
    counts = result["counts"]
    for tool in ("hpchub", "batchspawner"):
        figures = ", ".join(f"{size} servers: {max(values)}/min" for size, values in sorted(counts[tool].items(),
                                                                                           key=lambda kv: int(kv[0])))
        lines.append(f"{tool:12} {figures}")
    ours = [max(v) for _, v in sorted(counts["hpchub"].items(), key=lambda kv: int(kv[0]))]
    flat = ours[-1] <= max(ours[0], 1) * 1.5 + 1
    lines.append(f"goal: flat in the number of servers: {'met' if flat else 'MISSED'}")
    return "\n".join(lines)


def figures(result: dict) -> list[Figure]:
    counts = result["counts"]
    sizes = sorted(int(size) for size in counts["hpchub"])

    def at(tool, size):
        values = counts[tool].get(size, counts[tool].get(str(size)))
        return max(values)

    smallest = at("hpchub", sizes[0])
    return [
        Figure(f"status queries/min, {size} servers, hpchub", at("hpchub", size), "/min",
               f"batchspawner, {size} servers", at("batchspawner", size),
               f"flat in N (<= 1.5x the {sizes[0]}-server count + 1)",
               at("hpchub", size) <= max(smallest, 1) * 1.5 + 1)
        for size in sizes
    ]
