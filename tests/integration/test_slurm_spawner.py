"""Jupyter in a Slurm job on the compute nodes, through the real hub, proxy and Slurm, in
both network modes: queue states, Stop, failures in Slurm's words, hub restarts."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import requests

from ..site_handle import HubClient, check, hpchub_site, spawn, stop, stop_all
from .test_credentials import login_ok
from .test_ssh_spawner import run_in_kernel

SLURM_HUB = """\
c.JupyterHub.spawner_class = "hpchub-slurm"
# Short intervals, so that the tests see scheduler-side changes quickly.
c.HPCSpawner.status_interval = 3
c.HPCSpawner.spawn_status_interval = 1
c.HPCSpawner.gone_grace = 4
c.Spawner.poll_interval = 2
"""
CONFIG_NAME = "40-slurm-spawner.py"


_sites_used: list = []  # the sites whose hubs this module switched to the Slurm spawner


def use_slurm_spawner(site, extra: str = "") -> None:
    """The site's hub with the Slurm spawner (and extra settings); restarts it only if needed."""
    if site not in _sites_used:
        _sites_used.append(site)
    path = site.layout.hub_config_dir / CONFIG_NAME
    text = SLURM_HUB + extra
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        site.site.hub.restart()



@pytest.fixture(scope="module", autouse=True)
def back_to_the_default_spawner():
    """After this module, the sites' hubs return to their default spawner."""
    yield
    for site in _sites_used:
        path = site.layout.hub_config_dir / CONFIG_NAME
        if path.exists():
            path.unlink()
            site.site.hub.restart()


def slurm_hub(site):
    """The site's hub with the Slurm spawner, without servers or jobs before and after; a
    test may add settings with use_slurm_spawner(site, extra), undone here."""
    use_slurm_spawner(site)
    client = HubClient(site)
    stop_all(client)
    cancel_all_jobs(site)
    yield client
    stop_all(client)
    cancel_all_jobs(site)
    use_slurm_spawner(site)
    client.close()


@pytest.fixture
def hub(site):
    yield from slurm_hub(site)


@pytest.fixture
def loop_hub(loopback_site):
    """For the tests that run in loopback mode only."""
    yield from slurm_hub(loopback_site)


def cancel_all_jobs(site) -> None:
    for user in ("alice", "bob"):
        site.ssh(user, ["scancel", "--user", user])


def queue(site, user: str) -> dict[str, str]:
    """The user's jobs still in the queue (job id -> state)."""
    out = check(site.ssh(user, ["squeue", "--noheader", "--user", user, "--format=%i %T"])).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def block_debug_partition(site) -> str:
    """bob takes both nodes of the debug partition, so jobs there must wait."""
    job = check(site.ssh("bob", ["sbatch", "--parsable", "--partition=debug", "--nodes=2", "--exclusive",
                                 "--time=10", "--wrap=sleep 600"])).stdout.strip()
    deadline = time.monotonic() + 30
    while queue(site, "bob").get(job) != "RUNNING":
        assert time.monotonic() < deadline, f"bob's blocking job {job} did not start"
        time.sleep(0.3)
    return job


class Progress:
    """A spawn's progress events, read as they come (the stream ends with the spawn)."""

    def __init__(self, hub: HubClient, user: str, server: str = ""):
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        self.url = f"{hub.url}/hub/api{path}/progress"
        self.token = hub.handle.site.hub.admin_token()
        self.events: list[dict] = []
        self.error: Exception | None = None
        self.answer = ""  # the stream's HTTP status (and body, when it is not a stream)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with requests.get(self.url, stream=True, timeout=300,
                              headers={"Authorization": f"token {self.token}"}) as response:
                self.answer = f"HTTP {response.status_code}"
                for line in response.iter_lines(decode_unicode=True):
                    if response.status_code != 200:
                        self.answer += f" {line[:300]}"
                    if line and line.startswith("data:"):
                        self.events.append(json.loads(line[5:]))
        except requests.RequestException as exc:  # the hub went away (some tests kill it)
            self.error = exc

    def wait_for(self, text: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if text in event.get("message", ""):
                    return event
            time.sleep(0.1)
        raise AssertionError(f"no progress event with {text!r} in {timeout} s: {self.events}")

    def final(self, timeout: float = 60) -> dict:
        self.thread.join(timeout)
        assert self.events, f"no progress events ({self.answer or self.error})"
        return self.events[-1]


def request_spawn(hub: HubClient, user: str, server: str = "", options: dict | None = None) -> Progress:
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    body = options if options and "user_options" in options else {"user_options": options or {}}
    response = hub.admin("POST", path, json=body)
    assert response.status_code in (201, 202), response.text
    return Progress(hub, user, server)


def wait_ready(hub: HubClient, user: str, server: str = "", timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = hub.admin("GET", f"/users/{user}").json()["servers"].get(server)
        if model and model["ready"]:
            return model
        time.sleep(0.3)
    raise AssertionError(f"{user}/{server} not ready within {timeout} s")


def answers(hub: HubClient, user: str, server: str = "") -> bool:
    url = f"{hub.url}/user/{user}/" + (f"{server}/" if server else "") + "api/status"
    response = requests.get(url, timeout=30, headers={"Authorization": f"token {hub.handle.site.hub.admin_token()}"})
    return response.status_code == 200 and "kernels" in response.json()


# ----- the tests -------------------------------------------------------------------------
def test_the_server_runs_in_a_job_on_a_compute_node_as_alice(site, hub):
    login_ok(hub, "alice")
    model = spawn(hub, "alice")
    state = model["state"]
    assert state["node"] in ("c1", "c2", "c3", "c4") and state["phase"] == "ready"
    assert queue(site, "alice") == {state["job_id"]: "RUNNING"}
    out = run_in_kernel(hub, "alice", "import socket, getpass, os; "
                                      "print(socket.gethostname(), getpass.getuser(), os.environ['SLURM_JOB_ID'])")
    assert out.split() == [state["node"], "alice", state["job_id"]]
    # The token reached the job by its environment, not its script.
    script = check(site.ssh("alice", ["scontrol", "write", "batch_script", state["job_id"], "-"])).stdout
    assert "#SBATCH --partition=batch" in script and "JUPYTERHUB_API_TOKEN" not in script
    stop(hub, "alice")
    assert queue(site, "alice") == {}


def test_a_two_node_job_gives_the_notebook_the_whole_allocation(loop_hub):
    hub = loop_hub
    login_ok(hub, "bob")
    assert hub.admin("POST", "/users/bob/server", json={"nodes": 2}).status_code in (201, 202)
    model = wait_ready(hub, "bob")
    out = run_in_kernel(hub, "bob", "import subprocess; print(subprocess.run(['srun', '--overlap', 'hostname'], "
                                    "capture_output=True, text=True, timeout=60).stdout)")
    hosts = sorted(out.split())
    assert len(hosts) == 2 and model["state"]["node"] in hosts and set(hosts) <= {"c1", "c2", "c3", "c4"}
    stop(hub, "bob")


def test_a_full_partition_keeps_the_spawn_pending_with_its_reason_then_it_starts(site, hub):
    login_ok(hub, "alice")
    blocker = block_debug_partition(site)
    progress = request_spawn(hub, "alice", options={"partition": "debug", "walltime": "00:10:00"})
    pending = progress.wait_for("waiting in the queue", timeout=30)
    assert pending["state"] == "PENDING" and pending["reason"] in ("Resources", "Priority"), pending
    assert "expected start" in pending["message"] or pending["expected_start"] is None
    time.sleep(3)  # still waiting, not failed: a slow queue is not an error
    assert hub.admin("GET", "/users/alice").json()["servers"][""]["pending"] == "spawn"
    check(site.ssh("bob", ["scancel", blocker]))
    model = wait_ready(hub, "alice", timeout=60)
    assert model["state"]["node"] in ("c1", "c2")
    assert answers(hub, "alice")


def test_stop_while_pending_cancels_the_job(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    block_debug_partition(site)
    progress = request_spawn(hub, "alice", options={"partition": "debug", "walltime": "00:10:00"})
    job_id = progress.wait_for("waiting in the queue", timeout=30)["job_id"]
    assert queue(site, "alice") == {job_id: "PENDING"}
    stop(hub, "alice")
    assert queue(site, "alice") == {}
    assert "" not in hub.admin("GET", "/users/alice").json()["servers"]


def test_hub_killed_with_a_pending_and_a_running_job_keeps_both(site, hub):
    login_ok(hub, "alice")
    blocker = block_debug_partition(site)
    running = spawn(hub, "alice", "run")["state"]["job_id"]  # on c3 or c4
    progress = request_spawn(hub, "alice", "wait", options={"partition": "debug", "walltime": "00:10:00"})
    pending = progress.wait_for("waiting in the queue", timeout=30)["job_id"]

    os.kill(site.site.nodes.daemon("hub").pid, signal.SIGKILL)
    check(hpchub_site("up", site.name))

    assert queue(site, "alice") == {running: "RUNNING", pending: "PENDING"}
    assert answers(hub, "alice", "run")
    model = hub.admin("GET", "/users/alice").json()["servers"]["wait"]
    assert model["pending"] == "spawn" and model["state"]["job_id"] == pending
    resumed = Progress(hub, "alice", "wait")
    resumed.wait_for(f"following job {pending} again", timeout=30)
    check(site.ssh("bob", ["scancel", blocker]))
    model = wait_ready(hub, "alice", "wait", timeout=60)
    assert model["state"]["job_id"] == pending
    assert answers(hub, "alice", "wait")  # with the token the queued job carried
    stop(hub, "alice", "run")
    stop(hub, "alice", "wait")
    assert queue(site, "alice") == {}


def test_queued_jobs_do_not_use_up_the_concurrent_spawn_limit(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    # The combined spawner, so that bob can start on a login node beside alice's queued jobs.
    use_slurm_spawner(site, 'c.JupyterHub.spawner_class = "hpchub"\nc.JupyterHub.concurrent_spawn_limit = 2\n')
    login_ok(hub, "alice")
    login_ok(hub, "bob")
    block_debug_partition(site)
    queued = {"target": "custom", "partition": "debug", "walltime": "00:10:00"}
    for name in ("q1", "q2", "q3"):
        request_spawn(hub, "alice", name, options={"user_options": queued}).wait_for("waiting in the queue")
    response = hub.admin("POST", "/users/bob/server", json={"user_options": {"target": "login"}})
    assert response.status_code in (201, 202), response.text  # not 429: the limit is not used up
    model = wait_ready(hub, "bob")
    assert model["state"]["kind"] == "login" and model["state"]["host"] in ("login1", "login2")
    assert set(queue(site, "alice").values()) == {"PENDING"} and len(queue(site, "alice")) == 3


def test_an_admin_scancel_stops_the_server_and_says_why(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "bob")
    job_id = spawn(hub, "bob")["state"]["job_id"]
    check(site.in_node("head", ["scancel", job_id]))  # root on the head node
    deadline = time.monotonic() + 30
    while hub.admin("GET", "/users/bob").json()["servers"]:
        assert time.monotonic() < deadline, "the hub did not notice the cancelled job"
        time.sleep(0.5)
    stopped = hub.admin("GET", "/users/bob?include_stopped_servers=1").json()["servers"][""]
    assert stopped["state"]["last_outcome"]["message"] == f"job {job_id} was cancelled (by uid 0)"


@pytest.mark.parametrize("options, slurm_says", [
    ({"account": "chemistry"}, "Invalid account or account/partition combination specified"),
    ({"partition": "debug", "walltime": "02:00:00"}, "Requested time limit is invalid"),
])
def test_slurm_refusals_reach_the_user_in_slurms_words(loopback_site, loop_hub, options, slurm_says):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "bob")  # bob is in the physics account only
    response = hub.admin("POST", "/users/bob/server", json={"user_options": options})
    if response.status_code == 400:  # refused before JupyterHub's slow-spawn wait ran out: said at once
        final = {"failed": True, "message": response.json()["message"]}
    else:
        assert response.status_code in (201, 202), response.text
        progress = Progress(hub, "bob", "")
        progress.thread.join(60)
        if progress.events:
            final = progress.events[-1]
        else:  # the spawn had ended before the stream opened: its failure, as the stream tells it later
            final = Progress(hub, "bob", "").final()
    assert final["failed"] and slurm_says in final["message"], final
    assert "Traceback" not in final["message"]
    assert queue(site, "bob") == {}


def test_a_job_that_dies_before_its_server_answers_ends_the_spawn_with_its_output(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    use_slurm_spawner(site, "c.HPCSpawner.setup_lines = ['echo the module system is broken >&2', 'exit 3']\n")
    login_ok(hub, "alice")
    started = time.monotonic()
    final = request_spawn(hub, "alice").final()
    assert time.monotonic() - started < 20
    assert final["failed"] and "the module system is broken" in final["message"], final
    assert "exit code 3" in final["message"] or "FAILED" in final["message"], final
