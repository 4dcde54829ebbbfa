"""Dashboards of work on compute nodes, opened in Chromium through the user's server: dask's
dashboard with its workers, and Spark's application UI with the job the notebook ran."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .test_spawn_page import log_in, shot, start_from_form, wait_for_lab

DASK = ("from hpchub.cluster import dask_cluster; cluster, client = dask_cluster(jobs=2, walltime='00:10:00'); "
        "client.wait_for_workers(2, timeout=120); print(cluster.dashboard_link)")
SPARK = ("from hpchub.cluster import spark_session; spark = spark_session(nodes=1, walltime='00:10:00'); "
         "print('SPARK', spark.range(1000).filter('id % 2 = 0').count(), spark.hpchub_ui_link)")


def run_next_cell(page, code: str, index: int, until: str, timeout: float = 240_000) -> str:
    """Type code into the cell at index and run it; its output once it shows `until` (stderr's
    lines, libraries' warnings, may come first)."""
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-NotebookPanel .jp-Cell").nth(index).locator(".jp-OutputArea")
    expect(output).to_contain_text(until, timeout=timeout)
    return output.inner_text()


def test_dasks_dashboard_shows_its_workers_and_sparks_ui_its_job_through_the_server(loopback_site, hub, page):
    log_in(page, hub, "alice")
    start_from_form(page, "login")
    wait_for_lab(page, "/user/alice/")
    page.goto(f"{hub.url}/user/alice/lab?reset")
    # (The cells' output areas hold the libraries' log lines on stderr too.)
    page.wait_for_selector('.jp-LauncherCard[data-category="Notebook"]', timeout=60_000)
    page.click('.jp-LauncherCard[data-category="Notebook"]')
    page.wait_for_selector("text=| Idle", timeout=60_000)
    page.click(".jp-NotebookPanel .jp-Cell .jp-InputArea-editor")
    dask_out = run_next_cell(page, DASK, 0, until="/status")
    link = re.search(r"^(/user/alice/proxy/\d+/status)$", dask_out, re.MULTILINE)
    assert link, dask_out
    link = link.group(1)
    spark_out = run_next_cell(page, SPARK, 1, until="/jobs/")
    found = re.search(r"^SPARK (\d+) (/user/alice/proxy/\d+/jobs/)$", spark_out, re.MULTILINE)
    assert found and found.group(1) == "500", spark_out
    spark_link = found.group(2)

    board = page.context.new_page()
    board.goto(f"{hub.url}{link}")
    expect(board).to_have_title("Dask: Status", timeout=30_000)
    board.wait_for_selector("canvas", timeout=30_000)  # bokeh drew its plots
    shot(board, "dask-dashboard")
    board.goto(f"{hub.url}{link.removesuffix('/status')}/info/main/workers.html")
    workers = board.locator("table tr", has_text="tcp://")
    expect(workers).to_have_count(2, timeout=30_000)

    board.goto(f"{hub.url}{spark_link}")
    board.wait_for_load_state("networkidle")
    shot(board, "spark-ui")
    expect(board.locator("body")).to_contain_text("Spark Jobs", timeout=30_000)
    expect(board.locator("body")).to_contain_text("Completed Jobs", timeout=30_000)  # the count the cell ran
    # Its own links stay under the server's path (spark.ui.proxyBase).
    stages = board.locator("a", has_text="Stages").first
    assert stages.get_attribute("href").startswith(spark_link.removesuffix("/jobs/")), stages.get_attribute("href")
    board.close()
    run_next_cell(page, "spark.stop(); cluster.close(); client.close(); print('stopped')", 2, until="stopped",
                  timeout=60_000)
