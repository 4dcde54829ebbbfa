"""The spawn page in Chromium: each target, the queue's details while a job waits, refusals
next to the field, two servers at once on the home page, and the walltime notice in
JupyterLab. Screenshots go to test-artifacts/ (ignored by git) for a person to look at."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from hpchub.site.system import demo_passwords

from ..integration.test_slurm_spawner import queue
from .conftest import BROWSER_ZONE
from ..site_handle import HubClient, check, stop

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page, hub: HubClient, user: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", demo_passwords()[user])
    page.click("#login_submit")


def start_from_form(page, target: str, fields: dict | None = None) -> None:
    page.check(f"#target-{target}")
    for name, value in (fields or {}).items():
        selector = f'[name="{target}.{name}"]'
        if page.eval_on_selector(selector, "e => e.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click("#spawn_form button[type=submit]")


def seconds_of(waited: str) -> int:
    """The pending page's "1 min 5 s" (or "1 h 2 min") as seconds."""
    units = {"d": 86400, "h": 3600, "min": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+) (d|h|min|s)\b", waited))


def wait_for_lab(page, path: str) -> None:
    page.wait_for_url(f"**{path}lab**", timeout=90_000)
    page.wait_for_selector(".jp-LabShell", timeout=60_000)


def test_the_login_node_target_lands_in_jupyterlab_on_a_login_node(loopback_site, hub, page):
    log_in(page, hub, "bob")
    page.wait_for_selector("#target-login")
    shot(page, "spawn-form")
    start_from_form(page, "login")
    wait_for_lab(page, "/user/bob/")
    state = hub.admin("GET", "/users/bob").json()["servers"][""]["state"]
    assert state["kind"] == "login" and state["host"] in ("login1", "login2")


def test_a_container_image_chosen_on_the_card_runs_the_server_inside_it(loopback_site, hub, page):
    from hpchub.site.images import DEMO_IMAGE, DEMO_IMAGE_TITLE

    log_in(page, hub, "bob")
    page.wait_for_selector("#target-login-container")
    page.check("#target-login-container")
    menu = page.locator('select[name="login-container.image"]')
    expect(menu).to_be_visible()  # shown on the chosen card only
    assert menu.locator("option").all_inner_texts() == [DEMO_IMAGE_TITLE]
    shot(page, "spawn-form-container")
    start_from_form(page, "login-container", {"image": DEMO_IMAGE_TITLE})
    wait_for_lab(page, "/user/bob/")
    server = hub.admin("GET", "/users/bob").json()["servers"][""]
    assert server["user_options"]["image"] == DEMO_IMAGE_TITLE
    # The server's process sees the image as its root.
    label = check(loopback_site.in_node(server["state"]["host"],
                                        ["cat", f"/proc/{server['state']['pid']}/root/etc/hpchub-image"])).stdout
    assert f'"name": "{DEMO_IMAGE.name}"' in label
    # Its session card says which image it runs in, by the title it was chosen by.
    page.goto(f"{hub.url}/hub/home")
    card = page.locator('.hpchub-card[data-server-name=""]')
    expect(card.locator(".hpchub-image")).to_have_text(DEMO_IMAGE_TITLE)
    assert card.locator(".hpchub-target").inner_text() == "Login node, container"


def test_a_queued_compute_job_shows_state_reason_and_expected_start_then_lands_in_jupyterlab(
        loopback_site, hub, page):
    site = loopback_site
    blocker = check(site.ssh("bob", ["sbatch", "--parsable", "--partition=batch", "--nodes=4", "--exclusive",
                                     "--time=5", "--wrap=sleep 600"])).stdout.strip()
    log_in(page, hub, "alice")
    page.wait_for_selector("#target-compute")
    start_from_form(page, "compute", {"walltime": "00:30:00"})
    page.wait_for_url("**/hub/spawn-pending/alice**")
    expect(page.locator("#hpchub-state")).to_have_text("pending", timeout=30_000)
    reason = page.inner_text("#hpchub-reason")
    assert reason in ("Resources", "Priority"), reason
    page.wait_for_function("/\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d/.test(document.querySelector('#hpchub-start')"
                           ".textContent)", timeout=45_000)
    text = page.inner_text("#hpchub-queue")
    job_id = page.inner_text("#hpchub-job")
    # Slurm's expected start, asked in UTC, is shown in the browser's zone (not the hub's or the cluster's).
    shown = page.inner_text("#hpchub-start")
    expected = check(site.ssh("alice", ["env", "TZ=UTC", "squeue", "--noheader", "--start", f"--jobs={job_id}",
                                        "--format=%S"])).stdout.strip()
    local = datetime.strptime(expected, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).astimezone(
        ZoneInfo(BROWSER_ZONE))
    assert shown == local.strftime(f"%Y-%m-%d %H:%M ({BROWSER_ZONE})"), (shown, expected)
    assert "pending" in text and reason in text and re.search(r"Waited\s+\d+", text), text
    assert queue(site, "alice") == {job_id: "PENDING"}
    # One waiting time, counted from the submission: the card's and the progress line's agree,
    # and a reload does not start it again.
    page.wait_for_function("document.querySelector('#progress-message').textContent.includes('; waited ')")
    time.sleep(1.2)  # (both are rewritten every second, from the same origin: read them in one go)
    card, line = page.evaluate("[document.querySelector('#hpchub-waited').textContent,"
                               " document.querySelector('#progress-message').textContent]")
    assert line.endswith(f"; waited {card}"), (card, line)
    before = seconds_of(page.inner_text("#hpchub-waited"))
    page.reload()
    page.wait_for_function("/\\d+ (s|min)/.test(document.querySelector('#hpchub-waited').textContent)")
    assert seconds_of(page.inner_text("#hpchub-waited")) >= before >= 5, before
    shot(page, "pending-page")
    check(site.ssh("bob", ["scancel", blocker]))
    wait_for_lab(page, "/user/alice/")
    assert hub.admin("GET", "/users/alice").json()["servers"][""]["state"]["job_id"] == job_id


def test_the_form_refuses_bad_values_next_to_the_field_and_the_api_with_400(loopback_site, hub, page):
    site = loopback_site
    log_in(page, hub, "bob")
    page.wait_for_selector("#target-custom")
    page.check("#target-custom")
    # Not bob's: the chemistry account is not offered to him.
    accounts = page.eval_on_selector_all('[name="custom.account"] option', "os => os.map(o => o.value)")
    assert "physics" in accounts and "chemistry" not in accounts
    start_from_form(page, "custom", {"partition": "debug", "walltime": "02:00:00"})
    error = page.wait_for_selector("#custom\\.walltime-error")
    assert error.inner_text() == "can be at most 00:30:00 here"
    assert "is-invalid" in page.get_attribute('[name="custom.walltime"]', "class")
    # Said once, in words: nothing above the form ("Error: HTTP 400: Bad Request (...)" was).
    assert page.query_selector(".spawn-error-msg") is None and "HTTP 400" not in page.inner_text("body")
    shot(page, "form-refusal")
    # Refused again: the page's URL carries one _xsrf, not one more per refusal.
    start_from_form(page, "custom", {"partition": "debug", "walltime": "03:00:00"})
    page.wait_for_selector("#custom\\.walltime-error")
    assert len(parse_qs(urlparse(page.url).query).get("_xsrf", [])) == 1, page.url
    assert hub.admin("GET", "/users/bob").json()["servers"] == {}
    # The REST API checks the same things, before anything starts.
    for options, field in (({"target": "custom", "account": "chemistry"}, "account"),
                           ({"target": "custom", "nodes": "lots"}, "nodes"),
                           ({"target": "compute", "partition": "debug"}, "partition"),
                           ({"target": "nowhere"}, "target")):
        response = hub.admin("POST", "/users/bob/server", json={"user_options": options})
        assert response.status_code == 400 and response.json()["message"].startswith(f"{field}: "), response.text
    assert queue(site, "bob") == {}
    # Fixed, the same form starts the job.
    page.fill('[name="custom.walltime"]', "00:20:00")
    page.click("#spawn_form button[type=submit]")
    wait_for_lab(page, "/user/bob/")
    state = hub.admin("GET", "/users/bob").json()["servers"][""]["state"]
    assert state["kind"] == "batch" and state["node"] in ("c1", "c2")


def test_a_target_for_another_group_is_neither_shown_nor_accepted(loopback_site, hub, page):
    site = loopback_site
    staff_only = ('c.HPCSpawner.targets.append({"name": "staff", "title": "Staff nodes", '
                  '"kind": "login", "groups": ["hpchub-staff-only"]})\n')
    path = site.layout.hub_config_dir / "50-staff-target.py"
    path.write_text(staff_only)
    site.site.hub.restart()
    try:
        log_in(page, hub, "bob")
        page.wait_for_selector("#target-login")
        assert page.query_selector("#target-staff") is None
        response = hub.admin("POST", "/users/bob/server", json={"user_options": {"target": "staff"}})
        assert response.status_code == 400 and response.json()["message"].startswith("target: 'staff' is not")
    finally:
        path.unlink()
        site.site.hub.restart()


def test_two_servers_at_once_and_the_walltime_notice(loopback_site, hub, page):
    site = loopback_site
    path = site.layout.hub_config_dir / "50-walltime-notice.py"
    path.write_text("c.HPCSpawner.walltime_warning_minutes = 15\n")
    site.site.hub.restart()
    try:
        log_in(page, hub, "alice")
        page.wait_for_selector("#target-login")
        page.goto(f"{hub.url}/hub/spawn/alice/near")
        start_from_form(page, "login")
        wait_for_lab(page, "/user/alice/near/")
        page.goto(f"{hub.url}/hub/spawn/alice/far")
        start_from_form(page, "gpu", {"walltime": "00:12:00"})
        wait_for_lab(page, "/user/alice/far/")
        notice = page.wait_for_selector(".Toastify__toast >> text=/ends in \\d+ min: save your work/",
                                        timeout=60_000)
        assert "Your batch job" in notice.inner_text()
        status = page.wait_for_selector(".hpchub-walltime").inner_text()
        assert re.fullmatch(r"Job \d+: 1[01] min left", status), status
        # Compute nodes have no internet: JupyterLab's news prompt is switched off for the site.
        assert page.query_selector("text=official Jupyter news") is None
        shot(page, "walltime-notice")

        servers = hub.admin("GET", "/users/alice").json()["servers"]
        far = servers["far"]["state"]
        assert servers["near"]["state"]["kind"] == "login" and far["node"] == "c4"
        page.goto(f"{hub.url}/hub/home")
        cards = {c.get_attribute("data-server-name"): c.inner_text()
                 for c in page.query_selector_all("#hpchub-servers .hpchub-card")}
        assert servers["near"]["state"]["host"] in cards["near"] and "running" in cards["near"]
        assert "c4" in cards["far"] and far["job_id"] in cards["far"]
        assert re.search(r"Time left\s+1[01] min", cards["far"]), cards["far"]
        # When the job ends, in the browser's own zone (the cluster's is another, the hub's UTC).
        ends = page.inner_text('.hpchub-card[data-server-name="far"] .hpchub-ends')
        assert ends.endswith(f"({BROWSER_ZONE})"), ends
        shown_end = datetime.strptime(ends.split(" (")[0], "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(BROWSER_ZONE))
        assert abs(shown_end.timestamp() - (time.time() + 11 * 60)) < 3 * 60, ends
        shot(page, "home-two-servers")

        # Relaunch in one click, with the same settings.
        stop(hub, "alice", "far")
        page.goto(f"{hub.url}/hub/home")
        page.click("#relaunch-far")
        wait_for_lab(page, "/user/alice/far/")
        again = hub.admin("GET", "/users/alice").json()["servers"]["far"]
        assert again["user_options"]["target"] == "gpu" and again["user_options"]["walltime"] == "00:12:00"
        assert again["state"]["node"] == "c4" and again["state"]["job_id"] != far["job_id"]

        # Edit and relaunch: the form, filled in with the same settings, to change one.
        stop(hub, "alice", "far")
        page.goto(f"{hub.url}/hub/home")
        page.click('.hpchub-card[data-server-name="far"] .hpchub-edit')
        expect(page.locator("#target-gpu")).to_be_checked()
        expect(page.locator('[name="gpu.walltime"]')).to_have_value("00:12:00")
        assert "far" not in hub.admin("GET", "/users/alice").json()["servers"]  # nothing started
        page.fill('[name="gpu.walltime"]', "00:14:00")
        page.click("#spawn_form button[type=submit]")
        wait_for_lab(page, "/user/alice/far/")
        edited = hub.admin("GET", "/users/alice").json()["servers"]["far"]
        assert edited["user_options"]["target"] == "gpu" and edited["user_options"]["walltime"] == "00:14:00"
    finally:
        path.unlink()
        site.site.hub.restart()


def test_stop_on_the_pending_page_cancels_the_job(loopback_site, hub, page):
    site = loopback_site
    blocker = check(site.ssh("bob", ["sbatch", "--parsable", "--partition=batch", "--nodes=4", "--exclusive",
                                     "--time=5", "--wrap=sleep 600"])).stdout.strip()
    log_in(page, hub, "alice")
    page.goto(f"{hub.url}/hub/spawn/alice/waiting")
    start_from_form(page, "compute")
    # The click returns before the browser leaves the form; the pending page is the one to watch.
    page.wait_for_url("**/hub/spawn-pending/alice/waiting**")
    expect(page.locator("#hpchub-state")).to_have_text("pending", timeout=30_000)
    job_id = page.inner_text("#hpchub-job")
    page.click("#stop-server-btn")
    # The job leaves the queue, and the hub (which confirms that before it forgets the server)
    # drops the server a moment later.
    deadline = time.monotonic() + 30
    while queue(site, "alice") or "waiting" in hub.admin("GET", "/users/alice").json()["servers"]:
        assert time.monotonic() < deadline, (queue(site, "alice"), hub.admin("GET", "/users/alice").json())
        time.sleep(0.5)
    check(site.ssh("bob", ["scancel", blocker]))
    assert job_id


def test_the_page_groups_targets_by_cluster_and_a_grid_engine_job_lands_in_jupyterlab(loopback_site, hub, page):
    log_in(page, hub, "alice")
    page.wait_for_selector("#target-ge-compute")
    sections = page.eval_on_selector_all(
        "section.hpchub-cluster", "els => els.map(e => [e.dataset.cluster, e.querySelector('h3').innerText])")
    assert [name for name, _ in sections] == ["default", "ge"]
    assert sections[0][1].startswith("Slurm cluster") and sections[1][1].startswith("Grid Engine cluster")
    assert all(heading.endswith("up") for _, heading in sections), sections
    # Each cluster's own choices: Grid Engine's queues, not Slurm's partitions.
    queues = page.eval_on_selector_all('[name="ge-compute.partition"] option', "os => os.map(o => o.value)")
    assert sorted(queues) == ["batch.q", "short.q"]
    shot(page, "spawn-form-two-clusters")
    start_from_form(page, "ge-compute", {"cores": "2"})
    wait_for_lab(page, "/user/alice/")
    state = hub.admin("GET", "/users/alice").json()["servers"][""]["state"]
    assert state["target"] == "ge-compute" and state["node"] == "ge-c1"
    stop(hub, "alice", timeout=60)
