"""What the benchmarks share: an instance of their own, the time from a spawn request until
the server answers, and the stand-in server for the scale benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.site_handle import HubClient, SiteHandle, check, hpchub_site


@contextlib.contextmanager
def bench_instance(name: str, clusters: str = "slurm") -> Iterator[tuple[SiteHandle, HubClient]]:
    """The instance `name` (loopback mode, with `clusters`: the Slurm cluster alone unless a
    benchmark measures the Grid Engine one too) brought up from nothing, with a client of its
    hub; purged afterwards."""
    check(hpchub_site("down", name, "--purge"))
    check(hpchub_site("up", name, "--loopback", "--clusters", clusters))
    site = SiteHandle(name)
    hub = HubClient(site)
    try:
        yield site, hub
    finally:
        hub.close()
        site.close()
        hpchub_site("down", name, "--purge")


def time_until_answer(post, url: str, token: str, limit: float = 120) -> float:
    """Seconds from calling post() (the spawn request) until url answers 200, polled every 20 ms."""
    start = time.monotonic()
    response = post()
    assert response.status_code in (201, 202), response.text
    while True:
        try:
            answer = requests.get(url, timeout=5, headers={"Authorization": f"token {token}"})
            if answer.status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        if time.monotonic() - start > limit:
            raise RuntimeError(f"{url} did not answer within {limit:.0f} s")
        time.sleep(0.02)


STAND_IN = Path("/opt/hpchub/bench/stand-in-server")


def install_stand_in() -> str:
    """benchmarks/stand_in_server.py where every node can run it (the nodes share /opt)."""
    STAND_IN.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("stand_in_server.py"), STAND_IN)
    STAND_IN.chmod(0o755)
    return str(STAND_IN)
