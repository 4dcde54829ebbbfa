"""The hub image without Docker: its build steps (container/install-hub.sh) run into a clean
directory, and a hub from that directory, configured only by the image's jupyterhub_config.py
and environment variables, serves a login and a spawn on the real site; `hpchub check` from
the image passes. The compose file is checked for consistency with the image's settings."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time

import pytest
import yaml


from ..integration.test_credentials import login_ok
from ..integration.test_slurm_spawner import answers
from ..site_handle import HubClient, spawn, stop, wait_for_hub

from .image import CONTAINER, ROOT, build_context, image_env, image_hub_state, tracked_files

# Files a checkout may hold beside the image's sources (compose's secrets and site files, a
# developer's environment and keys), planted into a copy of the repository by the context test.
PLANTED_SECRETS = ["container/secrets/ca_token", "container/secrets/db_password", "container/site/ca-service/user_ca",
                   "container/site/ca-service/tls.key", "container/site/known_hosts", "container/hub.env",
                   ".venv/bin/python", ".venv/lib/python3.11/site-packages/x.py", ".env", "id_ed25519",
                   ".git/config", "src/hpchub/user_ca", "src/hpchub/id_rsa", "src/hpchub/id_ecdsa_sk", "src/hub.env", "tests/keys/ca.pem",
                   "benchmarks/results/bench.json", "build/docs/index.html", "src/secrets/token"]


def test_the_build_context_holds_no_key_token_or_environment(tmp_path):
    checkout = tmp_path / "checkout"
    for name in tracked_files():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, checkout / name)
    for name in PLANTED_SECRETS:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("-----BEGIN OPENSSH PRIVATE KEY----- planted by the test\n")
    context = build_context(checkout)
    assert not [name for name in PLANTED_SECRETS if name in context]
    assert not [name for name in context if ".venv" in name or "__pycache__" in name]
    # Nothing the image is built from is left out (a rule meant for secrets must not drop source).
    needed = [name for name in tracked_files() if name.startswith(("src/", "jupyter-config/"))]
    needed += ["pyproject.toml", "README.md", "container/install-hub.sh", "container/jupyterhub_config.py"]
    assert not [name for name in needed if name not in context]
    copied = re.findall(r"^COPY (\S+)", (CONTAINER / "Dockerfile").read_text(), re.MULTILINE)
    assert copied and all(path == "." or path in context for path in copied), copied
@pytest.fixture(scope="module")
def image_hub(loopback_site, image_prefix):
    site = loopback_site
    state = image_hub_state(site, "image-hub", proxy_api_port=site.layout.port_base + 95)
    env = image_env(site, state, image_prefix)
    as_hub = site.site.hub.as_hub_user
    log = open(state / "hub.log", "w")
    proc = subprocess.Popen(as_hub([str(image_prefix / "bin" / "hpchub-hub"), "-f",
                                    str(CONTAINER / "jupyterhub_config.py")]), cwd=state, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    client = HubClient(site)
    client.url = env["HPCHUB_PUBLIC_URL"]
    try:
        assert wait_for_hub(client.url, proc), (state / "hub.log").read_text()[-3000:]
        yield client, env, state, as_hub, image_prefix
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        # The tunnel service it started outlives it by design; this hub's is ended here ("--":
        # the pattern begins with a dash). The site's marker lets `site down` sweep it otherwise.
        pattern = f"tunnels serve --socket {state}/tunnels.sock"
        subprocess.run(["pkill", "-f", "--", pattern], check=False)
        deadline = time.monotonic() + 10
        while subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, f"the image hub's tunnel service outlived the test: {pattern}"
            time.sleep(0.1)
        shutil.rmtree(state, ignore_errors=True)


def test_the_images_build_steps_give_every_program_it_promises(image_prefix):
    for argv in (["hpchub-hub", "--version"], ["configurable-http-proxy", "--version"], ["traefik", "version"],
                 ["jupyterhub-idle-culler", "--help"]):
        proc = subprocess.run([str(image_prefix / "bin" / argv[0]), *argv[1:]], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, (argv, proc.stderr)


def test_a_hub_from_the_image_logs_in_and_spawns_on_the_site(loopback_site, image_hub):
    client, env, state, as_hub, prefix = image_hub
    session = login_ok(client, "alice")
    assert session.get(f"{client.url}/hub/home", timeout=10).status_code == 200
    try:
        model = spawn(client, "alice", options={"target": "login"})
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{(state / 'hub.log').read_text()[-3000:]}") from None
    assert model["state"]["host"] in ("login1", "login2")
    assert answers(client, "alice")
    stop(client, "alice")

    check = subprocess.run(as_hub([str(prefix / "bin" / "hpchub"), "check", "-f", str(CONTAINER / "jupyterhub_config.py"),
                                   "--job-timeout", "60"]), capture_output=True, text=True, timeout=300, env=env,
                           cwd=state)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_compose_file_agrees_with_the_image():
    compose = yaml.safe_load((CONTAINER / "compose.yaml").read_text())
    header = [line for line in (CONTAINER / "jupyterhub_config.py").read_text().splitlines() if line.startswith("#")]
    documented = set(re.findall(r"\b(?:HPCHUB|JUPYTERHUB|CONFIGPROXY)_[A-Z_]+\b", "\n".join(header)))
    used = set(re.findall(r'env\("(HPCHUB_[A-Z_]+)"', (CONTAINER / "jupyterhub_config.py").read_text()))
    assert used <= documented, used - documented  # every setting the image reads is documented in it
    hub = compose["services"]["hub"]
    assert set(hub["environment"]) <= documented
    example = [line.split("=", 1)[0].lstrip("# ") for line in (CONTAINER / "hub.env.example").read_text().splitlines()
               if "=" in line and not line.startswith("# The")]
    assert set(example) <= documented, set(example) - documented
    for service in compose["services"].values():
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"]
    assert hub["build"]["dockerfile"] == "container/Dockerfile" and (CONTAINER / "Dockerfile").exists()
    dockerfile = (CONTAINER / "Dockerfile").read_text()
    assert "container/install-hub.sh" in dockerfile and "USER jupyterhub" in dockerfile
