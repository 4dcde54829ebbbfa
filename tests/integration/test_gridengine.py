"""The second cluster: Jupyter on the Grid Engine cluster's login node and in its jobs, through
the real hub, proxy, sshd and Debian's gridengine daemons, beside the Slurm cluster of the same
hub: states and reasons in Grid Engine's words, Stop, a hub restart, a head node down."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import requests

from hpchub.schedulers.sge import GridEngine
from hpchub.site.hub import GE_ISSUER

from ..site_handle import check, clean_hub, hpchub_site, leftovers, spawn, stop, wait_until
from .test_credentials import login_ok
from .test_slurm_spawner import Progress, answers, request_spawn, wait_ready
from .test_ssh_spawner import run_in_kernel

GE = GridEngine()


def ge_jobs(site, user: str) -> dict[str, str]:
    """The user's Grid Engine jobs (job id -> state letters), asked on ge-login."""
    out = check(site.ssh(user, GE.status_argv(user=user), node="ge-login")).stdout
    return {job_id: status.native_state for job_id, status in GE.parse_status(out).items()}


def delete_ge_jobs(site) -> None:
    for user in ("alice", "bob"):
        if ge_jobs(site, user):
            site.ssh(user, ["qdel", "-u", user], node="ge-login")
        wait_until(f"{user}'s Grid Engine jobs gone", lambda: not ge_jobs(site, user), timeout=30)


def ge_leftovers(site, user: str) -> list[str]:
    return [f"{node}: {cmd}" for node in ("ge-login", "ge-c1") for cmd in site.processes_in_node(node, user)
            if not cmd.startswith(("sshd", "sleep 600"))]


def hub_of(site):
    delete_ge_jobs(site)
    for client in clean_hub(site):
        yield client
    delete_ge_jobs(site)


@pytest.fixture
def hub(site):
    yield from hub_of(site)


@pytest.fixture
def loop_hub(loopback_site):
    yield from hub_of(loopback_site)


def qconf(site, *args: str):
    """qconf on the head node, as Grid Engine's manager (root)."""
    return site.in_node("ge-head", ["env", "SGE_ROOT=/var/lib/gridengine", "SGE_CELL=default", "qconf", *args])


def block_short_queue(site) -> str:
    """bob takes every slot of short.q on ge-c1, so a job there must wait."""
    job = check(site.ssh("bob", ["qsub", "-terse", "-q", "short.q", "-pe", "smp", "4", "-l", "h_rt=0:10:00",
                                 "-o", "/dev/null", "-j", "y", "-b", "y", "sleep", "600"], node="ge-login")).stdout.strip()
    wait_until(f"bob's blocking job {job} running", lambda: ge_jobs(site, "bob").get(job) == "r", timeout=30)
    return job


def test_one_login_gives_a_certificate_for_each_clusters_ca_and_each_works_only_on_its_own(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    slurm, slurm_files = hub.ssh_credential("alice")
    ge, ge_files = hub.ssh_credential("alice", issuer=GE_ISSUER)
    assert slurm.principal == ge.principal == "alice" and slurm.serial != ge.serial
    for node, accepted, refused in (("ge-login", ge_files, slurm_files), ("login1", slurm_files, ge_files)):
        assert check(site.ssh("alice", ["id", "-un"], node=node, cred=accepted)).stdout == "alice\n"
        other = site.ssh("alice", ["id", "-un"], node=node, cred=refused)
        assert other.returncode == 255 and "Permission denied" in other.stderr, (node, other.stderr)
    # Each issuer's ledger records its own certificate (the record revocation works from).
    def serials(ledger) -> set[int]:
        return {json.loads(line)["serial"] for line in ledger.read_text().splitlines()}

    assert ge.serial in serials(site.layout.hub_ge_ca_ledger) and slurm.serial in serials(site.layout.hub_ca_ledger)


def test_servers_on_the_grid_engine_clusters_login_node_and_in_its_job(site, hub):
    login_ok(hub, "alice")
    model = spawn(hub, "alice", "ge", options={"target": "ge-compute", "cores": 2, "partition": "batch.q"})
    state = model["state"]
    assert state["node"] == "ge-c1" and state["submit_host"] == "ge-login" and state["phase"] == "ready"
    assert ge_jobs(site, "alice") == {state["job_id"]: "r"}
    out = run_in_kernel(hub, "alice", "import socket, getpass, os; print(socket.gethostname(), getpass.getuser(), "
                                      "os.environ['JOB_ID'], os.environ['NSLOTS'], os.environ['QUEUE'])", server="ge")
    assert out.split() == ["ge-c1", "alice", state["job_id"], "2", "batch.q"]
    # The token reached the job through a private file, never Grid Engine: qstat -j shows a job's
    # environment to every user.
    shown = check(site.ssh("bob", ["qstat", "-j", state["job_id"]], node="ge-login")).stdout
    token = run_in_kernel(hub, "alice", "import os; print(os.environ['JUPYTERHUB_API_TOKEN'])", server="ge").strip()
    assert len(token) >= 32 and token not in shown and "JUPYTERHUB_API_TOKEN" not in shown
    assert "job_name:                   jupyter-ge" in shown
    # The job's end is known from its h_rt: the home page (from the hub) and JupyterLab's walltime
    # notice (from the node) use it.
    assert model["state"]["end_time"] or hub.admin("GET", "/users/alice").json()["servers"]["ge"]["state"]["end_time"]
    walltime = requests.get(f"{hub.url}/user/alice/ge/hpchub/walltime", timeout=30,
                            headers={"Authorization": f"token {hub.handle.site.hub.admin_token()}"}).json()
    assert walltime["job_id"] == state["job_id"] and 0 < walltime["end"] - time.time() <= 3600, walltime
    login = spawn(hub, "alice", "gl", options={"target": "ge-login"})
    assert login["state"]["host"] == "ge-login"
    assert run_in_kernel(hub, "alice", "import socket; print(socket.gethostname())", server="gl").strip() == "ge-login"
    stop(hub, "alice", "gl")
    stop(hub, "alice", "ge")
    assert ge_jobs(site, "alice") == {}
    wait_until("nothing of alice's left on the Grid Engine nodes", lambda: not ge_leftovers(site, "alice"), 30,
               detail=lambda: ge_leftovers(site, "alice"))


def test_a_full_queue_shows_grid_engines_state_and_reason_and_stop_deletes_the_job(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    blocker = block_short_queue(site)
    progress = request_spawn(hub, "alice", "ge", options={"target": "ge-compute", "cores": 2})
    pending = progress.wait_for("waiting in the queue", timeout=30)
    assert pending["state"] == "qw" and "cannot run" in pending["reason"] and "smp" in pending["reason"], pending
    assert "reason: cannot run" in pending["message"]
    job_id = pending["job_id"]
    assert ge_jobs(site, "alice") == {job_id: "qw"}
    stop(hub, "alice", "ge")
    assert ge_jobs(site, "alice") == {}
    check(site.ssh("bob", ["qdel", blocker], node="ge-login"))


def test_a_hub_restart_keeps_a_queued_grid_engine_job_and_its_server_comes_up(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    blocker = block_short_queue(site)
    progress = request_spawn(hub, "alice", "ge", options={"target": "ge-compute", "cores": 2})
    job_id = progress.wait_for("waiting in the queue", timeout=30)["job_id"]
    os.kill(site.site.nodes.daemon("hub").pid, signal.SIGKILL)
    check(hpchub_site("up", site.name))
    assert ge_jobs(site, "alice") == {job_id: "qw"}
    Progress(hub, "alice", "ge").wait_for(f"following job {job_id} again", timeout=30)
    check(site.ssh("bob", ["qdel", blocker], node="ge-login"))
    model = wait_ready(hub, "alice", "ge", timeout=60)
    assert model["state"]["job_id"] == job_id and answers(hub, "alice", "ge")  # the token the job carried
    stop(hub, "alice", "ge")


def test_grid_engine_refusals_reach_the_user_in_its_words(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    # A queue the target allows but that does not exist any more is refused by the form's check;
    # what only qsub knows reaches the user in Grid Engine's words: here, a project closed to alice.
    check(qconf(site, "-au", "alice", "noalice"))  # an access list with alice in it,
    check(qconf(site, "-rattr", "project", "xacl", "noalice", "astro"))  # kept out of the project
    try:
        progress = request_spawn(hub, "alice", "ge", options={"target": "ge-compute", "account": "astro"})
        final = progress.final(timeout=60)
    finally:
        qconf(site, "-rattr", "project", "xacl", "NONE", "astro")
        qconf(site, "-dul", "noalice")
    assert final.get("failed") and "astro" in final["message"], final
    assert ge_jobs(site, "alice") == {}


def test_the_grid_engine_head_node_down_leaves_the_slurm_cluster_working(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    session = login_ok(hub, "alice")
    running = spawn(hub, "alice", "gr", options={"target": "ge-compute"})["state"]["job_id"]
    site.site.nodes.stop_daemon("sge_qmaster")
    try:
        # Its server goes on (the job still runs), and the home page says its state is not known.
        wait_until("the home page says the Grid Engine cluster's scheduler does not answer", lambda: (
            f"so the state of job {running} is not known" in session.get(f"{hub.url}/hub/home", timeout=30).text),
            timeout=90)
        assert answers(hub, "alice", "gr")
        model = spawn(hub, "alice", "s", options={"target": "compute"}, timeout=120)
        assert model["state"]["node"] in ("c1", "c2", "c3", "c4") and answers(hub, "alice", "s")
        # Refused at once (the form's choices cannot be read), or submitted and failed: in words.
        response = hub.admin("POST", "/users/alice/servers/ge", json={"user_options": {"target": "ge-compute"}})
        if response.status_code == 503:
            assert "scheduler" in response.json()["message"], response.text
        else:
            final = Progress(hub, "alice", "ge").final(timeout=90)
            assert final.get("failed") and "Traceback" not in final["message"], final
            stop(hub, "alice", "ge")
    finally:
        check(hpchub_site("up", site.name))  # the head node back: no hub restart
    model = spawn(hub, "alice", "ge", options={"target": "ge-compute"}, timeout=120)
    assert model["state"]["node"] == "ge-c1"
    wait_until("the notice gone once the scheduler answers again", lambda: (
        "is not known" not in session.get(f"{hub.url}/hub/home", timeout=30).text), timeout=90)
    stop(hub, "alice", "ge")
    stop(hub, "alice", "gr")
    stop(hub, "alice", "s")
    wait_until("nothing of alice's left on the Slurm nodes", lambda: not leftovers(site, "alice"), 30,
               detail=lambda: leftovers(site, "alice"))


PYTHON = "/opt/hpchub/jupyter/bin/python"
# Runs in IPython on ge-login; prints one JSON object with what the magics returned.
MAGICS_PROBE = r"""
import json, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "hpchub.magics")
out = {"has_sbatch": ip.find_line_magic("sbatch") is not None}
job = ip.run_line_magic("qsub", "-b y -N magic-line -o /dev/null -j y sleep 2")
out["repr"], out["id"] = repr(job), job.id
out["queued"] = [str(j) for j in ip.run_line_magic("qstat", "-u alice")["JOBID"]]
out["final"] = job.wait(timeout=60, poll=0.5)
cell = ip.run_cell_magic("qsub", "-N magic-cell -o /dev/null -j y", "#!/bin/bash\nsleep 300\n")
out["cell_state"] = cell.state
cell.cancel()
for _ in range(40):
    if cell.status() is None or cell.state not in ("qw", "r", "t", "dr", "dt"):
        break
    time.sleep(0.25)
out["after_cancel"] = cell.state
errors = []
for line in ("qsub -q nosuch.q -b y true", "qdel 999999", "qsub -N 9lives -b y true"):
    result = ip.run_cell("%" + line)
    errors.append(str(result.error_in_exec))
out["errors"] = errors
print(json.dumps(out))
"""


def test_the_grid_engine_magics_in_ipython_on_its_login_node(loopback_site):
    import json

    site = loopback_site
    result = check(site.ssh("alice", ["env", "HPCHUB_SCHEDULER=sge", PYTHON, "-c", MAGICS_PROBE], node="ge-login",
                            timeout=180))
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert not out["has_sbatch"]  # the magics of the cluster the kernel runs on
    assert out["repr"] == f"Your job {out['id']} has been submitted" and out["id"] in out["queued"]
    assert out["final"] == "exit 0"
    assert out["cell_state"] in ("qw", "r", "t") and out["after_cancel"] != out["cell_state"]
    assert out["errors"] == ['Job was rejected because job requests unknown queue "nosuch.q"',
                             'job "999999" does not exist',
                             '"9lives" is not a valid object name (cannot start with a digit)']


GE_DASK = """
import json, socket
from hpchub.cluster import dask_cluster
cluster, client = dask_cluster(jobs=1, cores=2, memory="1GB", walltime="00:10:00")
client.wait_for_workers(1, timeout=120)
hosts = sorted(set(client.run(socket.gethostname).values()))
total = client.submit(sum, range(10)).result()
kind = type(cluster).__name__
cluster.close(); client.close()
print(json.dumps({"hosts": hosts, "total": total, "kind": kind}))
"""


def test_dask_from_a_server_on_the_grid_engine_cluster_runs_its_workers_in_grid_engine_jobs(loopback_site,
                                                                                           loop_hub):
    import json

    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    spawn(hub, "alice", "gl", options={"target": "ge-login"})  # the scheduler runs in the kernel there
    out = json.loads(run_in_kernel(hub, "alice", GE_DASK, server="gl").strip().splitlines()[-1])
    assert out == {"hosts": ["ge-c1"], "total": 45, "kind": "SGECluster"}
    wait_until("the worker's job gone", lambda: not ge_jobs(site, "alice"), timeout=60)
    stop(hub, "alice", "gl")
