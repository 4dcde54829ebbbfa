"""The batch launch's pure parts (options, job script, messages, state) and the batch launcher
run locally with a stand-in server (a few lines of Python that listen where they are told)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpchub.remote.launcher import BATCH, launcher_source
from hpchub.schedulers.base import JobState, JobStatus, ValidationError
from hpchub.schedulers.slurm import Slurm
from hpchub.spawners import HPCSpawner, SlurmSpawner
from hpchub.spawners.batch import BatchLaunch
from hpchub.spawners.login import LoginLaunch
from hpchub.spawners.messages import outcome_message, pending_message
from hpchub.spawners.options import FieldError, job_request, resolve
from hpchub.spawners.state import BatchServer, LoginServer


def launch(options: dict | None = None, **settings) -> BatchLaunch:
    """hpchub-slurm's launch for these options, its server named as after a submission."""
    s = SlurmSpawner(cmd=["/opt/jupyter/bin/jupyterhub-singleuser"], **settings)
    (target,) = s.all_targets()
    batch = BatchLaunch(s, server=BatchServer(server_id="alice-default-0a1b2c3d"),
                        request=job_request(target, options or {}, None))
    return batch


def test_options_are_typed_and_unknown_ones_refused():
    def values(options):
        (target,) = SlurmSpawner(partition="batch").all_targets()
        return resolve(target, options, None)

    assert values({"nodes": "2", "partition": " debug "}) == {
        "nodes": 2, "partition": "debug", "walltime": "01:00:00"}
    for options, message in (({"script": "rm -rf ~"}, "script: is not an option here"),
                             ({"nodes": "two"}, "nodes: must be a whole number"),
                             ({"nodes": "²"}, "nodes: must be a whole number"),
                             ({"nodes": "١"}, "nodes: must be a whole number"),
                             ({"gpus": True}, "gpus: must be text or a whole number")):
        with pytest.raises(FieldError) as refused:
            values(options)
        assert str(refused.value) == message


def test_a_hostile_value_never_reaches_the_script():
    with pytest.raises((ValidationError, FieldError), match="account"):
        launch({"account": "physics\n#SBATCH --uid=0"})
    with pytest.raises((ValidationError, FieldError), match="walltime"):
        launch({"walltime": "soon"})


def test_the_job_script_has_quoted_directives_setup_lines_and_the_launcher_but_no_secret():
    batch = launch({"nodes": 2, "account": "physics", "constraint": "gpu&fast"}, partition="batch",
                   walltime="00:30:00", setup_lines=["module load python"])
    batch.owner.environment = {"JUPYTERHUB_API_TOKEN": "secret-token"}
    script = Slurm().job_script(batch.job_request())
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --partition=batch" in lines and "#SBATCH --nodes=2" in lines
    assert "#SBATCH '--constraint=gpu&fast'" in lines and "#SBATCH --time=00:30:00" in lines
    assert "#SBATCH --output=.hpchub/jobs/alice-default-0a1b2c3d/job.out" in lines
    assert "module load python" in lines
    run = next(line for line in lines if line.startswith("exec "))
    assert run.startswith("exec python3 - serve '{\"server_id\": \"alice-default-0a1b2c3d\"")
    assert run.endswith("<<'HPCHUB_LAUNCHER_EOF'") and lines[-1] == "HPCHUB_LAUNCHER_EOF"
    assert launcher_source(BATCH).rstrip("\n") in script
    assert "secret-token" not in script and "JUPYTERHUB_API_TOKEN" not in script
    # bash reads it: the launcher's config survives the quoting exactly.
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_pending_and_outcome_messages_use_the_schedulers_words():
    pending = JobStatus("42", JobState.PENDING, "PENDING", reason="Resources", start="2026-11-25T14:00:00")
    assert pending_message(pending, 75) == ("Job 42 is waiting in the queue (pending, reason: Resources); "
                                            "expected start 2026-11-25 14:00:00 UTC; waited 1 min 15 s")
    assert outcome_message(JobStatus("42", JobState.CANCELLED, "CANCELLED by 0")) == "job 42 was cancelled (by uid 0)"
    assert outcome_message(JobStatus("42", JobState.TIMEOUT, "TIMEOUT")) == "job 42 reached its time limit"
    failed = JobStatus("42", JobState.FAILED, "NODE_FAIL", reason="NodeDown", exit_code=1)
    assert outcome_message(failed) == "job 42 ended: NODE_FAIL, exit code 1 (NodeDown)"


# ----- the batch launcher, locally ---------------------------------------------------------
STAND_IN_SERVER = """
import os, http.server, urllib.parse
url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
print("stand-in server on", url.hostname, url.port, "marker", os.environ["HPCHUB_SERVER_ID"], flush=True)
http.server.HTTPServer((url.hostname, url.port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def launcher(home: Path, *args, stdin: str | None = None, output=subprocess.PIPE):
    env = {**os.environ, "HOME": str(home), "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:8888/user/alice/"}
    return subprocess.Popen([sys.executable, "-c", launcher_source(BATCH), *args], env=env,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=output, stderr=subprocess.STDOUT, text=True)


def ask(home: Path, request: dict) -> dict:
    proc = launcher(home, stdin=json.dumps(request))
    out, _ = proc.communicate(json.dumps(request), timeout=30)
    return json.loads(out.splitlines()[-1])


def test_the_launcher_reports_the_listening_server_and_its_end(tmp_path):
    job_dir = tmp_path / ".hpchub" / "jobs" / "alice-x-1"
    job_dir.mkdir(parents=True)
    config = {"server_id": "alice-x-1", "argv": [sys.executable, "-c", STAND_IN_SERVER], "bind": "127.0.0.1"}
    with open(job_dir / "job.out", "w") as out:  # as Slurm's --output would
        serving = launcher(tmp_path, "serve", json.dumps(config), output=out)
    try:
        ready = ask(tmp_path, {"action": "await", "server_id": "alice-x-1", "timeout": 20})
        assert ready["status"] == "ready" and ready["address"] == "127.0.0.1" and ready["port"] > 0
        import urllib.request
        assert urllib.request.urlopen(f"http://127.0.0.1:{ready['port']}/", timeout=5).status == 200
        serving.terminate()  # what scancel does
        assert serving.wait(20) is not None
        ended = ask(tmp_path, {"action": "await", "server_id": "alice-x-1", "timeout": 5})
        assert ended["status"] == "ended" and ended["was_ready"] is True
    finally:
        serving.kill()
        serving.wait()
    assert oct((tmp_path / ".hpchub" / "jobs" / "alice-x-1" / "ended.json").stat().st_mode)[-3:] == "600"


def test_a_server_that_exits_at_once_is_reported_with_its_code(tmp_path):
    job_dir = tmp_path / ".hpchub" / "jobs" / "alice-x-2"
    job_dir.mkdir(parents=True)
    config = {"server_id": "alice-x-2", "argv": [sys.executable, "-c", "import sys; sys.exit(4)"], "bind": "127.0.0.1"}
    with open(job_dir / "job.out", "w") as out:
        serving = launcher(tmp_path, "serve", json.dumps(config), output=out)
    assert serving.wait(20) == 4
    started = time.monotonic()
    ended = ask(tmp_path, {"action": "await", "server_id": "alice-x-2", "timeout": 5})
    assert ended["status"] == "ended" and ended["code"] == 4 and ended["was_ready"] is False
    assert time.monotonic() - started < 2


def test_the_combined_spawner_keeps_each_kinds_state_apart():
    batch = HPCSpawner()
    batch.target_name = "gpu"
    batch.launch = BatchLaunch(batch, server=BatchServer(job_id="42", server_id="alice-gpu-1", submit_host="login1",
                                                         phase="ready", node="c4"))
    state = batch.get_state()
    assert state["kind"] == "batch" and state["submit_host"] == "login1" and state["job_id"] == "42"
    again = HPCSpawner()
    again.load_state(state)
    assert (again.kind, again.job_id, again.launch.server.node) == ("batch", "42", "c4")
    assert again.where == "c4"

    login = HPCSpawner()
    login.target_name = "login"
    login.launch = LoginLaunch(login, LoginServer(host="login2", server_id="bob-default-2", pid=77))
    state = login.get_state()
    assert "job_id" not in state and state["host"] == "login2" and state["pid"] == 77
    again = HPCSpawner()
    again.load_state(state)
    assert (again.kind, again.launch.server.host, again.launch.server.pid, again.job_id) == ("login", "login2", 77, "")
    assert again.where == "login2"


def test_cluster_side_names_take_only_safe_characters_whatever_the_hub_names_hold():
    from hpchub.remote.node_launcher import SERVER_ID
    from hpchub.schedulers.base import NAME
    from hpchub.spawners.launch import cluster_label, new_server_id

    from ..hostile import HOSTILE_TEXT

    for user, server in [("alice@example.org", ""), ("Ünïcode", "x"), ("a", "$(touch /tmp/x)"),
                         *(("bob", value) for value in HOSTILE_TEXT)]:
        server_id = new_server_id(user, server)
        assert SERVER_ID.match(server_id) and len(server_id) <= 80, server_id
        assert NAME.fullmatch(f"jupyter-{cluster_label(server or 'default', 50)}")


def test_every_url_of_the_hubs_api_moves_to_where_the_server_reaches_it():
    from hpchub.spawners.launch import with_hub_api_at

    env = {"JUPYTERHUB_API_URL": "http://10.0.0.1:8081/hub/api",
           "JUPYTERHUB_ACTIVITY_URL": "http://10.0.0.1:8081/hub/api/users/alice/activity",
           "JUPYTERHUB_SOME_FUTURE_URL": "http://10.0.0.1:8081/hub/api/x",
           "JUPYTERHUB_PUBLIC_HUB_URL": "https://hub.example.org/hub/",
           "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:8888/user/alice/",
           "OTHER": "http://10.0.0.1:8081/hub/api", "JUPYTERHUB_API_URLX": "http://10.0.0.1:8081/hub/apix"}
    moved = with_hub_api_at(env, "http://127.0.0.1:40001/hub/api")
    assert moved == {**env, "JUPYTERHUB_API_URL": "http://127.0.0.1:40001/hub/api",
                     "JUPYTERHUB_ACTIVITY_URL": "http://127.0.0.1:40001/hub/api/users/alice/activity",
                     "JUPYTERHUB_SOME_FUTURE_URL": "http://127.0.0.1:40001/hub/api/x"}


@pytest.mark.parametrize("env_file", [False, True], ids=["exported (Slurm)", "private file (Grid Engine)"])
def test_the_servers_environment_reaches_the_job_by_export_or_by_a_private_file_never_both(tmp_path, env_file):
    seen_by_scheduler = tmp_path / "submit-env.json"
    submit = [sys.executable, "-c", "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))",
              str(seen_by_scheduler)]
    answer = ask(tmp_path, {"action": "submit", "server_id": "alice-x-3", "argv": submit, "script": "#!/bin/bash\n",
                            "env": {"JUPYTERHUB_API_TOKEN": "s3cret-token"}, "env_file": env_file})
    assert answer["status"] == "submitted"
    exported = json.loads(seen_by_scheduler.read_text())
    job_dir = tmp_path / ".hpchub" / "jobs" / "alice-x-3"
    private = job_dir / "server-environment.json"
    if not env_file:
        assert exported["JUPYTERHUB_API_TOKEN"] == "s3cret-token" and not private.exists()
        return
    assert "JUPYTERHUB_API_TOKEN" not in exported  # the scheduler never holds it
    assert oct(private.stat().st_mode)[-3:] == "600" and "s3cret-token" in private.read_text()
    seen_by_server = tmp_path / "server-env.txt"
    server = [sys.executable, "-c", "import os, sys; open(sys.argv[1], 'w').write(os.environ['JUPYTERHUB_API_TOKEN'])",
              str(seen_by_server)]
    config = {"server_id": "alice-x-3", "argv": server, "bind": "127.0.0.1"}
    with open(job_dir / "job.out", "w") as out:
        serving = launcher(tmp_path, "serve", json.dumps(config), output=out)
    serving.wait(20)
    assert seen_by_server.read_text() == "s3cret-token" and not private.exists()  # read once, then gone


@pytest.mark.parametrize("answer, seconds", [("1-02:03:04", 93784), ("02:03:04", 7384), ("03:04", 184),
                                             ("UNLIMITED", None), ("", None), ("INVALID", None)])
def test_the_launcher_reads_its_jobs_end_from_slurms_time_left(tmp_path, monkeypatch, answer, seconds):
    """For the walltime notice of a server that cannot ask Slurm itself (inside a container)."""
    fake = tmp_path / "squeue"
    fake.write_text(f"#!/bin/sh\n[ \"$3\" = 42 ] && [ \"$4\" = --format=%L ] && echo '{answer}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    launcher_module = {"__name__": "not_main"}
    exec(compile(launcher_source(BATCH), "batch_launcher", "exec"), launcher_module)
    end = launcher_module["slurm_job_end"]("42")
    if seconds is None:
        assert end is None
    else:
        assert abs(end - (time.time() + seconds)) <= 2
