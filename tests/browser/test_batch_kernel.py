"""Kernels in a Slurm job while JupyterLab stays on a login node (`hpchub kernel add --slurm`),
in Chromium: a kernel whose job waits in the queue says so and starts on a compute node when
the job does; shut down from the menu, its job is gone. (Interrupt and restart:
tests/integration/test_batch_kernel.py.)"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from ..integration.test_batch_kernel import COMPUTE, kernel_jobs
from ..integration.test_slurm_spawner import block_debug_partition
from ..site_handle import check, wait_until
from .test_spawn_page import log_in, shot, start_from_form, wait_for_lab


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
