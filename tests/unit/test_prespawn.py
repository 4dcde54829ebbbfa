"""Pre-spawn checks (spawners/prespawn.py): the shipped GrpTRESMins check reads sshare's rows of
the user's accounts, and a check that fails finds nothing instead of stopping spawns."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hpchub.spawners.prespawn import (CheckContext, Finding, QueryFailed, refusal, resolved, run_checks,
                                      slurm_usage_limits, used_up)

# sshare --noheader --parsable2 --all --accounts=... --format=Account,User,GrpTRESMins,GrpTRESRaw
SSHARE = "\n".join([
    "physics|||cpu=120,mem=90,energy=0,node=2,billing=120,fs/disk=0,vmem=0,pages=0,gres/gpu=0",
    " physics|alice|cpu=100|cpu=120,mem=90,node=2,gres/gpu=0",   # alice's own limit in physics: spent
    " physics|bob|cpu=10|cpu=500",                                 # bob's: not alice's business
    "chemistry||cpu=1000,gres/gpu=60|cpu=10,gres/gpu=60",         # the GPU minutes are spent
    " chemistry|alice||cpu=10,gres/gpu=60",
    "teaching||cpu=0|cpu=0,mem=0",                                 # nothing granted at all
    "open||cpu=N/A|cpu=5",                                          # no number: no limit
    "",
])


def test_spent_limits_of_the_account_and_of_the_users_own_association():
    assert used_up(SSHARE, "alice") == {
        "physics": [("cpu", 120, 100)],
        "chemistry": [("gres/gpu", 60, 60)],
        "teaching": [("cpu", 0, 0)],
    }
    assert used_up(SSHARE, "bob") == {"physics": [("cpu", 500, 10)], "chemistry": [("gres/gpu", 60, 60)],
                                      "teaching": [("cpu", 0, 0)]}


def context(answers: dict, scheduler: str = "slurm", accounts=("chemistry", "physics", "teaching")):
    async def query(argv):
        for command, answer in answers.items():
            if argv[0] == command:
                if isinstance(answer, Exception):
                    raise answer
                return answer
        raise AssertionError(argv)
    return CheckContext("alice", "Slurm cluster", scheduler, tuple(accounts), query)


def test_a_spent_account_is_flagged_and_the_default_account_with_it():
    findings = asyncio.run(slurm_usage_limits(context({"sshare": SSHARE, "sacctmgr": "physics\n"})))
    assert [sorted(f.accounts) for f in findings] == [["chemistry"], ["", "physics"], ["teaching"]]
    assert "account teaching has used up its allocation (0 of 0 cpu-minutes)" in findings[2].message
    assert refusal(findings, "") is findings[1]  # no account named: the default (physics) is spent
    assert refusal(findings, "teaching") is findings[2]
    assert refusal(findings, "other") is None
    assert refusal([Finding("the cluster is closed to new jobs")], "any").message.startswith("the cluster")


def test_it_finds_nothing_where_it_cannot_tell():
    assert asyncio.run(slurm_usage_limits(context({"sshare": QueryFailed("no answer")}))) == []
    assert asyncio.run(slurm_usage_limits(context({}, scheduler="sge"))) == []
    assert asyncio.run(slurm_usage_limits(context({}, accounts=()))) == []


def test_a_failing_check_is_logged_and_the_others_still_count(caplog):
    async def broken(_context):
        raise KeyError("a bug in a site's own check")

    async def closed(_context):
        return [Finding("maintenance: no new jobs until 14:00")]

    with caplog.at_level(logging.ERROR):
        found = asyncio.run(run_checks([broken, closed], context({}), logging.getLogger("test")))
    assert [f.message for f in found] == ["maintenance: no new jobs until 14:00"]
    assert "a bug in a site's own check" in caplog.text


def test_checks_are_named_by_import_path():
    assert resolved("hpchub.spawners.prespawn:slurm_usage_limits") is slurm_usage_limits
    with pytest.raises(ValueError):
        resolved("hpchub.spawners.prespawn.slurm_usage_limits")
