"""Big work from a notebook: dask and ipyparallel clusters on the site's compute nodes,
preconfigured, and cleaned up when the notebook's kernel ends - however it ends.

    from hpchub.cluster import dask_cluster
    cluster, client = dask_cluster(jobs=2)          # two worker jobs in the queue
    client.submit(sum, range(10)).result()
    cluster.close()

    from hpchub.cluster import ipyparallel_cluster
    rc = ipyparallel_cluster(engines=2)             # engines in Slurm jobs, a client connected
    rc[:].apply_sync(socket.gethostname)

Settings come from, in order: the call's arguments; the job this kernel runs in (its account
and partition, and a walltime no longer than the time it has left); the site's file
`$JUPYTER_ENV/etc/hpchub/cluster.json` (keys `account`, `partition`, `walltime`, `cores`,
`memory`); Slurm's defaults. The scheduler (or controller) runs in this kernel and listens on
this node's cluster address, which the workers on the compute nodes reach.

Every job is named `hpchub-<kind>-<tag>`, and a small watcher process started with the
cluster cancels the jobs of that name as soon as this kernel's process is gone, so that a
kernel that is killed (not shut down) leaves no worker in the queue either.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from .remote.detach import spawn_detached
from .schedulers.slurm import format_walltime, parse_walltime

# The watcher: waits for the kernel to end, then cancels its jobs (run detached, stdlib only).
REAPER = r"""
import json, os, subprocess, sys, time
pid, cancel = int(sys.argv[1]), json.loads(sys.argv[2])
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    except PermissionError:
        pass
    time.sleep(1)
for _ in range(3):  # jobs submitted in the last moments too
    subprocess.run(cancel, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
"""


def scheduler_here() -> str:
    """"slurm" or "sge": the batch system of the cluster this process runs on - what the hub told
    the server (HPCHUB_SCHEDULER), else what is installed (Slurm where sbatch is)."""
    told = os.environ.get("HPCHUB_SCHEDULER", "")
    if told in ("slurm", "sge"):
        return told
    return "sge" if shutil.which("qsub") and not shutil.which("sbatch") else "slurm"


def cancel_by_name_argv(name: str) -> list[str]:
    """Cancel every job of this user named name (Slurm: scancel --name; Grid Engine: qdel takes names)."""
    if scheduler_here() == "sge":
        return ["qdel", name]
    return ["scancel", "--name=" + name, "--user=" + str(os.getuid())]


def site_settings() -> dict:
    path = Path(sys.prefix) / "etc" / "hpchub" / "cluster.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def cluster_address() -> str:
    """This node's address on the cluster network (what its /etc/hosts says for its name)."""
    return socket.gethostbyname(socket.gethostname())


def time_left_in_this_job(job_id: str | None = None) -> int | None:
    """Seconds left on the job this process runs in (or on job_id), or None outside a job.
    Slurm's time left (%L) is a duration: no time zone enters it; Grid Engine's is the job's
    start plus its h_rt, both read in UTC."""
    if scheduler_here() == "sge":
        return _grid_engine_time_left(os.environ.get("JOB_ID", "") if job_id is None else job_id)
    job_id = os.environ.get("SLURM_JOB_ID", "") if job_id is None else job_id
    if not job_id.isdigit():
        return None
    try:
        out = subprocess.run(["squeue", "--noheader", "--jobs", job_id, "--format=%L"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
        return parse_walltime(out)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


def _grid_engine_time_left(job_id: str) -> int | None:
    from datetime import datetime, timezone

    from .schedulers.sge import GridEngine

    if not job_id.isdigit():
        return None
    sge = GridEngine()
    try:
        out = subprocess.run(["env", "TZ=UTC", *sge.status_argv()], capture_output=True, text=True,
                             timeout=30).stdout
        status = sge.parse_status(out).get(job_id)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if status is None or status.end is None:
        return None
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # (the query ran in UTC)
    return max(0, int((datetime.fromisoformat(status.end) - now).total_seconds()))


def job_settings(**overrides) -> dict:
    """account, partition, walltime ([D-]HH:MM:SS), cores and memory for worker jobs."""
    settings = {"walltime": "01:00:00", "cores": 1, "memory": "1GB"}
    settings.update(site_settings())
    for key, variable in (("account", "SLURM_JOB_ACCOUNT"), ("partition", "SLURM_JOB_PARTITION"),
                          ("partition", "QUEUE")):  # (QUEUE: Grid Engine's, in a job)
        if os.environ.get(variable):
            settings[key] = os.environ[variable]
    settings.update({k: v for k, v in overrides.items() if v is not None})
    left = time_left_in_this_job()
    wanted = parse_walltime(str(settings["walltime"]))
    if left is not None and (wanted is None or wanted > left):
        settings["walltime"] = format_walltime(max(60, left))  # workers end no later than this job
    return settings


def new_tag(kind: str) -> str:
    return f"hpchub-{kind}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def watch_kernel(job_name: str) -> None:
    """Cancel every job named job_name once this process (the kernel) has ended."""
    runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR") or "/tmp")
    spawn_detached([sys.executable, "-c", REAPER, str(os.getpid()), json.dumps(cancel_by_name_argv(job_name))],
                   str(runtime / f"{job_name}.log"),
                   {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")})


def dask_cluster(jobs: int = 0, *, account: str | None = None, partition: str | None = None,
                 walltime: str | None = None, cores: int | None = None, memory: str | None = None,
                 **cluster_options):
    """A dask-jobqueue cluster for this site (SLURMCluster, or SGECluster on a Grid Engine
    cluster) and a Client connected to it.

    jobs: worker jobs to submit at once (0: none yet; call cluster.scale(n) or adapt()).
    The other settings default as the module says (on Grid Engine the account is the project
    and the cores are slots of the site's parallel environment, `parallel_environment` in the
    site's cluster.json, "smp" by default); anything else goes to dask-jobqueue's cluster class.
    Returns (cluster, client). cluster.dashboard_link goes through your Jupyter server."""
    import dask
    from dask.distributed import Client

    settings = job_settings(account=account, partition=partition, walltime=walltime, cores=cores, memory=memory)
    name = new_tag("dask")
    dask.config.set({"distributed.dashboard.link": dashboard_link_template()})
    common = dict(
        job_name=name, queue=settings.get("partition"), walltime=settings["walltime"], cores=settings["cores"],
        memory=settings["memory"], processes=1,
        # Workers that lose this kernel stop on their own, and end their job with them.
        death_timeout=30, log_directory=None,
        scheduler_options={"host": cluster_address(), "dashboard_address": ":0"},
    )
    if scheduler_here() == "sge":
        from dask_jobqueue import SGECluster

        environment = settings.get("parallel_environment", "smp")
        extra = list(cluster_options.pop("job_extra_directives", []))
        cluster = SGECluster(project=settings.get("account"), **common,
                             job_extra_directives=[f"-pe {environment} {int(settings['cores'])}", "-r n", *extra],
                             **cluster_options)
    else:
        from dask_jobqueue import SLURMCluster

        cluster = SLURMCluster(account=settings.get("account"), **common, **cluster_options)
    watch_kernel(name)
    if jobs:
        cluster.scale(jobs=jobs)
    return cluster, Client(cluster)


def dashboard_link_template() -> str:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    return prefix + "proxy/{port}/status" if prefix else "http://{host}:{port}/status"


ENGINE_JOB = """#!/bin/sh
#SBATCH --export=ALL
#SBATCH --job-name={job_name}
#SBATCH --ntasks={{n}}
#SBATCH --ntasks-per-node=1
srun {{program_and_args}}
"""


def ipyparallel_cluster(engines: int = 2, *, account: str | None = None, partition: str | None = None,
                        walltime: str | None = None, timeout: float = 300):
    """An ipyparallel cluster: the controller in this kernel, `engines` engines in one Slurm
    job (one per node); returns a Client once they have registered. Stop it with
    client.hpchub_cluster.stop_cluster_sync()."""
    import ipyparallel as ipp
    from traitlets.config import Config

    settings = job_settings(account=account, partition=partition, walltime=walltime)
    name = new_tag("ipp")
    config = Config()
    launcher = config.SlurmEngineSetLauncher
    launcher.batch_template = ENGINE_JOB.format(job_name=name)
    launcher.queue = settings.get("partition") or ""
    launcher.account = settings.get("account") or ""
    launcher.timelimit = settings["walltime"]
    cluster = ipp.Cluster(n=engines, engine_launcher_class="slurm", controller_ip=cluster_address(),
                          controller_location=cluster_address(), config=config)
    watch_kernel(name)
    client = cluster.start_and_connect_sync(activate=False)
    client.wait_for_engines(engines, timeout=timeout)
    client.hpchub_cluster = cluster  # kept with the client
    return client


SPARK_JOB = """#!/bin/bash
#SBATCH --job-name={job_name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task={cores}
#SBATCH --time={walltime}
#SBATCH --output={output}
{directives}
# A standalone Spark cluster inside this allocation: the master on the first node, a worker on
# every node; it ends with the job (the notebook's stop, the kernel's end, or the walltime).
set -eu
export SPARK_HOME={spark_home}
export SPARK_LOG_DIR=/tmp/hpchub-spark-$SLURM_JOB_ID SPARK_WORKER_DIR=/tmp/hpchub-spark-$SLURM_JOB_ID
address() {{ {python} -c 'import socket; print(socket.gethostbyname(socket.gethostname()))'; }}
HOST=$(address)
PORT=$({python} -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
"$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master --host "$HOST" --port "$PORT" \\
    --webui-port 0 &
MASTER=$!
for _ in $(seq 1 600); do
    {python} -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)' \\
        "$HOST" "$PORT" 2>/dev/null && break
    sleep 0.1
done
srun --ntasks-per-node=1 bash -c "mkdir -p \\$SPARK_WORKER_DIR && exec \\"\\$SPARK_HOME/bin/spark-class\\" \\
    org.apache.spark.deploy.worker.Worker --host \\$({python} -c 'import socket; \\
    print(socket.gethostbyname(socket.gethostname()))') --cores {cores} --memory {memory} \\
    spark://$HOST:$PORT" &
WORKERS=$!
echo "spark://$HOST:$PORT" > {url_file}.partial && mv {url_file}.partial {url_file}
wait $WORKERS
kill $MASTER
"""


def spark_session(nodes: int = 2, *, cores: int = 1, memory: str = "1g", account: str | None = None,
                  partition: str | None = None, walltime: str | None = None, app_name: str = "notebook",
                  timeout: float = 300):
    """A SparkSession on a standalone Spark cluster started inside one Slurm job of `nodes`
    nodes (a worker with `cores` cores and `memory` on each). The driver is this kernel.
    spark.stop() also ends the job; so do the kernel's end and the job's walltime."""
    import atexit
    import time

    import pyspark
    from pyspark.sql import SparkSession

    settings = job_settings(account=account, partition=partition, walltime=walltime)
    name = new_tag("spark")
    workdir = Path.home() / ".hpchub" / "spark"
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    url_file = workdir / f"{name}.url"
    directives = "\n".join(f"#SBATCH --{key}={settings[key]}" for key in ("account", "partition")
                           if settings.get(key))
    script = SPARK_JOB.format(job_name=name, nodes=int(nodes), cores=int(cores), walltime=settings["walltime"],
                              output=workdir / f"{name}.out", directives=directives,
                              spark_home=os.path.dirname(pyspark.__file__), python=sys.executable,
                              memory=memory, url_file=url_file)
    submitted = subprocess.run(["sbatch", "--parsable"], input=script, capture_output=True, text=True, timeout=60)
    if submitted.returncode != 0:
        raise RuntimeError(f"the Spark job was refused: {submitted.stderr.strip()}")
    job_id = submitted.stdout.strip().split(";")[0]
    watch_kernel(name)

    def cancel():
        subprocess.run(["scancel", job_id], capture_output=True)

    atexit.register(cancel)
    deadline = time.monotonic() + timeout
    while not url_file.exists():
        state = subprocess.run(["squeue", "--noheader", "--jobs", job_id, "--format=%T"], capture_output=True,
                               text=True).stdout.strip()
        if state in ("", "FAILED", "CANCELLED", "TIMEOUT", "COMPLETED") or time.monotonic() > deadline:
            cancel()
            output = (workdir / f"{name}.out")
            tail = output.read_text()[-2000:] if output.exists() else ""
            raise RuntimeError(f"Spark job {job_id} did not start ({state or 'gone'}). Its output:\n{tail}")
        time.sleep(0.5)
    master = url_file.read_text().strip()
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.driver.host", cluster_address())
               .config("spark.executor.memory", memory).config("spark.executor.cores", str(cores)))
    ui_link = None
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix:
        # The application's UI (served by this driver) through the user's server, as dask's
        # dashboard: its own links carry the proxy's path (spark.ui.proxyBase).
        port = free_port()
        base = f"{prefix}proxy/{port}"
        builder = builder.config("spark.ui.port", str(port)).config("spark.ui.proxyBase", base)
        ui_link = f"{base}/jobs/"
    if cluster_address().startswith("127."):
        # Nodes that share one address (a one-machine demo site) look like one host to Spark,
        # which would then read other nodes' shuffle files from its own /tmp.
        builder = builder.config("spark.shuffle.readHostLocalDisk", "false")
    spark = builder.getOrCreate()
    # Executors register a moment after the session opens: wait for one per node.
    context = spark.sparkContext
    while context._jsc.sc().getExecutorMemoryStatus().size() - 1 < nodes and time.monotonic() < deadline:
        time.sleep(0.5)
    stop_session = spark.stop

    def stop():
        stop_session()
        cancel()

    spark.stop = stop
    spark.hpchub_job_id = job_id
    spark.hpchub_ui_link = ui_link  # None outside a server of the hub
    return spark


def free_port() -> int:
    """A TCP port free on this node now (for a service the user's server will proxy)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]
