"""What users read about their jobs, in the scheduler's words (pure)."""

from __future__ import annotations

from ..schedulers.base import JobState, JobStatus


def pending_message(status: JobStatus, waited: float) -> str:
    parts = [f"Job {status.job_id} is waiting in the queue ({status.native_state.lower()}"]
    if status.reason:
        parts.append(f", reason: {status.reason}")
    parts.append(")")
    if status.start:  # (UTC: the hub asks the scheduler in UTC; the pending page shows it in the user's zone)
        parts.append(f"; expected start {status.start.replace('T', ' ')} UTC")
    parts.append(f"; waited {format_duration(waited)}")
    return "".join(parts)


def state_in_words(status: JobStatus) -> str:
    """The job's state for people: the neutral word, with the scheduler's own code where that
    is not the same word ("pending (qw)" for Grid Engine, "pending" for Slurm's PENDING)."""
    word = status.state.value
    native = status.native_state.split()[0] if status.native_state.strip() else ""
    return word if native.lower() in ("", word) else f"{word} ({native})"


def outcome_message(status: JobStatus) -> str:
    """How a job ended, for the user (the pending page's failure, the home page)."""
    native = status.native_state
    if status.state is JobState.CANCELLED:
        who = native.split(" by ", 1)[1] if " by " in native else ""
        return f"job {status.job_id} was cancelled" + (f" (by uid {who})" if who else "")
    if status.state is JobState.TIMEOUT:
        return f"job {status.job_id} reached its time limit"
    if status.state is JobState.ERROR:
        return (f"job {status.job_id} cannot start ({status.native_state})"
                + (f": {status.reason}" if status.reason else ""))
    if status.state is JobState.UNKNOWN:
        return f"job {status.job_id} is no longer known to the scheduler"
    text = f"job {status.job_id} ended: {native}"
    if status.exit_code:
        text += f", exit code {status.exit_code}"
    if status.reason:
        text += f" ({status.reason})"
    return text


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
