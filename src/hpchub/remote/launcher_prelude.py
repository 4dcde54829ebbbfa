"""What hpchub's two launchers share (node_launcher.py on login nodes, batch_launcher.py on
login and compute nodes): how a server is named on the cluster, its secret files, the end of a
log, finding and ending every process of a server, and answering the hub.

Each launcher imports this module by one line, which hpchub.remote.launcher replaces by this
module's text when it sends the launcher: on the cluster there is no hpchub, only Python 3.6+
and its standard library.
"""

import json
import os
import re
import signal
import sys
import time

SERVER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}\Z")  # \Z, not $: "$" also matches before a final newline
SECRET_FILE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}\Z")
MARKER = "HPCHUB_SERVER_ID"  # in the environment of every process of a server, kernels included
SERVER_DIR = "HPCHUB_SERVER_DIR"  # the server's 0700 directory (socket, Jupyter's runtime files, credentials)


def checked_server_id(server_id):
    if not SERVER_ID.match(server_id):
        raise ValueError("bad server id %r" % server_id)
    return server_id


def write_secret_files(directory, files, env):
    """Secrets the server needs as files (an X.509 proxy for grid tools): written 0600 into
    its own 0700 directory, their paths put in the environment variables named with them."""
    for name, spec in files.items():
        if not SECRET_FILE.match(name):
            raise ValueError("bad file name %r" % name)
        path = os.path.join(directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(spec["content"])
        if spec.get("env"):
            env[spec["env"]] = path


def tail(path, lines=20, max_bytes=8192):
    """The last lines of a log ("" if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - max_bytes))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


MAX_READ = 4 * 1024 * 1024  # the most of a log one "read" sends back
KEEP_SECONDS = 7 * 86400  # ended servers' logs and jobs' outputs are kept this long for their users


def read_end(path, max_bytes):
    """The last max_bytes of a log (at most MAX_READ), from a line start where one is near, and
    its size: {"text": ..., "size": N, "from": OFFSET}, or {"missing": true}."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            start = max(0, size - min(int(max_bytes), MAX_READ))
            f.seek(start)
            data = f.read(size - start)
    except OSError:
        return {"missing": True}
    if start > 0:  # begin at a whole line when one starts within the first 1 KB read
        newline = data.find(b"\n", 0, 1024)
        if newline >= 0:
            start, data = start + newline + 1, data[newline + 1:]
    return {"text": data.decode("utf-8", "replace"), "size": size, "from": start}


def processes_of(server_id):
    """PIDs of this user's processes carrying the server's marker (kernels run in sessions of
    their own: the marker, not the process tree, is what finds them)."""
    marker = ("%s=%s" % (MARKER, server_id)).encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if os.stat("/proc/" + name).st_uid != os.getuid():
                continue
            with open("/proc/%s/environ" % name, "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def end_processes(server_id, grace, kill_grace):
    """SIGTERM to every process of the server, SIGKILL to what is left after grace seconds;
    returns the PIDs still there after kill_grace more."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_grace)):
        pids = processes_of(server_id)
        if not pids:
            return []
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.time() + wait
        while processes_of(server_id) and time.time() < deadline:
            time.sleep(0.1)
    return processes_of(server_id)


def answer(actions, request):
    """Run the request's action and write its answer as one JSON line: every failure too, as
    {"status": "error"}, which the hub turns into a message."""
    try:
        result = actions[request["action"]](request)
    except Exception as exc:
        result = {"status": "error", "error": "%s: %s" % (type(exc).__name__, exc)}
    sys.stdout.write(json.dumps(result) + "\n")
