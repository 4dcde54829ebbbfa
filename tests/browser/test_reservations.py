"""Reservations on the spawn page, in Chromium against the demo's real Slurm: the demo's
reservation (it starts in a week) is offered with its window in the user's zone, a job in it
expects to start with it, and it is not remembered as the next form's default; a reservation
that has started is usable like any other choice."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from ..site_handle import check, hub_settings, spawn, stop
from .conftest import BROWSER_ZONE
from .test_spawn_page import log_in, shot, start_from_form

RESERVATION = "workshop"  # site/slurm.py: seven days ahead, alice's, on c4


def reservation_window(site, name: str) -> tuple[datetime, datetime]:
    """The reservation's start and end as Slurm has them, asked in UTC."""
    out = check(site.in_node("head", ["env", "TZ=UTC", "scontrol", "show", "reservation", name, "--oneliner"])).stdout
    fields = dict(re.findall(r"(\w+)=(\S*)", out))
    return tuple(datetime.strptime(fields[key], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
                 for key in ("StartTime", "EndTime"))


def in_browser_zone(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(BROWSER_ZONE)).strftime("%Y-%m-%d %H:%M")


def test_a_future_reservation_shows_its_window_queues_until_it_and_is_not_remembered(loopback_site, hub, page):
    site = loopback_site
    start, end = reservation_window(site, RESERVATION)
    log_in(page, hub, "alice")
    page.wait_for_selector("#target-custom")
    page.check("#target-custom")
    label = page.inner_text(f'[name="custom.reservation"] option[value="{RESERVATION}"]').strip()
    assert label == (f"{RESERVATION}: starts {in_browser_zone(start)} {BROWSER_ZONE} (until {in_browser_zone(end)}), "
                     "your job would wait until then"), label
    shot(page, "form-future-reservation")
    start_from_form(page, "custom", {"reservation": RESERVATION, "walltime": "00:20:00"})
    page.wait_for_url("**/hub/spawn-pending/alice**")
    # Slurm has no estimate for a job in a reservation that has not begun: the page says when it begins.
    expect(page.locator("#hpchub-start")).to_have_text(f"{in_browser_zone(start)} ({BROWSER_ZONE})", timeout=45_000)
    expect(page.locator("#hpchub-state")).to_have_text("pending")
    shot(page, "pending-future-reservation")
    stop(hub, "alice")
    # The next form starts from the last options, but not from a reservation that has not started.
    page.goto(f"{hub.url}/hub/spawn")
    page.wait_for_selector("#target-custom")
    assert page.is_checked("#target-custom")
    assert page.input_value('[name="custom.reservation"]') == ""
    assert page.input_value('[name="custom.walltime"]') == "00:20:00"


def test_a_reservation_that_has_started_is_usable_and_remembered(loopback_site, hub, page):
    site = loopback_site
    name = "started-now"
    check(site.in_node("head", ["scontrol", "create", "reservation", f"ReservationName={name}", "StartTime=now",
                                "Duration=00:30:00", "Nodes=c3", "Users=alice"]))
    # (the hub caches the reservations for choices_ttl, 300 s: one made a moment ago is seen at once here)
    with hub_settings(site, "c.HPCSpawner.choices_ttl = 1\n"):
        try:
            model = spawn(hub, "alice", options={"target": "custom", "reservation": name, "walltime": "00:10:00"})
            assert model["state"]["node"] == "c3"
            stop(hub, "alice")
            log_in(page, hub, "alice")
            page.wait_for_selector("#target-custom")
            assert page.input_value('[name="custom.reservation"]') == name
            label = page.inner_text(f'[name="custom.reservation"] option[value="{name}"]').strip()
            assert label.startswith(f"{name} (until ") and label.endswith(f" {BROWSER_ZONE})"), label
        finally:
            check(site.in_node("head", ["scontrol", "delete", f"ReservationName={name}"]))
