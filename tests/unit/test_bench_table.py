"""The benchmarks' table: spreads, ratios and verdicts (pure)."""

from __future__ import annotations

from benchmarks.table import Figure, median_spread, render


def test_median_spread_uses_min_max_below_twenty_values_and_p5_p95_from_twenty():
    assert median_spread([3.0, 1.0, 2.0]) == (2.0, "min-max 1-3 s, n=3")
    median, spread = median_spread([float(i) for i in range(1, 21)], "ms")
    assert median == 10.5 and spread.startswith("p5-p95 1.05-19.9 ms") and spread.endswith("n=20")


def test_render_shows_value_baseline_ratio_goal_and_verdict():
    figures = [Figure("spawn", 2.4, "s", "floor", 2.0, "<= 1.2x", True, "min-max 2-3 s, n=3"),
               Figure("queries", 3, "/min", "batchspawner", 0, "", None)]
    table = render(figures)
    header, rule, first, second = table.splitlines()[:4]
    assert header.split()[:2] == ["figure", "value"] and set(rule) <= {"-", " "}
    assert "2.4 s" in first and "2 s" in first and "1.20x" in first and "<= 1.2x" in first and first.endswith("yes")
    assert "infx" in second and second.endswith("-")
    assert "spawn: min-max 2-3 s, n=3" in table
    assert figures[0].as_dict()["ratio"] == 1.2
