"""Property-based tests (hypothesis) of the job-script renderer and the Slurm output parsers:
whatever values arrive, a script either is refused or has exactly the expected #SBATCH lines,
each one shell word; and the parsers read back every row, whatever the job names hold."""

from __future__ import annotations

import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpchub.schedulers.base import JobRequest, ValidationError
from hpchub.schedulers.sge import GridEngine
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


# ----- Grid Engine ------------------------------------------------------------------------
GRID_ENGINE = GridEngine()


@SETTINGS
@given(name=TEXT, queue=MAYBE_TEXT, account=MAYBE_TEXT, reservation=MAYBE_TEXT, output=MAYBE_TEXT,
       walltime=st.none() | NUMBER, cores=st.none() | NUMBER, memory=st.none() | NUMBER)
def test_a_grid_engine_job_script_is_refused_or_has_exactly_its_directive_lines(name, queue, account, reservation,
                                                                                 output, walltime, cores, memory):
    body = "exec jupyterhub-singleuser\n"
    request = JobRequest(name=name, script=body, queue=queue, account=account, walltime=walltime, cores=cores,
                         memory_mb=memory, reservation=reservation, output=output)
    try:
        script = GRID_ENGINE.job_script(request)
    except ValidationError:
        return
    lines = script.split("\n")
    assert lines[0] == "#!/bin/bash" and script.endswith(body)
    header = lines[1:-2]
    assert all(line.startswith("#$ -") for line in header)  # nothing else before the body
    options = [shlex.split(line[3:]) for line in header]
    assert all(words[0].startswith("-") and not any(w.startswith("-") for w in words[1:]) or words[0] == "-o"
               for words in options), options
    expected = 4 + sum(v is not None for v in (queue, account, reservation, walltime, cores, memory)) + (
        2 if output is not None else 0)
    assert len(header) == expected
    assert ["-N", name] in options


@SETTINGS
@given(rows=st.lists(st.tuples(st.integers(1, 10**9), st.sampled_from(["qw", "hqw", "r", "t", "Eqw", "dr", "Rr"]),
                               NAME_TEXT.filter(lambda n: "%lt;" not in n)), max_size=8, unique_by=lambda r: r[0]))
def test_qstat_xml_rows_read_back_whatever_the_job_names_hold(rows):
    from xml.sax.saxutils import escape

    def qstat_escape(text: str) -> str:  # as qstat writes names: its own %lt; for "<"
        return escape(text, {'"': "&quot;", "'": "&apos;"}).replace("&lt;", "%lt;")

    printable = [(job, state, name) for job, state, name in rows
                 if all(c in "\t" or ord(c) >= 0x20 for c in name) and name == name.strip()
                 and not any(0xD800 <= ord(c) <= 0xDFFF or ord(c) in (0xFFFE, 0xFFFF) for c in name)]
    text = ("<?xml version='1.0'?><job_info><queue_info></queue_info><job_info>"
            + "".join(f"<job_list state='pending'><JB_job_number>{job}</JB_job_number>"
                      f"<JB_name>{qstat_escape(name)}</JB_name><JB_owner>alice</JB_owner><state>{state}</state>"
                      f"<queue_name></queue_name></job_list>" for job, state, name in printable)
            + "</job_info></job_info>")
    jobs = GRID_ENGINE.parse_status(text)
    assert set(jobs) == {str(job) for job, _, _ in printable}
    for job, state, name in printable:
        assert (jobs[str(job)].name, jobs[str(job)].native_state) == (name, state)


@SETTINGS
@given(noise=st.text(max_size=200))
def test_the_grid_engine_parsers_raise_nothing_but_value_errors_on_arbitrary_output(noise):
    GRID_ENGINE.parse_accounting(noise)  # key-value lines: anything reads as no job or some
    GRID_ENGINE.parse_associations(noise)
    GRID_ENGINE.error_message(noise)
    for parse in (GRID_ENGINE.parse_status, GRID_ENGINE.parse_reasons, GRID_ENGINE.parse_partitions,
                  GRID_ENGINE.parse_reservations):
        try:
            parse(noise)
        except ValueError:  # the watcher's "unreadable output": unsure, never "gone"
            pass
