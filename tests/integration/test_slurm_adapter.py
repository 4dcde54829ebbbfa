"""The Slurm adapter's argv and parsers against the real Slurm of the site."""

from __future__ import annotations

import shlex
import time

from hpchub.schedulers import JobRequest, JobState
from hpchub.schedulers.slurm import Slurm

from ..site_handle import check

slurm = Slurm()


def run(site, argv, user="alice", input=None):
    return site.ssh(user, shlex.join(argv), input=input)


def test_submit_watch_and_account_a_job(loopback_site):
    site = loopback_site
    script = slurm.job_script(JobRequest(name="adapter-test",
                                         script='HPCHUB_MARK="it works"\necho "$(hostname) $HPCHUB_MARK"\nsleep 2\n',
                                         queue="debug", walltime=300, cores=1, output="adapter-%j.out"))
    job_id = slurm.parse_submit(check(run(site, slurm.submit_argv(), input=script)).stdout)
    seen = slurm.parse_status(check(run(site, slurm.status_argv([job_id]))).stdout)
    assert seen[job_id].state in (JobState.PENDING, JobState.RUNNING, JobState.COMPLETING, JobState.DONE)
    assert seen[job_id].name == "adapter-test"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        accounted = slurm.parse_accounting(check(run(site, slurm.accounting_argv([job_id]))).stdout)
        if job_id in accounted and accounted[job_id].state.finished:
            break
        time.sleep(0.5)
    job = accounted[job_id]
    assert job.state is JobState.DONE and job.exit_code == 0 and len(job.nodes) == 1
    node, mark = check(run(site, ["cat", f"adapter-{job_id}.out"])).stdout.split(" ", 1)
    assert node == job.nodes[0] and mark.strip() == "it works"


def test_cancel_and_slurms_message(loopback_site):
    site = loopback_site
    script = slurm.job_script(JobRequest(name="adapter-cancel", script="sleep 300\n", walltime=600))
    job_id = slurm.parse_submit(check(run(site, slurm.submit_argv(), input=script)).stdout)
    check(run(site, slurm.cancel_argv([job_id])))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = slurm.parse_status(check(run(site, slurm.status_argv([job_id]))).stdout).get(job_id)
        if state is None or state.state is JobState.CANCELLED:
            break
        time.sleep(0.3)
    assert state is None or state.state is JobState.CANCELLED
    bad = slurm.job_script(JobRequest(name="adapter-bad", script="true\n", account="chemistry"))
    refused = run(site, slurm.submit_argv(), user="bob", input=bad)
    assert refused.returncode != 0
    assert slurm.error_message(refused.stderr) == "Invalid account or account/partition combination specified"
