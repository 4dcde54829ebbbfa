"""One quick iteration of every benchmark, so that none of them rots between `make bench`
runs. The figures are not judged here (speed is judged by `make bench`, not by tests); only
that each benchmark runs end to end on its own instance and reports what it measured."""

from __future__ import annotations

import pytest

from benchmarks import batch_spawn, site_bringup, ssh_spawn, ssh_throughput, status_queries


@pytest.mark.parametrize("module", [site_bringup, ssh_spawn, ssh_throughput, batch_spawn],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_one_iteration_runs_and_reports(module):
    result = module.run(1)
    assert result and result.get("runs", 1) == 1
    report = module.report(result)
    assert report.strip() and "nan" not in report.lower()


def test_status_queries_quick_iteration_counts_queries_for_both_spawners():
    result = status_queries.run(1, window=10, sizes=(2, 4))
    counts = result["counts"]
    assert set(counts) == {"hpchub", "batchspawner"}
    assert all(counts[tool][size][0] >= 0 for tool in counts for size in (2, 4))
    assert "10 s windows" in status_queries.report(result)
