"""`python -m hpchub.lifeline HUB_PID -- COMMAND ...`: run COMMAND so that it ends with the hub.

JupyterHub starts its managed services (the idle culler, ...) in sessions of their own, so a hub
killed with SIGKILL left them running without a parent, and the next hub started a second one
beside them. hpchub-hub starts them through this line instead: the kernel sends SIGTERM to the
service when the hub dies, whatever killed it (PR_SET_PDEATHSIG survives the exec). Standard
library only; it imports nothing of hpchub.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def tie_to_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Have sig sent to this process when its parent dies; exit at once if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != parent_pid:  # the hub died before the line was tied
        sys.exit(f"hpchub lifeline: the hub (pid {parent_pid}) is gone; not starting")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        sys.exit("usage: python -m hpchub.lifeline HUB_PID -- COMMAND ...")
    tie_to_parent(int(argv[0]))
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main()
