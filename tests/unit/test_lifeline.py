"""hpchub.lifeline: a child tied to its parent ends when the parent dies, even by SIGKILL."""

import subprocess
import sys
import time

# The parent waits until the child runs `sleep` (the line tied, the command exec'd), then dies.
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-m", "hpchub.lifeline", str(os.getpid()), "--", "sleep", "60"])
print(child.pid, flush=True)
while open(f"/proc/{child.pid}/comm").read().strip() != "sleep":
    time.sleep(0.01)
os.kill(os.getpid(), 9)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_child_ends_with_its_parent_killed_by_sigkill():
    out = subprocess.run([sys.executable, "-c", PARENT], capture_output=True, text=True, timeout=30)
    child = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the tied child outlived its parent"
        time.sleep(0.05)


def test_a_child_whose_parent_is_already_gone_does_not_start():
    proc = subprocess.run([sys.executable, "-m", "hpchub.lifeline", "1", "--", "sleep", "60"], capture_output=True,
                          text=True, timeout=10)
    assert proc.returncode == 1 and "is gone; not starting" in proc.stderr
