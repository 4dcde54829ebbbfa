"""The hub's image itself, built by podman (Debian's) from container/Dockerfile the way a centre
builds it (container/build-image.sh; its base made with debootstrap where no registry is
reachable), from a checkout in which keys, tokens and a .venv lie beside the sources: none of
them is in any layer. The built image's hub (run with `buildah run`, since `podman run` cannot
set resource limits on these machines) logs a user in over PAM - the site's accounts given to
the container as read-only files - and starts a server on the test site."""

from __future__ import annotations

import grp
import json
import pwd
import secrets
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from hpchub.site.layout import HUB_OS_USER

from ..integration.test_credentials import login_ok
from ..integration.test_slurm_spawner import answers
from ..site_handle import HubClient, spawn, stop, wait_for_hub
from .image import ROOT, image_env, image_hub_state, tracked_files

PLANTED = ["container/secrets/ca_token", "container/secrets/db_password", "container/site/ca-service/user_ca",
           "container/hub.env", "container/proxy.env", ".venv/lib/secret.py", "id_ed25519", "src/hpchub/user_ca"]
IMAGE_PREFIX = "/opt/hpchub"  # where the Dockerfile installs the hub's environment


@pytest.fixture(scope="module")
def built_image(loopback_site):
    """The image, built from a checkout with secrets planted in it; (tag, the planted secret)."""
    source = Path(f"/var/lib/hpchub-tests/image-src-{loopback_site.name}")
    shutil.rmtree(source, ignore_errors=True)
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    planted = f"hpchub-planted-secret-{secrets.token_hex(16)}"
    for name in PLANTED:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{planted}\n")
    tag = f"localhost/hpchub-hub:test-{loopback_site.name}"
    began = time.monotonic()
    proc = subprocess.run([str(source / "container" / "build-image.sh"), tag], capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"image {tag} built in {time.monotonic() - began:.0f} s: "
          + " ".join(line for line in proc.stdout.splitlines() if line.startswith("build-image:")))
    try:
        yield tag, planted
    finally:
        subprocess.run(["podman", "rmi", "--force", tag], capture_output=True)
        shutil.rmtree(source, ignore_errors=True)


def test_no_key_token_or_environment_is_in_any_layer_of_the_image(built_image, tmp_path):
    tag, planted = built_image
    archive = tmp_path / "image.tar"
    subprocess.run(["podman", "save", "--format", "docker-archive", "-o", str(archive), tag], check=True,
                   capture_output=True, timeout=600)
    with tarfile.open(archive) as image:
        manifest = json.load(image.extractfile("manifest.json"))
        layers = manifest[0]["Layers"]
        assert layers
        names = set()
        for layer in layers:
            with tarfile.open(fileobj=image.extractfile(layer)) as files:
                for member in files:
                    names.add(member.name.lstrip("./"))
                    if member.isfile() and member.size < 64 * 1024 * 1024:
                        content = files.extractfile(member).read()
                        assert planted.encode() not in content, f"{member.name} in layer {layer} holds a secret"
    assert not [n for n in names if n.endswith(("id_ed25519", "ca_token", "db_password", "hub.env", "proxy.env"))]
    assert not [n for n in names if "/.venv/" in f"/{n}"]
    assert f"{IMAGE_PREFIX.lstrip('/')}/bin/hpchub-hub" in names


def in_image(container: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["buildah", "run", "--isolation", "chroot", container, "--", *argv], capture_output=True,
                          text=True, timeout=120, **kw)


def test_the_images_own_programs_are_there_with_node_20(built_image):
    tag, _ = built_image
    container = subprocess.run(["buildah", "from", tag], capture_output=True, text=True, check=True).stdout.strip()
    try:
        assert int(in_image(container, ["node", "--version"]).stdout.strip().lstrip("v").split(".")[0]) >= 20
        for argv in (["hpchub-hub", "--version"], ["configurable-http-proxy", "--version"], ["traefik", "version"],
                     ["tini", "--version"]):
            assert in_image(container, argv).returncode == 0, argv
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)


def test_the_images_hub_logs_in_over_pam_and_spawns_on_the_site(loopback_site, built_image):
    site = loopback_site
    tag, _ = built_image
    state = image_hub_state(site, "image-run", proxy_api_port=site.layout.port_base + 95)
    env = image_env(site, state, Path(IMAGE_PREFIX))
    env.update(HPCHUB_CONFIG_D=str(state / "config.d"), PATH=f"{IMAGE_PREFIX}/bin:/usr/bin:/bin")
    container = subprocess.run(["buildah", "from", tag], capture_output=True, text=True, check=True).stdout.strip()
    # The site's accounts reach the container as read-only files (or through sssd/LDAP, or OIDC):
    # PAM checks alice's password there.
    mounts = [f"--volume={path}:{path}:ro" for path in ("/etc/passwd", "/etc/group", "/etc/shadow")]
    mounts += [f"--volume={state}:{state}", f"--volume={site.layout.known_hosts}:{site.layout.known_hosts}:ro"]
    # The hub's user with group shadow, to read it (`docker run --group-add shadow` elsewhere;
    # buildah run sets no supplementary groups). Numeric: the image's own passwd has other ids.
    user = f"{pwd.getpwnam(HUB_OS_USER).pw_uid}:{grp.getgrnam('shadow').gr_gid}"
    argv = ["buildah", "run", "--isolation", "chroot", "--user", user, f"--workingdir={state}", *mounts,
            *[f"--env={k}={v}" for k, v in env.items()], container, "--",
            f"{IMAGE_PREFIX}/bin/hpchub-hub", "-f", "/etc/jupyterhub/jupyterhub_config.py"]
    log = open(state / "hub.log", "w")
    hub_process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = HubClient(site)
    client.url = env["HPCHUB_PUBLIC_URL"]
    try:
        assert wait_for_hub(client.url, hub_process, timeout=120), (state / "hub.log").read_text()[-3000:]
        login_ok(client, "alice")
        model = spawn(client, "alice", options={"target": "login"})
        assert model["state"]["host"] in ("login1", "login2")
        assert answers(client, "alice")
        stop(client, "alice")
    finally:
        client.close()
        subprocess.run(["pkill", "-TERM", "-s", str(hub_process.pid)], capture_output=True)
        hub_process.send_signal(signal.SIGTERM)
        hub_process.wait(timeout=60)
        log.close()
        pattern = f"tunnels serve --socket {state}/tunnels.sock"
        subprocess.run(["pkill", "-f", "--", pattern], check=False)
        subprocess.run(["buildah", "rm", container], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
