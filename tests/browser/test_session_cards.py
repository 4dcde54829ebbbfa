"""The home page's session cards in Chromium: a login-node server and a queued job with their
fields, Stop from a card, and a server's output read from its card (a job that failed at
start, a login server's log while it runs and after it stopped)."""

from __future__ import annotations

import re
import time

from ..integration.test_slurm_spawner import block_debug_partition, queue, request_spawn
from ..site_handle import check, spawn, stop
from .test_spawn_page import log_in, shot, start_from_form


def card(page, name: str):
    return page.locator(f'.hpchub-card[data-server-name="{name}"]')


def test_a_login_server_and_a_queued_job_on_their_cards_and_stop_from_a_card(loopback_site, hub, page):
    site = loopback_site
    log_in(page, hub, "alice")  # (the login gets alice's certificate, which her servers need)
    page.wait_for_selector("#target-login")  # (the login lands on the spawn page)
    near = spawn(hub, "alice", "near", options={"target": "login"})
    blocker = block_debug_partition(site)
    try:
        waiting = request_spawn(hub, "alice", "queued", {"target": "custom", "partition": "debug",
                                                          "walltime": "00:10:00"})
        job_id = waiting.wait_for("Submitted job")["job_id"]
        deadline = time.monotonic() + 60  # until the hub has seen the job pending in the queue
        while not any(event.get("state") == "PENDING" for event in waiting.events):
            assert time.monotonic() < deadline, waiting.events
            time.sleep(0.3)
        page.goto(f"{hub.url}/hub/home")
        running = card(page, "near")
        assert running.locator(".hpchub-state").inner_text() == "running"
        assert running.locator(".hpchub-where").inner_text() == near["state"]["host"]
        assert running.locator(".hpchub-target").inner_text() == "Login node"
        assert running.locator(".hpchub-open").get_attribute("href").endswith("/user/alice/near/")
        queued = card(page, "queued")
        assert queued.locator(".hpchub-state").inner_text() == "waiting in the queue"
        assert queued.locator(".hpchub-job").inner_text() == job_id
        assert queued.locator(".hpchub-open").count() == 0
        # One list: JupyterHub's own table of named servers is not shown beside the cards.
        assert page.locator(".server-table").count() == 0 and page.locator("#stop").count() == 0
        shot(page, "home-cards")

        queued.locator(".hpchub-stop").click()
        # The card says so at once, and once the server is gone the page shows it stopped.
        page.wait_for_selector('.hpchub-card[data-server-name="queued"] .hpchub-stop', state="detached",
                               timeout=60_000)
        assert card(page, "queued").locator(".hpchub-state").inner_text().startswith("stopped")
        assert job_id not in queue(site, "alice")
        assert card(page, "queued").locator(".hpchub-relaunch").count() == 1
        assert card(page, "near").locator(".hpchub-state").inner_text() == "running"
    finally:
        check(site.in_node("head", ["scancel", blocker]))


BROKEN_CONFIG = """\
print("hpchub-test: this configuration ends the server at once", flush=True)
import os
os._exit(3)
"""


def test_the_output_of_a_job_that_failed_at_start_and_a_login_server_log_are_read_from_the_card(
        loopback_site, hub, page):
    site = loopback_site
    config = "$HOME/.jupyter/jupyter_server_config.py"
    check(site.ssh("alice", ["sh", "-c", f'mkdir -p "$HOME/.jupyter" && cat > "{config}"'], input=BROKEN_CONFIG))
    try:
        log_in(page, hub, "alice")
        page.goto(f"{hub.url}/hub/spawn/alice/broken")
        start_from_form(page, "compute", {"walltime": "00:10:00"})
        # The pending page says why, and links to the whole output.
        page.wait_for_selector("#hpchub-output-link:not(.d-none)", timeout=120_000)
        shot(page, "spawn-failed")
        page.click("#hpchub-output-link a.btn-outline-secondary")
        output = page.wait_for_selector("#hpchub-output").inner_text()
        assert "hpchub-test: this configuration ends the server at once" in output
        what = page.inner_text("#hpchub-output-what")
        assert re.match(r"The output of job \d+, all of it", what), what
        shot(page, "output-of-a-failed-job")

        # JupyterHub's page for the failed server (where a later visit of its URL leads) links there too.
        page.goto(f"{hub.url}/hub/spawn-pending/alice/broken")
        page.click("#hpchub-output-link")
        assert "ends the server at once" in page.wait_for_selector("#hpchub-output").inner_text()

        page.goto(f"{hub.url}/hub/home")
        failed = card(page, "broken")
        assert failed.locator(".hpchub-state").inner_text().startswith("stopped: ")
        failed.locator(".hpchub-output").click()
        assert "ends the server at once" in page.wait_for_selector("#hpchub-output").inner_text()
    finally:
        check(site.ssh("alice", ["sh", "-c", f'rm -f "{config}"']))

    # A login server's log: while it runs, and after it stopped (kept in the home directory).
    spawn(hub, "alice", "near", options={"target": "login"})
    page.goto(f"{hub.url}/hub/hpchub/output/near")
    assert "Jupyter Server" in page.wait_for_selector("#hpchub-output").inner_text()
    stop(hub, "alice", "near")
    page.goto(f"{hub.url}/hub/home")
    card(page, "near").locator(".hpchub-output").click()
    assert "Jupyter Server" in page.wait_for_selector("#hpchub-output").inner_text()
    assert page.inner_text("#hpchub-output-what").startswith("The log of your server on login")
    shot(page, "output-of-a-login-server")
    # Only one's own servers: another user's server name is not found.
    response = page.goto(f"{hub.url}/hub/hpchub/output/no-such-server")
    assert response.status == 404
