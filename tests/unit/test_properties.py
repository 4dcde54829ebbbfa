"""Property-based tests (hypothesis) of the job-script renderer and the Slurm output parsers:
whatever values arrive, a script either is refused or has exactly the expected #SBATCH lines,
each one shell word; and the parsers read back every row, whatever the job names hold."""

from __future__ import annotations

import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpchub.schedulers.base import JobRequest, ValidationError
from hpchub.schedulers.slurm import Slurm

SLURM = Slurm()
TEXT = st.text(min_size=0, max_size=80)
MAYBE_TEXT = st.none() | TEXT
NUMBER = st.integers(min_value=-10, max_value=10**7)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(name=TEXT, queue=MAYBE_TEXT, account=MAYBE_TEXT, qos=MAYBE_TEXT, constraint=MAYBE_TEXT,
       reservation=MAYBE_TEXT, output=MAYBE_TEXT, walltime=st.none() | NUMBER, nodes=NUMBER,
       cores=st.none() | NUMBER, memory=st.none() | NUMBER, gpus=NUMBER)
def test_a_job_script_is_refused_or_has_exactly_its_sbatch_lines(name, queue, account, qos, constraint, reservation,
                                                                  output, walltime, nodes, cores, memory, gpus):
    body = "exec jupyterhub-singleuser\n"
    request = JobRequest(name=name, script=body, queue=queue, account=account, qos=qos, walltime=walltime,
                         nodes=nodes, cores=cores, memory_mb=memory, gpus=gpus, constraint=constraint,
                         reservation=reservation, output=output)
    try:
        script = SLURM.job_script(request)
    except ValidationError:
        return
    lines = script.split("\n")
    assert lines[0] == "#!/bin/bash" and script.endswith(body)
    header = lines[1:-2]  # before the body's line and the final empty string
    sbatch = [line for line in header if line.startswith("#SBATCH ")]
    assert len(sbatch) == len(header)  # nothing else before the body
    options = [shlex.split(line[len("#SBATCH "):]) for line in sbatch]
    assert all(len(words) == 1 and words[0].startswith("--") for words in options), options
    expected = 3 + sum(v is not None for v in (queue, account, qos, constraint, reservation, output, walltime,
                                                memory)) + (2 if cores is not None else 0) + (1 if gpus else 0)
    assert len(sbatch) == expected


FIELD = st.text(alphabet=st.characters(blacklist_characters="\n\r|", blacklist_categories=("Cs",)), max_size=40)
NAME_TEXT = st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=40)
STATES = st.sampled_from(["PENDING", "RUNNING", "COMPLETING", "COMPLETED", "FAILED", "CANCELLED by 1001",
                          "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "SUSPENDED", "REQUEUED"])


@SETTINGS
@given(rows=st.lists(st.tuples(st.integers(1, 10**9), STATES, FIELD, FIELD, NAME_TEXT), max_size=8,
                     unique_by=lambda row: row[0]))
def test_squeue_rows_read_back_whatever_the_job_names_hold(rows):
    text = "".join(f"{job}|{state}|{reason}|c1|N/A|N/A|{user}|{name}\n" for job, state, reason, user, name in rows)
    jobs = SLURM.parse_status(text)
    assert set(jobs) == {str(row[0]) for row in rows}
    for job, state, reason, user, name in rows:
        parsed = jobs[str(job)]
        assert (parsed.name, parsed.user, parsed.native_state) == (name, user, state)


@SETTINGS
@given(rows=st.lists(st.tuples(st.integers(1, 10**9), STATES, st.integers(0, 255), st.integers(0, 64), NAME_TEXT),
                     max_size=8, unique_by=lambda row: row[0]))
def test_sacct_rows_read_back_whatever_the_job_names_hold(rows):
    text = "".join(f"{job}|{state}|{code}:{sig}|c1|2026-11-25T10:00:00|Unknown|None|{name}\n"
                   for job, state, code, sig, name in rows)
    jobs = SLURM.parse_accounting(text)
    assert set(jobs) == {str(row[0]) for row in rows}
    for job, state, code, _sig, name in rows:
        assert (jobs[str(job)].name, jobs[str(job)].exit_code, jobs[str(job)].native_state) == (name, code, state)


@SETTINGS
@given(noise=st.text(max_size=200))
def test_the_parsers_never_raise_on_arbitrary_output(noise):
    SLURM.parse_status(noise)
    SLURM.parse_accounting(noise)
