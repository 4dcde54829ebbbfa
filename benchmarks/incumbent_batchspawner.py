"""batchspawner 1.3, the incumbent, set up on a benchmark instance (loopback mode).

It expects to be a cluster member: it runs `sbatch`, `squeue` and `scancel` on the hub host
through `exec_prefix`, and passes the server's token in the submitting process's
environment. Here the hub host has no Slurm configuration, so `exec_prefix` enters login1's
namespaces as the user (nsenter + setpriv, which keep the environment); that needs root, so
this hub runs as root - acceptable for a measurement, not for a site. Nothing of it is in
hpchub's own environments: batchspawner is installed into a directory of its own, put on
the hub's PYTHONPATH and on the job's through a wrapper for `batchspawner-singleuser`.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests

from hpchub.site.hub import HUB_ENV
from hpchub.site.software import JUPYTER_ENV

BATCHSPAWNER = "batchspawner==1.3.0"
ROOT = Path("/opt/hpchub/bench/batchspawner")


def ensure_installed() -> Path:
    stamp = ROOT / ".installed"
    if not stamp.exists():
        subprocess.run([str(HUB_ENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--target", str(ROOT / "lib"), BATCHSPAWNER], check=True)
        wrapper = ROOT / "batchspawner-singleuser"
        # The job's side: batchspawner's singleuser wrapper run by the Jupyter environment's Python.
        wrapper.write_text(f"#!/bin/sh\nexport PYTHONPATH={ROOT / 'lib'}\n"
                           f"exec {JUPYTER_ENV}/bin/python -c 'from batchspawner.singleuser import main; main()' "
                           '"$@"\n')
        wrapper.chmod(0o755)
        subprocess.run(["chmod", "-R", "a+rX", str(ROOT)], check=True)
        stamp.touch()
    return ROOT


def hub_config(site, token: str, cmd: list[str], extra: str = "") -> str:
    layout = site.layout
    holder = site.site.nodes.holder("login1").pid
    prefix = (f"nsenter --mount=/proc/{holder}/ns/mnt --uts=/proc/{holder}/ns/uts -- "
              "setpriv --reuid={username} --regid={username} --init-groups --")
    base = layout.port_base
    return f"""
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{base + 93}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{base + 94}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{base + 95}"
c.JupyterHub.db_url = "sqlite:///{ROOT}/run/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{ROOT}/run/cookie_secret"
c.JupyterHub.pid_file = "{ROOT}/run/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"alice", "bob"}}
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"],
                            "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"]}}]
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.BatchSpawnerBase.exec_prefix = {prefix!r}
c.BatchSpawnerBase.batchspawner_singleuser_cmd = "{ROOT}/batchspawner-singleuser"
c.BatchSpawnerBase.req_partition = "batch"
c.BatchSpawnerBase.req_runtime = "01:00:00"
# The server in the batch step itself, as hpchub runs it (batchspawner's default wraps it in
# srun, which here also runs out of the instance's srun ports beyond about 20 jobs).
c.SlurmSpawner.req_srun = ""
# Slurm's %B is the node's name, which the hub host cannot resolve here; in loopback mode
# every node is at 127.0.0.1.
c.BatchSpawnerRegexStates.state_exechost_exp = "127.0.0.1"
c.Spawner.cmd = {cmd!r}
c.Spawner.env_keep = ["PATH", "LANG"]
c.Spawner.default_url = "/lab"
{extra}
"""


class BatchspawnerHub:
    """A JupyterHub with batchspawner beside the instance's own hub, run by the benchmark."""

    def __init__(self, site, cmd: list[str], extra: str = ""):
        self.site = site
        self.token = os.urandom(16).hex()
        self.url = f"http://127.0.0.1:{site.layout.port_base + 93}"
        ensure_installed()
        run_dir = ROOT / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.glob("jupyterhub.sqlite*"):
            stale.unlink()
        config = run_dir / "jupyterhub_config.py"
        config.write_text(hub_config(site, self.token, cmd, extra))
        env = {"PATH": f"{HUB_ENV / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(run_dir),
               "PYTHONPATH": str(ROOT / "lib"), "CONFIGPROXY_AUTH_TOKEN": os.urandom(16).hex()}
        self.log = open(run_dir / "hub.log", "w")
        self.proc = subprocess.Popen([str(HUB_ENV / "bin" / "jupyterhub"), "-f", str(config)], cwd=run_dir, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/hub/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"batchspawner's hub did not start; see {run_dir / 'hub.log'}")
            time.sleep(0.2)

    def api(self, method: str, path: str, **kw):
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=60,
                                headers={"Authorization": f"token {self.token}"}, **kw)

    def close(self) -> None:
        # Its servers first (cleanup_servers stops them on a clean exit), then the hub and its proxy.
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["pkill", "-TERM", "-f", f"configurable-http-proxy.*--port {self.site.layout.port_base + 93}"],
                       check=False)
        self.log.close()
