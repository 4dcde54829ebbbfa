"""A hub restart with N servers running (half on login nodes, half in Slurm jobs): the time
from starting the hub again until every server answers through the proxy - an answer from
the server itself, which checks the request's token with the hub (the stand-in server does
so for every request, so an answer proves that the hub and the server's way back to it work).

Also: until the hub answers its health check, and until its API reports every server ready.
The baseline, measured in the same run, is the same restart with no server running.
Stand-in servers (see benchmarks/stand_in_server.py); users `sc001`... made for the run.
Instance `benchrs`, loopback mode.
"""

from __future__ import annotations

import concurrent.futures
import time

import requests

from tests.site_handle import HubClient, SiteHandle

from .scale import TARGETS, configure, log_in_all, make_users, remove_users, spawn_and_time, stop_everyone
from .table import Figure, median_spread
from .timing import bench_instance, install_stand_in

NAME = "benchrs"
SERVERS = 50
LIMIT = 120.0


def _restart_and_wait(site: SiteHandle, hub: HubClient, users: list[str]) -> dict:
    """Stop the hub, start it again, and time what comes back."""
    token = site.site.hub.admin_token()
    headers = {"Authorization": f"token {token}"}
    site.site.hub.stop()
    start = time.monotonic()

    def server_answers(user):
        while time.monotonic() - start < LIMIT:
            try:
                answer = requests.get(f"{hub.url}/user/{user}/api/status", headers=headers, timeout=5,
                                      allow_redirects=False)
                if answer.status_code == 200 and answer.json().get("hub_user"):
                    return time.monotonic() - start
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.05)
        return None

    with concurrent.futures.ThreadPoolExecutor(max(1, len(users))) as pool:
        site.site.hub.ensure()  # returns once the hub answers its health check
        hub_up = time.monotonic() - start
        # Servers are asked only now: none can answer before the hub does (each request's token is
        # checked with the hub), and fifty threads asking every 50 ms during the start-up took the
        # machine's two CPUs from the hub - they made a 3 s restart look like 8 s.
        answers = [pool.submit(server_answers, user) for user in users]
        all_ready = None
        while users and time.monotonic() - start < LIMIT:
            listed = requests.get(f"{hub.url}/hub/api/users", headers=headers, timeout=30).json()
            ready = {u["name"] for u in listed if u["servers"].get("", {}).get("ready")}
            if ready >= set(users):
                all_ready = time.monotonic() - start
                break
            time.sleep(0.1)
        per_server = [future.result() for future in answers]
    return {"hub_up": hub_up, "all_ready": all_ready, "servers": per_server}


def run(runs: int = 20, servers: int = SERVERS) -> dict:
    names: list[str] = []
    result: dict = {"runs": runs, "servers": servers, "empty": [], "loaded": []}
    try:
        with bench_instance(NAME) as (site, hub):
            names, password = make_users(site, servers)
            configure(site, names, install_stand_in(), memory_mb=64)
            log_in_all(hub, names, password)
            for _ in range(runs):
                result["empty"].append(_restart_and_wait(site, hub, []))
            token = site.site.hub.admin_token()
            with concurrent.futures.ThreadPoolExecutor(10) as pool:
                started = list(pool.map(
                    lambda iu: spawn_and_time(hub, token, iu[1], TARGETS[iu[0] % len(TARGETS)]["name"]),
                    enumerate(names)))
            failed = [o for o in started if not o["ok"]]
            if failed:
                raise RuntimeError(f"{len(failed)} servers did not start: {failed[:3]}")
            for _ in range(runs):
                result["loaded"].append(_restart_and_wait(site, hub, names))
            stop_everyone(site, hub, names)
    finally:
        remove_users(names)
    return result


def _every_server(restart: dict) -> float:
    """Seconds until the last server answered (infinite if one never did)."""
    times = restart["servers"]
    return max(times) if times and None not in times else float("inf")


def figures(result: dict) -> list[Figure]:
    empty, _ = median_spread([r["hub_up"] for r in result["empty"]])
    loaded, spread = median_spread([_every_server(r) for r in result["loaded"]])
    return [Figure(f"hub restart with {result['servers']} servers: all answer again", loaded, "s",
                   "hub restart with none", empty, "<= 10 s", loaded <= 10.0, spread)]


def report(result: dict) -> str:
    lines = [f"hub restart with {result['servers']} running servers (stand-ins; half login node, half Slurm)"]
    for r in result["empty"]:
        lines.append(f"  no servers:  hub answers after {r['hub_up']:.2f} s")
    for r in result["loaded"]:
        answered = [t for t in r["servers"] if t is not None]
        all_ready = f"{r['all_ready']:.2f} s" if r["all_ready"] is not None else "never"
        lines.append(f"  {result['servers']} servers: hub answers after {r['hub_up']:.2f} s, reports all ready after "
                     f"{all_ready}; {len(answered)}/{len(r['servers'])} servers answer, the last after "
                     f"{_every_server(r):.2f} s")
    return "\n".join(lines)
