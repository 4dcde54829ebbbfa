"""Scheduler commands run on the node (the Jobs panel, the batch kernel): real processes."""

from __future__ import annotations

import pytest

from hpchub.scheduler_commands import checked, run
from hpchub.schedulers.base import SchedulerError
from hpchub.schedulers.slurm import Slurm


async def test_a_command_gets_its_input_and_gives_its_output():
    answer = await run(["cat"], input="job 12\n")
    assert (answer.returncode, answer.stdout, answer.stderr) == (0, "job 12\n", "")


async def test_a_missing_command_or_one_that_does_not_answer_is_a_scheduler_error():
    with pytest.raises(SchedulerError, match="cannot be run here"):
        await run(["/nonexistent/sbatch"])
    with pytest.raises(SchedulerError, match="did not answer within 1 s"):
        await run(["sleep", "30"], timeout=1)


async def test_a_failed_command_says_what_the_scheduler_said():
    with pytest.raises(SchedulerError) as failed:
        await checked(Slurm(), ["sh", "-c", "echo 'sbatch: error: invalid partition specified: x' >&2; exit 1"])
    assert failed.value.user_message == "invalid partition specified: x" and failed.value.exit_status == 1
