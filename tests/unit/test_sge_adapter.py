"""The Grid Engine adapter against output of the real daemons (tests/unit/golden/sge/README.md)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from hpchub.schedulers import SCHEDULERS, JobRequest, JobState, SchedulerError, ValidationError
from hpchub.schedulers.sge import GridEngine, format_walltime, parse_memory_mb, parse_walltime, state_of

GOLDEN = Path(__file__).parent / "golden" / "sge"
sge = GridEngine()


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def test_registered_under_its_name():
    assert SCHEDULERS["sge"] is GridEngine and GridEngine.name == "sge"


def test_qstat_lists_running_pending_and_held_jobs_of_every_user():
    jobs = sge.parse_status(golden("qstat_all.xml"))
    assert jobs["8"].state is JobState.RUNNING and jobs["8"].nodes == ("vm",)
    assert jobs["8"].start == "2026-11-30T16:19:14" and jobs["8"].name == "hpchub-spawn" and jobs["8"].user == "alice"
    assert jobs["40"].native_state == "r" and jobs["40"].user == "bob"
    assert jobs["38"].state is JobState.PENDING and jobs["38"].nodes == () and jobs["38"].start is None
    assert jobs["13"].state is JobState.PENDING and jobs["13"].native_state == "hqw"
    assert len(jobs) == 14


@pytest.mark.parametrize("job_id,name", [("27", "amp&x"), ("28", "lt<x"), ("29", 'quote"x'), ("30", "apos'x"),
                                         ("33", "pipe|x"), ("35", "hash#x"), ("36", "pct%x"), ("32", "dot.plus+x")])
def test_odd_job_names_come_back_whole(job_id, name):
    assert sge.parse_status(golden("qstat_all.xml"))[job_id].name == name


def test_names_with_xml_characters_including_grid_engines_own_escape_of_less_than():
    names = {job.name for job in sge.parse_status(golden("qstat_names.xml")).values()}
    assert {"gt>x", "both<>&x", "lt<x"} <= names
    assert "lit<x" in names  # a name that held "%lt;" itself: qstat's escape cannot tell them apart


def test_one_users_jobs():
    jobs = sge.parse_status(golden("qstat_alice.xml"))
    assert jobs and {j.user for j in jobs.values()} == {"alice"}


def test_a_job_in_error_state_has_failed_and_says_why():
    jobs = sge.parse_status(golden("qstat_error.xml"))
    assert jobs["41"].native_state == "Eqw" and jobs["41"].state is JobState.ERROR and jobs["41"].state.finished
    reasons = sge.parse_reasons(golden("qstat_why_error.xml"))
    assert reasons["41"] == 'can\'t open output file "/nonexistent/out": No such file or directory'


def test_why_jobs_wait_in_grid_engines_words():
    reasons = sge.parse_reasons(golden("qstat_why.xml"))
    assert reasons["38"] == 'cannot run in PE "smp" because it only offers 0 slots'
    assert reasons["13"] == "Job is in hold state"
    assert reasons["39"].startswith('cannot run in queue "short.q" because it is not contained in its hard queue list')
    assert "8" not in reasons  # running: nothing to explain


def test_why_for_an_unknown_job_is_nothing():
    assert sge.parse_reasons(golden("qstat_why_unknown.out")) == {}


def test_the_reasons_query_is_one_command_for_many_jobs_and_none_for_odd_ids():
    assert sge.reasons_argv(["38", "13"]) == ["qstat", "-xml", "-j", "38,13"]
    assert sge.reasons_argv(["38", "13;rm"]) is None and sge.reasons_argv([]) is None


@pytest.mark.parametrize("name,state,exit_code,native", [
    ("qacct_10.txt", JobState.DONE, 0, "exit 0"),
    ("qacct_11.txt", JobState.FAILED, 1, "exit 1"),
    ("qacct_12.txt", JobState.TIMEOUT, 137, "failed 37 (qmaster enforced h_rt, h_cpu, or h_vmem limit)"),
    ("qacct_1.txt", JobState.FAILED, 0, "failed 26 (opening input/output file)"),
    ("qacct_40_deleted_running.txt", JobState.CANCELLED, 137, "failed 100 (assumedly after job)"),
])
def test_accounting_of_finished_jobs(name, state, exit_code, native):
    (job,) = sge.parse_accounting(golden(name)).values()
    assert (job.state, job.exit_code, job.native_state) == (state, exit_code, native)
    assert job.state.finished


def test_accounting_times_and_places():
    job = sge.parse_accounting(golden("qacct_12.txt"))["12"]
    assert job.start == "2026-11-30T16:19:14" and job.end == "2026-11-30T16:19:20"
    assert job.nodes == ("vm",) and job.name == "killed" and job.user == "alice"
    never = sge.parse_accounting(golden("qacct_1.txt"))["1"]
    assert never.start is None and never.end is None and never.reason == "opening input/output file"


def test_several_accounting_blocks_in_one_output():
    both = golden("qacct_10.txt") + golden("qacct_11.txt")
    assert set(sge.parse_accounting(both)) == {"10", "11"}


def test_a_job_accounting_never_saw_is_an_answer_not_a_failure():
    assert sge.only_unknown_jobs(golden("qacct_unknown.err"))
    assert sge.only_unknown_jobs(golden("qacct_no_accounting_file.err"))  # no job ended yet in this cell
    assert not sge.only_unknown_jobs("error: commlib error: got select error (Connection refused)")


def test_accounting_asks_for_one_job_by_id_and_for_several_by_listing():
    assert sge.accounting_argv(["10"]) == ["qacct", "-j", "10"]
    assert sge.accounting_argv(["10", "11"]) == ["qacct", "-j"]
    assert sge.accounting_argv(None, user="alice") == ["qacct", "-o", "alice", "-j"]
    with pytest.raises(SchedulerError):
        sge.accounting_argv(["-o"])


def test_qsub_terse_job_id():
    assert sge.parse_submit(golden("qsub_terse.out")) == "47"
    assert sge.parse_submit("48.1-10:1\n") == "48"  # an array job: its job id
    with pytest.raises(SchedulerError):
        sge.parse_submit(golden("qsub_unknown_queue.out"))


@pytest.mark.parametrize("name,words", [
    ("qsub_unknown_queue.out", 'Job was rejected because job requests unknown queue "nosuch.q"'),
    ("qsub_unknown_project.out", 'the requested project "nosuchproj" does not exist'),
    ("qsub_unknown_pe.out", 'the requested parallel environment "nosuchpe" does not exist'),
    ("qsub_bad_h_rt.out", 'attribute "h_rt" is not a time value'),
    ("qsub_unknown_resource.out", 'unknown resource "nosuchres"'),
    ("qdel_unknown.out", 'job "999999" does not exist'),
    ("qdel_other.out", 'alice - you do not have the necessary privileges to delete the job "39"'),
])
def test_errors_reach_the_user_in_grid_engines_words(name, words):
    assert sge.error_message(golden(name)) == words


def test_queues_from_their_instances():
    queues = sge.parse_partitions(golden("qstat_queues.xml"))
    assert set(queues) == {"batch.q", "short.q"}
    assert queues["short.q"].max_walltime == 3600 and queues["batch.q"].max_walltime == 86400
    assert queues["short.q"].nodes == 1 and queues["short.q"].cores_per_node == 2
    assert queues["short.q"].memory_mb_per_node == parse_memory_mb("23.541G") > 20000


def test_projects_are_the_accounts():
    assert set(sge.parse_associations(golden("qconf_projects.txt"))) == {"astro"}
    assert sge.parse_associations("no project list defined\n") == {}


def test_advance_reservations():
    (summary,) = sge.parse_reservations(golden("qrstat.xml"))
    assert summary.name == "1" and summary.end == "2026-12-07T11:00:00" and not summary.open_to("alice", ())
    assert summary.start == "2026-12-07T09:00:00" and not summary.active  # state w: waits for its start
    (detail,) = sge.parse_reservations(golden("qrstat_detail.xml"))
    assert detail.open_to("alice", ()) and detail.open_to("bob", ()) and not detail.open_to("carol", ())


def _directives(script: str) -> list[list[str]]:
    return [shlex.split(line[3:]) for line in script.splitlines() if line.startswith("#$ ")]


def test_job_script_directives():
    request = JobRequest(name="jupyter-x", script="echo hi\n", queue="short.q", account="astro", walltime=5400,
                         cores=4, memory_mb=2048, output=".hpchub/jobs/a b/job.out")
    script = sge.job_script(request)
    assert script.startswith("#!/bin/bash\n") and script.endswith("echo hi\n")
    assert _directives(script) == [
        ["-N", "jupyter-x"], ["-S", "/bin/bash"], ["-r", "n"], ["-cwd"], ["-q", "short.q"], ["-P", "astro"],
        ["-o", ".hpchub/jobs/a b/job.out"], ["-j", "y"], ["-l", "h_rt=01:30:00"], ["-pe", "smp", "4"],
        ["-l", "mem_free=2048M"]]
    assert "-V" not in script  # the submitting session's environment never goes with the job


def test_gpus_through_the_sites_resource_only():
    request = JobRequest(name="j", script="true", gpus=2)
    with pytest.raises(ValidationError) as refused:
        sge.job_script(request)
    assert refused.value.field == "gpus" and "no GPUs" in str(refused.value)
    assert ["-l", "gpu=2"] in _directives(GridEngine(gpu_resource="gpu").job_script(request))


@pytest.mark.parametrize("changes,field", [
    ({"name": "9lives"}, "name"), ({"name": "with space"}, "name"), ({"name": "é"}, "name"),
    ({"nodes": 2}, "nodes"), ({"qos": "normal"}, "qos"), ({"constraint": "gpu"}, "constraint"),
    ({"reservation": "course"}, "reservation"), ({"queue": "short.q;rm"}, "queue"), ({"walltime": 10}, "walltime"),
])
def test_what_grid_engine_cannot_take_is_refused_naming_the_field(changes, field):
    request = JobRequest(**{"name": "jupyter", "script": "true", **changes})
    with pytest.raises(ValidationError) as refused:
        sge.validate(request)
    assert refused.value.field == field


def test_cancel_only_job_ids():
    assert sge.cancel_argv(["8", "13"]) == ["qdel", "8", "13"]
    for bad in ([], ["-u"], ["8;rm"], ["alice"]):
        with pytest.raises(SchedulerError):
            sge.cancel_argv(bad)


@pytest.mark.parametrize("letters,state", [
    ("qw", JobState.PENDING), ("hqw", JobState.PENDING), ("hRwq", JobState.PENDING), ("t", JobState.PENDING),
    ("r", JobState.RUNNING), ("Rr", JobState.RUNNING), ("s", JobState.PENDING), ("dr", JobState.COMPLETING),
    ("Eqw", JobState.ERROR), ("", JobState.UNKNOWN), ("z", JobState.UNKNOWN),
])
def test_state_letters(letters, state):
    assert state_of(letters) is state


@pytest.mark.parametrize("seconds,text", [(59, "00:00:59"), (3600, "01:00:00"), (90061, "25:01:01")])
def test_walltime_round_trip(seconds, text):
    assert format_walltime(seconds) == text and parse_walltime(text) == seconds


def test_walltime_forms():
    assert parse_walltime("INFINITY") is None and parse_walltime("600") == 600
    with pytest.raises(ValueError):
        parse_walltime("１:00:00")


def test_status_query_asks_for_everyone_or_one_user():
    assert sge.status_argv(["8"]) == ["qstat", "-xml", "-r", "-u", "*"]
    assert sge.status_argv(user="alice") == ["qstat", "-xml", "-r", "-u", "alice"]


def test_a_running_job_ends_at_its_start_plus_its_h_rt():
    jobs = sge.parse_status(golden("qstat_requests.xml"))
    assert jobs["3"].start == "2026-11-30T16:34:40" and jobs["3"].end == "2026-11-30T16:39:40"
    assert jobs["4"].state is JobState.PENDING and jobs["4"].end is None  # not started: no end yet
    assert sge.parse_status(golden("qstat_all.xml"))["8"].end is None  # (asked without -r)


def test_unreadable_xml_is_a_value_error_for_the_watcher():
    with pytest.raises(ValueError):
        sge.parse_status("<job_info><job_list>")


def test_what_is_free_now_per_queue_from_qstat_f():
    from hpchub.schedulers.base import Availability

    def instance(name, used, resv, total, state=""):
        state_tag = f"<state>{state}</state>" if state else ""
        return (f"<Queue-List><name>{name}</name><qtype>BIP</qtype><slots_used>{used}</slots_used>"
                f"<slots_resv>{resv}</slots_resv><slots_total>{total}</slots_total>{state_tag}</Queue-List>")

    out = ("<?xml version='1.0'?><job_info><queue_info>"
           + instance("batch.q@c1", 0, 0, 4) + instance("batch.q@c2", 3, 0, 4) + instance("batch.q@c3", 0, 1, 4)
           + instance("batch.q@c4", 0, 0, 4, "d")      # disabled by an admin
           + instance("batch.q@c5", 0, 0, 4, "au")     # its host does not answer
           + instance("short.q@c1", 0, 0, 2)
           + "</queue_info><job_info></job_info></job_info>")
    assert sge.parse_availability(out) == {
        "batch.q": Availability(nodes_idle=1, nodes=3, cores_idle=8, cores=12),
        "short.q": Availability(nodes_idle=1, nodes=1, cores_idle=2, cores=2),
    }
