"""The admin's announcement in Chromium: `hpchub announce` puts a notice on the login, home
and spawn pages of the running hub (no restart), as plain text, and `--clear` takes it away."""

from __future__ import annotations

import subprocess
import sys

from ..site_handle import check
from .test_spawn_page import log_in, shot

NOTICE = "Maintenance on Tuesday 08:00-12:00: <b>save your work</b>"


def announce(site, *args: str) -> subprocess.CompletedProcess:
    return check(subprocess.run([sys.executable, "-m", "hpchub.cli", "announce", "--site", site.name, *args],
                                capture_output=True, text=True, timeout=60))


def test_an_announcement_shows_on_every_page_at_once_and_goes_when_cleared(loopback_site, hub, page):
    site = loopback_site
    try:
        assert announce(site, NOTICE).stdout.strip() == f"announcement: {NOTICE}"
        page.goto(f"{hub.url}/hub/login")
        assert page.inner_text(".announcement") == NOTICE  # as written: not HTML
        log_in(page, hub, "alice")
        page.wait_for_selector("#target-login")
        assert page.inner_text(".announcement") == NOTICE
        shot(page, "spawn-page-announcement")
        page.goto(f"{hub.url}/hub/home")
        assert page.inner_text(".announcement") == NOTICE
        shot(page, "home-page-announcement")
    finally:
        assert announce(site, "--clear").stdout.strip() == "no announcement"
    page.goto(f"{hub.url}/hub/home")
    page.wait_for_selector("#hpchub-servers")
    assert page.query_selector(".announcement") is None
