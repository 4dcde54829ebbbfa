"""Secrets stay secret: after spawns of both kinds, each server's API token (read from inside
its own kernel) appears in no process's argv, in no job script, and in no file on any node or
the hub side - logs, the nodes' /tmp, users' homes, Slurm's spools, the hub's directory; for
bare servers and for servers in a container image alike (the token reaches those through the
runtime's environment, never its command line).

One place is exempt, by Slurm's design: slurmctld keeps each job's environment (the token
travels in it, never in the script) in its state directory, root-only, until the job record
is purged. That directory is checked to be closed to everyone else."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest

from hpchub.site.nodes import proc_file

from ..site_handle import check, clean_hub, spawn, stop
from .test_credentials import login_ok
from .test_ssh_spawner import run_in_kernel

TOKEN = "import os, json; print(json.dumps(os.environ['JUPYTERHUB_API_TOKEN']))"


@pytest.fixture
def hub(loopback_site):
    yield from clean_hub(loopback_site)


def argv_holding(secret: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        cmdline = proc_file(pid, "cmdline") or b""
        if secret.encode() in cmdline:
            shown = cmdline.replace(b"\0", b" ")[:200]
            found.append(f"{pid}: {shown!r}")
    return found


def files_holding(secret: str, roots: list[Path], exempt: Path) -> list[str]:
    proc = subprocess.run(["grep", "-rlF", "--exclude-dir", exempt.name, "--", secret, *map(str, roots)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr  # 1: nothing found
    return [line for line in proc.stdout.splitlines() if not line.startswith(str(exempt))]


@pytest.mark.parametrize("on_login, in_job", [("login", "compute"), ("login-container", "compute-container")],
                         ids=["bare", "in-a-container-image"])
def test_no_server_token_in_argv_job_scripts_logs_or_files(loopback_site, hub, on_login, in_job):
    site = loopback_site
    login_ok(hub, "alice")
    spawn(hub, "alice", options={"target": on_login})
    job_model = spawn(hub, "alice", "job", options={"target": in_job}, timeout=180)
    tokens = {name: json.loads(run_in_kernel(hub, "alice", TOKEN, server=name).strip().splitlines()[-1])
              for name in ("", "job")}
    assert all(len(token) >= 32 for token in tokens.values()) and tokens[""] != tokens["job"]

    job_id = job_model["state"]["job_id"]
    script = check(site.in_node("head", ["scontrol", "write", "batch_script", job_id, "-"])).stdout
    assert "#SBATCH" in script

    state_dir = site.layout.state_dir
    exempt = site.layout.cluster_dir / "slurmctld"
    roots = [state_dir, Path(pwd.getpwnam("alice").pw_dir)]
    for name, token in tokens.items():
        assert token not in script, f"token of server {name!r} in the job script"
        assert argv_holding(token) == [], f"token of server {name!r} in argv"
        # While it runs, only the server's own runtime files (jupyter_server's, in its private
        # 0700 directory on its node) hold its token.
        for path in files_holding(token, roots, exempt):
            private = next(p for p in Path(path).parents if p.name == "runtime" or p.name.startswith("hpchub-alice"))
            info = os.stat(private)
            assert stat.S_IMODE(info.st_mode) & 0o777 == 0o700 and info.st_uid == pwd.getpwnam("alice").pw_uid, path
    stop(hub, "alice")
    stop(hub, "alice", "job", timeout=90)
    for name, token in tokens.items():
        assert files_holding(token, roots, exempt) == [], f"token of server {name!r} left in files after stop"
    # Slurm's own copy of job environments: root's (and SlurmUser's) only.
    mode = stat.S_IMODE(os.stat(exempt).st_mode)
    assert mode & 0o007 == 0 and (mode & 0o070 == 0 or os.stat(exempt).st_gid == 0), oct(mode)
