"""The suite's last check (tests/conftest.py): a process that carries a test instance's marker,
or runs from one of the tests' own directories, is found."""

import subprocess

from hpchub.site.nodes import SITE_MARKER

from ..conftest import leftover_processes


def test_a_process_with_an_instances_marker_is_found_and_others_are_not():
    marked = subprocess.Popen(["sleep", "30"], env={SITE_MARKER: "unit-leftover", "PATH": "/usr/bin:/bin"})
    try:
        found = leftover_processes(["unit-leftover"])
        assert [line for line in found if line.startswith(f"{marked.pid}: sleep 30")], found
        assert not [line for line in leftover_processes(["unit-other"]) if line.startswith(f"{marked.pid}:")]
    finally:
        marked.kill()
        marked.wait()
