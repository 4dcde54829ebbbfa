from __future__ import annotations

from pathlib import Path

import pytest

from hpchub.schedulers import JobRequest, JobState, SchedulerError, ValidationError
from hpchub.schedulers.slurm import Slurm, expand_nodelist, format_walltime, parse_walltime

GOLDEN = Path(__file__).parent / "golden" / "slurm"
slurm = Slurm()


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def test_squeue_pending_and_running():
    jobs = slurm.parse_status(golden("squeue_pending_running.txt"))
    assert set(jobs) == {"3", "4", "5", "6", "7"}
    assert jobs["3"].state is JobState.RUNNING and jobs["3"].nodes == ("c1", "c2")
    assert jobs["3"].start == "2026-11-25T21:18:53" and jobs["3"].end == "2026-11-25T22:18:53"
    assert jobs["4"].state is JobState.PENDING and jobs["4"].reason == "Resources" and jobs["4"].start is None
    assert jobs["5"].reason.startswith("Nodes required for job are DOWN, DRAINED")
    assert jobs["7"].name == "golden-fail" and jobs["7"].user == "alice"


def test_squeue_finished_states():
    jobs = slurm.parse_status(golden("squeue_finished.txt"))
    assert {j: s.state for j, s in jobs.items()} == {
        "3": JobState.CANCELLED, "4": JobState.RUNNING, "5": JobState.CANCELLED,
        "6": JobState.DONE, "7": JobState.FAILED}
    assert jobs["7"].reason == "NonZeroExitCode" and jobs["7"].state.finished


def test_sacct():
    jobs = slurm.parse_accounting(golden("sacct.txt"))
    assert jobs["7"].state is JobState.FAILED and jobs["7"].exit_code == 3 and jobs["7"].nodes == ("c4",)
    assert jobs["3"].state is JobState.CANCELLED and jobs["3"].native_state == "CANCELLED by 1001"
    assert jobs["5"].nodes == () and jobs["5"].start is None
    assert jobs["4"].end is None and jobs["2"].exit_code == 0


def test_sbatch_parsable():
    assert slurm.parse_submit(golden("sbatch_parsable.txt")) == "3"
    assert slurm.parse_submit(golden("sbatch_parsable_cluster.txt")) == "12"
    with pytest.raises(SchedulerError):
        slurm.parse_submit("sbatch: error: something\n")


@pytest.mark.parametrize("text,names", [
    ("c[1-3,5]", ["c1", "c2", "c3", "c5"]), ("c4", ["c4"]), ("gpu[08-10],login1", ["gpu08", "gpu09", "gpu10", "login1"]),
    ("None assigned", []), ("", []),
])
def test_nodelists(text, names):
    assert expand_nodelist(text) == names


@pytest.mark.parametrize("seconds,text", [(59, "00:00:59"), (3600, "01:00:00"), (90061, "1-01:01:01")])
def test_walltime_round_trip(seconds, text):
    assert format_walltime(seconds) == text and parse_walltime(text) == seconds


def test_walltime_forms():
    assert parse_walltime("30") == 1800 and parse_walltime("30:00") == 1800 and parse_walltime("2-12") == 216000
    assert parse_walltime("UNLIMITED") is None


def test_job_script_quotes_every_value_and_keeps_secrets_out():
    script = slurm.job_script(JobRequest(
        name="jupyter", script="exec python3 -c 'print(1)'\n", queue="debug", account="chemistry", qos="high",
        walltime=1800, cores=2, memory_mb=1000, gpus=1, constraint="intel&avx2", output="/home/a b/out.%j"))
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --partition=debug" in lines and "#SBATCH --time=00:30:00" in lines
    assert "#SBATCH '--constraint=intel&avx2'" in lines and "#SBATCH '--output=/home/a b/out.%j'" in lines
    assert "#SBATCH --gres=gpu:1" in lines and "#SBATCH --cpus-per-task=2" in lines
    assert lines[-1] == "exec python3 -c 'print(1)'"


@pytest.mark.parametrize("field,value", [
    ("queue", "debug; rm -rf ~"), ("account", "a b"), ("qos", "$(id)"), ("name", "x\n#SBATCH --uid=0"),
    ("constraint", "a`id`"), ("walltime", 10), ("nodes", 0), ("gpus", -1), ("cores", True),
    ("output", "a\nb"),
])
def test_bad_values_never_reach_a_script(field, value):
    values = {"name": "jupyter", "script": "true", field: value}
    with pytest.raises(ValidationError):
        slurm.job_script(JobRequest(**values))


def test_cancel_only_job_ids():
    assert slurm.cancel_argv(["3", "4"]) == ["scancel", "3", "4"]
    with pytest.raises(SchedulerError):
        slurm.cancel_argv(["3; id"])


def test_slurms_own_words_for_the_user():
    stderr = "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n"
    assert slurm.error_message(stderr) == "Invalid account or account/partition combination specified"
    assert slurm.error_message("") == "the Slurm command failed without a message"


def test_what_is_free_now_per_partition_from_sinfo_per_node():
    from hpchub.schedulers.base import Availability
    # sinfo --Node --Format=NodeList,Partition,StateCompact,CPUsState,Gres,GresUsed (one line per node and partition)
    out = "\n".join([
        "c1|batch*|idle|0/4/0/4|(null)|gpu:0|",
        "c2|batch*|mix|2/2/0/4|(null)|gpu:0|",
        "c3|batch*|down*|0/0/4/4|(null)|gpu:0|",           # down: neither free nor counted
        "c4|batch*|alloc|4/0/0/4|gpu:a100:2(S:0-1)|gpu:a100:1(IDX:0)|",
        "c5|gpu|drain|0/0/8/8|gpu:4|gpu:0|",               # drained
        "c6|gpu|idle~|0/8/0/8|gpu:4,shard:8|gpu:0,shard:0|",  # powered down: starts when asked
        "c1|debug|idle|0/4/0/4|(null)|gpu:0|",
        "",
    ])
    assert slurm.parse_availability(out) == {
        "batch": Availability(nodes_idle=1, nodes=3, cores_idle=6, cores=12, gpus_idle=1, gpus=2),
        "gpu": Availability(nodes_idle=1, nodes=1, cores_idle=8, cores=8, gpus_idle=4, gpus=4),
        "debug": Availability(nodes_idle=1, nodes=1, cores_idle=4, cores=4),
    }
    assert slurm.availability_argv()[:3] == ["sinfo", "--noheader", "--Node"]
