"""Kernels in a Slurm job while JupyterLab stays on a login node (`hpchub kernel add --slurm`):
in Chromium, a kernel whose job waits in the queue says so and starts when the job does; over
the API, interrupt, restart (a new job) and shutdown (no job left)."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest
import requests
from playwright.sync_api import expect

from ..integration.test_slurm_spawner import block_debug_partition, queue
from ..kernel_client import KernelClient
from ..site_handle import check, spawn, wait_until
from .test_spawn_page import log_in, shot, start_from_form, wait_for_lab

COMPUTE = {"c1", "c2", "c3", "c4"}


@pytest.fixture
def batch_kernel(loopback_site):
    """alice's kernel "batch" in a job of the given partition (the fixture's parameter)."""
    site = loopback_site
    env = site.info["jupyter_env"]
    added = []

    def add(partition: str, title: str) -> None:
        check(site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "add", env, "--name", "batch",
                                 "--display-name", title, "--slurm", f"--partition {partition} --time 0:10:00"]))
        added.append("batch")

    yield add
    for name in added:
        site.ssh("alice", [f"{env}/bin/hpchub", "kernel", "remove", name])


def kernel_jobs(site) -> dict[str, str]:
    out = check(site.ssh("alice", ["squeue", "--noheader", "--user=alice", "--format=%i %j %T"])).stdout
    return {job: state for job, name, state in (line.split() for line in out.splitlines())
            if name.startswith("jupyter-kernel-")}


def test_a_kernel_waiting_in_the_queue_says_so_and_starts_on_a_compute_node_when_its_job_does(
        loopback_site, hub, page, batch_kernel):
    site = loopback_site
    batch_kernel("debug", "Python in a Slurm job (debug)")
    blocker = block_debug_partition(site)
    try:
        log_in(page, hub, "alice")
        start_from_form(page, "login")
        wait_for_lab(page, "/user/alice/")
        server_host = hub.admin("GET", "/users/alice").json()["servers"][""]["state"]["host"]
        page.goto(f"{hub.url}/user/alice/lab?reset")
        page.locator(".jp-LauncherCard", has_text="Python in a Slurm job (debug)").first.click()
        notice = page.locator(".Toastify__toast", has_text="Your kernel waits in the queue as job")
        expect(notice).to_be_visible(timeout=30_000)
        job = re.search(r"as job (\d+)", notice.inner_text()).group(1)
        assert kernel_jobs(site) == {job: "PENDING"}
        shot(page, "lab-batch-kernel-waiting")
    finally:
        check(site.ssh("bob", ["scancel", blocker]))
    expect(notice).to_be_hidden(timeout=60_000)
    page.wait_for_selector("text=| Idle", timeout=60_000)
    page.click(".jp-NotebookPanel .jp-Cell .jp-InputArea-editor")
    page.keyboard.type("import socket; socket.gethostname()")
    page.keyboard.press("Shift+Enter")
    host = page.wait_for_selector(".jp-OutputArea-output", timeout=60_000).inner_text().strip().strip("'")
    assert host in COMPUTE and server_host in ("login1", "login2"), (host, server_host)
    assert kernel_jobs(site) == {job: "RUNNING"}
    # Shut down from JupyterLab's menu: the kernel ends, and its job with it.
    page.click("text=Kernel")
    page.click(".lm-Menu-item >> text=Shut Down Kernel")
    wait_until("the kernel's job gone", lambda: not kernel_jobs(site), timeout=40)


def test_a_batch_kernel_is_interrupted_restarted_in_a_new_job_and_shut_down_with_no_job_left(
        loopback_site, hub, batch_kernel):
    site = loopback_site
    batch_kernel("batch", "Python in a Slurm job")
    spawn(hub, "alice", options={"target": "login"})
    token = site.site.hub.admin_token()
    api = f"{hub.url}/user/alice/api/kernels"
    headers = {"Authorization": f"token {token}"}

    async def scenario():
        client = KernelClient(f"{hub.url}/user/alice", token)
        client.start_kernel("batch")
        await client.connect()
        first = kernel_jobs(site)
        host = (await client.execute("import socket; print(socket.gethostname())")).strip()
        # An interrupt reaches the kernel on its node (as a message: no signal crosses nodes).
        threading.Timer(3, lambda: requests.post(f"{api}/{client.kernel_id}/interrupt", headers=headers,
                                                 timeout=30)).start()
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="KeyboardInterrupt"):
            await client.execute("import time; time.sleep(120)", timeout=60)
        interrupted_after = time.monotonic() - started
        await client.aclose()
        restarted = requests.post(f"{api}/{client.kernel_id}/restart", headers=headers, timeout=120)
        second = kernel_jobs(site)
        await client.connect()
        again = (await client.execute("import socket; print(socket.gethostname())")).strip()
        await client.aclose()
        return client.kernel_id, first, host, interrupted_after, restarted, second, again

    kernel_id, first, host, interrupted_after, restarted, second, again = asyncio.run(scenario())
    assert len(first) == 1 and list(first.values()) == ["RUNNING"] and host in COMPUTE
    assert interrupted_after < 30
    assert restarted.status_code == 200, restarted.text
    assert len(second) == 1 and set(second) != set(first) and again in COMPUTE  # a new job
    deleted = requests.delete(f"{api}/{kernel_id}", headers=headers, timeout=60)
    assert deleted.status_code == 204
    wait_until("the kernel's job gone", lambda: not kernel_jobs(site), timeout=40)
    assert queue(site, "alice") == {}
