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
        ends the server and every process it started (kernels too), removes its directory

Every process of a server carries HPCHUB_SERVER_ID in its environment: that is how poll
and stop find kernels, which Jupyter starts in sessions of their own.
"""

import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time

SERVER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}\Z")  # \Z, not $: "$" also matches before a final newline
MARKER = "HPCHUB_SERVER_ID"


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
    if not SERVER_ID.match(server_id):
        raise ValueError("bad server id %r" % server_id)
    return os.path.join(runtime_base(), server_id)


SECRET_FILE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}\Z")


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


def tail(path, lines=20):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8192))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


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


def processes_of(server_id):
    """PIDs of this user's processes carrying the server's marker."""
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
    for sig, grace in ((signal.SIGTERM, float(request.get("grace", 10))), (signal.SIGKILL, 5.0)):
        pids = processes_of(server_id)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.time() + grace
        while processes_of(server_id) and time.time() < deadline:
            time.sleep(0.1)
    left = processes_of(server_id)
    shutil.rmtree(directory, ignore_errors=True)
    return {"status": "stopped" if not left else "stuck", "left": left}


def main():
    request = json.loads(sys.stdin.read())
    action = {"start": start, "poll": poll, "stop": stop}[request["action"]]
    try:
        result = action(request)
    except Exception as exc:  # report every failure as JSON; the hub turns it into a message
        result = {"status": "error", "error": "%s: %s" % (type(exc).__name__, exc)}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
