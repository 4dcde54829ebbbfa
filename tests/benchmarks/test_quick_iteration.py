"""One quick iteration of every benchmark, so that none of them rots between `make bench`
runs. The figures are not judged here (speed is judged by `make bench`, not by tests); only
that each benchmark runs end to end on its own instance, measures every path it names, and
reports it in the table."""

from __future__ import annotations

import math

import pytest

from benchmarks import (batch_spawn, cluster_queries, container_spawn, gridengine_spawn, restart, scale, scale_stacks, site_bringup, ssh_spawn,
                        ssh_throughput, status_queries)
from benchmarks.table import render


def reports_every_figure(module, result) -> None:
    report = module.report(result)
    assert report.strip() and "nan" not in report.lower(), report
    figures = module.figures(result)
    assert figures and all(math.isfinite(f.value) and math.isfinite(f.baseline_value) for f in figures), figures
    table = render(figures)
    assert all(f.name in table for f in figures)


@pytest.mark.parametrize("module", [site_bringup, ssh_spawn, ssh_throughput, batch_spawn, gridengine_spawn,
                                    container_spawn],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_one_iteration_runs_and_reports(module):
    result = module.run(1)
    assert result and result.get("runs", 1) == 1
    reports_every_figure(module, result)


def test_status_queries_quick_iteration_counts_queries_for_both_spawners():
    result = status_queries.run(1, window=10, sizes=(2, 4))
    counts = result["counts"]
    assert set(counts) == {"hpchub", "batchspawner"}
    assert all(counts[tool][size][0] >= 0 for tool in counts for size in (2, 4))
    assert "10 s windows" in status_queries.report(result)
    reports_every_figure(status_queries, result)


def test_cluster_queries_quick_iteration_counts_each_clusters_queries():
    result = cluster_queries.run(1, window=10, sizes=(1,))
    (windows,) = result["counts"].values()
    assert set(windows[0]) == {"slurm", "sge"} and all(v >= 0 for v in windows[0].values())
    reports_every_figure(cluster_queries, result)


def test_scale_quick_iteration_spawns_every_user_on_both_paths():
    result = scale.run(1, users=4, real_users=2, window=4)
    for wave in [*result["stand_in"], result["real"]]:
        failed = [o for o in wave["outcomes"] if not o["ok"]]
        assert not failed, failed
        assert {o["target"] for o in wave["outcomes"]} == {"login", "shared"}
    reports_every_figure(scale, result)


def test_scale_stacks_quick_iteration_spawns_every_user_on_both_stacks():
    result = scale_stacks.run(1, users=4, window=4)
    assert [w["stack"] for w in result["stacks"]] == list(scale_stacks.STACKS)
    for wave in result["stacks"]:
        failed = [o for o in wave["outcomes"] if not o["ok"]]
        assert not failed, (wave["stack"], failed)
        assert {o["target"] for o in wave["outcomes"]} == {"login", "shared"}
    reports_every_figure(scale_stacks, result)


def test_restart_quick_iteration_sees_every_server_answer_again():
    result = restart.run(1, servers=2)
    assert all(None not in r["servers"] and r["all_ready"] is not None for r in result["loaded"]), result
    reports_every_figure(restart, result)
