"""hpchub's remote launcher: runs on a login or compute node, sent over the SSH channel.

It must run with what a node has: Python 3.6 or newer, standard library only, no hpchub
installed there. It reads one JSON request on stdin and writes one JSON line on stdout:

    {"action": "start", "server_id": ID, "argv": [...], "env": {...}, "wait": SECONDS,
     "files": {NAME: {"content": TEXT, "env": VAR}}}
        starts the server detached in its own session, listening on a Unix socket in a
        0700 directory of its own (no TCP port, so no port races and no other user can
        connect); secrets arrive in "env" over this channel and are never written to disk,
        except "files" that the server needs as files (an X.509 proxy): 0600 in that
        directory, which stop removes
    {"action": "poll", "server_id": ID, "pid": PID}
    {"action": "stop", "server_id": ID, "pid": PID}
        ends the server and every process it started (kernels too), removes its directory;
        its log is kept as ~/.hpchub/logs/ID.log (0600) for a week, for the user to read
    {"action": "read", "server_id": ID, "bytes": N}
        the last N bytes of the server's log (the running server's, else the kept one)

Every process of a server carries HPCHUB_SERVER_ID in its environment: that is how poll
and stop find kernels, which Jupyter starts in sessions of their own.
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import time

from hpchub.remote.launcher_prelude import *  # noqa: F401,F403 - the prelude's text, when sent


def runtime_base():
    """/tmp/hpchub-UID, 0700 and ours; refuses a directory someone else prepared."""
    base = os.path.join(tempfile.gettempdir(), "hpchub-%d" % os.getuid())
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(base)
    if info.st_uid != os.getuid() or not os.path.isdir(base) or os.path.islink(base) or info.st_mode & 0o077:
        raise RuntimeError("unsafe runtime directory %s" % base)
    return base


def server_dir(server_id):
    return os.path.join(runtime_base(), checked_server_id(server_id))


LOGS_DIR = os.path.join(".hpchub", "logs")  # relative to the home directory


def kept_log(server_id):
    return os.path.join(os.path.expanduser("~"), LOGS_DIR, checked_server_id(server_id) + ".log")


def keep_log(directory, server_id):
    """Copy the server's log out of its runtime directory (which is about to go) into the
    user's home, and remove kept logs older than KEEP_SECONDS. Best effort: a full home
    directory must not keep a server from stopping."""
    logs = os.path.join(os.path.expanduser("~"), LOGS_DIR)
    try:
        os.makedirs(logs, 0o700, exist_ok=True)
        os.chmod(os.path.dirname(logs), 0o700)
        os.chmod(logs, 0o700)
        now = time.time()
        for name in os.listdir(logs):
            path = os.path.join(logs, name)
            if now - os.stat(path).st_mtime > KEEP_SECONDS:
                os.remove(path)
        with open(os.path.join(directory, "server.log"), "rb") as source:
            fd = os.open(kept_log(server_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as kept:
                shutil.copyfileobj(source, kept)
    except OSError:
        pass


def start(request):
    directory = server_dir(request["server_id"])
    if os.path.exists(directory):
        shutil.rmtree(directory)  # a previous server of this id is gone (poll said so)
    os.mkdir(directory, 0o700)
    sock = os.path.join(directory, "jupyter.sock")
    log = os.path.join(directory, "server.log")
    runtime = os.path.join(directory, "runtime")
    os.mkdir(runtime, 0o700)
    env = dict(os.environ)
    env.update(request["env"])
    env[MARKER] = request["server_id"]
    env["JUPYTER_RUNTIME_DIR"] = runtime
    env[SERVER_DIR] = directory  # what a container runtime binds in (hpchub.containers)
    write_secret_files(directory, request.get("files", {}), env)
    argv = list(request["argv"]) + ["--ServerApp.sock=" + sock, "--ServerApp.sock_mode=0600"]
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    pid = os.fork()
    if pid == 0:  # the server: its own session, output to its log, nothing of the SSH channel
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.closerange(3, 1024)
            os.chdir(os.path.expanduser("~"))
            os.execvpe(argv[0], argv, env)
        except OSError as exc:
            os.write(2, ("hpchub launcher: cannot run %s: %s\n" % (argv[0], exc)).encode())
        os._exit(127)
    os.close(log_fd)
    deadline = time.time() + float(request.get("wait", 30))
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
            result = {"status": "exited", "code": code, "log_tail": tail(log)}
            keep_log(directory, request["server_id"])
            shutil.rmtree(directory, ignore_errors=True)
            return result
        if os.path.exists(sock):
            state = "listening"
            break
        if time.time() > deadline:
            state = "starting"
            break
        time.sleep(0.05)
    return {"status": state, "pid": pid, "socket": sock, "dir": directory, "hostname": socket.gethostname()}


def poll(request):
    directory = server_dir(request["server_id"])
    pid = int(request["pid"])
    alive = pid in processes_of(request["server_id"])
    if alive:
        return {"status": "running", "pid": pid}
    return {"status": "gone", "log_tail": tail(os.path.join(directory, "server.log"))}


def stop(request):
    server_id = request["server_id"]
    directory = server_dir(server_id)
    left = end_processes(server_id, float(request.get("grace", 10)), 5.0)
    if os.path.isdir(directory):
        keep_log(directory, server_id)
    shutil.rmtree(directory, ignore_errors=True)
    return {"status": "stopped" if not left else "stuck", "left": left}


def read_log(request):
    live = os.path.join(server_dir(request["server_id"]), "server.log")
    path = live if os.path.exists(live) else kept_log(request["server_id"])
    return {"status": "ok", **read_end(path, request["bytes"])}


def main():
    answer({"start": start, "poll": poll, "stop": stop, "read": read_log}, json.loads(sys.stdin.read()))


if __name__ == "__main__":
    main()
