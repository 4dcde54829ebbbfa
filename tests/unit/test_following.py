"""The job-following machine (spawners/following.py) with a fake clock: every path from
submission to a server that answers, or to a clear failure, without a site."""

from __future__ import annotations

from hpchub.schedulers.base import JobState, JobStatus
from hpchub.spawners.following import AskNode, Connect, Fail, JobFollower, WaitForQueue

PENDING = JobStatus("7", JobState.PENDING, "PENDING", reason="Resources", start="2026-12-01T09:00:00")
RUNNING = JobStatus("7", JobState.RUNNING, "RUNNING", nodes=("c1", "c2"))
ENDED = JobStatus("7", JobState.FAILED, "FAILED", exit_code=3)


def follower(now: float = 1000.0, **settings) -> JobFollower:
    return JobFollower("7", now=now, **{"max_queue_wait": 3600, "ready_timeout": 300, "launcher_wait": 30,
                                        **settings})


def test_a_job_not_yet_seen_is_asked_about_briefly_then_answers():
    f = follower()
    assert f.on_queue(None, None, 1000.5) == AskNode(3)  # on an idle cluster it may already run
    assert f.on_report({"status": "waiting"}, None, 1003.5) is None
    assert f.on_queue(None, None, 1003.6) == AskNode(3)
    step = f.on_report({"status": "ready", "started": "50", "job_began": "48.5", "port": 1}, None, 1006)
    assert step == Connect({"status": "ready", "started": "50", "job_began": "48.5", "port": 1})
    assert f.take_queue_wait() == 1006 - 1000 - 1.5 and f.take_queue_wait() is None  # once
    assert f.events() == [] and not f.waiting_in_queue


def test_a_job_pending_just_after_submission_is_also_asked_about_at_its_node():
    f = follower()
    assert f.on_queue(PENDING, None, 1001) == AskNode(3) and f.waiting_in_queue  # it may start any moment
    assert f.on_report({"status": "waiting"}, None, 1004) is None
    assert f.on_queue(PENDING, None, 1019.9) == AskNode(3)
    assert f.on_queue(PENDING, None, 1020) == WaitForQueue()  # then the shared status query alone
    step = follower().on_report({"status": "ready", "started": "5", "job_began": "4", "port": 1}, None, 1003)
    assert isinstance(step, Connect)  # started and answered before any status query saw it run


def test_a_pending_job_says_why_once_per_change_and_waits_for_the_queue():
    f = follower()
    assert f.on_queue(PENDING, None, 1030) == WaitForQueue() and f.waiting_in_queue
    (event,) = f.events()
    assert event.progress == 30 and event.message == ("Job 7 is waiting in the queue (pending, reason: Resources); "
                                                      "expected start 2026-12-01 09:00:00 UTC; waited 30 s")
    assert event.fields == {"job_id": "7", "state": "PENDING", "state_words": "pending", "reason": "Resources",
                            "expected_start": "2026-12-01T09:00:00Z"}
    assert f.on_queue(PENDING, None, 1040) == WaitForQueue() and f.events() == []  # nothing new to say
    priority = JobStatus("7", JobState.PENDING, "PENDING", reason="Priority")
    f.on_queue(priority, None, 1050)
    assert [e.fields["reason"] for e in f.events()] == ["Priority"]


def test_a_job_that_starts_running_is_announced_and_its_queue_wait_known():
    f = follower()
    f.on_queue(PENDING, None, 1000)
    f.events()
    assert f.on_queue(RUNNING, None, 1125) == AskNode(10) and not f.waiting_in_queue
    assert [e.message for e in f.events()] == ["Job 7 is running on c1, c2; starting your server"]
    assert f.take_queue_wait() == 125
    assert f.on_report({"status": "waiting"}, None, 1135) is None
    assert f.on_queue(RUNNING, None, 1136) == AskNode(10) and f.events() == []  # announced once
    assert isinstance(f.on_report({"status": "ready"}, None, 1140), Connect)
    assert f.take_queue_wait() is None  # already given when it started running


def test_the_launcher_wait_bounds_each_question():
    assert follower(launcher_wait=2).on_queue(RUNNING, None, 1000) == AskNode(2)


def test_a_job_that_ends_in_the_queue_or_before_its_server_answers_fails_with_its_end():
    f = follower()
    assert f.on_queue(PENDING, ENDED, 1050) == Fail("job-ended", final=ENDED)
    f = follower()
    f.on_queue(RUNNING, None, 1001)
    report = {"status": "ended", "code": 3, "output_tail": "Traceback ..."}
    assert f.on_report(report, ENDED, 1005) == Fail("job-ended", final=ENDED, report=report)


def test_a_server_that_never_answers_times_out_counted_from_the_jobs_start():
    f = follower(ready_timeout=300)
    f.on_queue(PENDING, None, 1000)
    f.on_queue(RUNNING, None, 5000)  # a long wait in the queue does not count
    assert f.on_report({"status": "waiting"}, None, 5300) is None
    step = f.on_report({"status": "waiting"}, None, 5300.5)
    assert step == Fail("timeout", "job 7 started, but your server did not answer within 300 s")


def test_a_job_never_seen_running_does_not_time_out_on_its_own():
    f = follower(ready_timeout=10)
    assert f.on_report({"status": "waiting"}, None, 9999) is None  # the queue decides, not this clock


def test_a_job_that_waits_too_long_in_the_queue_fails_and_says_so():
    f = follower(max_queue_wait=7200)
    assert f.on_queue(PENDING, None, 1000 + 7200) == WaitForQueue()
    step = f.on_queue(PENDING, None, 1000 + 7201)
    assert step == Fail("queue", "job 7 waited in the queue for more than 2 h 0 min; it has been cancelled")


def test_a_job_in_a_future_reservation_expects_to_start_with_it():
    follower = JobFollower("7", now=0, max_queue_wait=86400 * 14, ready_timeout=60, launcher_wait=30,
                           reservation_start="2026-12-07T09:00:00")
    unknown = JobStatus("7", JobState.PENDING, "PENDING", reason="Reservation")
    follower.on_queue(unknown, None, 30)
    (event,) = follower.events()
    assert event.fields["expected_start"] == "2026-12-07T09:00:00Z"
    assert "expected start 2026-12-07 09:00:00 UTC" in event.message
    # The scheduler's own estimate, once it has one, wins.
    follower.on_queue(PENDING, None, 40)
    assert follower.events()[0].fields["expected_start"] == "2026-12-01T09:00:00Z"


def test_the_state_is_said_in_words_with_the_schedulers_own_code_where_it_differs():
    slurm, grid_engine = follower(), follower()
    slurm.on_queue(PENDING, None, 1001)
    grid_engine.on_queue(JobStatus("7", JobState.PENDING, "qw", reason="cannot run in queue"), None, 1001)
    assert slurm.events()[0].fields["state_words"] == "pending"
    (event,) = grid_engine.events()
    assert (event.fields["state"], event.fields["state_words"]) == ("qw", "pending (qw)")
