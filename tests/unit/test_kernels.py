"""`hpchub kernel add` and the pure parts of kernels in a batch job (pure: temporary directories)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hpchub import kernels


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)
    return tmp_path


def test_a_batch_kernel_names_the_provisioner_its_scheduler_arguments_and_message_interrupts(data_dir):
    path = kernels.add(str(data_dir / "env"), name="batch", check=False,
                       batch=("slurm", "--partition batch --time 1:00:00"))
    spec = json.loads((path / "kernel.json").read_text())
    assert spec["metadata"]["kernel_provisioner"] == {
        "provisioner_name": "hpchub-batch",
        "config": {"scheduler": "slurm", "submit_args": ["--partition", "batch", "--time", "1:00:00"]}}
    assert spec["interrupt_mode"] == "message" and spec["display_name"] == "Python (env) in a Slurm job"
    assert spec["argv"][-2:] == ["-f", "{connection_file}"]
    plain = json.loads((kernels.add(str(data_dir / "env"), name="plain", check=False) / "kernel.json").read_text())
    assert "kernel_provisioner" not in plain["metadata"] and "interrupt_mode" not in plain


@pytest.mark.parametrize("scheduler, args, option", [
    ("slurm", "--partition batch --output=/tmp/x", "--output"),
    ("slurm", "-J name", "-J"),
    ("slurm", "--wrap=id", "--wrap"),
    ("slurm", "--export=ALL", "--export"),
    ("sge", "-q batch.q -N x", "-N"),
    ("sge", "-b y", "-b"),
])
def test_options_hpchub_sets_for_the_kernels_job_are_refused_by_name(data_dir, scheduler, args, option):
    with pytest.raises(kernels.KernelError, match=f"^{option} is set by hpchub"):
        kernels.add(str(data_dir / "env"), name="batch", check=False, batch=(scheduler, args))
    assert not (data_dir / "data" / "kernels" / "batch").exists()


def test_the_job_gets_no_secret_of_the_servers_environment():
    server = {"PATH": "/usr/bin", "HOME": "/home/alice", "LC_ALL": "C.UTF-8", "SGE_ROOT": "/var/lib/gridengine",
              "JUPYTERHUB_API_TOKEN": "secret", "JPY_API_TOKEN": "secret", "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
              "SLURM_JOB_ID": "12", "HPCHUB_CLUSTER": "default", "X509_USER_PROXY": "/tmp/x509up",
              "AWS_SECRET_ACCESS_KEY": "secret"}
    assert kernels.job_environment(server) == {
        "PATH": "/usr/bin", "HOME": "/home/alice", "LC_ALL": "C.UTF-8", "SGE_ROOT": "/var/lib/gridengine",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/", "HPCHUB_CLUSTER": "default"}


def test_the_job_script_quotes_every_word(tmp_path):
    made = tmp_path / "made"
    hostile = f"/nonexistent/$(touch {made})/`touch {made}`/'\"; touch {made}"
    script = kernels.batch_job_script([sys.executable, "-m", "ipykernel_launcher", "-f", hostile], hostile)
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1 and hostile in proc.stderr and not made.exists()


def test_the_job_script_runs_the_kernel_on_the_address_the_probe_finds(tmp_path):
    # The kernel's words, then --ip: here a command that prints its arguments instead.
    printer = tmp_path / "printer"
    printer.write_text(f"#!{sys.executable}\nimport sys\nif sys.argv[1] == '-c': exec(sys.argv[2])\n"
                       "else: print(sys.argv[1:])\n")
    printer.chmod(0o755)
    script = kernels.batch_job_script([str(printer), "-m", "ipykernel_launcher", "-f", "/k.json"], str(tmp_path))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"SLURM_SUBMIT_HOST": "localhost",
                                                                                   "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip() == str(["-m", "ipykernel_launcher", "-f", "/k.json", "--ip=127.0.0.1"])
