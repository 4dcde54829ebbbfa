"""Many users on one hub: N users each start a server within one minute (arrivals spread
evenly), half on a login node over SSH and half in a Slurm job, through the real hub,
proxy, SSH connections, tunnels and Slurm. For each: the time from the spawn request until
the hub's progress stream says ready and the server then answers through the proxy, as a
browser's pending page sees it. Also: the hub's and the tunnel service's CPU time and memory.

The main run uses a stand-in server (benchmarks/stand_in_server.py: it answers the hub like
jupyterhub-singleuser, checking every token with the hub) because 200 JupyterLab servers do
not fit one 2-core machine; a second run starts 20 real JupyterLab servers the same way.
The baseline, measured in the same run, is one user spawning alone on the idle hub.

Users `sc001`... are made for the run (Unix accounts and Slurm associations) and removed after.
Instance `benchsc`, loopback mode.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pwd
import secrets
import statistics
import subprocess
import time
from pathlib import Path

import requests

from tests.site_handle import HubClient, SiteHandle, check

from .batch_spawn import wait_queue_empty
from .table import Figure
from .timing import bench_instance, install_stand_in

NAME = "benchsc"
USERS = 200
REAL_USERS = 20
ARRIVAL_WINDOW = 60.0  # seconds over which the spawn requests are spread
READY_LIMIT = 180.0  # a spawn not ready by then counts as failed
TARGETS = [
    {"name": "login", "title": "Login node", "kind": "login"},
    {"name": "shared", "title": "Shared compute", "kind": "batch",
     "defaults": {"partition": "shared", "nodes": 1, "cores": 1, "memory_mb": 64, "walltime": "00:30:00"}},
]


# ----- users ----------------------------------------------------------------------------
def make_users(site: SiteHandle, count: int) -> tuple[list[str], str]:
    names = [f"sc{i:03d}" for i in range(1, count + 1)]
    password = secrets.token_urlsafe(12)
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            check(_run(["useradd", "--create-home", "--shell", "/bin/bash", name]))
            os.chmod(pwd.getpwnam(name).pw_dir, 0o700)
    check(_run(["chpasswd"], input="".join(f"{n}:{password}\n" for n in names)))
    check(site.in_node("head", ["sacctmgr", "-i", "add", "user", ",".join(names), "account=physics",
                                f"cluster={site.layout.cluster_name}"], timeout=120))
    return names, password


def remove_users(names: list[str]) -> None:
    for name in names:
        _run(["pkill", "-KILL", "-u", name])
    for name in names:
        _run(["userdel", "--remove", name])


def _run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


# ----- the hub's own processes ------------------------------------------------------------
def _processes(site: SiteHandle) -> dict[str, int]:
    """PIDs of the hub and of its tunnel service (found by its socket in the command line)."""
    found = {"hub": site.site.nodes.daemon("hub").pid}
    needle = str(site.layout.hub_dir / "tunnels.sock").encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if b"tunnels" in cmdline and needle in cmdline:
                found["tunnels"] = int(entry)
    return found


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> dict[str, float]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines if ":" in line)
    return {key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


# ----- one user's spawn, as the pending page sees it ------------------------------------
def spawn_and_time(hub: HubClient, token: str, user: str, target: str) -> dict:
    """POST the spawn, follow the progress stream until ready, then GET through the proxy
    until the server answers (200 from the server itself, not a page of the hub)."""
    headers = {"Authorization": f"token {token}"}
    start = time.monotonic()
    outcome = {"user": user, "target": target, "ok": False}
    try:
        response = requests.post(f"{hub.url}/hub/api/users/{user}/server", headers=headers, timeout=60,
                                 json={"user_options": {"target": target}})
        if response.status_code not in (201, 202):
            return {**outcome, "error": f"POST {response.status_code}: {response.text[:200]}"}
        if response.status_code == 202:
            with requests.get(f"{hub.url}/hub/api/users/{user}/server/progress", headers=headers, stream=True,
                              timeout=READY_LIMIT) as stream:
                for line in stream.iter_lines(decode_unicode=True):
                    if line and line.startswith("data:"):
                        event = json.loads(line[5:])
                        if event.get("failed"):
                            return {**outcome, "error": event.get("message", "failed")}
                        if event.get("ready"):
                            break
        while time.monotonic() - start < READY_LIMIT:
            answer = requests.get(f"{hub.url}/user/{user}/api/status", headers=headers, timeout=10,
                                  allow_redirects=False)
            if answer.status_code == 200 and answer.headers.get("Content-Type", "").startswith("application/json"):
                return {**outcome, "ok": True, "seconds": time.monotonic() - start}
            time.sleep(0.05)
        return {**outcome, "error": f"no answer through the proxy within {READY_LIMIT:.0f} s"}
    except requests.RequestException as exc:
        return {**outcome, "error": f"{type(exc).__name__}: {exc}"}


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def wave(site: SiteHandle, hub: HubClient, users: list[str], window: float) -> dict:
    """Every user spawns once, arrivals spread evenly over the window, alternating targets."""
    token = site.site.hub.admin_token()
    pids = _processes(site)
    cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    busy_before = _machine_busy()
    start = time.monotonic()

    def one(index_user):
        index, user = index_user
        time.sleep(max(0.0, start + index * window / len(users) - time.monotonic()))
        return spawn_and_time(hub, token, user, TARGETS[index % len(TARGETS)]["name"])

    with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
        outcomes = list(pool.map(one, enumerate(users)))
    elapsed = time.monotonic() - start
    busy_after = _machine_busy()
    pids = {**_processes(site), **pids}  # (the tunnel service may have started during the wave: all its CPU)
    return {
        "outcomes": outcomes,
        "wall_seconds": elapsed,
        "cpu_seconds": {name: _cpu_seconds(pid) - cpu_before.get(name, 0.0) for name, pid in pids.items()},
        "memory_mb": {name: _memory_mb(pid) for name, pid in pids.items()},
        # How busy the whole machine was (every node, server and daemon of the site share it).
        "machine_busy": (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]),
    }


def stop_everyone(site: SiteHandle, hub: HubClient, users: list[str]) -> None:
    token = site.site.hub.admin_token()
    headers = {"Authorization": f"token {token}"}

    def stop_one(user):
        requests.delete(f"{hub.url}/hub/api/users/{user}/server", headers=headers, timeout=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            model = requests.get(f"{hub.url}/hub/api/users/{user}", headers=headers, timeout=30).json()
            if "" not in model["servers"]:
                return
            time.sleep(0.5)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(stop_one, users))
    wait_queue_empty(site, timeout=180)


def configure(site: SiteHandle, users: list[str], cmd: str, memory_mb: int) -> None:
    targets = json.loads(json.dumps(TARGETS))
    targets[1]["defaults"]["memory_mb"] = memory_mb
    (site.layout.hub_config_dir / "40-scale.py").write_text(
        f"c.Authenticator.allowed_users = {set(users)!r}\n"
        f"c.HPCSpawner.cmd = [{cmd!r}]\n"
        f"c.HPCSpawner.targets = {targets!r}\n")
    site.site.hub.restart()


def log_in_all(hub: HubClient, users: list[str], password: str) -> float:
    """Form logins (each gets its SSH certificate); not part of the timed spawns."""
    start = time.monotonic()

    def one(user):
        _, response = hub.login(user, password)
        response.raise_for_status()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, users))
    return time.monotonic() - start


def run(runs: int = 1, users: int = USERS, real_users: int = REAL_USERS, window: float = ARRIVAL_WINDOW) -> dict:
    names: list[str] = []
    result: dict = {"runs": runs, "users": users, "real_users": real_users, "window_seconds": window}
    try:
        with bench_instance(NAME) as (site, hub):
            names, password = make_users(site, max(users, real_users))
            stand_in = install_stand_in()
            configure(site, names, stand_in, memory_mb=64)
            result["login_seconds"] = log_in_all(hub, names, password)
            # The baseline: each target once, one user alone on the idle hub.
            result["alone"] = [spawn_and_time(hub, site.site.hub.admin_token(), names[i], TARGETS[i]["name"])
                               for i in range(len(TARGETS))]
            stop_everyone(site, hub, names[:len(TARGETS)])
            result["stand_in"] = []
            for _ in range(runs):
                result["stand_in"].append(wave(site, hub, names[:users], window))
                stop_everyone(site, hub, names[:users])
            # The same with real JupyterLab servers, fewer of them.
            configure(site, names, f"{site.info['jupyter_env']}/bin/jupyterhub-singleuser", memory_mb=1000)
            result["real"] = wave(site, hub, names[:real_users], window)
            stop_everyone(site, hub, names[:real_users])
    finally:
        remove_users(names)
    return result


def _summary(wave_result: dict) -> dict:
    outcomes = wave_result["outcomes"]
    times = sorted(o["seconds"] for o in outcomes if o["ok"])
    p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 2 else (times[0] if times else float("nan"))
    return {
        "n": len(outcomes), "ok": len(times), "p50": statistics.median(times) if times else float("nan"),
        "p95": p95,
        "by_target": {t["name"]: statistics.median([o["seconds"] for o in outcomes if o["ok"] and
                                                    o["target"] == t["name"]] or [float("nan")]) for t in TARGETS},
        "errors": sorted({o["error"] for o in outcomes if not o["ok"]})[:5],
    }


def figures(result: dict) -> list[Figure]:
    alone = statistics.median(o["seconds"] for o in result["alone"] if o["ok"])
    out = []
    for index, wave_result in enumerate(result["stand_in"]):
        s = _summary(wave_result)
        label = f"{s['n']} users in {result['window_seconds']:.0f} s (stand-in)"
        out += [
            Figure(f"{label}: succeeded", 100.0 * s["ok"] / s["n"], "%", "all", 100.0, "100 %", s["ok"] == s["n"]),
            Figure(f"{label}: p95 time to ready", s["p95"], "s", "one user alone", alone, "<= 10 s",
                   s["p95"] <= 10.0, f"p50 {s['p50']:.2f} s; login {s['by_target']['login']:.2f} s, "
                                     f"batch {s['by_target']['shared']:.2f} s (medians)"),
        ]
    s = _summary(result["real"])
    out.append(Figure(f"{s['n']} users in {result['window_seconds']:.0f} s (JupyterLab): p95 time to ready",
                      s["p95"], "s", "one user alone (stand-in)", alone, spread=f"{s['ok']}/{s['n']} succeeded"))
    return out


def report(result: dict) -> str:
    lines = [f"{result['users']} users spawning within {result['window_seconds']:.0f} s on one hub, half on a "
             "login node, half in Slurm jobs (stand-in servers; then real JupyterLab servers)",
             f"  logins (not timed in the spawns): {result['login_seconds']:.1f} s for all users"]
    alone = ", ".join(f"{o['target']} {o['seconds']:.2f} s" if o["ok"] else f"{o['target']} FAILED"
                      for o in result["alone"])
    lines.append(f"  one user alone: {alone}")
    for label, wave_result in [*(("stand-in", w) for w in result["stand_in"]), ("JupyterLab", result["real"])]:
        s = _summary(wave_result)
        cpu = wave_result["cpu_seconds"]
        memory = wave_result["memory_mb"]
        lines.append(
            f"  {label:10} {s['ok']}/{s['n']} ready; p50 {s['p50']:.2f} s, p95 {s['p95']:.2f} s "
            f"(login {s['by_target']['login']:.2f} s, batch {s['by_target']['shared']:.2f} s); "
            f"hub CPU {cpu['hub']:.1f} s over {wave_result['wall_seconds']:.0f} s "
            f"(RSS {memory['hub']['VmRSS']:.0f} MB, peak {memory['hub']['VmHWM']:.0f} MB); "
            f"the machine {100 * wave_result.get('machine_busy', float('nan')):.0f} % busy"
            + (f"; tunnel service CPU {cpu['tunnels']:.1f} s, RSS {memory['tunnels']['VmRSS']:.0f} MB"
               if "tunnels" in cpu else ""))
        for error in s["errors"]:
            lines.append(f"    error: {error}")
    return "\n".join(lines)
