"""Slurm on the site behaves like a centre's: nodes with their own hostnames, jobs as the
user, accounting, and limits enforced with Slurm's own messages."""

from __future__ import annotations

import re

from ..site_handle import check


def test_nodes_idle_each_with_its_own_hostname(site):
    sinfo = check(site.ssh("alice", ["sinfo", "-N", "-h", "-p", "batch", "-o", "%N %T"]))
    states = dict(line.split() for line in sinfo.stdout.splitlines())
    assert states == {"c1": "idle", "c2": "idle", "c3": "idle", "c4": "idle"}
    # One task per node; each prints the hostname its node has (its own UTS namespace).
    out = check(site.ssh("alice", ["srun", "-N4", "--ntasks-per-node=1", "-l", "bash", "-c",
                                   'echo "$SLURMD_NODENAME $(hostname)"'])).stdout
    pairs = sorted(line.split(": ", 1)[1].split() for line in out.splitlines())
    assert pairs == [["c1", "c1"], ["c2", "c2"], ["c3", "c3"], ["c4", "c4"]]


def test_login_node_is_not_a_compute_node(site):
    assert check(site.ssh("alice", ["hostname"], node="login2")).stdout.strip() == "login2"


def test_sbatch_runs_as_alice_on_a_compute_node_and_sacct_reports_it(site):
    submit = check(site.ssh("alice", ["sbatch", "--parsable", "--output=sbatch-test-%j.out",
                                      "--wrap", 'echo "$(hostname) $(id -un)"']))
    job_id = submit.stdout.strip()
    assert job_id.isdigit()
    assert site.wait_job_state("alice", job_id, "COMPLETED") == "COMPLETED"
    node, user = check(site.ssh("alice", ["cat", f"sbatch-test-{job_id}.out"])).stdout.split()
    assert node in {"c1", "c2", "c3", "c4"} and user == "alice"
    acct = check(site.ssh("alice", ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "User,NodeList,ExitCode"]))
    assert acct.stdout.strip() == f"alice|{node}|0:0"


def test_wrong_account_is_refused_with_slurms_message(site):
    proc = site.ssh("bob", ["sbatch", "--account=chemistry", "--wrap", "hostname"])
    assert proc.returncode != 0
    assert "Invalid account or account/partition combination specified" in proc.stderr
    assert "Submitted" not in proc.stdout


def test_time_over_the_partition_limit_is_refused(site):
    proc = site.ssh("alice", ["sbatch", "--partition=debug", "--time=01:00:00", "--wrap", "hostname"])
    assert proc.returncode != 0
    assert "Requested time limit is invalid" in proc.stderr


def test_alice_may_use_both_accounts_and_the_gpu_node(site):
    out = check(site.ssh("alice", ["srun", "--account=chemistry", "--gres=gpu:1", "--constraint=gpu",
                                   "bash", "-c", 'echo "$(hostname) $CUDA_VISIBLE_DEVICES"'])).stdout
    node, devices = out.split()
    assert node == "c4" and devices == "0"


def test_site_shape_partitions_qos_reservation(site):
    parts = check(site.ssh("bob", ["sinfo", "-h", "-o", "%P %l %N"])).stdout.split("\n")
    assert "batch* 12:00:00 c[1-4]" in parts and "debug 30:00 c[1-2]" in parts and "shared 4:00:00 c[1-4]" in parts
    qos = check(site.ssh("bob", ["sacctmgr", "-n", "-P", "show", "qos", "format=name"])).stdout.split()
    assert {"normal", "high"} <= set(qos)
    refused = site.ssh("bob", ["sbatch", "--qos=high", "--wrap", "hostname"])
    assert refused.returncode != 0 and "Invalid qos specification" in refused.stderr
    res = check(site.ssh("alice", ["scontrol", "show", "reservation", "workshop"])).stdout
    assert re.search(r"Users=alice\b", res) and "Nodes=c4" in res


def test_service_account_is_a_slurm_operator(site):
    out = check(site.ssh("hpchub", ["sacctmgr", "-n", "-P", "show", "user", "hpchub", "format=user,adminlevel"]))
    assert out.stdout.strip() == "hpchub|Operator"


def test_users_run_the_sites_jupyter_environment_on_login_and_compute_nodes(site):
    env = site.info["jupyter_env"]
    probe = f"{env}/bin/python -c 'import jupyterlab, ipykernel, jupyterhub; print(jupyterhub.__version__)'"
    on_login = check(site.ssh("bob", probe, node="login2")).stdout.strip()
    on_compute = check(site.ssh("bob", ["srun", "-w", "c2", "bash", "-c", probe])).stdout.strip()
    assert on_login == on_compute and int(on_login.split(".")[0]) >= 6
