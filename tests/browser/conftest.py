"""Debian's Chromium, driven by Playwright (never Playwright's own browser download)."""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import sync_playwright

from ..site_handle import HubClient, stop_all

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach the internet, which this machine has not.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would break asyncio.run() in tests that come after it.
@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


BROWSER_ZONE = "America/Denver"


@pytest.fixture
def page(browser):
    # The user's browser in a third zone, beside the hub's (UTC) and the cluster's (Europe/Berlin).
    context = browser.new_context(timezone_id=BROWSER_ZONE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@contextlib.contextmanager
def idle_hub(site):
    """The site's hub, with no server of alice's or bob's (and no job of theirs) before or after."""
    client = HubClient(site)
    stop_all(client)
    try:
        yield client
    finally:
        stop_all(client)
        for user in ("alice", "bob"):
            site.ssh(user, ["scancel", "--user", user])
        client.close()


@pytest.fixture
def hub(loopback_site):
    with idle_hub(loopback_site) as client:
        yield client
