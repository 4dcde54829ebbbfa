"""Servers and kernels in a container image (Charliecloud's ch-run, Debian's), on the demo's
image (site/images.py): a server on a login node and one in a Slurm job run inside the image
(its /etc/os-release, the user's home, the hub's token and socket as for bare servers); a
kernel in the image beside a bare JupyterLab, and one in a batch job; an image outside the
admin's list refused naming the field; a missing image failing the spawn in ch-run's words.
(The secrets test and the idle culler's cover containerised servers too.)"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import time

import pytest

from hpchub.site.images import CONTAINER_KERNEL, DEMO_IMAGE

from ..kernel_client import KernelClient
from ..site_handle import check, clean_hub, hub_settings, progress_events, spawn, stop_all, wait_until
from .test_batch_kernel import kernel_jobs
from .test_credentials import login_ok
from .test_slurm_spawner import queue
from .test_ssh_spawner import run_in_kernel

# Where the code runs, as the kernel sees it: the image's label and os-release (by inode: the
# image is Debian 12 as the nodes are, so the text alone would not tell), home, user, folder.
WHERE = """import json, os, getpass, socket
label = json.load(open('/etc/hpchub-image')) if os.path.exists('/etc/hpchub-image') else None
print(json.dumps({"image": label and label["name"], "os_release": os.stat('/etc/os-release').st_ino,
                  "home": os.environ['HOME'], "cwd": os.getcwd(), "user": getpass.getuser(),
                  "host": socket.gethostname(), "slurm_here": os.path.exists('/etc/slurm'),
                  "home_files": sorted(os.listdir('/home'))}))"""


def image_os_release() -> int:
    """The inode of the image's os-release (read once the test site, which builds it, is up)."""
    return os.stat(DEMO_IMAGE / "etc" / "os-release").st_ino


COMPUTE = {"c1", "c2", "c3", "c4"}


@pytest.fixture
def hub(loopback_site):
    yield from clean_hub(loopback_site)


def where(hub, code_server: str = "", kernel: str | None = None) -> dict:
    if kernel is None:
        return json.loads(run_in_kernel(hub, "alice", WHERE, server=code_server).strip().splitlines()[-1])
    return json.loads(run_kernel(hub, kernel, WHERE, server=code_server).strip().splitlines()[-1])


def run_kernel(hub, name: str, code: str, server: str = "") -> str:
    base = f"{hub.url}/user/alice" + (f"/{server}" if server else "")

    async def go():
        client = KernelClient(base, hub.handle.site.hub.admin_token())
        client.start_kernel(name)
        await client.connect(timeout=90)
        try:
            return await client.execute(code, timeout=120)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_servers_run_inside_the_image_on_a_login_node_and_in_a_job(loopback_site, hub):
    site = loopback_site
    login_ok(hub, "alice")
    on_login = spawn(hub, "alice", "lc", options={"target": "login-container"})
    in_job = spawn(hub, "alice", "jc", options={"target": "compute-container"}, timeout=180)
    seen = {"lc": where(hub, "lc"), "jc": where(hub, "jc")}
    home = pwd.getpwnam("alice").pw_dir
    for name, inside in seen.items():
        assert inside["image"] == DEMO_IMAGE.name and inside["os_release"] == image_os_release(), (name, inside)
        assert not inside["slurm_here"]  # the node's /etc/slurm is not in the image
        assert (inside["home"], inside["cwd"], inside["user"]) == (home, home, "alice")
        assert inside["home_files"] == ["alice"]  # ch-run's --home: no other user's home is there
    assert seen["lc"]["host"] == on_login["state"]["host"] and seen["jc"]["host"] in COMPUTE
    assert queue(site, "alice") == {in_job["state"]["job_id"]: "RUNNING"}
    # The walltime notice inside the image (which has no Slurm commands): the job's end as the
    # launcher read it when the job started.
    import requests
    notice = requests.get(f"{hub.url}/user/alice/jc/hpchub/walltime", timeout=30,
                          headers={"Authorization": f"token {site.site.hub.admin_token()}"}).json()
    assert notice["job_id"] == in_job["state"]["job_id"] and 0 < notice["end"] - time.time() <= 3600
    # What the notebook writes lands in alice's real home, hers.
    run_in_kernel(hub, "alice", "open('container-was-here.txt', 'w').write('hello')", server="jc")
    written = check(site.ssh("alice", ["stat", "-c", "%U %s", f"{home}/container-was-here.txt"])).stdout.split()
    assert written == ["alice", "5"]
    site.ssh("alice", ["rm", "-f", f"{home}/container-was-here.txt"])
    # The server on the login node is the process the launcher started (ch-run exec'd into it),
    # inside the image, and the hub reaches it on its socket in its 0700 directory.
    node = on_login["state"]["host"]
    pid = on_login["state"]["pid"]
    root_of = check(site.in_node(node, ["stat", "-L", "-c", "%i", f"/proc/{pid}/root/etc/os-release"])).stdout
    assert int(root_of) == image_os_release()
    uid = pwd.getpwnam("alice").pw_uid
    listing = site.in_node(node, ["stat", "-c", "%a %U", f"/tmp/hpchub-{uid}/{on_login['state']['server_id']}"])
    assert listing.stdout.split() == ["700", "alice"]
    # It has a mount namespace of its own, and `site down` still finds it as the node's (by
    # the node's hostname namespace): nothing of a container outlives its site.
    assert pid in site.site.nodes.processes()
    stop_all(hub)
    assert not [cmd for cmd in site.processes_in_node(node, "alice") if "ch-run" in cmd or "singleuser" in cmd]
    assert queue(site, "alice") == {}


def test_a_kernel_in_the_image_beside_a_bare_jupyterlab_and_one_in_a_batch_job(loopback_site, hub):
    site = loopback_site
    env = site.info["jupyter_env"]
    login_ok(hub, "alice")
    bare = spawn(hub, "alice", options={"target": "login"})
    # The site's container kernel (site up registers it): the image's Python, JupyterLab outside.
    inside = where(hub, kernel=CONTAINER_KERNEL)
    assert inside["image"] == DEMO_IMAGE.name and inside["os_release"] == image_os_release()
    assert inside["host"] == bare["state"]["host"]
    assert where(hub)["image"] is None  # the server's own kernel is not in the image
    # Alice's own: the image in a Slurm job (`hpchub kernel add NAME --container IMAGE --slurm ...`).
    check(site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "add", "image-job", "--container", str(DEMO_IMAGE),
                             "--slurm", "--partition batch --time 0:10:00"]))
    try:
        token = site.site.hub.admin_token()

        async def scenario():
            client = KernelClient(f"{hub.url}/user/alice", token)
            client.start_kernel("image-job")
            await client.connect(timeout=120)
            jobs = kernel_jobs(site)
            seen = json.loads((await client.execute(WHERE, timeout=120)).strip().splitlines()[-1])
            await client.aclose()
            return client.kernel_id, jobs, seen

        kernel_id, jobs, seen = asyncio.run(scenario())
        assert list(jobs.values()) == ["RUNNING"] and seen["host"] in COMPUTE
        assert seen["image"] == DEMO_IMAGE.name and seen["os_release"] == image_os_release()
        import requests
        deleted = requests.delete(f"{hub.url}/user/alice/api/kernels/{kernel_id}", timeout=60,
                                  headers={"Authorization": f"token {token}"})
        assert deleted.status_code == 204
        wait_until("the kernel's job gone", lambda: not kernel_jobs(site), timeout=40)
    finally:
        site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "remove", "image-job"])


def test_kernel_add_says_why_an_image_cannot_run_a_kernel(loopback_site):
    site = loopback_site
    env = site.info["jupyter_env"]
    proc = site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "add", "nothing", "--container", "/opt/hpchub/images/none"])
    assert proc.returncode == 1
    assert "ipykernel cannot be imported in the image /opt/hpchub/images/none" in proc.stderr
    assert "ch-run" in proc.stderr and "No such file or directory" in proc.stderr  # ch-run's own words
    # An image without ipykernel: the node's own root as an "image" has no python3 with it.
    listed = check(site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "list"])).stdout
    assert "nothing" not in listed


def test_an_image_outside_the_admins_list_is_refused_and_nothing_is_submitted(loopback_site, hub):
    site = loopback_site
    login_ok(hub, "alice")
    for image in ("/opt/hpchub/jupyter", str(DEMO_IMAGE) + "/../../jupyter", "docker.io/library/python"):
        response = hub.admin("POST", "/users/alice/servers/x", json={"user_options": {
            "target": "compute-container", "image": image}})
        assert response.status_code == 400, response.text
        message = response.json()["message"]
        assert message.startswith("image: ") and "is not one of the images offered here" in message
    response = hub.admin("POST", "/users/alice/servers/x", json={"user_options": {"target": "compute", "image": "x"}})
    assert response.status_code == 400 and response.json()["message"] == "image: Compute node runs no image of your choice"
    assert queue(site, "alice") == {}
    assert hub.admin("GET", "/users/alice").json()["servers"] == {}


MISSING = {"name": "broken-image", "title": "Broken image", "kind": "login",
           "container": {"runtime": "charliecloud", "image": "/opt/hpchub/images/missing"}}


def test_a_missing_image_fails_the_spawn_in_the_runtimes_words(loopback_site, hub):
    site = loopback_site
    with hub_settings(site, f"c.HPCSpawner.targets.append({MISSING!r})\n", name="50-broken-image"):
        login_ok(hub, "alice")
        response = hub.admin("POST", "/users/alice/server", json={"user_options": {"target": "broken-image"}})
        assert response.status_code == 202, response.text
        events = progress_events(hub, "alice")
        wait_until("the spawn ended", lambda: not hub.admin("GET", "/users/alice").json()["servers"], timeout=60)
    failure = events[-1]
    assert failure.get("failed"), events
    # What alice reads: ch-run's own words, no traceback, no command line of the hub's.
    assert "can't stat: /opt/hpchub/images/missing: No such file or directory" in failure["message"], failure
    assert "Traceback" not in failure["message"] and "hpchub-charliecloud" not in failure["message"]
    for node in ("login1", "login2"):
        assert not [cmd for cmd in site.processes_in_node(node, "alice") if "ch-run" in cmd or "singleuser" in cmd]
