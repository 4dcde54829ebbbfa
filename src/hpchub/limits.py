"""Enough open files for a site's users, whatever limit the process was started with.

systemd starts a service with a soft limit of 1024 open files (and a hard limit far above it:
524288 since systemd 240). The tunnel service holds, for each server on a login node, its
user's SSH connection and a listening port, and the hub a connection per user's SSH session:
at some 500 users on login nodes the soft limit is reached, and then every new tunnel and
login fails with "Too many open files". Any process may raise its soft limit up to its hard
one; the hub and the tunnel service do so at start. (Not beyond 65536: enough for thousands of
users, and small enough for programs that still close every descriptor up to the limit.)
Standard library only: the tunnel service and the hub both use it.
"""

from __future__ import annotations

import resource

ENOUGH_OPEN_FILES = 65536


def raise_open_files_limit(enough: int = ENOUGH_OPEN_FILES) -> tuple[int, int]:
    """Raise the soft limit on open files towards `enough`, within the hard limit; returns
    the (soft, hard) limits in force after. A limit that cannot be raised is left as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = enough if hard == resource.RLIM_INFINITY else min(enough, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # e.g. a container's seccomp profile: run with what we have
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)
