"""A thousand users on the production stack: the hub on PostgreSQL behind traefik, against the
same run on SQLite behind configurable-http-proxy (the demo's stack), both measured here.

As in the 200-user run (benchmarks/scale.py, whose pieces this uses): every user starts a
stand-in server, half on a login node over SSH and half in a Slurm job, arrivals spread evenly
over the window, through the real hub, proxy, SSH connections, tunnels and Slurm; each is
timed from the spawn request until the server answers through the proxy. The window is five
times the 200-user run's, so the users arrive at the same rate and what grows is how many
servers the hub, its proxy and its database hold at once. For each stack: success rate, p95
time to ready, the hub's CPU time and peak memory, the proxy's CPU time; and the least memory
the machine had free during the run (everything - nodes, servers, hub - shares one machine).

Both stacks serve plain HTTP here, so that the comparison is of the proxy and the database, not
of TLS. Users `sc001`... are made for the run and removed after. Instance `benchst`.
"""

from __future__ import annotations

import statistics
import threading
from pathlib import Path

from tests.production.postgresql import PostgreSQL
from tests.production.traefik import traefik_config, traefik_url
from tests.site_handle import HubClient, SiteHandle, check

from . import scale
from .table import Figure
from .timing import bench_instance, install_stand_in

NAME = "benchst"
USERS = 1000
WINDOW = 300.0  # 200 users in 60 s in the 200-user run: the same rate of arrivals
STACKS = ("chp+sqlite", "traefik+postgresql")
SLURM_JOBS_PER_CORE = 40  # the shared partition oversubscribed enough for every batch user's job
JOB_MEMORY_MB = 8  # the stand-in's jobs: 125 of them on each 4000 MB node


class MemoryLow:
    """The least MemAvailable of the machine while it runs (sampled every second)."""

    def __init__(self):
        self.least_mb = float("inf")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._done.wait(1.0):
            self.least_mb = min(self.least_mb, available_mb())

    def __enter__(self):
        self.least_mb = available_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(5)


def available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proxy_pid(site: SiteHandle, stack: str) -> int | None:
    """The proxy's process: the site's configurable-http-proxy, or the traefik the hub started."""
    from tests.site_handle import site_processes

    if stack == "chp+sqlite":
        return site.site.nodes.daemon("proxy").pid
    found = site_processes(site, str(site.layout.hub_dir / "traefik.toml").encode())
    return found[0] if found else None


def one_stack(site: SiteHandle, hub: HubClient, names: list[str], password: str, stack: str, users: int,
              window: float, postgresql: PostgreSQL | None) -> dict:
    stack_config = site.layout.hub_config_dir / "45-stack.py"
    if postgresql is not None:
        stack_config.write_text(f"c.JupyterHub.db_url = {postgresql.url!r}\n" + traefik_config(site, tls=False))
        hub.url = traefik_url(site, tls=False)
    else:
        stack_config.unlink(missing_ok=True)
        hub.url = site.layout.hub_url
    site.site.hub.restart()  # a fresh hub: its peak memory is this run's
    hub.wait_until_answering()
    logins = scale.log_in_all(hub, names[:users], password)  # every stack keeps its own auth_state
    proxy = proxy_pid(site, stack)
    proxy_cpu = scale._cpu_seconds(proxy) if proxy else float("nan")
    with MemoryLow() as memory:
        result = scale.wave(site, hub, names[:users], window)
    result.update(stack=stack, login_seconds=logins, least_available_mb=memory.least_mb,
                  proxy_cpu_seconds=(scale._cpu_seconds(proxy) - proxy_cpu) if proxy else float("nan"))
    scale.stop_everyone(site, hub, names[:users])
    return result


def run(runs: int = 1, users: int = USERS, window: float = WINDOW) -> dict:
    names: list[str] = []
    result: dict = {"runs": runs, "users": users, "window_seconds": window, "stacks": []}
    postgresql = PostgreSQL(Path("/var/lib/hpchub-tests") / f"postgresql-{NAME}")
    try:
        with bench_instance(NAME) as (site, hub):
            names, password = scale.make_users(site, users)
            scale.configure(site, names, install_stand_in(), memory_mb=JOB_MEMORY_MB)
            check(site.in_node("head", ["scontrol", "update", "PartitionName=shared",
                                        f"OverSubscribe=FORCE:{SLURM_JOBS_PER_CORE}"]))
            result["job_slots"] = 4 * len(site.layout.compute_nodes) * SLURM_JOBS_PER_CORE  # 4 cores a node
            assert result["job_slots"] >= users // 2, "more batch users than the partition's slots"
            postgresql.start()
            for _ in range(runs):
                for stack in STACKS:
                    result["stacks"].append(one_stack(site, hub, names, password, stack, users, window,
                                                      postgresql if stack == "traefik+postgresql" else None))
    finally:
        postgresql.stop()
        scale.remove_users(names)
    return result


def _by_stack(result: dict) -> dict[str, list[dict]]:
    return {stack: [w for w in result["stacks"] if w["stack"] == stack] for stack in STACKS}


def _median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def figures(result: dict) -> list[Figure]:
    by_stack = _by_stack(result)
    summaries = {stack: [scale._summary(w) for w in waves] for stack, waves in by_stack.items()}
    base, prod = by_stack["chp+sqlite"], by_stack["traefik+postgresql"]
    label = f"{result['users']} users in {result['window_seconds']:.0f} s, traefik+PostgreSQL"
    baseline = "the same on chp+SQLite"

    def ok_percent(stack):
        return _median(100.0 * s["ok"] / s["n"] for s in summaries[stack])

    prod_p95 = _median(s["p95"] for s in summaries["traefik+postgresql"])
    return [
        Figure(f"{label}: succeeded", ok_percent("traefik+postgresql"), "%", baseline, ok_percent("chp+sqlite"),
               "100 %", ok_percent("traefik+postgresql") == 100.0),
        Figure(f"{label}: p95 time to ready", prod_p95, "s", baseline,
               _median(s["p95"] for s in summaries["chp+sqlite"]), "<= 10 s", prod_p95 <= 10.0,
               "p50 " + ", ".join(f"{s['p50']:.2f} s" for s in summaries["traefik+postgresql"])),
        Figure(f"{label}: hub CPU", _median(w["cpu_seconds"]["hub"] for w in prod), "s", baseline,
               _median(w["cpu_seconds"]["hub"] for w in base)),
        Figure(f"{label}: hub peak memory", _median(w["memory_mb"]["hub"]["VmHWM"] for w in prod), "MB", baseline,
               _median(w["memory_mb"]["hub"]["VmHWM"] for w in base)),
        Figure(f"{label}: proxy CPU", _median(w["proxy_cpu_seconds"] for w in prod), "s", baseline,
               _median(w["proxy_cpu_seconds"] for w in base)),
    ]


def report(result: dict) -> str:
    lines = [f"{result['users']} users spawning within {result['window_seconds']:.0f} s on one hub, half on a "
             f"login node, half in Slurm jobs ({result['job_slots']} job slots), stand-in servers; "
             "traefik+PostgreSQL against chp+SQLite"]
    for wave_result in result["stacks"]:
        s = scale._summary(wave_result)
        cpu, memory = wave_result["cpu_seconds"], wave_result["memory_mb"]
        lines.append(
            f"  {wave_result['stack']:18} {s['ok']}/{s['n']} ready; p50 {s['p50']:.2f} s, p95 {s['p95']:.2f} s "
            f"(login {s['by_target']['login']:.2f} s, batch {s['by_target']['shared']:.2f} s); "
            f"hub CPU {cpu['hub']:.1f} s over {wave_result['wall_seconds']:.0f} s, "
            f"peak {memory['hub']['VmHWM']:.0f} MB; proxy CPU {wave_result['proxy_cpu_seconds']:.1f} s"
            + (f"; tunnel service CPU {cpu['tunnels']:.1f} s, RSS {memory['tunnels']['VmRSS']:.0f} MB"
               if "tunnels" in cpu else "")
            + f"; the machine {100 * wave_result['machine_busy']:.0f} % busy, "
              f"its memory available at least {wave_result['least_available_mb']:.0f} MB; "
              f"logins {wave_result['login_seconds']:.0f} s (not timed in the spawns)")
        for error in s["errors"]:
            lines.append(f"    error: {error}")
    return "\n".join(lines)
