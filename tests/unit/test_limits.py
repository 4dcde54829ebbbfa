"""The tunnel service and the hub raise their soft limit on open files: started as systemd
starts a service (soft 1024), they would run out at some 500 users on login nodes."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

from hpchub.limits import ENOUGH_OPEN_FILES, raise_open_files_limit


def as_systemd_starts_a_service():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


def soft_open_files(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open files line in /proc/{pid}/limits")


def test_the_tunnel_service_runs_with_its_soft_limit_raised(tmp_path):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard > 1024, "this test needs a hard limit above systemd's soft one"
    socket = tmp_path / "tunnels.sock"
    (tmp_path / "known_hosts").write_text("")
    log = tmp_path / "tunnels.log"
    with log.open("w") as stderr:
        service = subprocess.Popen([str(Path(sys.executable).with_name("hpchub")), "tunnels", "serve",
                                    "--socket", str(socket), "--known-hosts", str(tmp_path / "known_hosts")],
                                   preexec_fn=as_systemd_starts_a_service, stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert service.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the tunnel service did not listen"
            time.sleep(0.05)
        assert soft_open_files(service.pid) == min(ENOUGH_OPEN_FILES, hard)
    finally:
        service.terminate()
        service.wait(timeout=10)


def test_the_hubs_entry_point_raises_it_before_jupyterhub_starts(tmp_path):
    # JupyterHub itself replaced (before hpchub.hubapp binds anything of it) by a no-op.
    probe = ("import resource, jupyterhub.app as j; j.JupyterHub.launch_instance = classmethod(lambda *a, **k: None); "
             "import hpchub.hubapp as h; h.main([]); print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", probe], preexec_fn=as_systemd_starts_a_service,
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == min(ENOUGH_OPEN_FILES, resource.getrlimit(resource.RLIMIT_NOFILE)[1])


def test_a_limit_already_high_enough_or_unraisable_is_left_alone():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_open_files_limit(enough=min(soft, 64)) == (soft, hard)  # never lowered
    assert raise_open_files_limit(enough=hard + 1 if hard != resource.RLIM_INFINITY else 1 << 40)[1] == hard
