"""Shared fixtures: the real site instances the integration and browser tests run against.

Each is its own named instance (beside a developer's `demo`), brought up from nothing
once per session with the real `hpchub site up` and taken down at the end.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .site_handle import SiteHandle, check, hpchub_site

# HPCHUB_TEST_INSTANCES=a,b names them otherwise (a developer's run beside CI's on one machine).
_NAMES = os.environ.get("HPCHUB_TEST_INSTANCES", "tloop,tiso").split(",")
TEST_SITES = {"loopback": (_NAMES[0], "--loopback"), "isolated": (_NAMES[1], "--isolated")}


def leftover_processes(names: list[str]) -> list[str]:
    """Processes that belong to this run's instances: their marker in the environment, or a
    test-owned path of theirs on the command line. After the instances are down, none may be."""
    from hpchub.site.nodes import SITE_MARKER, all_pids

    markers = {f"{SITE_MARKER}={name}".encode() for name in names}
    paths = [f"/var/lib/hpchub-tests/{kind}-{name}".encode() for name in names
             for kind in ("postgresql", "image-hub")] + [f"/opt/hpchub/image-test-{name}".encode() for name in names]
    found = []
    for pid in all_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone meanwhile, or a kernel thread
        if environ & markers or any(path in cmdline for path in paths):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(f"{pid}: {command}")
    return found


_BROUGHT_UP: list[str] = []  # the instances this run brought up (not another run's beside it)


@pytest.fixture(scope="session", autouse=True)
def leaves_no_process():
    """Torn down last: every instance is down by then, and nothing of theirs may still run."""
    yield
    if _BROUGHT_UP and os.geteuid() == 0:  # /proc/PID/environ of other users' processes needs root
        left = leftover_processes(_BROUGHT_UP)
        assert not left, "processes left behind by the tests:\n" + "\n".join(left)


def _bring_up(name: str, mode_flag: str):
    assert os.geteuid() == 0, "the integration tests bring up a real site: run them as root (make test)"
    check(hpchub_site("down", name, "--purge"))
    _BROUGHT_UP.append(name)
    check(hpchub_site("up", name, mode_flag))
    handle = SiteHandle(name)
    try:
        yield handle
    finally:
        handle.close()
        check(hpchub_site("down", name))


@pytest.fixture(scope="session")
def loopback_site():
    yield from _bring_up(*TEST_SITES["loopback"])


@pytest.fixture(scope="session")
def isolated_site():
    yield from _bring_up(*TEST_SITES["isolated"])


@pytest.fixture(params=list(TEST_SITES))
def site(request) -> SiteHandle:
    """The tests that take this fixture run against both network modes."""
    return request.getfixturevalue(f"{request.param}_site")


@pytest.fixture
def batch_kernel(loopback_site):
    """add(partition, title): alice's kernel "batch" in a Slurm job of that partition; removed afterwards."""
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


# ----- what the hubs logged during a failed test ------------------------------------------------
# CI prints only pytest's output; a failure seen there once (a race) is understood from what the
# hub said meanwhile. Each test instance's hub log is measured before a test and, if the test
# fails, what was added (its end) is shown beside the failure.
_HUB_LOG_LINES = 60


def _hub_logs() -> dict[str, Path]:
    from hpchub.site.layout import STATE_ROOT

    return {name: STATE_ROOT / "sites" / name / "log" / "hub.out" for name, _ in TEST_SITES.values()}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._hub_log_marks = {name: _mark(path) for name, path in _hub_logs().items()}
    yield


def _mark(path: Path) -> tuple[int, int]:
    """(inode, size): a hub restarted by the test writes a new file, read then from its start."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0, 0
    return stat.st_ino, stat.st_size


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed or not hasattr(item, "_hub_log_marks"):
        return
    for name, path in _hub_logs().items():
        inode, size = _mark(path)
        before_inode, before = item._hub_log_marks.get(name, (0, 0))
        start = before if inode == before_inode and size >= before else 0
        if size <= start:
            continue
        with path.open("rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").splitlines()
        report.sections.append((f"{name}'s hub log during the test (last {_HUB_LOG_LINES} lines)",
                                "\n".join(lines[-_HUB_LOG_LINES:])))
