"""One table for all benchmarks: each figure beside its baseline measured in the same run,
the ratio, the goal and whether it was met. Every benchmark module gives `figures(result)`,
a list of Figure; `python -m benchmarks` prints them together and saves them as JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass


@dataclass
class Figure:
    name: str  # what was measured
    value: float
    unit: str
    baseline: str  # what it is compared with, measured in the same run
    baseline_value: float
    goal: str = ""  # in words; empty where the issue sets none
    met: bool | None = None
    spread: str = ""  # of the value, e.g. "1.9-2.6 s, n=20"

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else float("inf")

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def median_spread(values: list[float], unit: str = "s", scale: float = 1.0) -> tuple[float, str]:
    """The median and its spread in words (min-max, or p5-p95 from 20 values on)."""
    scaled = sorted(v * scale for v in values)
    if len(scaled) >= 20:
        cuts = statistics.quantiles(scaled, n=20)
        low, high, what = cuts[0], cuts[18], "p5-p95"
    else:
        low, high, what = scaled[0], scaled[-1], "min-max"
    return statistics.median(scaled), f"{what} {low:.3g}-{high:.3g} {unit}, n={len(scaled)}"


def render(figures: list[Figure]) -> str:
    header = ("figure", "value", "baseline", "baseline value", "ratio", "goal", "met")
    rows = [header]
    for f in figures:
        verdict = {True: "yes", False: "MISSED", None: "-"}[f.met]
        rows.append((f.name, f"{f.value:.3g} {f.unit}", f.baseline, f"{f.baseline_value:.3g} {f.unit}",
                     f"{f.ratio:.2f}x", f.goal or "-", verdict))
    widths = [min(max(len(row[i]) for row in rows), 48) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    spreads = [f"  {f.name}: {f.spread}" for f in figures if f.spread]
    return "\n".join(lines + (["spread of the values:"] + spreads if spreads else []))


def timing_line(name: str, values: list[float], floor: float | None = None) -> str:
    """One path's times as a report line: median, range, count, and its overhead above the
    floor's median where the path is not the floor itself."""
    median = statistics.median(values)
    overhead = "" if floor is None else f"  overhead {median - floor:+.2f} s"
    return f"{name:12} median {median:.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)}){overhead}"
