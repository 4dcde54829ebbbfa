"""The spawn form says what is free now, per partition, and agrees with sinfo."""

from __future__ import annotations

import time

from ..integration.test_slurm_spawner import queue
from ..site_handle import check
from .test_spawn_page import log_in, shot, start_from_form


def sinfo_free(site, partition: str) -> tuple[int, int]:
    """(idle nodes, idle cores) of a partition in sinfo's own summary (not hpchub's parser)."""
    cores = check(site.ssh("bob", ["sinfo", "--noheader", f"--partition={partition}", "--format=%C"])).stdout
    nodes = check(site.ssh("bob", ["sinfo", "--noheader", f"--partition={partition}", "--states=idle",
                                   "--format=%D"])).stdout
    return sum(int(n) for n in nodes.split()), sum(int(line.split("/")[1]) for line in cores.split())


def test_the_form_shows_what_is_free_now_as_sinfo_does(loopback_site, hub, page):
    site = loopback_site
    # bob takes two cores of one node of the batch partition.
    job = check(site.ssh("bob", ["sbatch", "--parsable", "--partition=batch", "--nodes=1", "--ntasks=2",
                                 "--time=5", "--wrap=sleep 300"])).stdout.strip()
    try:
        deadline = time.monotonic() + 30
        while queue(site, "bob").get(job) != "RUNNING":
            assert time.monotonic() < deadline, f"bob's job {job} did not start"
            time.sleep(0.3)
        log_in(page, hub, "alice")
        page.wait_for_selector("#target-login")
        expected = sinfo_free(site, "batch")
        assert expected[1] % 4 == 2  # (bob's two cores are in use)
        deadline = time.monotonic() + 40  # the figures are cached for up to 15 s
        while True:
            free = page.locator('.hpchub-target[data-target="compute"] .hpchub-free-partition[data-partition="batch"]')
            shown = (int(free.get_attribute("data-nodes-idle")), int(free.get_attribute("data-cores-idle")))
            if shown == expected:
                break
            assert time.monotonic() < deadline, f"the form shows {shown}, sinfo {expected}: {free.inner_text()}"
            time.sleep(3)
            page.reload()
            expected = sinfo_free(site, "batch")
        assert f"{expected[1]} of " in free.inner_text() and "GPUs" in free.inner_text()  # (c4 has GPUs)
        shot(page, "spawn-form-free-now")
    finally:
        check(site.ssh("bob", ["scancel", job]))


def test_an_account_whose_allocation_is_used_up_is_flagged_on_the_form_and_refused(loopback_site, hub, page):
    site = loopback_site
    # The demo's teaching account: GrpTRESMins=cpu=0, so Slurm would keep its jobs pending for good.
    limit = check(site.in_node("head", ["sacctmgr", "-n", "-P", "show", "assoc", "account=teaching", "user=",
                                        "format=GrpTRESMins"])).stdout.strip()
    assert limit == "cpu=0", limit
    log_in(page, hub, "alice")
    page.wait_for_selector("#target-custom")
    page.check("#target-custom")
    option = page.locator('[name="custom.account"] option[value="teaching"]')
    assert option.get_attribute("data-hpchub-flag") == "1" and "allocation used up" in option.inner_text()
    assert page.locator('[name="custom.account"] option[value="physics"]').get_attribute("data-hpchub-flag") is None
    flag = page.locator('.hpchub-target[data-target="custom"] .hpchub-flag[data-account="teaching"]')
    assert "account teaching has used up its allocation" in flag.inner_text()
    shot(page, "spawn-form-account-used-up")
    # Chosen anyway: refused at its field, and nothing is submitted.
    start_from_form(page, "custom", {"account": "teaching", "walltime": "00:20:00"})
    error = page.wait_for_selector("#custom\\.account-error")
    assert error.inner_text().startswith("account teaching has used up its allocation")
    assert queue(site, "alice") == {}
    response = hub.admin("POST", "/users/alice/server", json={"user_options": {"target": "custom",
                                                                                "account": "teaching"}})
    assert response.status_code == 400 and response.json()["message"].startswith("account: account teaching")
    assert queue(site, "alice") == {}
