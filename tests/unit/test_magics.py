"""Pure parts of the Slurm magics (no Slurm needed): argument parsing and tables."""

from __future__ import annotations

import pytest

from hpchub.magics.slurm import Job, Records, SlurmError, Text, has_option, scontrol_fields, split


def test_arguments_are_parsed_like_a_shell():
    assert split('--wrap "echo hi there" -J x') == ["--wrap", "echo hi there", "-J", "x"]
    with pytest.raises(SlurmError, match="cannot parse"):
        split('--wrap "unclosed')


def test_options_are_recognised_in_every_spelling():
    assert has_option(["--format=%i"], "--format") and has_option(["-o", "%i"], "-o") and has_option(["-o%i"], "-o")
    assert not has_option(["--parsable2"], "--parsable")


def test_text_shows_as_the_command_printed_it():
    assert repr(Text("JOBID ST\n8 PD\n")) == "JOBID ST\n8 PD\n" and isinstance(Text("x"), str)


def test_scontrol_oneliner_fields():
    fields = scontrol_fields("JobId=8 JobName=probe UserId=alice(1001) JobState=COMPLETED StdOut=/home/alice/slurm-8.out")
    assert fields["JobState"] == "COMPLETED" and fields["StdOut"] == "/home/alice/slurm-8.out"


def test_records_render_as_an_escaped_html_table():
    html = Records([{"NAME": "<b>x</b>", "STATE": "RUNNING"}])._repr_html_()
    assert "<th>NAME</th>" in html and "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "no rows" in Records()._repr_html_()


def test_a_job_prints_as_slurm_magic_did():
    assert repr(Job("42")) == "Submitted batch job 42" and Job("42").id == "42"


def test_nerscs_extension_name_answers_with_hpchubs_magics_and_never_shadows_nerscs(tmp_path):
    import subprocess
    import sys

    probe = ("import importlib, sys, hpchub.magics as m; m.answer_for_slurm_magic(); "
             "print(importlib.import_module('slurm_magic').__name__)")
    alone = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert alone.stdout.strip() == "hpchub.magics"
    (tmp_path / "slurm_magic.py").write_text("NERSC = True\n")  # NERSC's package, where a site has it
    beside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert beside.stdout.strip() == "slurm_magic"
