"""Site bring-up, phase by phase.

Three ways up, on an instance of its own (`bench`, loopback mode, without the hub):
  cold  - from nothing (state purged): MariaDB initialised, keys and CA made;
  warm  - after `down` with the state kept: only the daemons start (the baseline);
  no-op - `up` on a running site: what the idempotence checks cost.
Each is run `runs` times; medians are reported, and cold and no-op as ratios to warm.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .table import Figure

NAME = "bench"
HPCHUB = str(Path(sys.executable).with_name("hpchub"))


def _site(action: str, *extra: str) -> float:
    start = time.monotonic()
    proc = subprocess.run([HPCHUB, "site", action, "--name", NAME, *extra], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"hpchub site {action} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def _phases() -> dict[str, float]:
    from hpchub.site.manager import load_layout

    layout = load_layout(NAME)
    return json.loads((layout.run_dir / "bringup-phases.json").read_text())


def run(runs: int = 3) -> dict:
    results: dict[str, list[dict]] = {"cold": [], "warm": [], "no-op": []}
    try:
        for _ in range(runs):
            _site("down", "--purge")
            total = _site("up", "--loopback", "--no-hub")
            results["cold"].append({"total": total, **_phases()})
            _site("down")
            total = _site("up", "--no-hub")
            results["warm"].append({"total": total, **_phases()})
            total = _site("up", "--no-hub")
            results["no-op"].append({"total": total, **_phases()})
    finally:
        _site("down", "--purge")
    medians = {
        kind: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for kind, rows in results.items()
    }
    return {"runs": runs, "medians": medians}


def report(result: dict) -> str:
    medians = result["medians"]
    base = medians["warm"]["total"]
    phases = [k for k in medians["cold"] if k != "total"]
    lines = [f"site bring-up (median of {result['runs']}; baseline: warm up = {base:.2f} s)",
             f"{'phase':14}" + "".join(f"{kind:>10}" for kind in medians)]
    for phase in [*phases, "total"]:
        lines.append(f"{phase:14}" + "".join(f"{medians[k].get(phase, 0):>9.2f}s" for k in medians))
    for kind in ("cold", "no-op"):
        lines.append(f"ratio {kind}/warm: {medians[kind]['total'] / base:.2f}x")
    return "\n".join(lines)


def figures(result: dict) -> list[Figure]:
    medians = result["medians"]
    warm = medians["warm"]["total"]
    return [Figure(f"site bring-up, {kind}", medians[kind]["total"], "s", "warm up (daemons only)", warm)
            for kind in ("cold", "no-op")]
