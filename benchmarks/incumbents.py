"""The incumbents, each run by a JupyterHub of its own beside the instance's hub (loopback mode):

batchspawner 1.3 - expects to be a cluster member: it runs `sbatch`, `squeue` and `scancel`
    on the hub host through `exec_prefix`, and passes the server's token in the submitting
    process's environment. Here the hub host has no Slurm configuration, so `exec_prefix`
    enters login1's namespaces as the user (nsenter + setpriv, which keep the environment).
sshspawner 0.0.1a5 (PyPI; a fork of NERSC's sshspawner, the same design) - connects with
    asyncssh and the user's key and certificate from files on the hub host (host keys not
    checked), writes a start script with the server's environment (its token included) to
    /tmp on the hub host, and runs it with `bash -s` on the node.

Both need root on the hub host here (nsenter; the key files) - acceptable for a
measurement, not for a site. Nothing of them is in hpchub's own environments: each is
installed into a directory of its own and put on its hub's PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import requests

from hpchub.site.hub import HUB_ENV
from hpchub.site.software import JUPYTER_ENV
from tests.site_handle import wait_for_hub

ROOT = Path("/opt/hpchub/bench")
BATCHSPAWNER = "batchspawner==1.3.0"
SSHSPAWNER = "sshspawner==0.0.1a5"


def ensure_installed(requirement: str) -> Path:
    """The package in ROOT/NAME/lib (no dependencies: the hub's environment has them)."""
    home = ROOT / requirement.split("==")[0]
    stamp = home / f".installed-{requirement}"
    if not stamp.exists():
        subprocess.run([str(HUB_ENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--upgrade", "--target", str(home / "lib"), requirement], check=True)
        if requirement == BATCHSPAWNER:
            wrapper = home / "batchspawner-singleuser"
            # The job's side: batchspawner's singleuser wrapper run by the Jupyter environment's Python.
            wrapper.write_text(f"#!/bin/sh\nexport PYTHONPATH={home / 'lib'}\n"
                               f"exec {JUPYTER_ENV}/bin/python -c 'from batchspawner.singleuser import main; main()' "
                               '"$@"\n')
            wrapper.chmod(0o755)
        subprocess.run(["chmod", "-R", "a+rX", str(home)], check=True)
        stamp.touch()
    return home


def _common_config(site, run_dir: Path, token: str) -> str:
    base = site.layout.port_base
    return f"""
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{base + 93}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{base + 94}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{base + 95}"
c.JupyterHub.db_url = "sqlite:///{run_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{run_dir}/cookie_secret"
c.JupyterHub.pid_file = "{run_dir}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"alice", "bob"}}
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"],
                            "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"]}}]
c.Spawner.default_url = "/lab"
"""


def batchspawner_config(site, home: Path, cmd: list[str]) -> str:
    holder = site.site.nodes.holder("login1").pid
    prefix = (f"nsenter --mount=/proc/{holder}/ns/mnt --uts=/proc/{holder}/ns/uts -- "
              "setpriv --reuid={username} --regid={username} --init-groups --")
    return f"""
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.BatchSpawnerBase.exec_prefix = {prefix!r}
c.BatchSpawnerBase.batchspawner_singleuser_cmd = "{home}/batchspawner-singleuser"
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
"""


# sshspawner exports the environment unquoted (`export K=V`), which JupyterHub 5's JSON scope
# lists (with spaces) break; this is the smallest change that lets it run: the same values,
# shell-quoted, placed between sshspawner and Spawner so its `super(SSHSpawner, self).get_env()`
# finds it. Nothing else of sshspawner is changed.
SSHSPAWNER_SHIM = """
import shlex
from jupyterhub.spawner import Spawner
from sshspawner.sshspawner import SSHSpawner


class QuotedEnv(Spawner):
    def get_env(self):
        return {key: shlex.quote(value) for key, value in super().get_env().items()}

    # JupyterHub refuses a Spawner subclass without these; sshspawner's, earlier in the MRO, run.
    async def start(self):
        return await super().start()

    async def stop(self, now=False):
        return await super().stop(now)

    async def poll(self):
        return await super().poll()


class QuotedEnvSSHSpawner(SSHSpawner, QuotedEnv):
    pass
"""


def sshspawner_config(site, home: Path, cmd: list[str], keys: Path) -> str:
    base = site.layout.port_base
    port_command = ("/usr/bin/python3 -c 'import socket; s = socket.socket(); "
                    "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'")
    return f"""
c.JupyterHub.spawner_class = "sshspawner_shim.QuotedEnvSSHSpawner"
# 127.0.0.1 is login1's sshd through the hub's ~/.ssh/config (sshspawner has no port setting
# that it uses); the server listens on login1's loopback, which the hub shares here.
c.SSHSpawner.remote_hosts = ["127.0.0.1"]
c.SSHSpawner.remote_port_command = {port_command!r}
c.SSHSpawner.ssh_keyfile = "{keys}/{{username}}"
c.SSHSpawner.hub_api_url = "http://127.0.0.1:{base + 94}/hub/api"
c.SSHSpawner.path = "{JUPYTER_ENV}/bin:/usr/bin:/bin"
c.Spawner.cmd = {cmd!r}
# sshspawner replaces a `--port` argument with the port it picked.
c.Spawner.args = ["--port=0", "--ip=127.0.0.1"]
"""


class IncumbentHub:
    """A JupyterHub with an incumbent spawner beside the instance's own hub, run by the benchmark."""

    def __init__(self, site, kind: str, cmd: list[str], extra: str = ""):
        self.site = site
        self.token = os.urandom(16).hex()
        self.url = f"http://127.0.0.1:{site.layout.port_base + 93}"
        run_dir = ROOT / f"run-{kind}"
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.glob("jupyterhub.sqlite*"):
            stale.unlink()
        if kind == "batchspawner":
            home = ensure_installed(BATCHSPAWNER)
            spawner = batchspawner_config(site, home, cmd)
        elif kind == "sshspawner":
            home = ensure_installed(SSHSPAWNER)
            (home / "lib" / "sshspawner_shim.py").write_text(SSHSPAWNER_SHIM)
            spawner = sshspawner_config(site, home, cmd, self._write_keys(site, run_dir))
        else:
            raise ValueError(kind)
        config = run_dir / "jupyterhub_config.py"
        config.write_text(_common_config(site, run_dir, self.token) + spawner + extra)
        env = {"PATH": f"{HUB_ENV / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(run_dir),
               "PYTHONPATH": str(home / "lib"), "CONFIGPROXY_AUTH_TOKEN": os.urandom(16).hex()}
        self.log = open(run_dir / "hub.log", "w")
        self.proc = subprocess.Popen([str(HUB_ENV / "bin" / "jupyterhub"), "-f", str(config)], cwd=run_dir, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_for_hub(self.url, self.proc):
            raise RuntimeError(f"the {kind} hub did not start; see {run_dir / 'hub.log'}")

    @staticmethod
    def _write_keys(site, run_dir: Path) -> Path:
        """alice's key and certificate where sshspawner reads them, and an SSH client config
        that sends its connections to login1's sshd."""
        keys = run_dir / "keys"
        keys.mkdir(mode=0o700, exist_ok=True)
        cred = site.user_credential("alice")
        (keys / "alice").write_text(cred.key.read_text())
        (keys / "alice").chmod(0o600)
        (keys / "alice-cert.pub").write_text(cred.cert.read_text())
        address, port = site.login_address("login1")
        ssh_dir = run_dir / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "config").write_text(f"Host 127.0.0.1\n  HostName {address}\n  Port {port}\n")
        return keys

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
