"""Kernels in a Slurm job (`hpchub kernel add --slurm`), over the server's API: a kernel on a
compute node while the server is on a login node, interrupted (a message: no signal crosses
nodes), restarted in a new job, shut down with no job left. (Waiting in the queue, in
Chromium: tests/browser/test_batch_kernel.py.)"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import requests

from ..kernel_client import KernelClient
from ..site_handle import HubClient, check, spawn, stop_all, wait_until
from .test_credentials import login_ok
from .test_slurm_spawner import queue


@pytest.fixture
def loop_hub(loopback_site):
    client = HubClient(loopback_site)
    stop_all(client)
    yield client
    stop_all(client)
    client.close()


COMPUTE = {"c1", "c2", "c3", "c4"}


def kernel_jobs(site) -> dict[str, str]:
    out = check(site.ssh("alice", ["squeue", "--noheader", "--user=alice", "--format=%i %j %T"])).stdout
    return {job: state for job, name, state in (line.split() for line in out.splitlines())
            if name.startswith("jupyter-kernel-")}


def test_a_batch_kernel_is_interrupted_restarted_in_a_new_job_and_shut_down_with_no_job_left(
        loopback_site, loop_hub, batch_kernel):
    site, hub = loopback_site, loop_hub
    batch_kernel("batch", "Python in a Slurm job")
    login_ok(hub, "alice")  # (a certificate of her own: no earlier test's login is counted on)
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
