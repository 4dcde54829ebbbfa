"""`make bench`: run the benchmarks, print each one's report and then one table of every
figure against its baseline (measured in the same run), and save all of it as JSON under
benchmarks/results/ (one file per run, to compare runs)."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from . import (batch_spawn, cluster_queries, container_spawn, gridengine_spawn, restart, scale, scale_stacks, site_bringup, ssh_spawn, ssh_throughput,
               status_queries)
from .table import render

BENCHMARKS = {"site-bringup": site_bringup, "ssh-spawn": ssh_spawn, "ssh-throughput": ssh_throughput,
              "batch-spawn": batch_spawn, "container-spawn": container_spawn, "gridengine-spawn": gridengine_spawn, "status-queries": status_queries,
              "cluster-queries": cluster_queries, "scale": scale,
              "scale-stacks": scale_stacks, "restart": restart}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--runs", type=int, help="repetitions of each measurement (default: each benchmark's own)")
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), choices=[[], *BENCHMARKS],
                        metavar="NAME", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args()
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    saved: dict = {"started": stamp, "machine": platform.node(), "results": {}, "figures": []}
    out = out_dir / f"bench-{stamp}.json"
    figures = []
    for name in args.names:
        module = BENCHMARKS[name]
        began = time.monotonic()
        result = module.run(args.runs) if args.runs else module.run()
        print(module.report(result), f"({name}: {time.monotonic() - began:.0f} s)\n", sep="\n", flush=True)
        figures += module.figures(result)
        saved["results"][name] = result
        saved["figures"] = [f.as_dict() for f in figures]
        out.write_text(json.dumps(saved, indent=1))  # after each benchmark: a failure later keeps these
    print(render(figures))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
