"""The shared job watcher's logic, against scripted scheduler answers (Slurm's real output
formats, as the golden files in tests/unit/golden/slurm show them)."""

from __future__ import annotations

import asyncio

from hpchub.schedulers.base import JobState
from hpchub.schedulers.slurm import Slurm
from hpchub.schedulers.watcher import JobWatcher


class Scheduler:
    """Answers squeue and sacct from a table, and counts what it was asked."""

    def __init__(self):
        self.queue: dict[str, str] = {}  # job id -> squeue line
        self.accounting: dict[str, str] = {}  # job id -> sacct line
        self.calls: list[list[str]] = []
        self.fail = False

    async def run(self, argv):
        self.calls.append(argv)
        if self.fail:
            raise OSError("connection reset")
        ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
        if argv[0] == "squeue":
            found = [self.queue[i] for i in ids if i in self.queue]
            if not found and len(ids) == 1:
                return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
            return 0, "\n".join(found) + "\n", ""
        return 0, "\n".join(self.accounting[i] for i in ids if i in self.accounting) + "\n", ""


def squeue_line(job_id, state, reason="None", nodes="", start="N/A", end="N/A"):
    return f"{job_id}|{state}|{reason}|{nodes}|{start}|{end}|alice|jupyter-default"


def sacct_line(job_id, state, exit_code="0:0"):
    return f"{job_id}|{state}|{exit_code}|c1|2026-11-25T10:00:00|2026-11-25T10:05:00|None|jupyter-default"


def make(scheduler, clock, **kw):
    return JobWatcher(Slurm(), scheduler.run, clock=lambda: clock[0], **kw)


def test_one_query_for_all_jobs_whatever_their_number():
    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock)
        for i in range(1, 51):
            scheduler.queue[str(i)] = squeue_line(i, "RUNNING", nodes="c1")
            watcher.watch(str(i))
        watcher.stop()
        await watcher.poll_once()
        assert len(scheduler.calls) == 1 and scheduler.calls[0][0] == "squeue"
        assert scheduler.calls[0][-1] == "--jobs=" + ",".join(str(i) for i in range(1, 51))
        assert all(j.status.state is JobState.RUNNING for j in watcher.jobs.values())

    asyncio.run(go())


def test_a_failed_query_is_never_taken_as_gone_and_backs_off():
    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock, interval=30, grace=10)
        watcher.watch("7")
        watcher.stop()
        scheduler.fail = True
        for _ in range(5):
            clock[0] += 100
            await watcher.poll_once()
        assert watcher.jobs["7"].final is None
        assert watcher.current_interval() > 30 and watcher.current_interval() <= watcher.max_interval
        scheduler.fail = False
        scheduler.queue["7"] = squeue_line(7, "RUNNING")
        await watcher.poll_once()
        assert watcher.current_interval() == 30

    asyncio.run(go())


def test_missing_jobs_are_gone_only_after_the_grace_period_and_when_accounting_agrees():
    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock, grace=30)
        watcher.watch("8")
        watcher.stop()
        await watcher.poll_once()  # squeue does not list it (a hiccup, or purged)
        clock[0] = 29
        await watcher.poll_once()
        assert watcher.jobs["8"].final is None
        assert [c[0] for c in scheduler.calls] == ["squeue", "squeue"]
        # Past the grace period accounting is asked; it says the job still runs: keep it.
        scheduler.accounting["8"] = sacct_line(8, "RUNNING")
        clock[0] = 31
        await watcher.poll_once()
        assert watcher.jobs["8"].final is None and scheduler.calls[-1][0] == "sacct"
        # Now accounting says it ended: after another grace period it is final.
        scheduler.accounting["8"] = sacct_line(8, "CANCELLED by 0", "0:15")
        clock[0] = 40
        await watcher.poll_once()
        assert watcher.jobs["8"].final is None
        clock[0] = 71
        await watcher.poll_once()
        final = watcher.jobs["8"].final
        assert final.state is JobState.CANCELLED and final.native_state == "CANCELLED by 0"

    asyncio.run(go())


def test_a_job_the_queue_shows_ended_is_settled_from_accounting_at_once():
    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock)
        watcher.watch("9")
        watcher.stop()
        scheduler.queue["9"] = squeue_line(9, "TIMEOUT", nodes="c2")
        scheduler.accounting["9"] = sacct_line(9, "TIMEOUT", "0:0")
        await watcher.poll_once()
        assert watcher.jobs["9"].final.state is JobState.TIMEOUT

    asyncio.run(go())


def test_urgent_jobs_shorten_the_interval_and_a_slow_scheduler_lengthens_it():
    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock, interval=30, urgent_interval=2, slow_after=5)
        watcher.watch("1")
        watcher.stop()
        assert watcher.current_interval() == 30
        watcher.set_urgent("1", True)
        assert watcher.current_interval() == 2
        scheduler.queue["1"] = squeue_line(1, "PENDING", reason="Resources")
        original = scheduler.run

        async def slow(argv):
            clock[0] += 12  # slurmctld took 12 s to answer
            return await original(argv)

        watcher.run = slow
        await watcher.poll_once()
        assert watcher.current_interval() == 4
        assert watcher.jobs["1"].status.reason == "Resources"

    asyncio.run(go())


def test_waiters_wake_after_the_next_poll():
    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock)
        watcher.watch("3")
        watcher.stop()
        scheduler.queue["3"] = squeue_line(3, "RUNNING")
        waiter = asyncio.ensure_future(watcher.next_poll(timeout=5))
        await asyncio.sleep(0)
        assert not waiter.done()
        await watcher.poll_once()
        await asyncio.wait_for(waiter, 1)

    asyncio.run(go())


def test_wait_until_watches_closely_and_gives_up_at_its_timeout():
    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock, interval=30, urgent_interval=2)
        watcher.watch("5")
        watcher.stop()
        scheduler.queue["5"] = squeue_line(5, "RUNNING", end="2026-11-25T12:00:00")
        waiting = asyncio.ensure_future(watcher.wait_until("5", lambda job: job.status is not None, timeout=10))
        await asyncio.sleep(0)
        assert watcher.current_interval() == 2  # urgent while someone waits
        await watcher.poll_once()
        assert await asyncio.wait_for(waiting, 1) is True
        assert watcher.current_interval() == 30
        giving_up = asyncio.ensure_future(watcher.wait_until("5", lambda job: job.final is not None, timeout=5))
        await asyncio.sleep(0)
        clock[0] += 6  # the deadline passes; the next poll wakes the waiter, the job has not ended
        await watcher.poll_once()
        assert await asyncio.wait_for(giving_up, 1) is False

    asyncio.run(go())


def test_job_ids_are_opaque_strings_never_numbers():
    """Other schedulers' ids ("123.server", "4711.1") poll like Slurm's."""
    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock)
        for job_id in ("123.server", "9", "4711.1"):
            scheduler.queue[job_id] = squeue_line(job_id, "PENDING")
            watcher.watch(job_id)
        watcher.stop()
        await watcher.poll_once()
        assert scheduler.calls[0][-1] == "--jobs=123.server,9,4711.1"
        assert {j.job_id: j.status.state for j in watcher.jobs.values()} == dict.fromkeys(
            ("123.server", "9", "4711.1"), JobState.PENDING)

    asyncio.run(go())


def test_the_watcher_logs_through_the_logger_it_is_given(caplog):
    import logging

    async def go():
        scheduler, clock = Scheduler(), [0.0]
        watcher = make(scheduler, clock, log=logging.getLogger("the-hubs-log"))
        watcher.watch("1")
        watcher.stop()
        scheduler.fail = True
        with caplog.at_level(logging.WARNING, logger="the-hubs-log"):
            await watcher.poll_once()
        assert [r.name for r in caplog.records] == ["the-hubs-log"]
        assert "connection reset" in caplog.records[0].getMessage()

    asyncio.run(go())


class GridEngineQueue:
    """Answers qstat (list and -j) and qacct in Grid Engine's formats, as the golden files in
    tests/unit/golden/sge show them, and counts what it was asked."""

    def __init__(self):
        self.queue: dict[str, str] = {}  # job id -> state letters
        self.reasons: dict[str, str] = {}
        self.accounting: dict[str, str] = {}  # job id -> qacct block
        self.calls: list[list[str]] = []

    async def run(self, argv):
        self.calls.append(argv)
        if argv[:2] == ["qstat", "-xml"] and "-u" in argv:
            jobs = "".join(f"<job_list><JB_job_number>{i}</JB_job_number><JB_name>jupyter</JB_name>"
                           f"<JB_owner>alice</JB_owner><state>{s}</state><queue_name></queue_name></job_list>"
                           for i, s in self.queue.items())
            return 0, f"<?xml version='1.0'?><job_info><queue_info></queue_info><job_info>{jobs}</job_info></job_info>", ""
        if argv[:3] == ["qstat", "-xml", "-j"]:
            messages = "".join(f"<element><MES_job_number_list><ulong_sublist><ULNG_value>{i}</ULNG_value>"
                               f"</ulong_sublist></MES_job_number_list><MES_message>{m}</MES_message></element>"
                               for i, m in self.reasons.items() if i in argv[3].split(","))
            return 0, (f"<?xml version='1.0'?><detailed_job_info><djob_info></djob_info><messages><element>"
                       f"<SME_message_list>{messages}</SME_message_list></element></messages></detailed_job_info>"), ""
        if argv[0] == "qacct":
            job_id = argv[-1]
            if job_id not in self.accounting:
                return 1, "", f"error: job id {job_id} not found\n"
            return 0, self.accounting[job_id], ""
        raise AssertionError(f"unexpected command {argv}")


def test_grid_engine_reasons_are_asked_only_for_jobs_a_spawn_waits_on():
    from hpchub.schedulers.sge import GridEngine

    async def go():
        scheduler, clock = GridEngineQueue(), [0.0]
        watcher = JobWatcher(GridEngine(), scheduler.run, clock=lambda: clock[0])
        scheduler.queue.update({"5": "qw", "6": "qw", "7": "r"})
        scheduler.reasons.update({"5": 'cannot run in PE "smp" because it only offers 0 slots', "6": "other"})
        watcher.watch("5", urgent=True)
        watcher.watch("6")
        watcher.watch("7", urgent=True)
        watcher.stop()
        await watcher.poll_once()
        assert [c[:3] for c in scheduler.calls] == [["qstat", "-xml", "-r"], ["qstat", "-xml", "-j"]]
        assert scheduler.calls[1][3] == "5"  # only the waiting job a spawn follows
        assert watcher.jobs["5"].status.reason.startswith("cannot run in PE")
        assert watcher.jobs["6"].status.reason == ""
        watcher.set_urgent("5", False)
        await watcher.poll_once()
        assert len(scheduler.calls) == 3  # nobody waits: the status query alone

    asyncio.run(go())


def test_a_grid_engine_job_deleted_while_waiting_is_settled_though_accounting_never_saw_it():
    from hpchub.schedulers.sge import GridEngine

    async def go():
        scheduler, clock = GridEngineQueue(), [0.0]
        watcher = JobWatcher(GridEngine(), scheduler.run, clock=lambda: clock[0], grace=30)
        watcher.watch("9")
        watcher.stop()
        scheduler.queue["9"] = "qw"
        await watcher.poll_once()
        del scheduler.queue["9"]  # qdel'd before it started: qacct will never know it
        clock[0] = 2
        await watcher.poll_once()  # qstat lists no ended job: accounting is asked at once
        assert scheduler.calls[-1] == ["qacct", "-j", "9"]
        assert watcher.jobs["9"].final is not None and watcher.jobs["9"].final.state is JobState.UNKNOWN

    asyncio.run(go())


def test_a_grid_engine_job_in_error_state_ends_with_its_reason():
    from hpchub.schedulers.sge import GridEngine

    async def go():
        scheduler, clock = GridEngineQueue(), [0.0]
        watcher = JobWatcher(GridEngine(), scheduler.run, clock=lambda: clock[0])
        watcher.watch("41")
        watcher.stop()
        scheduler.queue["41"] = "Eqw"
        scheduler.reasons["41"] = "can't open output file"
        await watcher.poll_once()
        final = watcher.jobs["41"].final
        assert final is not None and final.state is JobState.ERROR and final.reason == "can't open output file"

    asyncio.run(go())


QACCT_DELETED = """==============================================================
qname        short.q
hostname     ge-c1
owner        alice
jobname      jupyter-default
jobnumber    12
start_time   Mon Nov 30 16:19:14 2026
end_time     Mon Nov 30 16:19:20 2026
failed       100 : assumedly after job
exit_status  137                  (Killed)
"""


def test_a_grid_engine_job_that_ran_is_settled_once_accounting_has_it_without_the_grace():
    from hpchub.schedulers.sge import GridEngine

    async def go():
        scheduler, clock = GridEngineQueue(), [0.0]
        watcher = JobWatcher(GridEngine(), scheduler.run, clock=lambda: clock[0], grace=30)
        watcher.watch("12")
        watcher.stop()
        scheduler.queue["12"] = "r"
        await watcher.poll_once()
        del scheduler.queue["12"]  # qdel'd: gone from qstat; accounting writes its record a moment later
        clock[0] = 2
        await watcher.poll_once()
        assert scheduler.calls[-1] == ["qacct", "-j", "12"] and watcher.jobs["12"].final is None
        scheduler.accounting["12"] = QACCT_DELETED
        clock[0] = 4
        await watcher.poll_once()
        final = watcher.jobs["12"].final
        assert final is not None and final.state is JobState.CANCELLED and final.exit_code == 137

    asyncio.run(go())


def test_a_grid_engine_job_that_ran_and_accounting_never_records_is_gone_after_the_grace():
    from hpchub.schedulers.sge import GridEngine

    async def go():
        scheduler, clock = GridEngineQueue(), [0.0]
        watcher = JobWatcher(GridEngine(), scheduler.run, clock=lambda: clock[0], grace=30)
        watcher.watch("13")
        watcher.stop()
        scheduler.queue["13"] = "r"
        await watcher.poll_once()
        del scheduler.queue["13"]
        for moment in (2, 10, 29):
            clock[0] = moment
            await watcher.poll_once()
            assert watcher.jobs["13"].final is None
        clock[0] = 32
        await watcher.poll_once()
        assert watcher.jobs["13"].final.state is JobState.UNKNOWN

    asyncio.run(go())
