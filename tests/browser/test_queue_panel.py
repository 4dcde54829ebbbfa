"""JupyterLab's queue panel in Chromium, in a server on a login node of the demo's Slurm
cluster: a script submitted from the file browser's context menu, its row in the panel, its
output opened in a tab, cancel; hold and release of a job that waits. Then the panel's
endpoints given hostile paths and job ids (as the API they are)."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from ..integration.test_slurm_spawner import queue
from ..site_handle import check, spawn, wait_until
from .test_spawn_page import log_in, shot, start_from_form, wait_for_lab

FOLDER = "queue-panel"
SCRIPT = "#!/bin/sh\n#SBATCH --time=5\n#SBATCH --partition=batch\necho \"started on $(hostname)\"\nsleep 300\n"
WAITING = "#!/bin/sh\n#SBATCH --time=5\n#SBATCH --begin=now+1hour\nsleep 60\n"


def write_scripts(site) -> None:
    check(site.ssh("alice", ["sh", "-c", f'rm -rf "$HOME/{FOLDER}" && mkdir "$HOME/{FOLDER}" && '
                                         f'cat > "$HOME/{FOLDER}/long job.sh"'], input=SCRIPT))
    check(site.ssh("alice", ["sh", "-c", f'cat > "$HOME/{FOLDER}/later.sh"'], input=WAITING))


def accounted_state(site, job_id: str) -> str:
    return check(site.ssh("alice", ["sacct", "--noheader", "--allocations", "--parsable2", "--format=State",
                                    f"--jobs={job_id}"])).stdout.strip()


def row(page, job_id: str):
    return page.locator(f'#hpchub-queue [data-job-id="{job_id}"]')


def submit_from_file_browser(page, name: str) -> str:
    page.locator(".jp-DirListing-item", has_text=name).click(button="right")
    page.locator(".lm-Menu-item", has_text="Submit as Batch Job").click()
    toast = page.locator(".Toastify__toast", has_text=f"{name} submitted: job").last
    expect(toast).to_be_visible(timeout=30_000)
    return re.search(r"job (\d+)", toast.inner_text()).group(1)


def test_the_queue_panel_submits_lists_opens_output_holds_releases_and_cancels(loopback_site, hub, page):
    site = loopback_site
    write_scripts(site)
    log_in(page, hub, "alice")
    start_from_form(page, "login")
    wait_for_lab(page, "/user/alice/")
    page.goto(f"{hub.url}/user/alice/lab/tree/{FOLDER}?reset")  # (no notebook of an earlier test reopened)
    page.wait_for_selector(".jp-DirListing-item >> text=long job.sh", timeout=60_000)

    job = submit_from_file_browser(page, "long job.sh")
    wait_until(f"job {job} running", lambda: queue(site, "alice").get(job) == "RUNNING", timeout=60)
    page.click('[data-id="hpchub-queue"]')
    expect(row(page, job)).to_contain_text("running on c", timeout=40_000)
    expect(row(page, job)).to_contain_text("long job.sh")
    expect(page.locator("#hpchub-queue .hpchub-queue-heading")).to_have_text("alice on default (slurm)")

    # Its output, opened in a tab: sbatch ran in the script's folder, as from a shell there.
    row(page, job).locator("button", has_text="Output").click()
    expect(page.locator(".jp-FileEditor").last).to_contain_text("started on c", timeout=30_000)
    expect(page.locator(".lm-TabBar-tab", has_text=f"slurm-{job}.out")).to_be_visible()

    page.click('[data-id="filebrowser"]')
    later = submit_from_file_browser(page, "later.sh")
    page.click('[data-id="hpchub-queue"]')  # shown again: it asks at once
    expect(row(page, later)).to_contain_text("waiting: BeginTime", timeout=20_000)
    row(page, later).locator("button", has_text="Hold").click()
    expect(row(page, later)).to_contain_text("held: JobHeldUser", timeout=20_000)
    shot(page, "lab-queue-panel")
    row(page, later).locator("button", has_text="Release").click()
    # (Slurm says why it waits again at its next scheduling pass.)
    expect(row(page, later).locator("button", has_text="Hold")).to_be_visible(timeout=20_000)
    expect(row(page, later).locator(".hpchub-queue-state")).to_contain_text("waiting")

    # Cancel asks first; "Keep it" keeps it.
    row(page, job).locator("button", has_text="Cancel").click()
    page.locator(".jp-Dialog button", has_text="Keep it").click()
    assert queue(site, "alice").get(job) == "RUNNING"
    row(page, job).locator("button", has_text="Cancel").click()
    page.locator(".jp-Dialog button", has_text="Cancel job").click()
    # (Slurm lists it as completing while the node cleans up, then as cancelled.)
    expect(row(page, job).locator(".hpchub-queue-state")).to_have_text(re.compile("completing|cancelled"),
                                                                       timeout=20_000)
    expect(row(page, job).locator("button", has_text="Cancel")).to_have_count(0)
    wait_until(f"job {job} cancelled", lambda: accounted_state(site, job).startswith("CANCELLED"), timeout=60)
    check(site.ssh("alice", ["scancel", later]))


HOSTILE_PATHS = ["", "   ", "../../etc/passwd", "/etc/passwd", "queue-panel/../../../etc/shadow", "nosuchfile.sh",
                 "queue-panel", "a\0b", "queue-panel/link-out", ["list"], {"x": 1}, 5, None, "x" * 5000,
                 "queue-panel/--wrap=id", "-o/tmp/x"]
HOSTILE_IDS = ["abc", "1;id", "..%2f..", "-1", "1%0a2", "%00", "999999999999999999999", "1,2", "12 13"]


def test_the_panels_endpoints_refuse_hostile_paths_and_job_ids_and_submit_nothing(loopback_site, hub):
    site = loopback_site
    write_scripts(site)
    check(site.ssh("alice", ["ln", "-sfn", "/etc", f"{FOLDER}/link-out"]))
    spawn(hub, "alice", options={"target": "login"})
    token = site.site.hub.admin_token()
    base = f"{hub.url}/user/alice/hpchub/queue"
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    before = set(queue(site, "alice"))
    for path in HOSTILE_PATHS:
        answer = session.post(base, json={"path": path}, timeout=30)
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:300])
        assert answer.json()["error"].startswith("path: "), (path, answer.text[:300])
    assert session.post(base, data=b"not json", timeout=30).status_code == 400
    for job_id in HOSTILE_IDS:
        for action in ("cancel", "hold", "release", "output"):
            method = session.get if action == "output" else session.post
            answer = method(f"{base}/{job_id}/{action}", timeout=30)
            assert answer.status_code in (400, 404), (job_id, action, answer.status_code)
            assert "Traceback" not in answer.text
    # An id of the right shape that is not one of alice's jobs (bob's, or none): refused by name
    # (Slurm's scancel says nothing, and exits 0, for a job it does not know).
    bobs = check(site.ssh("bob", ["sbatch", "--parsable", "--hold", "--wrap=sleep 60"])).stdout.strip()
    try:
        for job_id in ("999999", bobs):
            for action in ("cancel", "hold", "release"):
                refused = session.post(f"{base}/{job_id}/{action}", timeout=30)
                assert refused.status_code == 404, refused.text
                assert refused.json()["error"] == f"job {job_id} is not one of your jobs in the queue"
            assert session.get(f"{base}/{job_id}/output", timeout=30).status_code == 404
        assert queue(site, "bob") == {bobs: "PENDING"}
    finally:
        check(site.ssh("bob", ["scancel", bobs]))
    listing = session.get(base, timeout=30).json()
    assert listing["error"] is None and listing["can"] == {"cancel": True, "hold": True, "release": True,
                                                             "submit": True, "output": True}
    assert set(queue(site, "alice")) == before  # nothing was submitted
