"""`hpchub site up | down | status` on an instance of its own: up from nothing, a second
up that changes nothing, recovery after every process was killed, and a down that leaves
no process, mount or namespace; and instances that run side by side without interfering."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hpchub.site.manager import Site, load_layout
from hpchub.site.nodes import all_pids

from ..site_handle import SiteHandle, check, hpchub_site

NAME = "tlife"
# A progress line of `up` that did something ("  slurm: starting slurmctld ...").
STARTED = re.compile(r"^  [\w ]+: (starting|started|installing|initialising|creating)", re.M)


@pytest.fixture(scope="module")
def life():
    check(hpchub_site("down", NAME, "--purge"))
    assert load_layout(NAME) is None
    yield NAME
    hpchub_site("down", NAME, "--purge")


def records(name: str) -> dict:
    layout = load_layout(name)
    return json.loads((layout.run_dir / "processes.json").read_text())


def status(name: str) -> tuple[int, dict]:
    proc = hpchub_site("status", name, "--json")
    return proc.returncode, json.loads(proc.stdout)


def test_up_from_nothing(life):
    out = check(hpchub_site("up", life, "--isolated")).stdout
    assert "starting slurmctld" in out and "starting sshd on login2" in out and "starting JupyterHub" in out
    code, report = status(life)
    assert code == 0 and report["up"] and report["mode"] == "isolated"
    assert set(report["slurm_nodes"].values()) == {"idle"}


def test_up_restarts_the_hub_when_an_admins_config_d_changed(life):
    import requests

    layout = load_layout(life)
    login_page = f"{layout.hub_url}/hub/login"
    extra = layout.hub_config_dir / "50-announce.py"
    extra.write_text('c.JupyterHub.template_vars = {"announcement_login": "config.d says hello"}\n')
    try:
        out = check(hpchub_site("up", life)).stdout
        assert "configuration changed" in out, out
        assert "config.d says hello" in requests.get(login_page, timeout=30).text
        pid = records(life)["daemons"]["hub"]["pid"]
        assert "configuration changed" not in check(hpchub_site("up", life)).stdout  # unchanged: left running
        assert records(life)["daemons"]["hub"]["pid"] == pid
    finally:
        extra.unlink()
    assert "configuration changed" in check(hpchub_site("up", life)).stdout
    assert "config.d says hello" not in requests.get(login_page, timeout=30).text


def test_second_up_changes_nothing(life):
    before = records(life)
    layout = load_layout(life)
    configs = [layout.slurm_etc / "slurm.conf", layout.ssh_dir / "login1" / "sshd_config", layout.hosts_file]
    mtimes = [p.stat().st_mtime_ns for p in configs]
    out = check(hpchub_site("up", life)).stdout
    assert not STARTED.search(out), out
    assert records(life) == before
    assert [p.stat().st_mtime_ns for p in configs] == mtimes


def test_up_after_every_process_was_killed(life):
    site = Site(load_layout(life))
    victims = site.nodes.processes()
    assert len(victims) > 10
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while site.nodes.processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    code, report = status(life)
    assert code == 3 and not report["up"]
    out = check(hpchub_site("up", life)).stdout
    assert "starting slurmctld" in out
    code, report = status(life)
    assert code == 0 and report["up"] and report["hub"]["answers"]
    handle = SiteHandle(life)
    try:
        out = check(handle.ssh("alice", ["srun", "-N2", "-l", "hostname"])).stdout
        assert len(out.splitlines()) == 2
    finally:
        handle.close()


def test_down_leaves_nothing(life):
    layout = load_layout(life)
    handle = SiteHandle(life)
    try:
        # Leave work behind on purpose: a running job and a user's process on a login node.
        check(handle.ssh("alice", ["sbatch", "--wrap", "sleep 300"]))
        check(handle.ssh("bob", "nohup sleep 300 > /dev/null 2>&1 &"))
    finally:
        handle.close()
    check(hpchub_site("down", life))
    assert Site(layout).leftovers() == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"hpc-{life}-" not in netns
    assert str(layout.state_dir) not in Path("/proc/self/mountinfo").read_text()
    mine = [pid for pid in all_pids() if f"hpchub-node {life} ".encode() in _cmdline(pid)]
    assert mine == []
    code, report = status(life)
    assert code == 3 and not any(report["nodes"].values())


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except FileNotFoundError:
        return b""


def test_two_instances_run_side_by_side(loopback_site, isolated_site):
    job = check(loopback_site.ssh("alice", ["sbatch", "--parsable", "--job-name=side-by-side", "--wrap", "sleep 120"]))
    job_id = job.stdout.strip()
    try:
        mine = check(loopback_site.ssh("alice", ["squeue", "-h", "-o", "%i %j", "-u", "alice"])).stdout
        assert f"{job_id} side-by-side" in mine
        other = check(isolated_site.ssh("alice", ["squeue", "-h", "-o", "%j", "-u", "alice"])).stdout
        assert "side-by-side" not in other
        clusters = {h.name: check(h.ssh("bob", ["scontrol", "show", "config"])).stdout
                    for h in (loopback_site, isolated_site)}
        assert "ClusterName             = tloop" in clusters["tloop"]
        assert "ClusterName             = tiso" in clusters["tiso"]
        assert loopback_site.layout.hub_url != isolated_site.layout.hub_url
        assert loopback_site.site.hub.answers() and isolated_site.site.hub.answers()
    finally:
        check(loopback_site.ssh("alice", ["scancel", job_id]))
