"""hpchub's batch launcher: the remote half of a server that runs inside a batch job.

Like node_launcher.py it needs only Python 3.6+ and its standard library, and nothing is
installed on the cluster. It runs in two places:

On a login node, sent over SSH (one JSON request on stdin, one JSON line on stdout):

    {"action": "submit", "server_id": ID, "argv": [...], "script": TEXT, "env": {...},
     "files": {NAME: {"content": TEXT, "env": VAR}}}
        makes the job's directory ~/.hpchub/jobs/ID (0700, in the shared home), then runs
        the scheduler's submit command (e.g. `sbatch --parsable`) with the script on its
        stdin and `env` added to its environment: the job inherits that environment, so the
        server's token reaches it without being written into the script or any file. With
        "env_file": true (a scheduler that shows jobs' environments to every user, as Grid
        Engine's qstat -j does) `env` goes instead into a 0600 file of the job's 0700 directory,
        which the job reads and removes as it starts. The
        "files" the server needs as files (an X.509 proxy) go 0600 into the job's directory
        (compute nodes read it through the shared home); the job removes them when its
        server ends, and `remove` with the directory
    {"action": "await", "server_id": ID, "timeout": SECONDS}
        waits for the job to report, through the shared home, that its server listens
        ({"status": "ready", ...}) or that it ended ({"status": "ended", ...})
    {"action": "tail", "server_id": ID}   the end of the job's output file
    {"action": "read", "server_id": ID, "bytes": N}   the last N bytes of it, for the pages
    {"action": "remove", "server_id": ID} the job's directory once the job is gone (its
        output, if it wrote any, is kept for the user until `prune`)

On the job's first node, from the batch script (`python3 - serve CONFIG <<EOF ... EOF`):
picks a free port on the node's own address, starts the server with that port, writes
ready.json once the port answers, waits for the server, and writes ended.json when it ends.
Every process of the server carries HPCHUB_SERVER_ID, so nothing it started outlives it.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from hpchub.remote.launcher_prelude import *  # noqa: F401,F403 - the prelude's text, when sent

JOBS_DIR = os.path.join(".hpchub", "jobs")  # relative to the home directory


ENV_FILE = "server-environment.json"


def job_dir(server_id):
    return os.path.join(os.path.expanduser("~"), JOBS_DIR, checked_server_id(server_id))


def job_tail(path, lines=30):
    return tail(path, lines, 16384)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path, data):
    """Atomically, so that a reader never sees half a file."""
    partial = path + ".partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.rename(partial, path)


# ----- on a login node ---------------------------------------------------------------
def prune(jobs):
    """Directories of jobs that ended long ago; a running job's is never touched."""
    now = time.time()
    for name in os.listdir(jobs):
        path = os.path.join(jobs, name)
        ended = os.path.join(path, "ended.json")
        try:
            if os.path.exists(ended) and now - os.stat(ended).st_mtime > KEEP_SECONDS:
                shutil.rmtree(path)
        except OSError:
            continue


def submit(request):
    home = os.path.expanduser("~")
    jobs = os.path.join(home, JOBS_DIR)
    os.makedirs(jobs, 0o700, exist_ok=True)
    os.chmod(os.path.join(home, ".hpchub"), 0o700)
    os.chmod(jobs, 0o700)
    prune(jobs)
    directory = job_dir(request["server_id"])
    if os.path.exists(directory):
        shutil.rmtree(directory)
    os.mkdir(directory, 0o700)
    server_env = dict(request["env"])
    files = request.get("files", {})
    write_secret_files(directory, files, server_env)
    server_env["HPCHUB_SECRET_FILES"] = " ".join(sorted(files))  # for the job to remove when its server ends
    env = dict(os.environ)
    if request.get("env_file"):
        # The scheduler would show the job's environment to other users (Grid Engine's qstat -j):
        # the server's environment waits in a 0600 file of the job's 0700 directory instead.
        write_json(os.path.join(directory, ENV_FILE), server_env)
    else:
        env.update(server_env)  # the job inherits it (sbatch exports its environment)
    try:
        proc = subprocess.run(request["argv"], input=request["script"].encode(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, cwd=home, timeout=float(request.get("timeout", 90)))
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "dir": directory}
    except OSError as exc:
        return {"status": "error", "error": "cannot run %s: %s" % (request["argv"][0], exc)}
    return {"status": "submitted" if proc.returncode == 0 else "refused", "exit": proc.returncode,
            "stdout": proc.stdout.decode("utf-8", "replace"), "stderr": proc.stderr.decode("utf-8", "replace"),
            "dir": directory}


def await_report(request):
    directory = job_dir(request["server_id"])
    deadline = time.time() + float(request.get("timeout", 20))
    while True:
        ended = read_json(os.path.join(directory, "ended.json"))
        if ended is not None:
            ended["status"] = "ended"
            ended["output_tail"] = job_tail(os.path.join(directory, "job.out"))
            return ended
        ready = read_json(os.path.join(directory, "ready.json"))
        if ready is not None:
            ready["status"] = "ready"
            return ready
        if time.time() > deadline:
            return {"status": "waiting"}
        time.sleep(0.01)  # two stat calls: cheap, and the hub is waiting on this


def output_tail(request):
    return {"status": "ok", "output_tail": job_tail(os.path.join(job_dir(request["server_id"]), "job.out"))}


def read_output(request):
    """The job's output file (its stdout and stderr, the server's log among them)."""
    return {"status": "ok", **read_end(os.path.join(job_dir(request["server_id"]), "job.out"), request["bytes"])}


def remove(request):
    """Once the job is gone: its directory, except its output when it wrote any (the user reads
    it from the home page; `prune` removes it KEEP_SECONDS after the job ended)."""
    directory = job_dir(request["server_id"])
    output = os.path.join(directory, "job.out")
    if not (os.path.isfile(output) and os.path.getsize(output) > 0):
        shutil.rmtree(directory, ignore_errors=True)
        return {"status": "removed"}
    for name in os.listdir(directory):
        if name not in ("job.out", "ended.json"):  # secrets, the environment file, ready.json
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
    if not os.path.exists(os.path.join(directory, "ended.json")):  # (prune counts from it)
        write_json(os.path.join(directory, "ended.json"), {"removed": time.time()})
    return {"status": "output-kept"}


# ----- in the job, on its first node ---------------------------------------------------
def free_port(address):
    # The port is released before the server binds it; serve() retries if another process
    # took it in between (the server exits at once with "Address already in use").
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def answers(address, port):
    try:
        socket.create_connection((address, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def slurm_job_end(job_id):
    """The job's end (a Unix time) from Slurm's time left, or None. Read once as the job starts,
    on the node: a server inside a container image has no scheduler commands to ask, and its
    walltime notice falls back to this (HPCHUB_JOB_END; hpchub.labserver)."""
    try:
        out = subprocess.run(["squeue", "--noheader", "--jobs", job_id, "--format=%L"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=30).stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    left = re.fullmatch(r"(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]+)", out)
    if left is None:  # UNLIMITED, or no answer
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in left.groups())
    return int(time.time()) + ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def serve(config):
    job_began = time.time()  # the job is running: the hub's queue-wait metric is measured to here
    server_id = config["server_id"]
    directory = job_dir(server_id)
    os.makedirs(directory, 0o700, exist_ok=True)
    hostname = socket.gethostname()
    address = config.get("bind") or socket.gethostbyname(hostname)
    runtime = tempfile.mkdtemp(prefix="hpchub-%s-" % server_id)  # node-local, 0700
    env = dict(os.environ)
    env_file = os.path.join(directory, ENV_FILE)
    delivered = read_json(env_file)
    if delivered is not None:  # read once, then gone: the server's own environment holds it
        env.update(delivered)
        os.unlink(env_file)
    env[MARKER] = server_id
    env["JUPYTER_RUNTIME_DIR"] = runtime
    env[SERVER_DIR] = runtime  # what a container runtime binds in (hpchub.containers)
    job_end = slurm_job_end(os.environ["SLURM_JOB_ID"]) if os.environ.get("SLURM_JOB_ID", "").isdigit() else None
    if job_end is not None:
        env["HPCHUB_JOB_END"] = str(job_end)
    base_path = re.sub(r"^[a-z]+://[^/]*", "", env.get("JUPYTERHUB_SERVICE_URL", "")) or "/"
    child = {"proc": None}

    def forward(signum, _frame):
        # scancel and the walltime end send SIGTERM: pass it on, then wait for the server.
        if child["proc"] is not None:
            child["proc"].send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code, ready = 1, False
    try:
        for _attempt in range(3):
            port = free_port(address)
            env["JUPYTERHUB_SERVICE_URL"] = "http://%s:%d%s" % (address, port, base_path)
            proc = child["proc"] = subprocess.Popen(config["argv"], env=env, stdin=subprocess.DEVNULL,
                                                    cwd=os.path.expanduser("~"))
            while proc.poll() is None and not answers(address, port):
                time.sleep(0.01)
            if proc.poll() is None:
                ready = True
                write_json(os.path.join(directory, "ready.json"), {
                    "host": hostname, "address": address, "port": port, "pid": proc.pid,
                    "job_id": os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID", ""),
                    "nodes": os.environ.get("SLURM_JOB_NODELIST", hostname), "started": time.time(),
                    "job_began": job_began})
                code = proc.wait()
                break
            code = proc.returncode
            out = job_tail(os.path.join(directory, "job.out"), 5)
            if "already in use" not in out:
                break
    finally:
        end_processes(server_id, 5.0, 2.0)  # kernels run in sessions of their own
        shutil.rmtree(runtime, ignore_errors=True)
        for name in os.environ.get("HPCHUB_SECRET_FILES", "").split():
            if SECRET_FILE.match(name):
                try:
                    os.remove(os.path.join(directory, name))
                except OSError:
                    pass
        write_json(os.path.join(directory, "ended.json"),
                   {"code": code, "was_ready": ready, "host": hostname, "ended": time.time()})
    return code


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        sys.exit(serve(json.loads(sys.argv[2])))
    answer({"submit": submit, "await": await_report, "tail": output_tail, "read": read_output,
            "remove": remove},
           json.loads(sys.stdin.read()))


if __name__ == "__main__":
    main()
