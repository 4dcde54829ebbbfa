"""Big work from a notebook (hpchub.cluster): dask and ipyparallel on the compute nodes from a
kernel in a spawned server, the dask dashboard through the hub for its owner only, and no job
left in the queue after the kernel ends, cleanly or killed."""

from __future__ import annotations

import asyncio
import json
import re
import time
from importlib import resources

import pytest
import requests

from hpchub.site.system import demo_passwords

from ..kernel_client import KernelClient
from ..site_handle import check, clean_hub, spawn
from .test_credentials import login_ok
from .test_slurm_spawner import queue
from .test_ssh_spawner import run_in_kernel


@pytest.fixture
def hub(site):
    yield from clean_hub(site)


@pytest.fixture
def loop_hub(loopback_site):
    """For the tests that run in loopback mode only."""
    yield from clean_hub(loopback_site)


def wait_queue_empty(site, user: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (left := queue(site, user)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


DASK = """
import json, socket
from hpchub.cluster import dask_cluster
import dask.array as da
cluster, client = dask_cluster(jobs=2, memory="3GB", walltime="00:10:00")  # one worker per node
client.wait_for_workers(2, timeout=120)
total = float(da.ones((2000, 2000), chunks=(500, 500)).sum().compute())
hosts = sorted(set(client.run(socket.gethostname).values()))
port = cluster.scheduler_info["services"]["dashboard"]
import warnings
from dask_jobqueue import SLURMCluster
with warnings.catch_warnings():  # (where nodes have no route to the internet, dask warns it cannot
    warnings.simplefilter("ignore")  # find its address by one, on stderr, which this probe reads)
    plain = SLURMCluster(cores=1, memory="1GB")  # dask-jobqueue's own quick start, unchanged
plain_link, plain_port = plain.dashboard_link, plain.scheduler_info["services"]["dashboard"]
plain.close()
print(json.dumps({"total": total, "hosts": hosts, "link": cluster.dashboard_link, "port": port,
                  "plain_link": plain_link, "plain_port": plain_port}))
"""


def test_dask_sums_an_array_across_two_compute_nodes_with_its_dashboard_through_the_hub(site, hub):
    session = login_ok(hub, "alice")
    spawn(hub, "alice")  # a login node: the scheduler runs in the kernel there
    bob, _ = hub.login("bob", demo_passwords()["bob"])

    async def scenario():
        client = KernelClient(f"{hub.url}/user/alice", site.site.hub.admin_token())
        client.start_kernel()
        await client.connect()
        try:
            out = json.loads(await client.execute(DASK))
            # The dashboard while the cluster lives: alice through her server; bob is refused.
            page = await asyncio.to_thread(session.get, f"{hub.url}{out['link']}", timeout=30)
            refused = await asyncio.to_thread(bob.get, f"{hub.url}{out['link']}", timeout=30)
            await client.execute("cluster.close(); client.close()")
            return out, page, refused
        finally:
            await client.aclose()

    out, page, refused = asyncio.run(scenario())
    assert out["total"] == 2000 * 2000
    assert len(out["hosts"]) == 2 and set(out["hosts"]) <= {"c1", "c2", "c3", "c4"}
    assert out["link"] == f"/user/alice/proxy/{out['port']}/status"
    # Any dask cluster of a kernel of the site links its dashboard through the user's server.
    assert out["plain_link"] == f"/user/alice/proxy/{out['plain_port']}/status"
    assert page.status_code == 200 and "Dask" in page.text
    assert refused.status_code == 403
    assert wait_queue_empty(site, "alice") == {}


def test_ipyparallel_engines_on_two_nodes(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    spawn(hub, "alice")
    code = ("import json, socket\nfrom hpchub.cluster import ipyparallel_cluster\n"
            "rc = ipyparallel_cluster(engines=2, walltime='00:10:00')\n"
            "hosts = sorted(set(rc[:].apply_sync(socket.gethostname)))\n"
            "rc.hpchub_cluster.stop_cluster_sync()\nprint(json.dumps(hosts))")
    out = run_in_kernel(hub, "alice", code)
    hosts = json.loads(out.strip().splitlines()[-1]) if out.strip() else out
    assert len(hosts) == 2 and set(hosts) <= {"c1", "c2", "c3", "c4"}
    assert wait_queue_empty(site, "alice") == {}


def test_a_killed_kernel_leaves_no_worker_in_the_queue(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    spawn(hub, "alice")
    code = ("import os, threading, time\nfrom hpchub.cluster import dask_cluster\n"
            "cluster, client = dask_cluster(jobs=3, memory='3GB', walltime='00:10:00')\n"
            "deadline = time.time() + 30\n"
            "while len(cluster.workers) < 3 and time.time() < deadline: time.sleep(0.2)\n"
            "print(len(cluster.workers))\n"
            "threading.Timer(1, lambda: os.kill(os.getpid(), 9)).start()  # SIGKILL, no clean-up\n")
    assert run_in_kernel(hub, "alice", code).strip() == "3"
    assert queue(site, "alice"), "the worker jobs should be in the queue before the kill"
    assert wait_queue_empty(site, "alice", timeout=30) == {}


def test_a_kernel_added_with_hpchub_kernel_add_is_listed_and_runs_through_its_wrapper(loopback_site, loop_hub):
    site, hub = loopback_site, loop_hub
    env = site.info["jupyter_env"]
    try:
        # As alice on a login node: her own kernel, started through a plain wrapper.
        check(site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "add", env, "--name", "mine",
                                 "--display-name", "Python (alice's)", "--wrapper", "env HPCHUB_WRAPPED=yes"]))
        login_ok(hub, "alice")
        spawn(hub, "alice")
        token = site.site.hub.admin_token()
        answer = requests.get(f"{hub.url}/user/alice/api/kernelspecs", timeout=30,
                              headers={"Authorization": f"token {token}"}).json()
        specs = answer["kernelspecs"]
        assert specs["mine"]["spec"]["display_name"] == "Python (alice's)"
        # One kernel that runs the site's environment's Python itself (not ipykernel's own
        # beside it), and the default. (The site's container kernel runs the image's Python.)
        assert specs["python3"]["spec"]["display_name"] == "Python 3 (site: dask, ipyparallel, Spark, yt)"
        pythons = [name for name, spec in specs.items() if spec["spec"]["argv"][0].startswith(f"{env}/bin/python")]
        assert answer["default"] == "python3" and pythons == ["python3"], (answer["default"], sorted(specs))
        assert specs["image-bookworm"]["spec"]["metadata"]["hpchub"]["container"]["runtime"] == "charliecloud"

        async def run_mine():
            client = KernelClient(f"{hub.url}/user/alice", token)
            client.start_kernel("mine")
            await client.connect()
            try:
                return await client.execute("import os, getpass; print(os.environ['HPCHUB_WRAPPED'], getpass.getuser())")
            finally:
                await client.aclose()

        assert asyncio.run(run_mine()).split() == ["yes", "alice"]
        refused = site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "add", "/usr", "--name", "bad"])
        assert refused.returncode == 1 and "ipykernel cannot be imported in /usr" in refused.stderr
    finally:
        site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "remove", "mine"])


RUN_NOTEBOOK = r"""
import json, nbformat, nbclient
nb = nbformat.reads(%(notebook)r, as_version=4)
nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
print(json.dumps(["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in nb.cells]))
"""


@pytest.mark.parametrize("notebook, expected", [
    ("dask.ipynb", [r"mean: 0\.5", r"workers on: \['c\d', 'c\d'\]"]),
    ("ipyparallel.ipynb", [r"engines on: \['c\d', 'c\d'\]", "sum of squares: 328350"]),
    ("spark.ipynb", ["count: 10000000", "even numbers: 500"]),
    ("yt-volume.ipynb", ["8 grids", "rendered 256 x 256 -> cloud.png"]),
])
def test_the_example_notebooks_run_on_the_compute_nodes(loopback_site, loop_hub, notebook, expected):
    site, hub = loopback_site, loop_hub
    login_ok(hub, "alice")
    spawn(hub, "alice")
    source = resources.files("hpchub").joinpath("examples", notebook).read_text()
    out = run_in_kernel(hub, "alice", RUN_NOTEBOOK % {"notebook": source})
    text = "\n".join(json.loads(out.strip().splitlines()[-1]))
    for pattern in expected:
        assert re.search(pattern, text), (pattern, text)
    assert wait_queue_empty(site, "alice") == {}
