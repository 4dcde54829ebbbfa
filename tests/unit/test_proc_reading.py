"""Reading another process's /proc entries while it exits (the site's sweep met this in CI).

A process can end between the listing of /proc and the read of its files; the kernel then
answers ENOENT on open or ESRCH on read of a file already open. Every reader of the site's
process table goes through `proc_file`, which turns both into "gone".
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hpchub.site.nodes import namespace_id, proc_file, process_is_gone, process_start_time


def _ended_child() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_file_opened_before_the_process_ended_answers_esrch_on_read():
    # Why proc_file catches ProcessLookupError as well as FileNotFoundError.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    with open(f"/proc/{child.pid}/stat", "rb") as stat:
        child.kill()
        child.wait()
        with pytest.raises(ProcessLookupError):
            stat.read()


@pytest.mark.parametrize("name", ["stat", "cmdline", "environ", "comm", "status"])
def test_every_entry_of_an_ended_process_reads_as_gone(name):
    assert proc_file(_ended_child(), name) is None


def test_the_process_table_helpers_say_gone_for_an_ended_process():
    pid = _ended_child()
    assert process_start_time(pid) is None
    assert process_is_gone(pid)
    assert namespace_id(pid, "mnt") is None


def test_a_live_process_reads_as_itself():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10  # (between fork and exec the command line is not yet its own)
        while b"time.sleep(30)" not in proc_file(child.pid, "cmdline") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b"time.sleep(30)" in proc_file(child.pid, "cmdline")
        assert process_start_time(child.pid) is not None
        assert not process_is_gone(child.pid)
    finally:
        child.kill()
        child.wait()


def test_a_zombie_counts_as_gone_but_keeps_its_start_time():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while not process_is_gone(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process_is_gone(child.pid)
        assert process_start_time(child.pid) is not None  # not reaped yet: still in the table
    finally:
        child.wait()
