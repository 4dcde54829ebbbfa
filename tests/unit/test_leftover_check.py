"""The suite's last check (tests/conftest.py): a process that carries a test instance's marker,
or runs from one of the tests' own directories, is found."""

import subprocess
import time

from hpchub.site.nodes import SITE_MARKER, proc_file

from ..conftest import leftover_processes


def test_a_process_with_an_instances_marker_is_found_and_others_are_not():
    marked = subprocess.Popen(["sleep", "30"], env={SITE_MARKER: "unit-leftover", "PATH": "/usr/bin:/bin"})
    try:
        # Popen returns once the child is forked, maybe before it exec'd sleep: until then its
        # environment is this process's, without the marker.
        deadline = time.monotonic() + 10
        while not (proc_file(marked.pid, "cmdline") or b"").startswith(b"sleep\0"):
            assert time.monotonic() < deadline, "sleep did not start"
            time.sleep(0.01)
        found = leftover_processes(["unit-leftover"])
        assert [line for line in found if line.startswith(f"{marked.pid}: sleep 30")], found
        assert not [line for line in leftover_processes(["unit-other"]) if line.startswith(f"{marked.pid}:")]
    finally:
        marked.kill()
        marked.wait()
