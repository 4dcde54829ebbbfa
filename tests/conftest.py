"""Shared fixtures: the real site instances the integration and browser tests run against.

Each is its own named instance (beside a developer's `demo`), brought up from nothing
once per session with the real `hpchub site up` and taken down at the end.
"""

from __future__ import annotations

import os

import pytest

from .site_handle import SiteHandle, check, hpchub_site

# HPCHUB_TEST_INSTANCES=a,b names them otherwise (a developer's run beside CI's on one machine).
_NAMES = os.environ.get("HPCHUB_TEST_INSTANCES", "tloop,tiso").split(",")
TEST_SITES = {"loopback": (_NAMES[0], "--loopback"), "isolated": (_NAMES[1], "--isolated")}


def _bring_up(name: str, mode_flag: str):
    assert os.geteuid() == 0, "the integration tests bring up a real site: run them as root (make test)"
    check(hpchub_site("down", name, "--purge"))
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
