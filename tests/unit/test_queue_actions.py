"""The adapters' part of JupyterLab's queue panel: hold, release, submit a script file, where a
job writes its output (pure; the output files come from the real daemons: golden/*/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpchub.schedulers import SCHEDULERS
from hpchub.schedulers.base import SchedulerError
from hpchub.schedulers.sge import GridEngine
from hpchub.schedulers.slurm import Slurm

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def test_slurm_hold_release_submit_and_output_commands():
    slurm = Slurm()
    assert slurm.hold_argv(["12", "13_4"]) == ["scontrol", "hold", "12,13_4"]
    assert slurm.release_argv(["12"]) == ["scontrol", "release", "12"]
    assert slurm.submit_file_argv("/home/alice/a b.sh") == ["sbatch", "--parsable", "/home/alice/a b.sh"]
    assert slurm.output_argv("11") == ["scontrol", "show", "job", "--oneliner", "11"]


def test_grid_engine_hold_release_submit_and_output_commands():
    ge = GridEngine()
    assert ge.hold_argv(["12", "13"]) == ["qhold", "12", "13"]
    assert ge.release_argv(["12"]) == ["qrls", "12"]
    assert ge.submit_file_argv("/home/alice/a.sh") == ["qsub", "-terse", "-cwd", "/home/alice/a.sh"]
    assert ge.output_argv("58") == ["qstat", "-j", "58"]


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
@pytest.mark.parametrize("bad", ["", "-1", "12 13", "12;rm", "1,2", "--all", "١٢", "12\n", "9" * 40])
def test_no_value_but_a_job_id_reaches_a_command(scheduler, bad):
    adapter = SCHEDULERS[scheduler]()
    for build in (adapter.hold_argv, adapter.release_argv, adapter.cancel_argv):
        with pytest.raises(SchedulerError):
            build([bad])
    with pytest.raises(SchedulerError):
        adapter.output_argv(bad)


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
@pytest.mark.parametrize("path", ["relative.sh", "--wrap=id", "-o/tmp/x", ""])
def test_a_script_path_is_never_read_as_an_option(scheduler, path):
    with pytest.raises(SchedulerError):
        SCHEDULERS[scheduler]().submit_file_argv(path)


def test_slurms_output_path_with_spaces_and_an_equals_sign_in_it():
    text = golden("slurm/scontrol_show_job_oneliner.txt")
    assert Slurm().parse_output("11", text) == "/home/alice/q/out 11 of my job.sh=y.txt"
    assert Slurm().parse_output("1", text) is None  # the answer is about another job
    assert Slurm().parse_output("11", "") is None


@pytest.mark.parametrize("name, job_id, expected", [
    ("sge/qstat_j_o_path.txt", "54", "/home/alice/gq/out.txt"),  # -o PATH
    ("sge/qstat_j_home.txt", "57", "/home/alice/g.sh.o57"),  # no -o, no -cwd: NAME.oID at home
    ("sge/qstat_j_cwd.txt", "58", "/home/alice/gq/g.sh.o58"),  # -cwd: in the working directory
])
def test_grid_engines_output_path(name, job_id, expected):
    assert GridEngine().parse_output(job_id, golden(name)) == expected


def test_grid_engines_output_path_of_another_job_or_a_directory():
    text = golden("sge/qstat_j_cwd.txt")
    assert GridEngine().parse_output("59", text) is None
    directory = golden("sge/qstat_j_o_path.txt").replace("/home/alice/gq/out.txt", "/home/alice/logs/")
    assert GridEngine().parse_output("54", directory) == "/home/alice/logs/named.o54"


def test_held_jobs_are_told_apart_from_waiting_ones():
    slurm = Slurm()
    jobs = slurm.parse_status("5|PENDING|JobHeldUser|||||held\n6|PENDING|Priority|||||waits\n7|RUNNING|None|c1||||runs\n")
    assert [slurm.is_held(jobs[j]) for j in ("5", "6", "7")] == [True, False, False]
    ge = GridEngine()
    held = [ge.is_held(status) for status in ge.parse_status(golden("sge/qstat_all.xml")).values()]
    assert True in held and False in held
