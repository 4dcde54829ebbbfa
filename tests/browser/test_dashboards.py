"""Dashboards of work on compute nodes, opened in Chromium through the user's server: dask's
dashboard with its workers, and Spark's application UI with the job the notebook ran."""

from __future__ import annotations

from playwright.sync_api import expect

from .lab import run_in_a_new_notebook
from .test_spawn_page import log_in, shot, start_from_form, wait_for_lab

DASK = ("from hpchub.cluster import dask_cluster; cluster, client = dask_cluster(jobs=2, walltime='00:10:00'); "
        "client.wait_for_workers(2, timeout=120); print(cluster.dashboard_link)")
SPARK = ("from hpchub.cluster import spark_session; spark = spark_session(nodes=1, walltime='00:10:00'); "
         "print(spark.range(1000).filter('id % 2 = 0').count(), spark.hpchub_ui_link)")


def run_next_cell(page, code: str, index: int, timeout: float = 240_000) -> str:
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-NotebookPanel .jp-Cell").nth(index).locator(".jp-OutputArea-output")
    expect(output).not_to_be_empty(timeout=timeout)
    return output.inner_text()


def test_dasks_dashboard_shows_its_workers_and_sparks_ui_its_job_through_the_server(loopback_site, hub, page):
    log_in(page, hub, "alice")
    start_from_form(page, "login")
    wait_for_lab(page, "/user/alice/")
    page.goto(f"{hub.url}/user/alice/lab?reset")
    link = run_in_a_new_notebook(page, DASK).strip().splitlines()[-1]
    assert link.startswith("/user/alice/proxy/") and link.endswith("/status"), link
    spark_out = run_next_cell(page, SPARK, 1).strip().splitlines()[-1]
    count, spark_link = spark_out.split()
    assert count == "500" and spark_link.startswith("/user/alice/proxy/") and spark_link.endswith("/jobs/")

    board = page.context.new_page()
    board.goto(f"{hub.url}{link}")
    expect(board).to_have_title("Dask: Status", timeout=30_000)
    board.wait_for_selector("canvas", timeout=30_000)  # bokeh drew its plots
    shot(board, "dask-dashboard")
    board.goto(f"{hub.url}{link.removesuffix('/status')}/info/main/workers.html")
    workers = board.locator("table tr", has_text="tcp://")
    expect(workers).to_have_count(2, timeout=30_000)

    board.goto(f"{hub.url}{spark_link}")
    expect(board.locator("body")).to_contain_text("Spark Jobs", timeout=30_000)
    expect(board.locator("body")).to_contain_text("count at", timeout=30_000)
    # Its own links stay under the server's path (spark.ui.proxyBase).
    stages = board.locator("a", has_text="Stages").first
    assert stages.get_attribute("href").startswith(spark_link.removesuffix("/jobs/")), stages.get_attribute("href")
    shot(board, "spark-ui")
    board.close()
    run_next_cell(page, "spark.stop(); cluster.close(); client.close(); print('stopped')", 2, timeout=60_000)
