"""The systemd units (systemd/): `systemd-analyze verify` accepts them (their programs from the
image's build steps), and their commands, run as the units would run them - the proxy, the
tunnel service and the hub each a process of its own, as the unit's user, with its
EnvironmentFile and directories - serve the test site. Killed together and started again (a
restart of the three units, or of the machine's services), the server they serve answers a
fresh login again. (Paths and ports of the units are put where the test's own are.)"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hpchub.site.layout import HUB_OS_USER
from hpchub.site.nodes import SITE_MARKER
from hpchub.site.system import demo_passwords

from ..site_handle import HubClient, opens_to_a_fresh_login, spawn, stop, wait_for_hub
from .image import CONTAINER, ROOT, image_env, image_hub_state

UNITS = ROOT / "systemd"


def service_section(unit: Path) -> dict[str, str]:
    """The [Service] settings of a unit (each key once: hpchub's units repeat none)."""
    settings, section = {}, ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings[key] = value
    return settings


def test_each_unit_passes_systemd_analyze_verify_and_keeps_to_its_own_cgroup(image_prefix, tmp_path):
    units = sorted(UNITS.glob("*.service"))
    assert [u.name for u in units] == ["hpchub-ca.service", "hpchub-hub.service", "hpchub-proxy.service",
                                       "hpchub-tunnels.service"]
    for unit in units:
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/hpchub/", f"{image_prefix}/"))
        service = service_section(unit)
        assert service["KillMode"] == "control-group" and service["Restart"] in ("always", "on-failure"), unit
    proc = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(tmp_path.glob("*.service")))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip() and not proc.stdout.strip(), proc.stdout + proc.stderr
    hub = (UNITS / "hpchub-hub.service").read_text()
    assert "Wants=network-online.target hpchub-proxy.service hpchub-tunnels.service" in hub


class UnitProcesses:
    """Runs units' commands as systemd would, with the test's paths and ports in place of theirs."""

    def __init__(self, site, prefix: Path):
        self.site, self.prefix = site, prefix
        base = site.layout.port_base
        self.public, self.proxy_api, self.hub_api = base + 40, base + 41, base + 42
        self.runtime = Path(f"/run/hpchub-units-{site.name}")  # the units' /run/hpchub
        self.state = Path(f"/var/lib/hpchub-tests/units-{site.name}")  # the hub unit's /var/lib/jupyterhub
        self.etc = self.state / "etc"  # /etc/hpchub: the EnvironmentFiles
        self.processes: dict[str, subprocess.Popen] = {}

    def prepare(self) -> dict:
        image_hub_state(self.site, "units")
        shutil.rmtree(self.runtime, ignore_errors=True)
        self.runtime.mkdir(parents=True, mode=0o700)
        self.etc.mkdir()
        env = {**image_env(self.site, self.state, self.prefix),
               "HPCHUB_PUBLIC_URL": f"http://127.0.0.1:{self.public}",
               "HPCHUB_HUB_BIND_URL": f"http://127.0.0.1:{self.hub_api}",
               "HPCHUB_PROXY": "chp-service", "HPCHUB_PROXY_API_URL": f"http://127.0.0.1:{self.proxy_api}",
               "HPCHUB_TUNNEL_SERVICE": f"{self.runtime}/tunnels.sock"}
        with open(self.state / "config.d" / "50-test.py", "a") as extra:
            extra.write("c.HPCHub.tunnel_check_interval = 1\n")
        (self.etc / "hub.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        (self.etc / "proxy.env").write_text(f"CONFIGPROXY_AUTH_TOKEN={env['CONFIGPROXY_AUTH_TOKEN']}\n")
        for path in (self.runtime, self.state):
            subprocess.run(["chown", "-R", f"{HUB_OS_USER}:{HUB_OS_USER}", str(path)], check=True)
        for path in (self.etc / "hub.env", self.etc / "proxy.env", self.state / "user_ca"):
            path.chmod(0o600)
        return env

    def command(self, unit: str) -> tuple[list[str], dict, Path]:
        service = service_section(UNITS / unit)
        text = service["ExecStart"]
        for theirs, ours in (("/opt/hpchub/", f"{self.prefix}/"), ("/run/hpchub", str(self.runtime)),
                             ("/etc/hpchub/known_hosts", str(self.site.layout.known_hosts)),
                             ("/etc/jupyterhub/jupyterhub_config.py", str(CONTAINER / "jupyterhub_config.py")),
                             ("--port 8000", f"--port {self.public}"), ("--api-port 8001", f"--api-port {self.proxy_api}"),
                             ("127.0.0.1:8081", f"127.0.0.1:{self.hub_api}")):
            text = text.replace(theirs, ours)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": str(self.state), SITE_MARKER: self.site.name}  # (`site down` and the suite's check find them)
        if "EnvironmentFile" in service:
            name = Path(service["EnvironmentFile"]).name
            env.update(line.split("=", 1) for line in (self.etc / name).read_text().splitlines() if "=" in line)
        cwd = self.state if service.get("WorkingDirectory") == "/var/lib/jupyterhub" else Path("/")
        argv = ["setpriv", f"--reuid={service['User']}", f"--regid={service['Group']}", "--init-groups", "--",
                *text.split()]
        return argv, env, cwd

    def start(self, unit: str) -> None:
        argv, env, cwd = self.command(unit)
        with open(self.state / f"{unit}.log", "a") as log:  # (the process keeps its own descriptor)
            self.processes[unit] = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True)

    def kill_all(self) -> None:
        for proc in self.processes.values():
            os.killpg(proc.pid, signal.SIGKILL)  # the unit's cgroup, as systemd's KillMode would
            proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        shutil.rmtree(self.runtime, ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture
def units(loopback_site, image_prefix):
    processes = UnitProcesses(loopback_site, image_prefix)
    try:
        yield processes
    finally:
        processes.stop()


def test_the_units_commands_serve_the_site_and_a_restart_of_all_three_cuts_no_server(loopback_site, units):
    site = loopback_site
    units.prepare()
    client = HubClient(site)
    client.url = f"http://127.0.0.1:{units.public}"
    for unit in ("hpchub-proxy.service", "hpchub-tunnels.service", "hpchub-hub.service"):
        units.start(unit)
    try:
        assert wait_for_hub(client.url, units.processes["hpchub-hub.service"]), \
            (units.state / "hpchub-hub.service.log").read_text()[-3000:]
        client.login("alice", demo_passwords()["alice"])
        spawn(client, "alice", options={"target": "login"})
        assert opens_to_a_fresh_login(client, "alice", "")
        units.kill_all()  # all three units' processes at once
        for unit in ("hpchub-proxy.service", "hpchub-tunnels.service", "hpchub-hub.service"):
            units.start(unit)  # Restart= brings each back
        assert wait_for_hub(client.url, units.processes["hpchub-hub.service"])
        deadline = time.monotonic() + 10
        while not opens_to_a_fresh_login(client, "alice", ""):
            assert time.monotonic() < deadline, (units.state / "hpchub-hub.service.log").read_text()[-3000:]
            time.sleep(0.5)
        stop(client, "alice")
    finally:
        client.close()
